"""Which sentences one question's ranking scores: all of them, or a candidate set.

Why: the ranking's features are numpy work over every sentence (matrix products with all
sentence and passage vectors, argsorts, neighbour lookups).  On a speech or a report
(thousands of sentences) that costs about a millisecond and sees everything.  It grows
linearly: at a million sentences a question would read about 3 GB of vectors and sort a
million scores several times.  Above ``FULL_RANKING_MAX_SENTENCES`` the ranking therefore
scores only the sentences that one of its strong signals could put on top:

- the nearest sentences and passages by the vector index (``index.vectors.search``,
  approximate above its own size threshold),
- the best sentences and passages by BM25 (whose per-word scores are sparse lookups),
- and every sentence of every passage that contains one of those sentences, because the
  passage is what the user is shown and its sentences feed the context features.

The threshold and the pool sizes are measured by ``bench/perf.py ranking`` (time per
question against corpus size) and ``bench/quality.py`` (answers with the candidate
ranking forced on a small corpus), both in ``bench/RESULTS.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from index import CorpusIndex
from index.vectors import search

FULL_RANKING_MAX_SENTENCES = 5_000
"""Corpora with more sentences than this rank a candidate set per question."""


@dataclass(frozen=True)
class CandidatePool:
    """How many items each signal contributes before passages are expanded to sentences.

    Attributes:
        dense_sentences: Nearest sentences by the vector index.
        dense_passages: Nearest passages by the vector index.
        lexical_sentences: Best sentences by BM25 (only those with a positive score).
        lexical_passages: Best passages by BM25 (only those with a positive score).
    """

    dense_sentences: int = 100
    dense_passages: int = 50
    lexical_sentences: int = 100
    lexical_passages: int = 50


DEFAULT_POOL = CandidatePool()


def expand_ranges(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Concatenation of ``range(start, end + 1)`` for each pair, vectorised.

    Pairs with ``end < start`` contribute nothing.
    """
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.maximum(np.asarray(ends, dtype=np.int64) - starts + 1, 0)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.cumsum(lengths) - lengths
    return np.repeat(starts - offsets, lengths) + np.arange(total, dtype=np.int64)


def top_positive(scores: np.ndarray, count: int) -> np.ndarray:
    """Ids of the ``count`` highest strictly positive scores (any order)."""
    positive = np.flatnonzero(scores > 0)
    if positive.size <= count:
        return positive
    best = np.argpartition(-scores[positive], count - 1)[:count]
    return positive[best]


def candidate_sentences(index: CorpusIndex, question_vector: np.ndarray, sentence_bm25: np.ndarray,
                        passage_bm25: np.ndarray, first_passage: np.ndarray, last_passage: np.ndarray,
                        passage_first: np.ndarray, passage_last: np.ndarray,
                        pool: CandidatePool = DEFAULT_POOL) -> np.ndarray:
    """Sorted unique ids of the sentences to score for one question.

    Args:
        index: The corpus index (its FAISS tables are searched).
        question_vector: The question's normalised embedding.
        sentence_bm25: BM25 score of every sentence for the question.
        passage_bm25: BM25 score of every passage for the question.
        first_passage: For each sentence, the first passage containing it (-1: none).
        last_passage: For each sentence, the last passage containing it.
        passage_first: For each passage, its first sentence.
        passage_last: For each passage, its last sentence.
        pool: How many items each signal contributes.
    """
    _, dense_sentences = search(index.sentence_index, question_vector, pool.dense_sentences)
    _, dense_passages = search(index.passage_index, question_vector, pool.dense_passages)
    seeds = np.concatenate([dense_sentences[dense_sentences >= 0].astype(np.int64),
                            top_positive(sentence_bm25, pool.lexical_sentences)])
    seeds = np.unique(seeds)
    inside = first_passage[seeds] >= 0
    passages = np.unique(np.concatenate([
        dense_passages[dense_passages >= 0].astype(np.int64),
        top_positive(passage_bm25, pool.lexical_passages),
        expand_ranges(first_passage[seeds[inside]], last_passage[seeds[inside]]),
    ]))
    members = expand_ranges(passage_first[passages], passage_last[passages])
    return np.unique(np.concatenate([seeds, members]))
