"""Turn paths (files and folders) into repaired ``Document`` objects, and ship the speech.

The bundled speech is package data so the product works with zero set-up, even from a
wheel with no repository around it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Iterable, Sequence
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


def _expand(paths: Iterable[Path]) -> list[tuple[Path, str]]:
    """Files to read with their display names; folders are walked recursively."""
    found: list[tuple[Path, str]] = []
    for path in paths:
        if not path.exists():
            raise IngestError(f"{path}: no such file or folder")
        if path.is_dir():
            files = sorted(
                p for p in path.rglob("*")
                if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not files:
                raise IngestError(
                    f"{path}: folder holds no readable files ({', '.join(SUPPORTED_SUFFIXES)})"
                )
            found.extend((p, str(p.relative_to(path.parent))) for p in files)
        else:
            found.append((path, path.name))
    return found


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
    documents: list[Document] = []
    seen: set[str] = set()
    for path, name in _expand(Path(p) for p in paths):
        try:
            document = load_document(path, name)
        except IngestError as exc:
            if skip_bad and name != path.name:
                logger.warning("skipped %s", exc)
                continue
            raise
        label = name
        counter = 2
        while label in seen:
            label = f"{name} ({counter})"
            counter += 1
        seen.add(label)
        documents.append(dataclasses.replace(document, doc_id=label, source=label))
    if not documents:
        raise IngestError(f"no readable documents in {', '.join(str(p) for p in paths)}")
    return documents


def corpus_hash(documents: Sequence[Document]) -> str:
    """Content hash of a corpus: a changed text or name means a new index."""
    digest = hashlib.sha256()
    for document in documents:
        digest.update(document.doc_id.encode("utf-8") + b"\0")
        digest.update(document.text.encode("utf-8") + b"\0")
    return digest.hexdigest()
