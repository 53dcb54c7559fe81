"""Read files of the supported formats into raw text.

Each reader turns one format into plain text and nothing else; repair and splitting
happen later, the same way for every format.  Limits are enforced here because this is
where untrusted bytes first arrive: size caps stop a 5 GB upload or a zip bomb from
exhausting memory, and every failure becomes an ``IngestError`` naming the file.
"""

from __future__ import annotations

import io
import logging
import zipfile
from collections.abc import Callable
from pathlib import Path

from ingest.errors import EmptyDocumentError, IngestError, UnsupportedFileError

logger = logging.getLogger(__name__)

MAX_FILE_BYTES = 64 * 1024 * 1024
"""Largest file we read at all (a 50 MB report is fine; a disk image is not)."""

MAX_DOCX_UNCOMPRESSED = 256 * 1024 * 1024
"""Largest total uncompressed size of a .docx archive (defuses zip bombs)."""

MAX_PDF_PAGES = 5000

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx")


def _decode_text(data: bytes, path: Path) -> str:
    """Decode bytes as text, refusing binaries instead of indexing garbage."""
    if b"\x00" in data[:8192]:
        raise IngestError(f"{path}: looks like a binary file, not text")
    for encoding in ("utf-8-sig", "utf-16") if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ("utf-8-sig",):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
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


def read_html(path: Path, data: bytes) -> str:
    """HTML: visible text only, one block element per paragraph."""
    from bs4 import BeautifulSoup  # heavy import, only when HTML is read

    text = _decode_text(data, path)
    try:
        soup = BeautifulSoup(text, "html.parser")
        for tag in soup(["script", "style", "noscript", "template", "head"]):
            tag.decompose()
        for tag in soup.find_all(["p", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6",
                                  "tr", "br", "section", "article", "blockquote", "pre"]):
            tag.insert_before("\n\n")
            tag.insert_after("\n\n")
        return str(soup.get_text())
    except RecursionError as exc:
        raise IngestError(f"{path}: HTML is nested too deeply to read") from exc


def read_pdf(path: Path, data: bytes) -> str:
    """PDF: the text layer of every page, pages separated by a page break."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise IngestError(f"{path}: PDF is encrypted")
        if len(reader.pages) > MAX_PDF_PAGES:
            raise IngestError(f"{path}: PDF has more than {MAX_PDF_PAGES} pages")
        pages = [page.extract_text() or "" for page in reader.pages]
    except IngestError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError, RecursionError) as exc:
        raise IngestError(f"{path}: not a readable PDF ({exc})") from exc
    text = "\f".join(pages)
    if not text.strip():
        raise EmptyDocumentError(f"{path}: PDF has no text layer (scanned images need OCR first)")
    return text


def read_docx(path: Path, data: bytes) -> str:
    """DOCX: paragraph texts in order; the archive is checked for zip bombs first."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            total = sum(info.file_size for info in archive.infolist())
            if total > MAX_DOCX_UNCOMPRESSED:
                raise IngestError(
                    f"{path}: DOCX expands to {total // 2**20} MB, over the "
                    f"{MAX_DOCX_UNCOMPRESSED // 2**20} MB limit (possible zip bomb)"
                )
    except zipfile.BadZipFile as exc:
        raise IngestError(f"{path}: not a valid DOCX (zip) file") from exc
    import docx  # python-docx

    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # python-docx raises many types for broken packages
        raise IngestError(f"{path}: not a readable DOCX ({type(exc).__name__})") from exc
    return "\n\n".join(paragraph.text for paragraph in document.paragraphs)


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
        try:
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                raise _too_large(path, size)
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise IngestError(f"{path}: no such file") from exc
        except IsADirectoryError as exc:
            raise IngestError(f"{path}: is a directory") from exc
        except PermissionError as exc:
            raise IngestError(f"{path}: permission denied") from exc
        except OSError as exc:
            raise IngestError(f"{path}: cannot be read ({exc.strerror})") from exc
    if len(data) > MAX_FILE_BYTES:
        raise _too_large(path, len(data))
    if not data.strip():
        raise EmptyDocumentError(f"{path}: file is empty")
    return reader(path, data)
