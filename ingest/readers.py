"""Read files of the supported formats into raw text.

Each reader turns one format into plain text and nothing else; repair and splitting
happen later, the same way for every format.  Limits are enforced here because this is
where untrusted bytes first arrive (files users name, uploads anyone on the network
sends), so every reader must end, quickly and in bounded memory, in text or in an
``IngestError`` naming the file:

- size caps stop a 5 GB upload, a zip bomb or a PDF stream bomb from exhausting memory;
- only regular files are read, and never more than the cap, so a path that is really a
  FIFO or ``/dev/zero`` cannot hang or fill memory;
- HTML is tokenised by a small linear-time scanner instead of a tree builder: the tree
  builders we tried (BeautifulSoup over ``html.parser``, lxml) take minutes on a few MB of
  deeply nested tags or of ``<!<!<!...``, which anyone can upload;
- PDF extraction runs on a time budget checked between pages;
- Markdown is parsed by markdown-it-py (CommonMark, linear time) and rendered as plain
  text, so ``**bold**`` or ``## Trams`` never reach an answer and offsets point into
  the text a person is shown;
- any exception a parser raises on malformed input becomes an ``IngestError``.
"""

from __future__ import annotations

import functools
import html
import io
import logging
import os
import re
import stat
import time
import warnings
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ingest.errors import EmptyDocumentError, IngestError, UnsupportedFileError

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.token import Token

logger = logging.getLogger(__name__)

MAX_FILE_BYTES = 64 * 1024 * 1024
"""Largest file we read at all (a 50 MB report is fine; a disk image is not)."""

MAX_TEXT_CHARS = 64 * 1024 * 1024
"""Most characters a file may yield (a small compressed PDF or DOCX can expand hugely)."""

MAX_DOCX_UNCOMPRESSED = 256 * 1024 * 1024
"""Largest total uncompressed size of a .docx archive (defuses zip bombs)."""

MAX_DOCX_XML = 64 * 1024 * 1024
"""Largest total uncompressed size of a .docx's XML parts: they become an in-memory tree
(about ten times their size), unlike images, which are only held as bytes."""

MAX_PDF_PAGES = 5000

MAX_EXTRACT_SECONDS = 20.0
"""Time budget for extracting one PDF, checked between pages (a crafted file can make
every page slow; the caller gets a clear error instead of a hung request)."""

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx")

_BOMS = {b"\xef\xbb\xbf": "utf-8-sig", b"\xff\xfe": "utf-16", b"\xfe\xff": "utf-16"}


def _decode_text(data: bytes, path: Path) -> str:
    """Decode bytes as text, refusing binaries instead of indexing garbage."""
    for bom, encoding in _BOMS.items():  # a BOM first: UTF-16 text is full of NUL bytes
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError as exc:
                raise IngestError(f"{path}: starts like {encoding} text but is not valid {encoding}") from exc
    if b"\x00" in data[:8192]:
        raise IngestError(f"{path}: looks like a binary file, not text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    printable = sum(ch.isprintable() or ch in "\n\r\t" for ch in text[:8192])
    if printable < 0.95 * min(len(text), 8192):
        raise IngestError(f"{path}: is not valid UTF-8 text and looks binary")
    logger.warning("%s: not valid UTF-8; read as Windows-1252", path)
    return text


def read_plain(path: Path, data: bytes) -> str:
    """Plain text: decoded as-is."""
    return _decode_text(data, path)


# ---------------------------------------------------------------------------- tables
_SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]»]*$")


def table_row_sentence(cells: Sequence[str], header: Sequence[str] | None = None) -> str:
    """One table row as one sentence, so a row is retrieved and cited as a whole.

    Why: read cell by cell, "What is the capacity of Lake Brennan?" found the cell "Lake
    Brennan" and answered with it.  A row reads "Lake Brennan: Capacity 40 million m³;
    Depth 12 m." when the table marks a header row (its labels go in front of each value),
    otherwise "Lake Brennan; 40 million m³; 12 m."  The closing period keeps the repair
    step from joining the row with the next one.

    Args:
        cells: The row's cell texts, left to right (empty cells are skipped).
        header: The table's marked header row, to label the cells with; None for none.

    Returns:
        The sentence, or "" for a row with no text.
    """
    values = [" ".join(cell.split()) for cell in cells]
    if header is not None and len(values) > 1:
        labels = [" ".join(label.split()) for label in header]
        labels += [""] * (len(values) - len(labels))  # a row wider than its header keeps every cell
        labelled = [
            f"{label} {value}" if label and label != value else value
            for label, value in zip(labels[1:len(values)], values[1:], strict=True)
            if value
        ]
        row = "; ".join(labelled)
        if values[0] and row:
            row = f"{values[0]}: {row}"
        elif values[0]:
            row = values[0]
    else:
        row = "; ".join(value for value in values if value)
    if not row:
        return ""
    return row if _SENTENCE_END.search(row) else row + "."


# ---------------------------------------------------------------------------- Markdown
class _OutOfTime(Exception):
    """Raised inside markdown-it when a parse passes its deadline (caught right above it)."""


_DEADLINE = "speech_qa_deadline"
"""Key of the parse's deadline (a ``time.monotonic`` value) in markdown-it's ``env``."""


def _check_deadline(state: Any, *_: Any) -> bool:
    """A markdown-it rule that matches nothing and stops a parse that is past its deadline.

    Why a rule: markdown-it parses in one call, so the only way to check a time budget
    during a parse (as the PDF reader does between pages) is from inside it.  Tried first
    at every block and inline position, so a crafted file stops within the budget.
    """
    if time.monotonic() > state.env.get(_DEADLINE, float("inf")):
        raise _OutOfTime
    return False


@functools.lru_cache(maxsize=1)
def _markdown_parser() -> MarkdownIt:
    """CommonMark with GitHub's tables and strikethrough (what READMEs use).

    No typographer, so words stay verbatim.  The core "inline" rule is off: each block's
    inline run is parsed by ``_inline_text`` (with the block pass's link references).
    Crafted input (a megabyte of ``![``, or of tiny blocks) stays linear in markdown-it
    but at a high constant, so a deadline rule runs first in both passes.
    """
    from markdown_it import MarkdownIt

    parser = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"]).disable("inline")
    parser.block.ruler.before("table", "deadline", _check_deadline)
    parser.inline.ruler.before("text", "deadline", _check_deadline)
    return parser


def _inline_text(parser: MarkdownIt, source: str, env: dict[str, Any]) -> str:
    """The words of an inline run: markup (emphasis, links, inline HTML tags) dropped,
    code and image alt text kept, line breaks kept as newlines for repair to join."""
    children: list[Token] = []
    parser.inline.parse(source, parser, env, children)
    parts: list[str] = []
    for child in children:
        if child.type in ("text", "text_special", "code_inline", "image"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append("\n")
    return "".join(parts)


def markdown_to_text(source: str, path: Path | None = None) -> str:
    """Plain text of a Markdown document, one block per paragraph, no markup left.

    Headings, paragraphs, list items and quotes become paragraphs; code blocks keep their
    code without fences; a table row becomes one sentence (see ``table_row_sentence``,
    labelled by the header row); raw HTML blocks go through ``html_to_text``.

    Args:
        source: Decoded Markdown.
        path: The file, for the error message.

    Returns:
        Raw text (whitespace is normalised later by ``repair_text``).

    Raises:
        IngestError: Reading took over ``MAX_EXTRACT_SECONDS`` (crafted input).
    """
    parser = _markdown_parser()
    # Link reference definitions (shared by every inline run) and the parse's deadline.
    env: dict[str, Any] = {_DEADLINE: time.monotonic() + MAX_EXTRACT_SECONDS}
    blocks: list[str] = []
    header: list[str] | None = None
    row: list[str] | None = None
    in_head = False
    try:
        tokens = parser.parse(source, env)
        for token in tokens:
            kind = token.type
            if kind == "inline":
                text = _inline_text(parser, token.content, env)
                if row is not None:
                    row.append(text)
                else:
                    blocks.append(text)
            elif kind in ("fence", "code_block"):
                blocks.append(token.content)
            elif kind == "html_block":
                blocks.append(html_to_text(token.content))
            elif kind == "thead_open":
                in_head, header = True, None
            elif kind == "thead_close":
                in_head = False
            elif kind == "tr_open":
                row = []
            elif kind == "tr_close" and row is not None:
                blocks.append(table_row_sentence(row, None if in_head else header))
                if in_head:
                    header = row
                row = None
            elif kind == "table_close":
                header = None
    except _OutOfTime:
        raise IngestError(
            f"{path or 'Markdown'}: reading the Markdown took over {MAX_EXTRACT_SECONDS:.0f} s; "
            "the file may be malformed"
        ) from None
    return "\n\n".join(block for block in blocks if block.strip())


def read_markdown(path: Path, data: bytes) -> str:
    """Markdown: rendered to plain text (see ``markdown_to_text``)."""
    return markdown_to_text(_decode_text(data, path), path)


# ---------------------------------------------------------------------------- HTML
_HTML_BLOCK = frozenset({
    "address", "article", "aside", "blockquote", "br", "caption", "dd", "details", "div", "dl",
    "dt", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6",
    "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table",
    "td", "th", "tr", "ul",
})
"""Elements that end a paragraph of visible text."""

_HTML_HIDDEN = ("script", "style", "noscript", "template", "title", "textarea", "svg", "math")
"""Elements whose content is not running text: skipped up to their closing tag."""

# One token per match; every alternative consumes what it scans, so the scan is linear
# even on hostile input (quoted attribute values are bounded, unterminated ones stop early).
_HTML_TOKEN = re.compile(
    r"<!--.*?(?:-->|\Z)"                                             # comment (to end if open)
    r"|<(/?)([A-Za-z][^\s/>]{0,64})((?:[^>\"']|\"[^\"]{0,4096}\"|'[^']{0,4096}'){0,65536})>?"
    r"|<[!?][^>]*>?"                                                 # doctype, CDATA, PI
    r"|</[^A-Za-z>][^>]*>?",                                         # bogus end tag
    re.DOTALL,
)
_HTML_HIDDEN_END = {name: re.compile(rf"</{name}\b[^>]*>?", re.IGNORECASE) for name in _HTML_HIDDEN}

_HTML_BOILERPLATE = frozenset({"nav", "header", "footer", "aside", "form"})
"""Page furniture (menus, banners, "Home | About | Contact", sidebars, forms): dropped with
everything inside, counting nested elements of the same name, so it is never indexed."""


def html_to_text(markup: str, drop_boilerplate: bool = True) -> str:
    """Visible text of an HTML document, one block element per paragraph.

    Not a DOM: text between tags is kept (entities decoded), tags are dropped, block tags
    separate paragraphs, script/style/etc. content is skipped, and so is everything inside
    nav/header/footer/aside/form.  That is all text extraction needs, and it runs in linear
    time and memory whatever the nesting (a skipped element is tracked by a depth count).

    Args:
        markup: Decoded HTML.
        drop_boilerplate: Skip nav/header/footer/aside/form content.

    Returns:
        Raw text (whitespace is normalised later by ``repair_text``).
    """
    parts: list[str] = []
    cursor = 0
    length = len(markup)
    skipping = ""  # the boilerplate element being skipped, or "" while text is kept
    depth = 0  # open elements named ``skipping``
    while cursor < length:
        match = _HTML_TOKEN.search(markup, cursor)
        if match is None:
            if not skipping:
                parts.append(html.unescape(markup[cursor:]))
            break
        if match.start() > cursor and not skipping:
            parts.append(html.unescape(markup[cursor:match.start()]))
        cursor = match.end()
        name = (match.group(2) or "").lower()
        if not name:
            continue  # comment, doctype, processing instruction
        closing = match.group(1) == "/"
        self_closing = not closing and match.group(3).rstrip().endswith("/")
        if drop_boilerplate and name in _HTML_BOILERPLATE and not self_closing:
            if not skipping and not closing:
                skipping, depth = name, 1
                continue
            if skipping == name:
                depth += -1 if closing else 1
                if depth == 0:
                    skipping = ""
                    parts.append("\n\n")
                continue
        if name in _HTML_BLOCK:
            if not skipping:
                parts.append("\n\n")
        elif not closing and name in _HTML_HIDDEN_END and not self_closing:
            end = _HTML_HIDDEN_END[name].search(markup, cursor)
            cursor = end.end() if end else length
    return "".join(parts)


def read_html(path: Path, data: bytes) -> str:
    """HTML: visible text only, one block element per paragraph, page furniture dropped.

    A page whose every word sits in boilerplate (an ASP.NET page wraps its whole body in
    one ``<form>``) is read again with it kept: some text beats "no text found".
    """
    markup = _decode_text(data, path)
    text = html_to_text(markup)
    return text if text.strip() else html_to_text(markup, drop_boilerplate=False)


# ---------------------------------------------------------------------------- PDF
PAGED_SUFFIXES = frozenset({".pdf"})
"""Formats whose raw text separates pages with a form feed (and only there), so the
document can record where each page starts (``repair_pages``)."""


@functools.lru_cache(maxsize=1)
def _quiet_pypdf() -> None:
    """Keep pypdf's recoverable-damage notes ("EOF marker not found") off stderr.

    Why: when pypdf reads the file anyway, the note is noise to the user; when it cannot,
    the ``IngestError`` we raise says so.  Only pypdf's own logger and warning class are
    touched, once, so other libraries' warnings still show.
    """
    from pypdf.errors import PdfReadWarning

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=PdfReadWarning)


def read_pdf(path: Path, data: bytes) -> str:
    """PDF: the text layer of every page, pages separated by a form feed (only there)."""
    from pypdf import PdfReader

    _quiet_pypdf()
    started = time.monotonic()
    pages: list[str] = []
    chars = 0
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise IngestError(f"{path}: PDF is encrypted")
        if len(reader.pages) > MAX_PDF_PAGES:
            raise IngestError(f"{path}: PDF has more than {MAX_PDF_PAGES} pages")
        for number, page in enumerate(reader.pages, 1):
            if time.monotonic() - started > MAX_EXTRACT_SECONDS:
                raise IngestError(
                    f"{path}: reading the PDF took over {MAX_EXTRACT_SECONDS:.0f} s "
                    f"(stopped at page {number}); the file may be malformed"
                )
            text = (page.extract_text() or "").replace("\f", "\n\n")  # "\f" separates pages
            chars += len(text)
            if chars > MAX_TEXT_CHARS:
                raise IngestError(f"{path}: PDF holds more than {MAX_TEXT_CHARS // 2**20} M characters")
            pages.append(text)
    except IngestError:
        raise
    except MemoryError as exc:
        raise IngestError(f"{path}: PDF is too large to read") from exc
    except Exception as exc:  # pypdf raises many types (and recursion errors) on broken files
        raise IngestError(f"{path}: not a readable PDF ({type(exc).__name__}: {exc})") from exc
    text = "\f".join(pages)
    if not text.strip():
        raise EmptyDocumentError(f"{path}: PDF has no text layer (scanned images need OCR first)")
    return text


# ---------------------------------------------------------------------------- DOCX
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_DOCX_TEXT = {_W + "tab": "\t", _W + "br": "\n", _W + "cr": "\n", _W + "noBreakHyphen": "-"}
_OFFICE_DOCUMENT = "/officeDocument"


def _main_part(archive: zipfile.ZipFile) -> str:
    """Name of the main document part (``word/document.xml`` unless the package says so)."""
    from lxml import etree

    names = set(archive.namelist())
    if "_rels/.rels" in names:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        root = etree.fromstring(archive.read("_rels/.rels"), parser)
        for relation in root:
            if str(relation.get("Type", "")).endswith(_OFFICE_DOCUMENT):
                target = str(relation.get("Target", "")).lstrip("/")
                if target in names:
                    return target
    return "word/document.xml"


_DOCX_FALSE = frozenset({"0", "false", "off"})


def _docx_drop(element: Any) -> None:
    """Free a read element and its read siblings: memory stays flat however long the part."""
    element.clear()
    while element.getprevious() is not None:
        del element.getparent()[0]


@dataclass
class _DocxTable:
    """A table being read: its marked header row and the row under the cursor."""

    header: list[str] | None = None
    cells: list[list[str]] | None = None  # the current row: each cell's paragraphs
    row_is_header: bool = False


def _docx_paragraphs(stream: IO[bytes]) -> list[str]:
    """Paragraph texts of a WordprocessingML part, streamed, tables one sentence per row.

    Why not python-docx: it builds the whole tree and runs an XPath query per paragraph,
    about 90 s and 1 GB for a 60 MB document part; streaming takes seconds and frees each
    paragraph once read.  A paragraph's text is what python-docx's ``Paragraph.text`` gives
    (runs' text, tabs, breaks).  A table row becomes one paragraph holding one sentence
    (``table_row_sentence``: cells in reading order, labelled when the table marks a header
    row with "Repeat as header row"), in body order between the paragraphs around it; a
    table nested in a cell adds its rows to that cell's text.
    """
    from lxml import etree

    paragraphs: list[str] = []
    current: list[str] = []
    tables: list[_DocxTable] = []  # open tables, innermost last
    events = etree.iterparse(
        stream, events=("start", "end"),
        tag=(_W + "p", _W + "t", _W + "tbl", _W + "tr", _W + "tc", _W + "tblHeader", *_DOCX_TEXT),
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
    )
    for event, element in events:
        tag = element.tag
        if event == "start":
            if tag == _W + "tbl":
                tables.append(_DocxTable())
            elif tag == _W + "tr" and tables:
                tables[-1].cells, tables[-1].row_is_header = [], False
            elif tag == _W + "tc" and tables and tables[-1].cells is not None:
                tables[-1].cells.append([])
        elif tag == _W + "t":
            current.append(element.text or "")
        elif tag in _DOCX_TEXT:
            current.append(_DOCX_TEXT[tag])
        elif tag == _W + "p":
            text = "".join(current)
            current = []
            if tables and tables[-1].cells:
                tables[-1].cells[-1].append(text)
            else:
                paragraphs.append(text)
            _docx_drop(element)
        elif tag == _W + "tblHeader" and tables:
            value = element.get(_W + "val")
            tables[-1].row_is_header = value is None or value.lower() not in _DOCX_FALSE
        elif tag == _W + "tr" and tables and tables[-1].cells is not None:
            table = tables[-1]
            cells = [" ".join(part for part in cell if part.strip()) for cell in table.cells or ()]
            is_header = table.row_is_header and table.header is None
            sentence = table_row_sentence(cells, None if is_header else table.header)
            if is_header:
                table.header = cells
            table.cells = None
            if len(tables) > 1 and tables[-2].cells:
                tables[-2].cells[-1].append(sentence)  # a nested table lives in its cell
            else:
                paragraphs.append(sentence)
            _docx_drop(element)
        elif tag == _W + "tbl" and tables:
            tables.pop()
            _docx_drop(element)
    return paragraphs


def read_docx(path: Path, data: bytes) -> str:
    """DOCX: paragraph texts in order; the archive is checked for zip bombs first.

    Declared sizes are checked before anything is inflated; a member that lies about its
    size cannot inflate further, because ``zipfile`` stops at the declared size (and then
    fails its CRC check, which becomes an ``IngestError`` below).  The XML parser resolves
    no entities and loads no DTD, so "billion laughs" and external entities do nothing.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            total = sum(info.file_size for info in infos)
            xml = sum(info.file_size for info in infos if info.filename.endswith((".xml", ".rels")))
            if total > MAX_DOCX_UNCOMPRESSED or xml > MAX_DOCX_XML:
                raise IngestError(
                    f"{path}: DOCX expands to {max(total, xml) // 2**20} MB, over the "
                    f"{(MAX_DOCX_XML if xml > MAX_DOCX_XML else MAX_DOCX_UNCOMPRESSED) // 2**20} MB "
                    "limit (possible zip bomb)"
                )
            part = _main_part(archive)
            if part not in archive.namelist():
                raise IngestError(f"{path}: not a DOCX (the archive has no {part})")
            with archive.open(part) as stream:
                paragraphs = _docx_paragraphs(stream)
    except IngestError:
        raise
    except zipfile.BadZipFile as exc:
        raise IngestError(f"{path}: not a valid DOCX (zip) file ({exc})") from exc
    except MemoryError as exc:
        raise IngestError(f"{path}: DOCX is too large to read") from exc
    except Exception as exc:  # lxml and zipfile raise many types on broken packages
        raise IngestError(f"{path}: not a readable DOCX ({type(exc).__name__}: {exc})") from exc
    return "\n\n".join(paragraphs)


_READERS: dict[str, Callable[[Path, bytes], str]] = {
    ".txt": read_plain,
    ".md": read_markdown,
    ".markdown": read_markdown,
    ".html": read_html,
    ".htm": read_html,
    ".pdf": read_pdf,
    ".docx": read_docx,
}


def _too_large(path: Path, size: int) -> IngestError:
    return IngestError(f"{path}: file is {size // 2**20} MB, over the {MAX_FILE_BYTES // 2**20} MB limit")


def _read_bytes(path: Path) -> bytes:
    """The bytes of a regular file, never more than ``MAX_FILE_BYTES`` (+1 to detect more).

    Opened non-blocking and checked with ``fstat`` on the open descriptor, so a FIFO, a
    device or a directory is refused without blocking, and a file that grows while we read
    it still cannot push us past the cap.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        descriptor = os.open(path, flags)
    except FileNotFoundError as exc:
        raise IngestError(f"{path}: no such file") from exc
    except IsADirectoryError as exc:
        raise IngestError(f"{path}: is a directory") from exc
    except PermissionError as exc:
        raise IngestError(f"{path}: permission denied") from exc
    except OSError as exc:
        raise IngestError(f"{path}: cannot be read ({exc.strerror})") from exc
    with os.fdopen(descriptor, "rb") as handle:
        info = os.fstat(descriptor)
        if stat.S_ISDIR(info.st_mode):
            raise IngestError(f"{path}: is a directory")
        if not stat.S_ISREG(info.st_mode):
            raise IngestError(f"{path}: is not a regular file (a device, pipe or socket)")
        if info.st_size > MAX_FILE_BYTES:
            raise _too_large(path, info.st_size)
        try:
            data = handle.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise IngestError(f"{path}: cannot be read ({exc.strerror})") from exc
    if len(data) > MAX_FILE_BYTES:
        raise _too_large(path, len(data))
    return data


def read_file(path: Path, data: bytes | None = None) -> str:
    """Read one file of a supported format into raw (unrepaired) text.

    Args:
        path: The file; its suffix picks the reader.
        data: The bytes, when already in memory (uploads); otherwise read from ``path``.

    Returns:
        Raw text.

    Raises:
        UnsupportedFileError: Unknown suffix.
        IngestError: Missing, unreadable, too large, binary or malformed file.
        EmptyDocumentError: The file holds no text.
    """
    suffix = path.suffix.lower()
    reader = _READERS.get(suffix)
    if reader is None:
        raise UnsupportedFileError(
            f"{path}: unsupported file type '{suffix or '(none)'}'; "
            f"use one of {', '.join(SUPPORTED_SUFFIXES)}"
        )
    if data is None:
        data = _read_bytes(path)
    if len(data) > MAX_FILE_BYTES:
        raise _too_large(path, len(data))
    if not data.strip():
        raise EmptyDocumentError(f"{path}: file is empty")
    text = reader(path, data)
    if len(text) > MAX_TEXT_CHARS:
        raise IngestError(f"{path}: holds more than {MAX_TEXT_CHARS // 2**20} M characters of text")
    return text
