"""Turn paths (files and folders) into repaired ``Document`` objects, and ship the speech.

The bundled speech is package data so the product works with zero set-up, even from a
wheel with no repository around it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ingest.document import Document
from ingest.errors import EmptyDocumentError, IngestError
from ingest.readers import PAGED_SUFFIXES, SUPPORTED_SUFFIXES, read_file
from ingest.repair import repair_pages

logger = logging.getLogger(__name__)

DEFAULT_CORPUS_NAME = "dalian_speech.txt"
DEFAULT_CORPUS_TITLE = "Environmental Protection and International Cooperation in Dalian"


def default_corpus_path() -> Path:
    """Path of the bundled speech inside the installed package."""
    return Path(str(resources.files("ingest") / "data" / DEFAULT_CORPUS_NAME))


def _repaired(path: Path, raw: str) -> tuple[str, tuple[int, ...]]:
    """Repaired text and, for paged formats, where each page starts in it."""
    text, page_starts = repair_pages(raw)
    return text, page_starts if path.suffix.lower() in PAGED_SUFFIXES else ()


def document_from_bytes(name: str, data: bytes) -> Document:
    """Read and repair one in-memory file (an upload), named by ``name``.

    Raises:
        IngestError: The file cannot be read or holds no text.
    """
    path = Path(name)
    text, page_starts = _repaired(path, read_file(path, data))
    if not text.strip():
        raise EmptyDocumentError(f"{name}: no text found")
    return Document(doc_id=path.name, source=path.name, text=text, page_starts=page_starts)


def load_document(path: Path, name: str | None = None) -> Document:
    """Read and repair one file.

    Raises:
        IngestError: The file cannot be read or holds no text.
    """
    text, page_starts = _repaired(path, read_file(path))
    if not text.strip():
        raise EmptyDocumentError(f"{path}: no text found")
    label = name or path.name
    return Document(doc_id=label, source=label, text=text, page_starts=page_starts)


def default_documents() -> list[Document]:
    """The bundled speech as the one-document default corpus."""
    return [load_document(default_corpus_path())]


SKIP_UNREADABLE = "unreadable"
SKIP_UNSUPPORTED = "unsupported"
SKIP_DUPLICATE = "duplicate"


@dataclass(frozen=True)
class SkippedFile:
    """A file a collection read left out, and why.

    Attributes:
        path: The path as the user gave it (or as found in their folder).
        reason: ``"unreadable"`` (broken, empty or text-less), ``"unsupported"`` (a file
            type we do not read) or ``"duplicate"`` (the same file reached twice, or the
            same text as another file).
        detail: One line saying what exactly was wrong (the reader's message, the
            supported types, or the file it duplicates).
    """

    path: str
    reason: str
    detail: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason} ({self.detail})"


@dataclass(frozen=True)
class IngestReport:
    """What reading a set of files and folders gave: the documents, and every file left out.

    Why a report and not an exception: one truncated PDF in a folder of hundreds must not
    cost the user the whole index; the caller indexes what was read and names the rest.
    """

    documents: tuple[Document, ...]
    skipped: tuple[SkippedFile, ...] = ()

    @property
    def partial(self) -> bool:
        """True when a file was left out for a reason other than being a duplicate (its
        content is then missing from the collection)."""
        return any(item.reason != SKIP_DUPLICATE for item in self.skipped)


@dataclass(frozen=True)
class _Found:
    path: Path
    name: str  # display name (relative to the folder's parent for folder walks)
    in_folder: bool


def _file_identity(path: Path) -> tuple[int, int] | str:
    """What makes two paths the same file: device and inode (symlinks, ``a/../a``)."""
    try:
        info = path.stat()
    except OSError:
        return str(path.resolve())
    return (info.st_dev, info.st_ino)


def _expand(paths: Iterable[Path]) -> tuple[list[_Found], list[SkippedFile]]:
    """Files to read with their display names, and the files skipped while walking.

    Folders are walked recursively (hidden files and folders stay out).  Unsupported
    files inside a folder are reported, not silently dropped; a file reached twice
    (``docs/`` and ``docs/a.txt``, or a symlink) is read once.  Every missing path is
    checked before anything is read, so a typo fails at once.
    """
    paths = list(paths)
    for path in paths:
        if not path.exists():
            raise IngestError(f"{path}: no such file or folder")
    found: list[_Found] = []
    skipped: list[SkippedFile] = []
    seen: dict[tuple[int, int] | str, str] = {}

    def take(path: Path, name: str, in_folder: bool) -> None:
        identity = _file_identity(path)
        first = seen.get(identity)
        if first is not None:
            detail = "given twice" if first == str(path) else f"same file as {first}"
            skipped.append(SkippedFile(str(path), SKIP_DUPLICATE, detail))
            return
        seen[identity] = str(path)
        found.append(_Found(path, name, in_folder))

    for path in paths:
        if path.is_dir():
            files = sorted(
                p for p in path.rglob("*")
                if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            for file in files:
                if file.suffix.lower() in SUPPORTED_SUFFIXES:
                    take(file, str(file.relative_to(path.parent)), True)
                else:
                    skipped.append(SkippedFile(
                        str(file), SKIP_UNSUPPORTED,
                        f"{file.suffix or 'no extension'}; supported: {', '.join(SUPPORTED_SUFFIXES)}"))
        else:
            take(path, path.name, False)
    return found, skipped


def read_collection(paths: Sequence[Path | str], strict: bool = False) -> IngestReport:
    """Read files and folders (recursively) into repaired documents, reporting what was left out.

    Args:
        paths: Files and/or folders.
        strict: Stop at the first file that cannot be read or is not a supported type
            (raise), instead of skipping and reporting it.

    Returns:
        The documents (unique ``doc_id`` values: display names are de-duplicated; a text
        identical to one already read is skipped as a duplicate) and the skipped files.

    Raises:
        IngestError: A path is missing; nothing readable at all; or, with ``strict``, the
            first bad file.
    """
    found, skipped = _expand(Path(p) for p in paths)
    if strict:
        unsupported = next((s for s in skipped if s.reason == SKIP_UNSUPPORTED), None)
        if unsupported is not None:
            raise IngestError(f"{unsupported.path}: unsupported file type ({unsupported.detail})")
    documents: list[Document] = []
    labels: set[str] = set()
    texts: dict[str, str] = {}
    for item in found:
        try:
            document = load_document(item.path, item.name)
        except IngestError as exc:
            if strict:
                raise
            skipped.append(SkippedFile(str(item.path), SKIP_UNREADABLE, _without_path(str(exc), item.path)))
            continue
        digest = hashlib.sha256(document.text.encode("utf-8")).hexdigest()
        if digest in texts:
            skipped.append(SkippedFile(str(item.path), SKIP_DUPLICATE, f"same text as {texts[digest]}"))
            continue
        texts[digest] = str(item.path)
        documents.append(_labelled(document, item.name, labels))
    if not documents and len(skipped) == 1 and skipped[0].reason == SKIP_UNREADABLE:
        raise IngestError(f"{skipped[0].path}: {skipped[0].detail}")  # the reader's own message
    if not documents:
        reasons = "; ".join(str(s) for s in skipped[:3])
        raise IngestError(f"no readable documents in {', '.join(str(p) for p in paths)}"
                          + (f" ({reasons}{'; ...' if len(skipped) > 3 else ''})" if reasons else ""))
    return IngestReport(tuple(documents), tuple(skipped))


def _without_path(message: str, path: Path) -> str:
    """The reader's message without its leading ``path:`` (the summary names the file)."""
    for prefix in (f"{path}: ", f"{path.name}: "):
        if message.startswith(prefix):
            return message[len(prefix):]
    return message


def load_documents(paths: Sequence[Path | str], skip_bad: bool = False) -> list[Document]:
    """Read files and folders (recursively) into repaired documents.

    Args:
        paths: Files and/or folders.
        skip_bad: In a folder walk, log and skip unreadable files instead of failing;
            an explicitly named bad file always fails.

    Returns:
        Documents with unique ``doc_id`` values (display names are de-duplicated).

    Raises:
        IngestError: A path is missing or a named file cannot be read.
    """
    found, _ = _expand(Path(p) for p in paths)
    documents: list[Document] = []
    labels: set[str] = set()
    for item in found:
        try:
            document = load_document(item.path, item.name)
        except IngestError as exc:
            if skip_bad and item.in_folder:
                logger.warning("skipped %s", exc)
                continue
            raise
        documents.append(_labelled(document, item.name, labels))
    if not documents:
        raise IngestError(f"no readable documents in {', '.join(str(p) for p in paths)}")
    return documents


def _labelled(document: Document, name: str, labels: set[str]) -> Document:
    """``document`` named ``name``, or ``name (2)``, ``name (3)``... when taken (adds it)."""
    label = name
    counter = 2
    while label in labels:
        label = f"{name} ({counter})"
        counter += 1
    labels.add(label)
    return dataclasses.replace(document, doc_id=label, source=label)  # keeps page starts


def corpus_hash(documents: Sequence[Document]) -> str:
    """Content hash of a corpus: a changed text or name means a new index."""
    digest = hashlib.sha256()
    for document in documents:
        digest.update(document.doc_id.encode("utf-8") + b"\0")
        digest.update(document.text.encode("utf-8") + b"\0")
    return digest.hexdigest()
