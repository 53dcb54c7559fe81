"""Peer pipelines for the quality benchmark: the usual ways to answer with the same model.

Each peer answers with a ``qa.Answer`` (passages with one highlighted sentence) so the
same metrics code scores speech-qa and its peers.  They share speech-qa's index (the
same documents, sentence windows, MiniLM vectors, FAISS and bm25s tables), so the table
compares ranking methods, not data or models:

- ``bm25``: bm25s over the sentence windows; the highlighted sentence is the window's
  sentence with the best BM25 score.
- ``dense``: MiniLM + FAISS over the same windows; highlight by sentence cosine.
- ``rrf``: reciprocal-rank fusion (k=60) of the two window rankings; highlight by RRF of
  the two sentence rankings.
- ``langchain``: LangChain's ``RecursiveCharacterTextSplitter(chunk_size=1000,
  chunk_overlap=200)`` (re-implemented faithfully below, to keep LangChain out of the
  dependencies) + dense retrieval over the chunks; the highlight is the document sentence
  inside the chunk most similar to the question.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from index import CorpusIndex, Encoder, tokenize
from index.vectors import search
from qa.types import Answer, Passage, Span

RRF_K = 60


def _passage(index: CorpusIndex, passage_id: int, sentence_id: int, score: float) -> Passage:
    record = index.passages[passage_id]
    sentence = index.sentences[sentence_id]
    return Passage(
        text=index.passage_text(passage_id), source=index.documents[record.doc].source,
        start=record.start, end=record.end, score=score,
        highlights=(Span(sentence.start - record.start, sentence.end - record.start),),
        paragraph=record.paragraph + 1,
    )


def _answer(index: CorpusIndex, question: str, passage_order: np.ndarray, sentence_scores: np.ndarray,
            top_k: int) -> Answer:
    """Top windows in ``passage_order``, each highlighting its best sentence by ``sentence_scores``."""
    passages = []
    for passage_id in passage_order[:top_k]:
        record = index.passages[int(passage_id)]
        members = np.arange(record.first, record.last + 1)
        best = int(members[np.argmax(sentence_scores[members])])
        passages.append(_passage(index, int(passage_id), best, 0.0))
    best_text = None
    if passages:
        span = passages[0].highlights[0]
        best_text = passages[0].text[span.start:span.end]
    return Answer(question, best_text, 0.0, tuple(passages))


def _rrf(*scores: np.ndarray) -> np.ndarray:
    fused = np.zeros(scores[0].size)
    for values in scores:
        ranks = np.empty(values.size)
        ranks[np.argsort(-values, kind="stable")] = np.arange(values.size)
        fused += 1.0 / (RRF_K + ranks + 1)
    return fused


def bm25_answer(index: CorpusIndex, question: str, vector: np.ndarray, top_k: int) -> Answer:
    """BM25 alone over the sentence windows."""
    tokens = tokenize([question])[0]
    passage_scores = index.passage_bm25.scores(tokens)
    sentence_scores = index.sentence_bm25.scores(tokens)
    return _answer(index, question, np.argsort(-passage_scores, kind="stable"), sentence_scores, top_k)


def dense_answer(index: CorpusIndex, question: str, vector: np.ndarray, top_k: int) -> Answer:
    """MiniLM + FAISS alone over the sentence windows."""
    _, ids = search(index.passage_index, vector, top_k)
    return _answer(index, question, ids[ids >= 0], index.sentence_vectors @ vector, top_k)


def rrf_answer(index: CorpusIndex, question: str, vector: np.ndarray, top_k: int) -> Answer:
    """Reciprocal-rank fusion of BM25 and dense, for windows and for the highlighted sentence."""
    tokens = tokenize([question])[0]
    passages = _rrf(index.passage_bm25.scores(tokens), index.passage_vectors @ vector)
    sentences = _rrf(index.sentence_bm25.scores(tokens), index.sentence_vectors @ vector)
    return _answer(index, question, np.argsort(-passages, kind="stable"), sentences, top_k)


# ---------------------------------------------------------------------- LangChain-style splitter
def _split_keep_start(text: str, separator: str) -> list[str]:
    """``_split_text_with_regex(keep_separator=True)``: the separator starts the next piece."""
    if not separator:
        return [c for c in text if c]
    parts = re.split(f"({re.escape(separator)})", text)
    pieces = [parts[i] + parts[i + 1] for i in range(1, len(parts) - 1, 2)]
    if len(parts) % 2 == 0:
        pieces += parts[-1:]
    return [p for p in [parts[0], *pieces] if p]


class RecursiveCharacterSplitter:
    """A faithful re-implementation of LangChain's ``RecursiveCharacterTextSplitter``.

    Defaults as in LangChain: separators ``["\\n\\n", "\\n", " ", ""]``,
    ``keep_separator=True`` (at the start of a piece), ``strip_whitespace=True``, length in
    characters.
    """

    def __init__(self, chunk_size: int = 1000, chunk_overlap: int = 200,
                 separators: Sequence[str] = ("\n\n", "\n", " ", "")) -> None:
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        self.separators = list(separators)

    def split_text(self, text: str) -> list[str]:
        """Chunks of ``text`` (stripped), at most ``chunk_size`` characters where possible."""
        return self._split(text, self.separators)

    def _split(self, text: str, separators: list[str]) -> list[str]:
        separator, rest = separators[-1], []
        for number, candidate in enumerate(separators):
            if candidate == "":
                separator = candidate
                break
            if candidate in text:
                separator, rest = candidate, separators[number + 1:]
                break
        chunks: list[str] = []
        good: list[str] = []
        for piece in _split_keep_start(text, separator):
            if len(piece) < self.chunk_size:
                good.append(piece)
                continue
            if good:
                chunks.extend(self._merge(good))
                good = []
            chunks.extend(self._split(piece, rest) if rest else [piece])
        if good:
            chunks.extend(self._merge(good))
        return chunks

    def _merge(self, splits: list[str]) -> list[str]:
        """``_merge_splits`` with the empty joiner that ``keep_separator=True`` implies."""
        docs: list[str] = []
        current: list[str] = []
        total = 0
        for piece in splits:
            if total + len(piece) > self.chunk_size and current:
                joined = "".join(current).strip()
                if joined:
                    docs.append(joined)
                while total > self.chunk_overlap or (total + len(piece) > self.chunk_size and total > 0):
                    total -= len(current[0])
                    current = current[1:]
            current.append(piece)
            total += len(piece)
        joined = "".join(current).strip()
        if joined:
            docs.append(joined)
        return docs


@dataclass
class ChunkIndex:
    """Dense index over LangChain-style chunks of one corpus (offsets into its documents)."""

    index: CorpusIndex
    doc: list[int]
    start: list[int]
    end: list[int]
    vectors: np.ndarray

    @classmethod
    def build(cls, index: CorpusIndex, encoder: Encoder, chunk_size: int = 1000,
              chunk_overlap: int = 200) -> ChunkIndex:
        """Split every document of ``index`` and embed the chunks (LangChain's ``add_start_index`` way)."""
        splitter = RecursiveCharacterSplitter(chunk_size, chunk_overlap)
        docs, starts, ends, texts = [], [], [], []
        for number, document in enumerate(index.documents):
            cursor = -1
            for chunk in splitter.split_text(document.text):
                found = document.text.find(chunk, cursor + 1)
                cursor = found if found >= 0 else document.text.find(chunk)
                docs.append(number)
                starts.append(cursor)
                ends.append(cursor + len(chunk))
                texts.append(chunk)
        return cls(index, docs, starts, ends, encoder.encode(texts))

    def answer(self, question: str, vector: np.ndarray, top_k: int) -> Answer:
        """Top chunks by cosine; highlight the most similar sentence lying (partly) inside."""
        order = np.argsort(-(self.vectors @ vector), kind="stable")[:top_k]
        sentence_scores = self.index.sentence_vectors @ vector
        passages = []
        for chunk in order:
            doc, start, end = self.doc[chunk], self.start[chunk], self.end[chunk]
            inside = [i for i, s in enumerate(self.index.sentences)
                      if s.doc == doc and s.start < end and s.end > start]
            best = self.index.sentences[max(inside, key=lambda i: sentence_scores[i])]
            text = self.index.documents[doc].text[start:end]
            passages.append(Passage(
                text=text, source=self.index.documents[doc].source, start=start, end=end, score=0.0,
                highlights=(Span(max(best.start, start) - start, min(best.end, end) - start),),
            ))
        span = passages[0].highlights[0]
        return Answer(question, passages[0].text[span.start:span.end], 0.0, tuple(passages))
