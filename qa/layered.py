"""A session's documents layered over a shared index, presented to the ranking as one corpus.

Why layered: an upload used to rebuild an index over the shared corpus *plus* the files,
re-embedding the whole shared corpus (78 s for a 400-byte file over 3,000 sentences). Here
only the uploaded texts are embedded (``index_document``); ``layer`` then joins the shared
index and the session's pieces into one ``CorpusIndex``, exactly as ``CorpusIndex.build``
would lay out the same documents (shared ones first), so the ranking sees one corpus.

Why a real ``CorpusIndex`` and not a view: the ranking reads many of its attributes
(tables, vectors with numpy fancy indexing, BM25, FAISS for candidates, token vectors), and
it changes (paraphrase features are being added). A real index built from the public
constructor keeps "the same ranking and confidence as a single index" true by construction:
BM25 statistics (IDF, average length), z-scores, ranks and the candidate sample all cover
the union. The price is memory, measured in ``bench/RESULTS.md``: each session holds a copy
of the shared corpus' vectors (1.5 KB per sentence and per passage; FAISS owns the union's
rows). The shared token vectors (late interaction, 22-55 KB per sentence) are not copied:
the union reads them through ``StackedRows``. The shared corpus' BM25 tokens are computed once
per process and shared by every session; BM25 scores the union from per-block term
frequencies (``index.lexical.UnionLexicalIndex``), so a session adds only its own.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from index import CorpusIndex, Encoder, PassageRecord, SentenceRecord, collection_hash, tokenize
from index.context import context_texts, distinct_contexts, previous_in_paragraph, with_context_rows
from index.encoder import token_encoder
from index.lexical import TermPostings, UnionLexicalIndex
from index.store import LATE_INTERACTION_MAX_SENTENCES
from index.vectors import build_vector_index
from ingest import ChunkingParams, Document, make_passages, split_sentences
from qa.errors import QAError

ENCODE_CHUNK = 256
"""Texts per model call while indexing an upload: progress and cancellation are checked
between chunks. Texts are sorted by length first, so chunking costs no extra padding."""


class IndexingCancelled(QAError):
    """The session ended (or was cleared) while its upload was being indexed."""


@dataclass(frozen=True)
class IndexedDocument:
    """One uploaded document, split and embedded on its own (ids local to it).

    Attributes:
        document: The repaired document.
        sentences: Its sentences (``doc`` 0, sentence ids from 0).
        passages: Its passages (``first``/``last`` are local sentence ids).
        sentence_vectors: ``(len(sentences), dim)`` normalised float32.
        passage_vectors: ``(len(passages), dim)``.
        sentence_terms: BM25 term frequencies of its sentences.
        passage_terms: BM25 term frequencies of its passages.
        sentence_tokens: float16 token blocks of every sentence, flat, or None (its own
            rows, then a zero row and its rows read with the sentence before it when it has
            one: ``index.context``).
        token_counts: Token rows of each sentence (with ``sentence_tokens``), or None.
    """

    document: Document
    sentences: tuple[SentenceRecord, ...]
    passages: tuple[PassageRecord, ...]
    sentence_vectors: np.ndarray
    passage_vectors: np.ndarray
    sentence_terms: TermPostings
    passage_terms: TermPostings
    sentence_tokens: np.ndarray | None = None
    token_counts: np.ndarray | None = None


@dataclass(frozen=True)
class SplitDocument:
    """A document cut into sentences and passages, before any embedding (cheap)."""

    document: Document
    sentences: tuple[SentenceRecord, ...]
    passages: tuple[PassageRecord, ...]

    @property
    def texts(self) -> list[str]:
        """Distinct texts to embed: sentences first, then passages that are not a sentence."""
        text = self.document.text
        unique = dict.fromkeys(text[s.start:s.end] for s in self.sentences)
        unique.update(dict.fromkeys(text[p.start:p.end] for p in self.passages))
        return list(unique)

    @functools.cached_property
    def context_texts(self) -> list[str | None]:
        """Each sentence with the one before it in its paragraph (None: it opens one).

        Cached: the upload's progress total and its indexing both read it."""
        text = self.document.text
        return context_texts([text[s.start:s.end] for s in self.sentences],
                             previous_in_paragraph(self.sentences))

    @property
    def texts_to_embed(self) -> int:
        """Forward passes an upload of this document costs with token vectors (progress total)."""
        return len(self.texts) + len(distinct_contexts(self.context_texts))


class StackedRows:
    """Rows of several 2-D arrays laid end to end, read without copying the parts.

    Why: the union's token-vector table (late interaction, 22-55 KB per sentence) would
    otherwise copy the shared corpus' table into every session (80-190 MB for 3,500 shared
    sentences). The ranking only gathers rows by id (``table[rows]``), reads ``size`` and
    ``dtype``, and converts a small table with ``astype``; those are what this provides.
    """

    ndim = 2

    def __init__(self, parts: Sequence[np.ndarray]) -> None:
        self.parts = [part for part in parts if len(part)] or list(parts[:1])
        lengths = [len(part) for part in self.parts]
        self._starts = np.cumsum([0, *lengths])
        self.dtype = self.parts[0].dtype
        self.shape = (int(self._starts[-1]), int(self.parts[0].shape[1]))
        self.size = self.shape[0] * self.shape[1]

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: object) -> np.ndarray:
        if isinstance(rows, slice):
            rows = np.arange(*rows.indices(len(self)))
        ids = np.asarray(rows)
        if ids.dtype == bool:
            ids = np.flatnonzero(ids)
        flat = ids.reshape(-1).astype(np.int64)
        flat = np.where(flat < 0, flat + len(self), flat)
        out = np.empty((flat.size, self.shape[1]), dtype=self.dtype)
        part_of = np.searchsorted(self._starts, flat, side="right") - 1
        for number in np.unique(part_of):
            here = part_of == number
            out[here] = self.parts[int(number)][flat[here] - self._starts[number]]
        return out.reshape((*ids.shape, self.shape[1])) if ids.ndim != 1 else out

    def astype(self, dtype: object) -> np.ndarray:
        """One contiguous copy (the ranking makes one only of small tables)."""
        return np.concatenate(self.parts).astype(dtype)  # type: ignore[call-overload,no-any-return]

    def __array__(self, dtype: object = None, copy: object = None) -> np.ndarray:
        whole = np.concatenate(self.parts)
        return whole if dtype is None else whole.astype(dtype)  # type: ignore[call-overload,no-any-return]


def split_document(document: Document, params: ChunkingParams) -> SplitDocument:
    """Sentences and passages of one document, numbered as if it were alone."""
    spans = split_sentences(document.text)
    sentences = tuple(SentenceRecord(0, s.start, s.end, s.paragraph) for s in spans)
    passages = tuple(PassageRecord(0, p.start, p.end, p.paragraph, p.first_sentence, p.last_sentence)
                     for p in make_passages(spans, params))
    return SplitDocument(document, sentences, passages)


def _encode_sorted(texts: list[str], encode: Callable[[list[str]], tuple[np.ndarray, list[np.ndarray]]],
                   on_texts: Callable[[int], None], cancelled: Callable[[], bool]
                   ) -> tuple[np.ndarray, list[np.ndarray]]:
    """Encode ``texts`` in length-sorted chunks, reporting progress and honouring cancellation.

    Why sorted: the model pads each batch to its longest text; sorting the whole list (as
    sentence-transformers does within one call) keeps chunked calls as cheap as one call.
    """
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    vectors: np.ndarray | None = None
    tokens: list[np.ndarray] = [np.zeros((0, 0), dtype=np.float16)] * len(texts)
    for begin in range(0, len(order), ENCODE_CHUNK):
        if cancelled():
            raise IndexingCancelled("indexing cancelled")
        chunk = order[begin:begin + ENCODE_CHUNK]
        chunk_vectors, chunk_tokens = encode([texts[i] for i in chunk])
        if vectors is None:
            vectors = np.zeros((len(texts), chunk_vectors.shape[1]), dtype=np.float32)
        vectors[chunk] = chunk_vectors
        for i, rows in zip(chunk, chunk_tokens, strict=False):
            tokens[i] = rows.astype(np.float16)
        on_texts(len(chunk))
    if vectors is None:
        vectors = np.zeros((0, 0), dtype=np.float32)
    return vectors, tokens


def index_document(split: SplitDocument, encoder: Encoder, *, with_tokens: bool,
                   on_texts: Callable[[int], None] = lambda n: None,
                   cancelled: Callable[[], bool] = lambda: False) -> IndexedDocument:
    """Embed one document's sentences and passages (each distinct text once).

    Mirrors ``CorpusIndex.build``: sentences get their token vectors from the same forward
    pass when ``with_tokens``; a passage identical to a sentence reuses its vector.

    Args:
        split: The document, split.
        encoder: The shared engine's encoder.
        with_tokens: Also keep sentence token vectors (late interaction).
        on_texts: Called with the number of texts embedded after each chunk.
        cancelled: Polled between chunks; True stops with ``IndexingCancelled``.
    """
    text = split.document.text
    sentence_texts = [text[s.start:s.end] for s in split.sentences]
    passage_texts = [text[p.start:p.end] for p in split.passages]
    sentence_unique = list(dict.fromkeys(sentence_texts))
    known = set(sentence_unique)
    passage_only = [t for t in dict.fromkeys(passage_texts) if t not in known]
    tokens_from = token_encoder(encoder) if with_tokens else None

    def plain(texts: list[str]) -> tuple[np.ndarray, list[np.ndarray]]:
        return encoder.encode(texts), []

    def with_token_rows(texts: list[str]) -> tuple[np.ndarray, list[np.ndarray]]:
        assert tokens_from is not None
        return tokens_from.encode_with_tokens(texts)

    head, head_tokens = _encode_sorted(sentence_unique, with_token_rows if tokens_from else plain,
                                       on_texts, cancelled)
    tail, _ = _encode_sorted(passage_only, plain, on_texts, cancelled)
    in_context = split.context_texts
    pairs = distinct_contexts(in_context)
    pair_rows: list[np.ndarray] = []
    if tokens_from is not None and pairs:
        _, pair_rows = _encode_sorted(pairs, with_token_rows, on_texts, cancelled)
    else:
        on_texts(len(pairs))  # not needed here: counted as done, so progress reaches its end
    pair_row_of = dict(zip(pairs, pair_rows, strict=False))
    row = {t: i for i, t in enumerate(sentence_unique)}
    row.update({t: len(sentence_unique) + i for i, t in enumerate(passage_only)})
    dimension = encoder.dimension
    vectors = np.concatenate([head.reshape(-1, dimension), tail.reshape(-1, dimension)])
    sentence_tokens: np.ndarray | None = None
    counts: np.ndarray | None = None
    if tokens_from is not None:
        per_sentence = [with_context_rows(head_tokens[row[t]], pair_row_of.get(c) if c else None)
                        for t, c in zip(sentence_texts, in_context, strict=True)]
        counts = np.array([len(rows) for rows in per_sentence], dtype=np.int64)
        sentence_tokens = (np.concatenate(per_sentence) if per_sentence
                           else np.zeros((0, dimension), dtype=np.float16)).astype(np.float16)
    return IndexedDocument(
        document=split.document, sentences=split.sentences, passages=split.passages,
        sentence_vectors=np.ascontiguousarray(vectors[[row[t] for t in sentence_texts]]
                                              .reshape(-1, dimension)),
        passage_vectors=np.ascontiguousarray(vectors[[row[t] for t in passage_texts]]
                                             .reshape(-1, dimension)),
        sentence_terms=TermPostings(tokenize(sentence_texts) if sentence_texts else []),
        passage_terms=TermPostings(tokenize(passage_texts) if passage_texts else []),
        sentence_tokens=sentence_tokens, token_counts=counts,
    )


@dataclass(frozen=True)
class _BaseTerms:
    sentences: TermPostings
    passages: TermPostings


_BASE_WORDS: weakref.WeakKeyDictionary[CorpusIndex, _BaseTerms] = weakref.WeakKeyDictionary()
_BASE_LOCK = threading.Lock()


def base_words(base: CorpusIndex) -> _BaseTerms:
    """BM25 term frequencies of the shared corpus' sentences and passages, once per index.

    Why cached: every session's union BM25 reads them; tokenizing 3,000 sentences costs a
    few hundred milliseconds, which the first upload should not pay (servers call
    ``UploadSessions.prepare`` at start). Shared by every session, never copied.
    """
    with _BASE_LOCK:
        cached = _BASE_WORDS.get(base)
        if cached is None:
            sentences = [base.sentence_text(i) for i in range(len(base.sentences))]
            passages = [base.passage_text(i) for i in range(len(base.passages))]
            cached = _BaseTerms(TermPostings(tokenize(sentences) if sentences else []),
                                TermPostings(tokenize(passages) if passages else []))
            _BASE_WORDS[base] = cached
        return cached


def chunking_of(base: CorpusIndex) -> ChunkingParams:
    """The chunking the shared index was built with (uploads are cut the same way)."""
    stored = base.manifest.get("chunking")
    return ChunkingParams(**stored) if isinstance(stored, dict) else ChunkingParams()


def late_interaction_fits(base: CorpusIndex, extra_sentences: int) -> bool:
    """Whether a single index over base + ``extra_sentences`` would keep token vectors."""
    return base.sentence_tokens is not None and \
        len(base.sentences) + extra_sentences <= LATE_INTERACTION_MAX_SENTENCES


def layer(base: CorpusIndex, pieces: Sequence[IndexedDocument]) -> CorpusIndex:
    """One ``CorpusIndex`` over the shared corpus followed by the session's documents.

    The result is laid out as ``CorpusIndex.build(base.documents + uploads)`` would lay it
    out, so the ranking gives the same answers and confidences. Exact (flat) vector search
    over the union: a session is small next to the cost of training an approximate index.
    Nothing is embedded here.
    """
    documents = list(base.documents)
    sentences = list(base.sentences)
    passages = list(base.passages)
    for piece in pieces:
        doc, first = len(documents), len(sentences)
        documents.append(piece.document)
        sentences.extend(SentenceRecord(doc, s.start, s.end, s.paragraph) for s in piece.sentences)
        passages.extend(PassageRecord(doc, p.start, p.end, p.paragraph, p.first + first, p.last + first)
                        for p in piece.passages)
    words = base_words(base)
    sentence_bm25 = UnionLexicalIndex([words.sentences, *(piece.sentence_terms for piece in pieces)])
    passage_bm25 = UnionLexicalIndex([words.passages, *(piece.passage_terms for piece in pieces)])
    sentence_vectors = np.concatenate([base.sentence_vectors, *(p.sentence_vectors for p in pieces)])
    sentence_index, sentence_info = build_vector_index(sentence_vectors, threshold=len(sentence_vectors) + 1)
    del sentence_vectors
    passage_vectors = np.concatenate([base.passage_vectors, *(p.passage_vectors for p in pieces)])
    passage_index, passage_info = build_vector_index(passage_vectors, threshold=len(passage_vectors) + 1)
    del passage_vectors
    tokens: np.ndarray | None = None
    offsets: np.ndarray | None = None
    added = len(sentences) - len(base.sentences)
    if late_interaction_fits(base, added) and all(p.sentence_tokens is not None for p in pieces) \
            and base.sentence_token_offsets is not None and base.sentence_tokens is not None:
        stacked = StackedRows([base.sentence_tokens, *(p.sentence_tokens for p in pieces
                                                       if p.sentence_tokens is not None)])
        tokens = stacked  # type: ignore[assignment]  # reads like the array, shares the parts
        counts = [np.diff(base.sentence_token_offsets),
                  *(p.token_counts for p in pieces if p.token_counts is not None)]
        offsets = np.zeros(len(sentences) + 1, dtype=np.int64)
        np.cumsum(np.concatenate(counts), out=offsets[1:])
    manifest = dict(base.manifest)
    manifest.pop("files", None)
    manifest.update({
        "vector_index": sentence_info["kind"],
        "vector_indexes": {"sentences": sentence_info, "passages": passage_info},
        "counts": {"documents": len(documents), "sentences": len(sentences), "passages": len(passages)},
        "late_interaction": tokens is not None,
        "layered": {"base_documents": len(base.documents), "session_documents": len(pieces)},
    })
    merged = CorpusIndex(documents, sentences, passages, sentence_index, passage_index,
                         sentence_bm25, passage_bm25, manifest, tokens, offsets)
    # The same collection hash a single build over base + uploads records.
    merged.manifest["corpus_hash"] = collection_hash(merged.entries)
    _inherit_sentence_facts(base, merged)
    return merged


def share_rows(base: CorpusIndex, pieces: Sequence[IndexedDocument],
               merged: CorpusIndex) -> list[IndexedDocument]:
    """The pieces with their vectors as views into ``merged``'s tables.

    Why: after layering, each piece's own arrays duplicate rows the union already holds;
    viewing the union's rows instead halves a session's vector memory. The views keep
    ``merged`` alive, which the session holds anyway; the next layering re-points them.
    """
    shared = []
    sentence_at, passage_at = len(base.sentences), len(base.passages)
    for piece in pieces:
        sentences, passages = len(piece.sentences), len(piece.passages)
        shared.append(dataclasses.replace(  # token vectors: the union reads the piece's own
            piece,
            sentence_vectors=merged.sentence_vectors[sentence_at:sentence_at + sentences],
            passage_vectors=merged.passage_vectors[passage_at:passage_at + passages]))
        sentence_at += sentences
        passage_at += passages
    return shared


def _inherit_sentence_facts(base: CorpusIndex, merged: CorpusIndex) -> None:
    """Give the union the ranking's per-sentence text facts of the shared sentences.

    Why: the ranking derives answer-type flags, lengths and word counts from every
    sentence's text once per index (about a second for 3,000 sentences on a busy 2-core
    machine); the union's first rows are the shared sentences, whose facts the shared
    engine already has. Copying them (and deriving the union's tables here, in the
    indexing worker) keeps that second off a visitor's first question. Speed only: it
    reads the ranking's private tables, so if their layout changes this does nothing and
    the ranking computes the facts itself, with the same result.
    """
    try:
        from qa import ranking

        source = ranking._tables(base).facts
        target = ranking._tables(merged).facts
        count = len(base.sentences)
        source.rows(np.arange(count))  # once per shared index; a no-op after
        with target._lock:
            target._types[:count] = source._types[:count]
            target._log_length[:count] = source._log_length[:count]
            target._word_counts[:count] = source._word_counts[:count]
            target._known[:count] = True
    except (AttributeError, TypeError, ValueError):  # the ranking's tables changed shape
        return
