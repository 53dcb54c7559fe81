"""Hostile files through ingest: each ends in text or a clear error, fast and in bounded memory.

Anyone who can reach the web page can upload a file, and users hand the CLI whatever is on
their disk, so ingest must never hang, never crash the process and never eat the machine.
Two tiers:

- the named worst cases (random bytes, invalid UTF-8, one 10 MB line, deeply nested HTML,
  DOCX zip bombs, a PDF with no text, an empty file, a 50 MB file, a FIFO...) each run in a
  child process under an address-space limit and a 30 s timeout, so a hang, a crash or a
  memory blow-up fails the test instead of the test run;
- hypothesis properties (random bytes in every format, random text, generated HTML and
  DOCX) run in-process with a per-example deadline.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest import (
    SUPPORTED_SUFFIXES,
    Document,
    EmptyDocumentError,
    IngestError,
    document_from_bytes,
    load_document,
)
from ingest.readers import MAX_FILE_BYTES, html_to_text, read_file

ROOT = Path(__file__).resolve().parents[1]
TIME_LIMIT_S = 30.0
"""The promise: every file ends in text or a clear error within this time."""
ADDRESS_SPACE_LIMIT = 4 * 2**30
"""The child's virtual memory cap: a runaway allocation dies here, not on the machine."""

# ---------------------------------------------------------------------------- isolation
_CHILD = r"""
import json, resource, sys, time
limit = int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from pathlib import Path
from ingest import IngestError, load_document
started = time.monotonic()
result = {}
try:
    document = load_document(Path(sys.argv[1]))
    result = {"ok": True, "chars": len(document.text), "head": document.text[:200]}
except IngestError as exc:
    result = {"ok": False, "error": str(exc), "kind": type(exc).__name__}
result["seconds"] = time.monotonic() - started
# VmHWM, not ru_maxrss: on Linux ru_maxrss keeps the parent's peak across fork+exec.
status = Path("/proc/self/status").read_text()
result["maxrss_mb"] = next(int(line.split()[1]) for line in status.splitlines()
                           if line.startswith("VmHWM:")) / 1024
print(json.dumps(result))
"""


@dataclass(frozen=True)
class Outcome:
    """What reading one file in a child process gave."""

    ok: bool
    seconds: float
    maxrss_mb: float
    chars: int = 0
    head: str = ""
    error: str = ""
    kind: str = ""


def ingest_isolated(path: Path) -> Outcome:
    """Read ``path`` with ``load_document`` in a child under the time and memory limits.

    Any exception other than ``IngestError`` (a crash), a non-zero exit (a segfault or
    an out-of-memory kill) or the timeout (a hang) fails the calling test.
    """
    try:
        completed = subprocess.run(
            [sys.executable, "-c", _CHILD, str(path), str(ADDRESS_SPACE_LIMIT)],
            capture_output=True, text=True, timeout=TIME_LIMIT_S, cwd=ROOT,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{path.name}: reading did not finish within {TIME_LIMIT_S:.0f} s (hang)")
    if completed.returncode != 0:
        pytest.fail(f"{path.name}: the reader crashed (exit {completed.returncode}):\n"
                    f"{completed.stderr[-3000:]}")
    return Outcome(**json.loads(completed.stdout.strip().splitlines()[-1]))


def assert_clear_error(outcome: Outcome, name: str, *phrases: str) -> None:
    """A refusal that names the file, in one line, with the expected explanation."""
    assert not outcome.ok, f"{name} was accepted"
    assert name in outcome.error
    assert "\n" not in outcome.error and "Traceback" not in outcome.error
    for phrase in phrases:
        assert phrase in outcome.error, outcome.error


# ---------------------------------------------------------------------------- file makers
def minimal_pdf(page_texts: list[str | None]) -> bytes:
    """A valid PDF with one page per entry: Helvetica text, or no content at all for None."""
    objects: list[bytes] = []
    kids = []
    count = len(page_texts)
    for number, text in enumerate(page_texts):
        page_id = 4 + 2 * number
        kids.append(f"{page_id} 0 R")
        if text is None:
            stream = b""
        else:
            escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            stream = f"BT /F1 12 Tf 72 720 Td ({escaped}) Tj ET".encode("latin-1")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {page_id + 1} 0 R "
            "/Resources << /Font << /F1 3 0 R >> >> >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    head = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {count} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    return _pdf_file(head + objects)


def _pdf_file(objects: list[bytes]) -> bytes:
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n"
              % (len(objects) + 1, xref))
    return out.getvalue()


def pdf_stream_bomb(inflated: int) -> bytes:
    """A one-page PDF whose content stream inflates (Flate) to ``inflated`` bytes of spaces."""
    import zlib

    compressor = zlib.compressobj(9)
    chunk = b" " * 2**20
    packed = b"".join(compressor.compress(chunk) for _ in range(inflated // len(chunk)))
    packed += compressor.flush()
    return _pdf_file([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 5 0 R "
        b"/Resources << /Font << /F1 3 0 R >> >> >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(packed) + packed + b"\nendstream",
    ])


def docx_bytes(paragraphs: list[str]) -> bytes:
    """A real .docx written by python-docx."""
    import docx

    document = docx.Document()
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def docx_with_part(name: str, chunks: int, chunk: bytes) -> bytes:
    """A valid .docx plus (or with replaced) part ``name`` streamed from ``chunk * chunks``."""
    source = zipfile.ZipFile(io.BytesIO(docx_bytes(["Hello."])))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for info in source.infolist():
            if info.filename != name:
                archive.writestr(info.filename, source.read(info.filename))
        with archive.open(name, "w") as member:
            for _ in range(chunks):
                member.write(chunk)
    return out.getvalue()


def lie_about_sizes(data: bytes, member: str, claimed: int) -> bytes:
    """Rewrite a zip member's declared uncompressed size (local and central headers)."""
    buffer = bytearray(data)
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo(member)
    struct.pack_into("<I", buffer, info.header_offset + 22, claimed)  # local header
    name = member.encode()
    central = buffer.find(b"PK\x01\x02", 0)
    while central != -1:
        name_length = struct.unpack_from("<H", buffer, central + 28)[0]
        if bytes(buffer[central + 46: central + 46 + name_length]) == name:
            struct.pack_into("<I", buffer, central + 24, claimed)
        central = buffer.find(b"PK\x01\x02", central + 4)
    return bytes(buffer)


SPEECH_LINE = (b"Dalian improved its environment with help from Kitakyushu and Japan, "
               b"year after year, and won the Global 500 award in 2001.\n")


# ---------------------------------------------------------------------------- the named cases
def test_random_bytes_in_every_format_are_refused_clearly(tmp_path: Path) -> None:
    noise = os.urandom(2 * 2**20)
    for suffix in (".txt", ".html", ".pdf", ".docx"):
        path = tmp_path / f"noise{suffix}"
        path.write_bytes(noise)
        outcome = ingest_isolated(path)
        assert_clear_error(outcome, path.name)
        assert outcome.seconds < 10


def test_invalid_utf8_is_read_as_windows_1252(tmp_path: Path) -> None:
    path = tmp_path / "legacy.txt"
    path.write_bytes(b"The caf\xe9 by the harbour opened in 1999. Price: \x80 5.\n\xff\xfe stray bytes.")
    outcome = ingest_isolated(path)
    assert outcome.ok, outcome.error
    assert "café" in outcome.head and "€" in outcome.head


def test_utf16_with_bom_is_text_not_binary(tmp_path: Path) -> None:
    path = tmp_path / "wide.txt"
    path.write_bytes("Dalian’s harbour is wide.".encode("utf-16"))
    assert load_document(path).text == "Dalian’s harbour is wide."


def test_one_10_mb_line(tmp_path: Path) -> None:
    path = tmp_path / "one_line.txt"
    path.write_bytes(SPEECH_LINE.rstrip(b"\n") * (10 * 2**20 // len(SPEECH_LINE)))
    outcome = ingest_isolated(path)
    assert outcome.ok, outcome.error
    assert outcome.chars > 10 * 10**6 * 0.99
    assert outcome.maxrss_mb < 1024


@pytest.mark.parametrize("tag", ["div", "b", "table"])
def test_deeply_nested_html(tmp_path: Path, tag: str) -> None:
    """200,000 levels: a tree builder recurses or goes quadratic; we read it in well under 30 s."""
    depth = 200_000
    path = tmp_path / f"nested_{tag}.html"
    path.write_bytes(f"<{tag}>".encode() * depth + b"The deep sentence is here."
                     + f"</{tag}>".encode() * depth)
    outcome = ingest_isolated(path)
    assert outcome.ok, outcome.error
    assert outcome.head == "The deep sentence is here."
    assert outcome.seconds < 10


@pytest.mark.parametrize("tag", ["nav", "footer", "form"])
def test_deeply_nested_boilerplate_is_dropped_in_linear_time(tmp_path: Path, tag: str) -> None:
    """200,000 nested menus: the skipped element is a depth count, not a stack of elements."""
    depth = 200_000
    path = tmp_path / f"nested_{tag}.html"
    path.write_bytes(f"<{tag}>".encode() * depth + b"Home | About | Contact"
                     + f"</{tag}>".encode() * depth + b"<p>The deep sentence is here.</p>")
    outcome = ingest_isolated(path)
    assert outcome.ok, outcome.error
    assert outcome.head == "The deep sentence is here."
    assert outcome.seconds < 10


def test_crafted_markdown_stops_within_its_time_budget(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Megabytes of ``![`` cost markdown-it about 15 us a character: the budget stops it."""
    from ingest import readers

    monkeypatch.setattr(readers, "MAX_EXTRACT_SECONDS", 0.2)
    path = tmp_path / "crafted.md"
    path.write_bytes(b"Intro.\n\n" + b"![\n\n" * 2**18)
    started = time.monotonic()
    with pytest.raises(IngestError, match=r"crafted\.md: reading the Markdown took over"):
        load_document(path)
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("markup", [b"<!" * 2**21, b"</" * 2**21, b"<?" * 2**21, b"<a " * 2**21,
                                    b"<script>" * 2**19, b"<a b='" * 2**20])
def test_html_that_makes_parsers_quadratic(tmp_path: Path, markup: bytes) -> None:
    """Inputs on which html.parser and lxml take minutes: here each is linear."""
    path = tmp_path / "quadratic.html"
    path.write_bytes(b"<p>Visible start.</p>" + markup)
    outcome = ingest_isolated(path)
    assert outcome.ok, outcome.error
    assert outcome.head.startswith("Visible start.")
    assert outcome.seconds < 10


def test_docx_zip_bomb_declared_size_is_refused_before_inflating(tmp_path: Path) -> None:
    """A 100 MB XML part of blanks deflates to well under 1 MB: its declared size gives it away."""
    path = tmp_path / "bomb.docx"
    path.write_bytes(docx_with_part("word/document.xml", 100, b" " * 2**20))
    assert path.stat().st_size < 2**20
    outcome = ingest_isolated(path)
    assert_clear_error(outcome, path.name, "zip bomb")
    assert outcome.maxrss_mb < 512


def test_docx_zip_bomb_lying_about_its_size_stops_at_the_declared_size(tmp_path: Path) -> None:
    """Headers claim 4 KB but the part inflates to 100 MB: reading stops and the CRC fails."""
    filler = b"<w:p><w:r><w:t>boom</w:t></w:r></w:p>" * 1000
    data = docx_with_part("word/document.xml", 100 * 2**20 // len(filler), filler)
    path = tmp_path / "liar.docx"
    path.write_bytes(lie_about_sizes(data, "word/document.xml", 4096))
    outcome = ingest_isolated(path)
    assert_clear_error(outcome, path.name)
    assert outcome.maxrss_mb < 512


def test_docx_billion_laughs_expands_nothing(tmp_path: Path) -> None:
    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
    xml = (f'<?xml version="1.0"?><!DOCTYPE lolz [{entities}]>'
           '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
           "<w:body><w:p><w:r><w:t>Safe text. &lol9;</w:t></w:r></w:p></w:body></w:document>")
    path = tmp_path / "laughs.docx"
    path.write_bytes(docx_with_part("word/document.xml", 1, xml.encode()))
    outcome = ingest_isolated(path)
    if outcome.ok:
        assert outcome.chars < 1000 and "lollollol" not in outcome.head
    else:
        assert_clear_error(outcome, path.name)
    assert outcome.maxrss_mb < 512


def test_pdf_with_no_text_says_so(tmp_path: Path) -> None:
    path = tmp_path / "scan.pdf"
    path.write_bytes(minimal_pdf([None, None]))
    outcome = ingest_isolated(path)
    assert_clear_error(outcome, path.name, "no text layer")
    assert outcome.kind == "EmptyDocumentError"


def test_pdf_with_text_is_read(tmp_path: Path) -> None:
    path = tmp_path / "report.pdf"
    path.write_bytes(minimal_pdf(["Dalian won the Global 500 award", "in 2001, the report says."]))
    outcome = ingest_isolated(path)
    assert outcome.ok, outcome.error
    assert outcome.head == "Dalian won the Global 500 award in 2001, the report says."


def test_pdf_stream_bomb_is_bounded(tmp_path: Path) -> None:
    """A 200 KB stream that inflates to 200 MB: pypdf's output cap plus ours keep it small."""
    path = tmp_path / "stream_bomb.pdf"
    path.write_bytes(pdf_stream_bomb(200 * 2**20))
    outcome = ingest_isolated(path)
    if not outcome.ok:
        assert_clear_error(outcome, path.name)
    assert outcome.maxrss_mb < 1024


def test_truncated_pdf(tmp_path: Path) -> None:
    path = tmp_path / "cut.pdf"
    path.write_bytes(minimal_pdf(["Some text that is cut off."])[:150])
    outcome = ingest_isolated(path)
    if outcome.ok:  # pypdf may recover the page; then its text must be right
        assert "cut off" in outcome.head
    else:
        assert_clear_error(outcome, path.name)


@pytest.mark.parametrize("content", [b"", b" \n\t\r\n  ", b"\xef\xbb\xbf"])
def test_empty_files(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "empty.txt"
    path.write_bytes(content)
    with pytest.raises(EmptyDocumentError, match=r"empty\.txt: (file is empty|no text found)"):
        load_document(path)


@pytest.mark.parametrize("suffix", [".pdf", ".docx", ".html", ".md"])
def test_empty_files_of_every_format(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"empty{suffix}"
    path.write_bytes(b"")
    with pytest.raises(EmptyDocumentError, match=rf"empty\{suffix}: file is empty"):
        load_document(path)


def test_50_mb_text_file(tmp_path: Path) -> None:
    """A 50 MB hard-wrapped report: read, repaired, within the time limit and ~10x its size."""
    path = tmp_path / "big.txt"
    block = SPEECH_LINE * 8 + b"\n"
    with path.open("wb") as handle:
        for _ in range(50 * 2**20 // len(block)):
            handle.write(block)
    assert path.stat().st_size > 49 * 2**20
    outcome = ingest_isolated(path)
    assert outcome.ok, outcome.error
    assert outcome.chars > 49 * 2**20
    assert outcome.maxrss_mb < 1536, f"{outcome.maxrss_mb:.0f} MB for a 50 MB file"


def test_50_mb_binary_file_is_refused_fast(tmp_path: Path) -> None:
    path = tmp_path / "disk.txt"
    with path.open("wb") as handle:
        for _ in range(50):
            handle.write(os.urandom(2**20))
    outcome = ingest_isolated(path)
    assert_clear_error(outcome, path.name, "binary")
    assert outcome.seconds < 5


def test_file_over_the_limit_is_refused_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "huge.txt"
    with path.open("wb") as handle:
        handle.truncate(MAX_FILE_BYTES + 1)  # sparse: costs no disk
    outcome = ingest_isolated(path)
    assert_clear_error(outcome, path.name, "over the 64 MB limit")
    assert outcome.maxrss_mb < 256


def test_fifo_and_device_are_refused_not_waited_on(tmp_path: Path) -> None:
    """A path that is a pipe (nobody writes) or /dev/zero (never ends) must not hang."""
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    assert_clear_error(ingest_isolated(fifo), fifo.name, "not a regular file")
    zero = tmp_path / "zero.txt"
    zero.symlink_to("/dev/zero")
    assert_clear_error(ingest_isolated(zero), zero.name, "not a regular file")


def test_upload_bytes_over_the_limit_are_refused() -> None:
    with pytest.raises(IngestError, match=r"big\.txt: file is 65 MB, over the 64 MB limit"):
        document_from_bytes("big.txt", b"a" * (MAX_FILE_BYTES + 2**20))


def test_upload_name_is_reduced_to_its_base_name() -> None:
    """An upload's name is a label, never a path: '../../etc/passwd.txt' cannot point anywhere."""
    document = document_from_bytes("../../etc/passwd.txt", b"Just text.")
    assert document.doc_id == document.source == "passwd.txt"


# ---------------------------------------------------------------------------- properties
FORMATS = [*SUPPORTED_SUFFIXES, ".exe", ""]


@settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=4096), suffix=st.sampled_from(FORMATS))
def test_any_bytes_give_a_document_or_a_clear_error(data: bytes, suffix: str) -> None:
    name = f"upload{suffix}"
    try:
        document = document_from_bytes(name, data)
    except IngestError as exc:
        assert name in str(exc)
        return
    assert isinstance(document, Document)
    assert document.text.strip() == document.text and document.text


@settings(max_examples=60, deadline=2000)
@given(data=st.binary(min_size=30, max_size=4096), suffix=st.sampled_from([".pdf", ".docx"]))
def test_corrupted_real_files_give_a_document_or_a_clear_error(data: bytes, suffix: str) -> None:
    """Random bytes spliced into a valid PDF/DOCX: parsers get past the header this way."""
    valid = minimal_pdf(["A real page of text."]) if suffix == ".pdf" else docx_bytes(["A real paragraph."])
    cut = len(data) % len(valid)
    mangled = valid[:cut] + data + valid[cut + len(data):]
    try:
        document_from_bytes(f"mangled{suffix}", mangled)
    except IngestError as exc:
        assert f"mangled{suffix}" in str(exc)


@settings(max_examples=100, deadline=2000)
@given(text=st.text(max_size=2000))
def test_any_text_is_read_or_called_empty(text: str) -> None:
    data = text.encode("utf-8", "surrogatepass")
    try:
        document = document_from_bytes("notes.txt", data)
    except EmptyDocumentError:
        return  # blank, or only control characters
    except IngestError as exc:
        assert "notes.txt" in str(exc)
        assert "\x00" in text or not text.isprintable()  # refused as binary or undecodable
        return
    words = document.text.split()
    assert words, "a document must hold text"
    assert not any(ch in document.text for ch in "\r\f\x00")


_WORD = st.from_regex(r"[a-z]{3,8}", fullmatch=True)


@st.composite
def html_documents(draw: st.DrawFn) -> tuple[str, list[str], list[str]]:
    """Random nested HTML: returns the markup, the visible words in order, the hidden words."""
    visible: list[str] = []
    hidden: list[str] = []

    def element(depth: int) -> str:
        kind = draw(st.sampled_from(["text", "block", "inline", "hidden", "comment", "entity"]
                                    if depth < 6 else ["text"]))
        if kind == "text":
            word = "v" + draw(_WORD)
            visible.append(word)
            return f" {word} "
        if kind == "entity":
            visible.append("a&b")
            return " a&amp;b "
        if kind == "hidden":
            word = "h" + draw(_WORD)
            hidden.append(word)
            tag = draw(st.sampled_from(["script", "style", "noscript", "template", "nav", "header",
                                        "footer", "aside", "form"]))
            inner = f"<{tag}><div>{word}</div></{tag}>" if tag in ("nav", "aside") else ""
            return f"<{tag} type='x'>{word} <p>{word}</p>{inner}</{tag}>"
        if kind == "comment":
            word = "h" + draw(_WORD)
            hidden.append(word)
            return f"<!-- {word} <p> -->"
        tag = draw(st.sampled_from(["p", "div", "li", "h2", "td"] if kind == "block"
                                   else ["b", "i", "span", "a", "em"]))
        attributes = draw(st.sampled_from(["", " class='c'", ' title="x > y"', " data-x=1"]))
        children = "".join(element(depth + 1) for _ in range(draw(st.integers(0, 3))))
        return f"<{tag}{attributes}>{children}</{tag}>"

    body = "".join(element(0) for _ in range(draw(st.integers(1, 4))))
    return f"<!DOCTYPE html><html><head><title>hidden</title></head><body>{body}</body></html>", \
        visible, hidden


@settings(max_examples=150, deadline=1000)
@given(html_documents())
def test_html_keeps_visible_words_in_order_and_drops_hidden_ones(
        case: tuple[str, list[str], list[str]]) -> None:
    markup, visible, hidden = case
    words = html_to_text(markup).split()
    assert words == visible
    assert not set(hidden) & set(words)


_DOCX_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff"),
                     max_size=80)


@settings(max_examples=30, deadline=3000)
@given(st.lists(_DOCX_TEXT, min_size=1, max_size=6))
def test_docx_text_matches_python_docx(paragraphs: list[str]) -> None:
    """Our streamed DOCX reader returns what python-docx itself reads from the file."""
    import docx

    data = docx_bytes(paragraphs)
    expected = "\n\n".join(p.text for p in docx.Document(io.BytesIO(data)).paragraphs)
    if not expected.strip():
        with pytest.raises(EmptyDocumentError):
            document_from_bytes("random.docx", data)
        return
    assert read_file(Path("random.docx"), data) == expected
