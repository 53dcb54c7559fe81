"""The corpus index's data (``CorpusIndexData``): the tables a question is answered from.

Why a module of its own: the operations on an index (``index.build``, ``index.loading``,
``index.segments``, ``index.tables``) all take or make one; with the class here they import
it from below, and ``index.store`` puts the operations on top as ``CorpusIndex`` methods, so
the imports run one way: ``corpus_index`` <- build/loading/segments/tables <- ``store``.
Nothing here embeds, reads or writes files.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import faiss
import numpy as np

from index.lexical import LexicalIndex
from index.manifest import make_manifest
from index.records import DocumentEntry, PassageRecord, SentenceRecord, document_counts, now
from index.terms import TermStats
from index.vectors import all_vectors
from ingest import Document


class CorpusIndexData:
    """Documents, their sentence and passage tables, FAISS and BM25 indexes, in memory.

    The data of ``index.store.CorpusIndex`` (which adds build, save, load, merge and
    without). Query-time code reads the public attributes; nothing here embeds a question.
    """

    def __init__(
        self,
        documents: list[Document],
        sentences: list[SentenceRecord],
        passages: list[PassageRecord],
        sentence_index: faiss.Index,
        passage_index: faiss.Index,
        sentence_bm25: LexicalIndex,
        passage_bm25: LexicalIndex,
        manifest: dict[str, Any],
        sentence_tokens: np.ndarray | None = None,
        sentence_token_offsets: np.ndarray | None = None,
        sentence_terms: TermStats | None = None,
        passage_terms: TermStats | None = None,
        entries: Sequence[DocumentEntry] | None = None,
    ) -> None:
        self.documents = documents
        self._sentence_terms = sentence_terms
        self._passage_terms = passage_terms
        self.entries: list[DocumentEntry] = list(entries) if entries is not None else [
            DocumentEntry.of(document, str(manifest.get("created_at", now())), *counts)
            for document, counts in zip(documents, document_counts(documents, sentences, passages),
                                        strict=True)]
        """What the collection knows of each document (content hash, size, when added),
        row i for ``documents[i]``."""
        self.sentence_tokens = sentence_tokens
        """float16 ``(total_tokens, dim)`` token vectors of every sentence, or None (late
        interaction off: big corpus, old index, or an encoder without token vectors)."""
        self.sentence_token_offsets = sentence_token_offsets
        """int64 ``(n_sentences + 1,)``: sentence i owns token rows ``offsets[i]:offsets[i+1]``."""
        self.sentences = sentences
        self.passages = passages
        self.sentence_index = sentence_index
        self.passage_index = passage_index
        self.sentence_bm25 = sentence_bm25
        self.passage_bm25 = passage_bm25
        self.manifest = manifest
        self.sentence_vectors = all_vectors(sentence_index)
        self.passage_vectors = all_vectors(passage_index)
        self.sentence_passage = np.zeros(len(sentences), dtype=np.int64)
        """For each sentence, the first passage that contains it."""
        for number in range(len(passages) - 1, -1, -1):
            record = passages[number]
            self.sentence_passage[record.first: record.last + 1] = number

    # ------------------------------------------------------------------ text access
    def sentence_text(self, sentence_id: int) -> str:
        """Text of one sentence."""
        record = self.sentences[sentence_id]
        return self.documents[record.doc].text[record.start: record.end]

    def passage_text(self, passage_id: int) -> str:
        """Text of one passage."""
        record = self.passages[passage_id]
        return self.documents[record.doc].text[record.start: record.end]

    @property
    def sentence_terms(self) -> TermStats:
        """Word counts of every sentence (computed from the texts for a format-1 index)."""
        if self._sentence_terms is None:
            self._sentence_terms = TermStats.from_texts(
                [self.sentence_text(i) for i in range(len(self.sentences))])
        return self._sentence_terms

    @property
    def passage_terms(self) -> TermStats:
        """Word counts of every passage (computed from the texts for a format-1 index)."""
        if self._passage_terms is None:
            self._passage_terms = TermStats.from_texts(
                [self.passage_text(i) for i in range(len(self.passages))])
        return self._passage_terms

    @property
    def model_name(self) -> str:
        """Name of the embedding model the vectors came from."""
        return str(self.manifest["model"]["name"])

    def single_manifest(self) -> dict[str, Any]:
        """This index's manifest as one segment (what a full save writes), without ``files``."""
        counts = {"documents": len(self.documents), "sentences": len(self.sentences),
                  "passages": len(self.passages)}
        model = self.manifest["model"]
        return make_manifest(model["name"], model["dimension"], self.manifest["chunking"], self.entries,
                             self.manifest["vector_indexes"], counts, self.sentence_tokens is not None,
                             str(self.manifest.get("created_at", now())))


__all__ = ["CorpusIndexData"]
