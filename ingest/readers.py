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
- any exception a parser raises on malformed input becomes an ``IngestError``.
"""

from __future__ import annotations

import html
import io
import logging
import os
import re
import stat
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from ingest.errors import EmptyDocumentError, IngestError, UnsupportedFileError

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
    """Plain text and Markdown: decoded as-is (Markdown markup is readable as text)."""
    return _decode_text(data, path)


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


def html_to_text(markup: str) -> str:
    """Visible text of an HTML document, one block element per paragraph.

    Not a DOM: text between tags is kept (entities decoded), tags are dropped, block tags
    separate paragraphs, and script/style/etc. content is skipped.  That is all text
    extraction needs, and it runs in linear time and memory whatever the nesting.

    Args:
        markup: Decoded HTML.

    Returns:
        Raw text (whitespace is normalised later by ``repair_text``).
    """
    parts: list[str] = []
    cursor = 0
    length = len(markup)
    while cursor < length:
        match = _HTML_TOKEN.search(markup, cursor)
        if match is None:
            parts.append(html.unescape(markup[cursor:]))
            break
        if match.start() > cursor:
            parts.append(html.unescape(markup[cursor:match.start()]))
        cursor = match.end()
        name = (match.group(2) or "").lower()
        if not name:
            continue  # comment, doctype, processing instruction
        if name in _HTML_BLOCK:
            parts.append("\n\n")
        elif match.group(1) == "" and name in _HTML_HIDDEN_END and not match.group(3).rstrip().endswith("/"):
            end = _HTML_HIDDEN_END[name].search(markup, cursor)
            cursor = end.end() if end else length
    return "".join(parts)


def read_html(path: Path, data: bytes) -> str:
    """HTML: visible text only, one block element per paragraph."""
    return html_to_text(_decode_text(data, path))


# ---------------------------------------------------------------------------- PDF
def read_pdf(path: Path, data: bytes) -> str:
    """PDF: the text layer of every page, pages separated by a page break."""
    from pypdf import PdfReader

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
            text = page.extract_text() or ""
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


def _docx_paragraphs(stream: IO[bytes]) -> list[str]:
    """Paragraph texts of a WordprocessingML part, streamed.

    Why not python-docx: it builds the whole tree and runs an XPath query per paragraph,
    about 90 s and 1 GB for a 60 MB document part; streaming takes seconds and frees each
    paragraph once read.  Text is what python-docx's ``Paragraph.text`` gives (runs' text,
    tabs, breaks), for every paragraph including those in tables.
    """
    from lxml import etree

    paragraphs: list[str] = []
    current: list[str] = []
    events = etree.iterparse(
        stream, events=("end",), tag=(_W + "p", _W + "t", *_DOCX_TEXT),
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
    )
    for _, element in events:
        if element.tag == _W + "t":
            current.append(element.text or "")
        elif element.tag == _W + "p":
            paragraphs.append("".join(current))
            current = []
            element.clear()
            while element.getprevious() is not None:  # drop read siblings: memory stays flat
                del element.getparent()[0]
        else:
            current.append(_DOCX_TEXT[element.tag])
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
    ".md": read_plain,
    ".markdown": read_plain,
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
