"""Ingest: repairing the speech's broken lines, sentence/passage offsets, file formats."""

from __future__ import annotations

import io
import itertools
import os
from pathlib import Path

import pytest

from ingest import (
    ChunkingParams,
    EmptyDocumentError,
    IngestError,
    UnsupportedFileError,
    default_documents,
    load_documents,
    make_passages,
    repair_text,
    split_sentences,
)


def test_default_corpus_is_the_repaired_speech() -> None:
    (speech,) = default_documents()
    assert speech.source == "dalian_speech.txt"
    assert speech.text.startswith("Environmental Protection and International Cooperation in Dalian\n\n")
    # No hard wraps or stray spaces left inside paragraphs.
    for paragraph in speech.text.split("\n\n"):
        assert "\n" not in paragraph
        assert "  " not in paragraph
        assert paragraph == paragraph.strip()


def test_page_break_inside_a_sentence_is_joined() -> None:
    (speech,) = default_documents()
    assert "the creation of one or two “model city” was proposed to the Chinese side." in speech.text
    sentences = [speech.text[s.start:s.end] for s in split_sentences(speech.text)]
    assert "At that time, the creation of one or two “model city” was proposed to the Chinese side." \
        in sentences


def test_words_stay_verbatim() -> None:
    raw = Path(__file__).resolve().parents[1].joinpath("ingest/data/dalian_speech.txt").read_text()
    (speech,) = default_documents()
    assert raw.split() == speech.text.split()


def test_repair_rules() -> None:
    raw = ("Title Line\n\n  First line of a para-\ngraph wrapped   here\nand ending.\n\n"
           "Next paragraph starts\n\n\n\nafter a page break.\fNew page paragraph.\n")
    assert repair_text(raw) == (
        "Title Line\n\nFirst line of a paragraph wrapped here and ending.\n\n"
        "Next paragraph starts after a page break.\n\nNew page paragraph."
    )


def test_sentence_and_passage_offsets_slice_back() -> None:
    (speech,) = default_documents()
    sentences = split_sentences(speech.text)
    assert len(sentences) > 30
    for sentence in sentences:
        piece = speech.text[sentence.start:sentence.end]
        assert piece and piece == piece.strip() and "\n\n" not in piece
    passages = make_passages(sentences, ChunkingParams())
    covered = set()
    for passage in passages:
        assert speech.text[passage.start:passage.end].startswith(
            speech.text[sentences[passage.first_sentence].start:sentences[passage.first_sentence].end])
        assert passage.end == sentences[passage.last_sentence].end
        assert {sentences[i].paragraph for i in range(passage.first_sentence, passage.last_sentence + 1)} \
            == {passage.paragraph}
        covered.update(range(passage.first_sentence, passage.last_sentence + 1))
    assert covered == set(range(len(sentences)))


@pytest.mark.parametrize(("size", "overlap"), [(1, 0), (2, 1), (3, 1), (4, 2), (5, 0)])
def test_passage_windows_respect_size_and_overlap(size: int, overlap: int) -> None:
    (speech,) = default_documents()
    sentences = split_sentences(speech.text)
    passages = make_passages(sentences, ChunkingParams(size, overlap, max_chars=10_000))
    for passage in passages:
        assert passage.last_sentence - passage.first_sentence + 1 <= size
    for before, after in itertools.pairwise(passages):
        if before.paragraph == after.paragraph:
            shared = before.last_sentence - after.first_sentence + 1
            assert shared == overlap or after.last_sentence - after.first_sentence + 1 < size


def test_reads_every_supported_format(tmp_path: Path) -> None:
    import docx
    from pypdf import PdfWriter

    (tmp_path / "a.txt").write_text("Plain text about tigers. They hunt at night.", encoding="utf-8")
    (tmp_path / "b.md").write_text("# Heading\n\nMarkdown about whales.\n", encoding="utf-8")
    (tmp_path / "c.html").write_text(
        "<html><head><style>p{}</style><script>var x=1;</script></head>"
        "<body><p>HTML about owls.</p><p>Second paragraph.</p></body></html>", encoding="utf-8")
    document = docx.Document()
    document.add_paragraph("Word document about bees.")
    document.save(str(tmp_path / "d.docx"))
    sub = tmp_path / "nested" / "deeper"
    sub.mkdir(parents=True)
    (sub / "e.txt").write_text("Nested file about eels.", encoding="utf-8")
    (tmp_path / "ignored.bin").write_bytes(b"\x00\x01")
    writer = PdfWriter()
    writer.add_blank_page(200, 200)
    with (tmp_path / "scan.pdf").open("wb") as handle:
        writer.write(handle)
    docs = load_documents([tmp_path], skip_bad=True)  # the text-less PDF is skipped, not fatal
    texts = {d.source: d.text for d in docs}
    assert texts[f"{tmp_path.name}/a.txt"] == "Plain text about tigers. They hunt at night."
    assert "Markdown about whales." in texts[f"{tmp_path.name}/b.md"]
    assert texts[f"{tmp_path.name}/c.html"] == "HTML about owls.\n\nSecond paragraph."
    assert texts[f"{tmp_path.name}/d.docx"] == "Word document about bees."
    assert texts[f"{tmp_path.name}/nested/deeper/e.txt"] == "Nested file about eels."
    assert len(docs) == 5


def test_reads_a_real_pdf_text_layer(tmp_path: Path) -> None:
    pdf = _tiny_pdf("Dalian won the Global 500 award in 2001.")
    path = tmp_path / "speech.pdf"
    path.write_bytes(pdf)
    (document,) = load_documents([path])
    assert "Dalian won the Global 500 award in 2001." in document.text


def _tiny_pdf(text: str) -> bytes:
    """A one-page PDF with a real text layer, written by hand (no PDF writer needed)."""
    stream = f"BT /F1 12 Tf 20 100 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 400 200] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


@pytest.mark.parametrize(
    ("name", "content", "error", "message"),
    [
        ("empty.txt", b"", EmptyDocumentError, "empty"),
        ("blank.txt", b"   \n\n\t ", EmptyDocumentError, "empty"),
        ("binary.txt", b"\x00\x01\x02binary\x00" * 50, IngestError, "binary"),
        ("image.png", b"\x89PNG....", UnsupportedFileError, "unsupported file type"),
        ("broken.pdf", b"%PDF-1.4 garbage", IngestError, "broken.pdf"),
        ("broken.docx", b"not a zip", IngestError, "not a valid DOCX"),
    ],
)
def test_bad_files_get_a_clear_error(tmp_path: Path, name: str, content: bytes,
                                     error: type[Exception], message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(error) as info:
        load_documents([path])
    assert message in str(info.value)
    assert name in str(info.value)


def test_pdf_without_text_layer(tmp_path: Path) -> None:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(200, 200)
    path = tmp_path / "scan.pdf"
    with path.open("wb") as handle:
        writer.write(handle)
    with pytest.raises(EmptyDocumentError, match=r"scan\.pdf: PDF has no text layer"):
        load_documents([path])


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match=r"nope\.txt: no such file"):
        load_documents([tmp_path / "nope.txt"])


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Permission bits do not stop root (CI), so the OS refusal is simulated at the read."""
    path = tmp_path / "secret.txt"
    path.write_text("hidden")

    real_open = os.open

    def refuse(file: object, flags: int, *args: object, **kwargs: object) -> int:
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, flags, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(IngestError, match=r"secret\.txt: permission denied"):
        load_documents([path])


def test_latin1_text_is_read_not_refused(tmp_path: Path) -> None:
    path = tmp_path / "old.txt"
    path.write_bytes("Café in Zürich.".encode("cp1252"))
    (document,) = load_documents([path])
    assert document.text == "Café in Zürich."
