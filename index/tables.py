"""The table files of one segment of an index: written, and read back validated.

Why a module of its own: every table file (documents, sentence and passage spans, token
vectors, BM25 tables) has one writer and one strict reader; keeping both here means a hand-made
or damaged file is refused with its name and line, in one place, before any of its numbers
reach ranking.  Which files exist is ``index.layout``; how they come together is
``index.loading``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import faiss
import numpy as np

from index.corpus_index import CorpusIndexData
from index.errors import IndexLoadError
from index.layout import TOKEN_OFFSETS_FILE, TOKENS_FILE
from index.lexical import LexicalIndex
from index.records import PassageRecord, SentenceRecord
from ingest import Document


def write_tables(index: CorpusIndexData, folder: Path) -> None:
    """Write ``index``'s tables (one segment: no manifest) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    _write_jsonl(folder / "documents.jsonl",
                 [{"doc_id": d.doc_id, "source": d.source, "text": d.text,
                   **({"page_starts": list(d.page_starts)} if d.page_starts else {})}
                  for d in index.documents])
    _write_jsonl(folder / "sentences.jsonl", [asdict(s) for s in index.sentences])
    _write_jsonl(folder / "passages.jsonl", [asdict(p) for p in index.passages])
    faiss.write_index(index.sentence_index, str(folder / "sentences.faiss"))
    faiss.write_index(index.passage_index, str(folder / "passages.faiss"))
    index.sentence_terms.save(folder / "bm25_sentences")
    index.passage_terms.save(folder / "bm25_passages")
    if index.sentence_tokens is not None and index.sentence_token_offsets is not None:
        np.save(folder / TOKENS_FILE, index.sentence_tokens, allow_pickle=False)
        np.save(folder / TOKEN_OFFSETS_FILE, index.sentence_token_offsets, allow_pickle=False)


def _write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    number = 0
    try:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                row = json.loads(line)
                if not isinstance(row, dict):
                    raise IndexLoadError(f"{path}: line {number} is not a JSON object")
                rows.append(row)
    except UnicodeDecodeError as exc:
        raise IndexLoadError(f"{path}: line {number + 1} is not UTF-8 text") from exc
    except (json.JSONDecodeError, RecursionError) as exc:  # nesting too deep is not our JSON
        raise IndexLoadError(f"{path}: line {number} is not valid JSON") from exc
    return rows


_Record = TypeVar("_Record", SentenceRecord, PassageRecord)


def read_records(path: Path, kind: type[_Record]) -> list[_Record]:
    """Rows of a span table, each exactly the record's fields, all whole numbers.

    Why so strict: these numbers index documents and arrays; a string or a float from a
    hand-made table would surface later as a TypeError deep in ranking, not as a message.
    """
    fields = [field.name for field in dataclasses.fields(kind)]
    records = []
    for number, row in enumerate(_read_jsonl(path), 1):
        if sorted(row) != sorted(fields) or not all(
                type(row[name]) is int for name in fields):  # bool is not a position
            raise IndexLoadError(
                f"{path}: row {number} is not a {kind.__name__} "
                f"(expected whole numbers {', '.join(fields)})"
            )
        records.append(kind(**row))
    return records


def read_documents(path: Path) -> list[Document]:
    """The documents table: each row a JSON object with string ``doc_id``, ``source``, ``text``.

    A paged document (PDF) also has ``page_starts``: a non-empty list of whole-number
    offsets into ``text``, in order.  Tables written before pages were recorded have none,
    and load with no pages.
    """
    documents = []
    for number, row in enumerate(_read_jsonl(path), 1):
        doc_id, source, text = row.get("doc_id"), row.get("source"), row.get("text")
        if not (isinstance(doc_id, str) and isinstance(source, str) and isinstance(text, str)):
            raise IndexLoadError(f"{path}: row {number} is not a document (doc_id, source, text)")
        page_starts = row.get("page_starts", [])
        if "page_starts" in row and not (
                isinstance(page_starts, list) and page_starts
                and all(type(start) is int for start in page_starts)  # bool is not an offset
                and all(0 <= a <= b <= len(text) for a, b in
                        zip(page_starts, [*page_starts[1:], len(text)], strict=True))):
            raise IndexLoadError(
                f"{path}: row {number} has bad page_starts "
                "(expected whole-number offsets into its text, in order)"
            )
        documents.append(Document(doc_id, source, text, tuple(page_starts)))
    return documents


def _load_array(path: Path) -> np.ndarray:
    """One ``.npy`` without pickle; anything unreadable is an ``IndexLoadError`` naming it."""
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, MemoryError) as exc:
        raise IndexLoadError(f"{path}: not a readable .npy array ({exc})") from exc
    if not isinstance(array, np.ndarray):
        raise IndexLoadError(f"{path}: not a single .npy array")
    return array


def load_tokens(folder: Path, manifest: dict[str, Any],
                 n_sentences: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The sentence token vectors and offsets, validated, or (None, None) when not stored.

    Why optional: an index written before late interaction (or for a big corpus) has no
    token files and still loads; ranking then uses the model without the MaxSim feature.
    """
    if manifest.get("late_interaction") is not True:
        return None, None
    for name in (TOKENS_FILE, TOKEN_OFFSETS_FILE):
        if name not in manifest["files"]:
            raise IndexLoadError(f"{folder / name}: late interaction is on but the manifest "
                                 "does not list this file")
    tokens = _load_array(folder / TOKENS_FILE)
    offsets = _load_array(folder / TOKEN_OFFSETS_FILE)
    dimension = manifest["model"]["dimension"]
    if tokens.dtype != np.float16 or tokens.ndim != 2 or tokens.shape[1] != dimension:
        raise IndexLoadError(f"{folder / TOKENS_FILE}: expected float16 (tokens, {dimension}), "
                             f"found {tokens.dtype} {tokens.shape}")
    if offsets.dtype != np.int64 or offsets.shape != (n_sentences + 1,):
        raise IndexLoadError(f"{folder / TOKEN_OFFSETS_FILE}: expected int64 ({n_sentences + 1},), "
                             f"found {offsets.dtype} {offsets.shape}")
    steps = np.diff(offsets)
    if offsets[0] != 0 or offsets[-1] != len(tokens) or (steps < 1).any():
        raise IndexLoadError(f"{folder / TOKEN_OFFSETS_FILE}: offsets do not cover the "
                             f"{len(tokens)} token rows with at least one per sentence")
    if not np.isfinite(tokens).all():
        raise IndexLoadError(f"{folder / TOKENS_FILE}: holds non-finite values")
    return tokens, offsets


def load_bm25(folder: Path, size: int) -> LexicalIndex:
    """Load one BM25 table; any failure (bm25s raises many types) names its folder.

    Arrays load with ``allow_pickle=False``: an object array planted here is refused.
    """
    try:
        lexical = LexicalIndex.load(folder, size)
        # Score one known word: arrays of the wrong type or length fail here, not mid-question.
        probe = lexical.scores(list(lexical._model.vocab_dict)[:1])
        if probe.shape != (size,) or not np.isfinite(probe).all():
            raise ValueError(f"scores of shape {probe.shape} for {size} items")
        return lexical
    except Exception as exc:  # TypeError, KeyError, ValueError, OSError, MemoryError...
        raise IndexLoadError(f"{folder}: BM25 table cannot be read ({type(exc).__name__}: "
                             f"{' '.join(str(exc).split())[:200]})") from exc


def check_spans(folder: Path, documents: list[Document], sentences: list[SentenceRecord],
                 passages: list[PassageRecord]) -> None:
    """Every span must point inside its document; a table that doesn't is corrupt."""
    tables: tuple[tuple[str, Sequence[SentenceRecord | PassageRecord]], ...] = (
        ("sentences.jsonl", sentences), ("passages.jsonl", passages))
    for name, rows in tables:
        for number, row in enumerate(rows, 1):
            if not (0 <= row.doc < len(documents)
                    and 0 <= row.start <= row.end <= len(documents[row.doc].text)):
                raise IndexLoadError(f"{folder / name}: row {number} points outside its document")
    for number, passage in enumerate(passages, 1):
        if not 0 <= passage.first <= passage.last < len(sentences):
            raise IndexLoadError(f"{folder / 'passages.jsonl'}: row {number} names unknown sentences")
