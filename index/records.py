"""The rows of an index: sentence and passage spans, and what the manifest knows of a document.

Why a module of its own: these small frozen records are what every other part of the index
(build, load, merge, updates) and the ranking in ``qa/`` exchange; they hold positions and
hashes only, no FAISS or file handling, so anything can import them cheaply.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ingest import Document


@dataclass(frozen=True)
class SentenceRecord:
    """A sentence of the corpus: ``documents[doc].text[start:end]``."""

    doc: int
    start: int
    end: int
    paragraph: int


@dataclass(frozen=True)
class PassageRecord:
    """A passage: sentences ``first..last`` (global ids, inclusive) of one document."""

    doc: int
    start: int
    end: int
    paragraph: int
    first: int
    last: int


@dataclass(frozen=True)
class DocumentEntry:
    """What the manifest records of one document of the collection.

    Attributes:
        source: The document's name (unique in the collection; ``remove`` takes it).
        sha256: SHA-256 of its repaired text: the same content is never indexed twice.
        size: Bytes of its repaired text (UTF-8).
        added_at: When it joined the collection (UTC, ISO 8601).
        passages: Its passages in the index.
        sentences: Its sentences in the index.
    """

    source: str
    sha256: str
    size: int
    added_at: str
    passages: int
    sentences: int

    @classmethod
    def of(cls, document: Document, added_at: str, passages: int, sentences: int) -> DocumentEntry:
        """The entry of ``document``, added at ``added_at``."""
        data = document.text.encode("utf-8")
        return cls(document.source, text_hash(document.text), len(data), added_at, passages, sentences)


def text_hash(text: str) -> str:
    """The content hash that tells two documents apart (SHA-256 of the repaired text)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def document_counts(documents: Sequence[Document], sentences: Sequence[SentenceRecord],
                    passages: Sequence[PassageRecord]) -> list[tuple[int, int]]:
    """(passages, sentences) of each document, row i for ``documents[i]``."""
    per_passage = np.bincount(np.fromiter((p.doc for p in passages), np.int64, len(passages)),
                              minlength=len(documents))
    per_sentence = np.bincount(np.fromiter((r.doc for r in sentences), np.int64, len(sentences)),
                               minlength=len(documents))
    return list(zip(per_passage.tolist(), per_sentence.tolist(), strict=True))


def now() -> str:
    """The current UTC time as the manifest records it (ISO 8601, seconds)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def collection_hash(entries: Sequence[DocumentEntry]) -> str:
    """Hash of the collection: names and content hashes, in order (cheap: no text read)."""
    digest = hashlib.sha256()
    for entry in entries:
        digest.update(f"{entry.source}\0{entry.sha256}\0".encode())
    return digest.hexdigest()
