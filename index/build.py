"""Building an index in memory: split, embed once, and index a list of documents.

Why a module of its own: the build is the one slow, model-bound step (every passage and
sentence embedded once, BM25 counted beside it, the vector index chosen by size); saving,
loading and updates never embed, so they do not need to know how it is done.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Generic, TypeVar

import numpy as np

from index.context import context_texts, distinct_contexts, previous_in_paragraph, with_context_rows
from index.corpus_index import CorpusIndexData
from index.encoder import Encoder, token_encoder
from index.errors import IndexBuildError
from index.layout import LATE_INTERACTION_MAX_SENTENCES
from index.manifest import make_manifest
from index.progress import BuildProgress
from index.records import DocumentEntry, PassageRecord, SentenceRecord, document_counts, now
from index.terms import bm25_of
from index.vectors import APPROXIMATE_THRESHOLD, build_vector_index
from ingest import ChunkingParams, Document, make_passages, split_sentences

C = TypeVar("C", bound=CorpusIndexData)
"""Any corpus index class (``index.store.CorpusIndex``): the operations make instances of it."""



T = TypeVar("T")


class _Background(Generic[T]):
    """Run one function in a daemon thread; ``result()`` joins and re-raises its error."""

    def __init__(self, work: Callable[[], T]) -> None:
        self._value: T | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(work,), daemon=True,
                                        name="speech-qa-bm25")
        self._thread.start()

    def _run(self, work: Callable[[], T]) -> None:
        try:
            self._value = work()
        except BaseException as exc:  # handed to the caller by result()
            self._error = exc

    def result(self) -> T:
        """Wait for the work and return its value (or raise its exception)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._value is not None
        return self._value


def build_index(
    cls: type[C],
    documents: Sequence[Document],
    encoder: Encoder,
    params: ChunkingParams | None = None,
    show_progress: bool = False,
    batch_size: int = 64,
    progress: BuildProgress | None = None,
    *,
    vector_threshold: int = APPROXIMATE_THRESHOLD,
    token_budget: int | None = None,
    added_at: str | None = None,
) -> C:
    """Split, embed (passages and sentences, once) and index a corpus.

    Args:
        documents: Repaired documents (see ``ingest.load_documents``).
        encoder: Embeds texts into normalised vectors.
        params: Passage chunking; defaults to ``ChunkingParams()``.
        show_progress: Show progress bars (build stages, and the model's batches).
        batch_size: Texts per model call.
        progress: A stage bar already started by the caller (e.g. over reading files);
            it is continued here, and the caller closes it.
        vector_threshold: Tables this large get an approximate vector index (a
            segment appended to a collection passes a huge value: its rows join the
            first segment's index when loaded, so they are stored flat).
        token_budget: Store sentence token vectors (late interaction) only when the
            corpus has at most this many sentences (default
            ``LATE_INTERACTION_MAX_SENTENCES``) (an appended segment gets what is
            left of the collection's budget, or -1 when the collection has none).
        added_at: When the documents joined the collection (default: now).

    Raises:
        IndexBuildError: No sentences at all in the corpus.
    """
    if progress is None:  # our own bar: close it however the build ends
        own = BuildProgress(show_progress)
        with own:
            return build_index(cls, documents, encoder, params, show_progress, batch_size, own,
                               vector_threshold=vector_threshold, token_budget=token_budget,
                               added_at=added_at)
    params = params or ChunkingParams()
    documents = list(documents)
    progress.stage("split")
    sentences: list[SentenceRecord] = []
    passages: list[PassageRecord] = []
    for doc_number, document in enumerate(documents):
        spans = split_sentences(document.text)
        offset = len(sentences)
        sentences.extend(SentenceRecord(doc_number, s.start, s.end, s.paragraph) for s in spans)
        passages.extend(
            PassageRecord(doc_number, p.start, p.end, p.paragraph,
                          offset + p.first_sentence, offset + p.last_sentence)
            for p in make_passages(spans, params)
        )
    if not sentences:
        raise IndexBuildError("the corpus has no sentences to index")
    sentence_texts = [documents[s.doc].text[s.start:s.end] for s in sentences]
    passage_texts = [documents[p.doc].text[p.start:p.end] for p in passages]
    # One encode call over both tables: single-sentence passages are embedded once.
    unique: dict[str, int] = {}
    for text in sentence_texts + passage_texts:
        unique.setdefault(text, len(unique))
    # BM25 (tokenising, stemming: Python work) runs beside the model, whose matrix
    # products release the GIL, so it rides on the embedding time instead of adding to it.
    lexical = _Background(lambda: (bm25_of(sentence_texts), bm25_of(passage_texts)))
    progress.stage("embed")
    if token_budget is None:
        token_budget = LATE_INTERACTION_MAX_SENTENCES
    tokens_from = token_encoder(encoder) if len(sentences) <= token_budget else None
    # The stage bar is the one bar a person sees: no nested per-batch bar of the model.
    show_progress = False
    token_rows: list[np.ndarray] = []
    in_context: list[str | None] = []
    pair_row_of: dict[str, np.ndarray] = {}
    try:
        if tokens_from is None:
            vectors = encoder.encode(list(unique), batch_size=batch_size, show_progress=show_progress)
        else:
            # Still one forward pass per distinct text: sentences (the first entries of
            # ``unique``) with their token vectors, then passage-only texts without.
            texts = list(unique)
            n_sentence_texts = len(set(sentence_texts))
            head, token_rows = tokens_from.encode_with_tokens(
                texts[:n_sentence_texts], batch_size=batch_size, show_progress=show_progress)
            tail = encoder.encode(texts[n_sentence_texts:], batch_size=batch_size,
                                  show_progress=show_progress)
            vectors = np.concatenate([head, tail.reshape(-1, head.shape[1])])
            # Each sentence that follows another in its paragraph, read with it (format 3).
            in_context = context_texts(sentence_texts, previous_in_paragraph(sentences))
            pairs = distinct_contexts(in_context)
            if pairs:
                _, pair_rows = tokens_from.encode_with_tokens(pairs, batch_size=batch_size,
                                                              show_progress=show_progress)
                pair_row_of = dict(zip(pairs, pair_rows, strict=True))
    finally:
        progress.stage("bm25")
        (sentence_terms, sentence_bm25), (passage_terms, passage_bm25) = lexical.result()
    if vectors.ndim != 2 or vectors.shape[1] != encoder.dimension:
        raise IndexBuildError(
            f"encoder returned vectors of shape {vectors.shape}, expected (*, {encoder.dimension})"
        )
    progress.stage("vectors")
    sentence_index, sentence_info = build_vector_index(vectors[[unique[t] for t in sentence_texts]],
                                                       threshold=vector_threshold)
    passage_index, passage_info = build_vector_index(vectors[[unique[t] for t in passage_texts]],
                                                     threshold=vector_threshold)
    del vectors
    sentence_tokens: np.ndarray | None = None
    offsets: np.ndarray | None = None
    if tokens_from is not None:
        per_sentence = [with_context_rows(token_rows[unique[t]], pair_row_of.get(c) if c else None)
                        for t, c in zip(sentence_texts, in_context, strict=True)]
        offsets = np.zeros(len(per_sentence) + 1, dtype=np.int64)
        np.cumsum([len(rows) for rows in per_sentence], out=offsets[1:])
        sentence_tokens = np.concatenate(per_sentence).astype(np.float16)
        del token_rows, per_sentence, pair_row_of
    stamp = added_at or now()
    entries = [DocumentEntry.of(document, stamp, *counts) for document, counts
               in zip(documents, document_counts(documents, sentences, passages), strict=True)]
    manifest = make_manifest(encoder.name, encoder.dimension, asdict(params), entries,
                             {"sentences": sentence_info, "passages": passage_info},
                             {"documents": len(documents), "sentences": len(sentences),
                              "passages": len(passages)}, sentence_tokens is not None, stamp)
    return cls(
        documents, sentences, passages, sentence_index, passage_index,
        sentence_bm25, passage_bm25, manifest, sentence_tokens, offsets,
        sentence_terms, passage_terms, entries,
    )
