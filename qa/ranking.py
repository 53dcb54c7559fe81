"""Hybrid retrieval and sentence ranking: from one question vector to an ``Answer``.

How a question is scored (all on precomputed index data; the only model call is the
question's embedding, made by the caller):

1. Every sentence of the corpus (on a big corpus: every candidate of ``qa.candidates``)
   gets a small feature vector, computed with a handful of vectorised numpy operations:
   its dense similarity (raw and z-scored within the corpus), the best similarity of a
   passage containing it and of its neighbours (context), its BM25 score and its
   passage's, how much of the question's IDF-weighted vocabulary it (and its neighbours)
   contain, its length, and answer-type cues.
2. A linear score ``features @ weights`` ranks the sentences.  The weights are a
   conditional-logit model (softmax over a document's sentences, the answer sentence as
   the target) fitted by ``bench/quality.py`` with cross-validation across articles, so
   the fused score is a log-odds: its differences have a meaning (``highlight_margin``).
3. The best sentences drive the passages: each returned passage is the best passage
   around one of the top sentences, so the top-k passages are diverse, not overlapping
   copies of one answer.
   When the index stores sentence token vectors and the encoder gave the question's,
   a late-interaction feature joins them: ColBERT-style MaxSim (for each question token
   its best cosine with any token of the sentence, averaged over question tokens), which
   sees word-level matches (names, numbers, paraphrased terms) a single sentence vector
   blurs.  It is computed only for the ``LATE_CANDIDATES`` best sentences by the other
   features; the rest get the lowest candidate value.  A second MaxSim reads the
   sentence encoded together with the one before it in its paragraph (``index.context``:
   a sentence that says only "this project" carries its subject there), for the
   ``PAIR_CANDIDATES`` best; of those, a sentence holding the kind of thing asked (the
   answer-phrase extractor's date, amount, count or name) gets that score again in
   ``typed_pair_z``, which tells the answer from the sentence before it that only names
   the subject.
4. A logistic model on a sentence's evidence (raw cosine, coverage of the question's
   words, whether the corpus knows those words at all, fused margin over the runner-up)
   gives a calibrated confidence; the answer is ``None`` below ``threshold``.

Corpus-wide tables (neighbours, passage membership, answer-type flags) are derived once
per index and kept in a weak cache, so a question costs O(corpus) numpy work up to
``FULL_RANKING_MAX_SENTENCES`` sentences, and O(candidates) matrix work plus a few O(corpus)
BM25 array additions above it.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, fields, replace

import numpy as np

from index import CorpusIndex, tokenize
from index.context import own_ends
from index.encoder import token_similarities
from qa.about import MANY_NOTICE, NO_TITLE_NOTICE, asks_about_document, is_title
from qa.candidates import (
    DEFAULT_POOL,
    FULL_RANKING_MAX_SENTENCES,
    CandidatePool,
    candidate_sentences,
    expand_ranges,
)
from qa.cues import TYPED, question_type, sentence_types
from qa.language import notice_for
from qa.phrase import (
    EVIDENCE_TYPES,
    PhraseType,
    find_phrase,
    holds_asked,
    phrase_type,
    question_stems,
    typed_spans,
)
from qa.types import Answer, Passage, Span

#: Order of the columns of ``SentenceScores.features`` (and of ``RankingWeights.vector``).
FEATURES: tuple[str, ...] = (
    "sentence_dense", "sentence_dense_z", "passage_dense", "previous_dense", "next_dense",
    "sentence_bm25", "passage_bm25", "previous_bm25", "next_bm25",
    "coverage", "left_coverage", "right_coverage", "length", "novel_words",
    "passage_dense_z", "sentence_bm25_z", "dense_rank", "bm25_rank",
    "previous_rank", "next_rank", "paragraph_start", "centred_dense", "centred_passage",
    "cue_date", "cue_number", "cue_person", "cue_place", "maxsim", "maxsim_z",
    "pair_maxsim", "pair_maxsim_z", "typed_pair_z",
)

#: Late-interaction columns (zero when the index or the encoder has no token vectors).
LATE_FEATURES: tuple[str, ...] = ("maxsim", "maxsim_z", "pair_maxsim", "pair_maxsim_z", "typed_pair_z")

#: The sentence-in-context columns (zero when the index has no context rows: format 2).
#: ``typed_pair_z``: the in-context MaxSim's z-score of a sentence that holds the kind of
#: thing asked (``qa.phrase.holds_asked``: a date range for *how long*, an amount with a
#: currency for *how much was spent*, a name the question does not say for *who*), else 0.
CONTEXT_FEATURES: tuple[str, ...] = ("pair_maxsim", "pair_maxsim_z", "typed_pair_z")

#: Sentences (best by the other features) whose MaxSim is computed for one question.
LATE_CANDIDATES = 200

#: Of those, the best this many also get the in-context MaxSim (its rows are about 2.6
#: times a sentence's own: previous sentence and sentence together).
PAIR_CANDIDATES = 50

#: Columns of ``SentenceScores.evidence``: inputs of the abstention model.
EVIDENCE: tuple[str, ...] = ("dense", "passage_dense", "coverage", "corpus_coverage", "margin",
                             "topic", "dense_z", "best_coverage", "bm25", "maxsim")


@dataclass(frozen=True)
class RankingWeights:
    """Weights of the fused sentence score and of the abstention model.

    The defaults were fitted by cross-validation across the three SQuAD articles in
    ``bench/data`` (fit on two, test on the third; see ``bench/RESULTS.md``).  Field
    names after ``w_`` / ``a_`` match ``FEATURES`` / ``EVIDENCE``.
    """

    w_sentence_dense: float = 0.0001528
    w_sentence_dense_z: float = -0.2618
    w_passage_dense: float = 0.04517
    w_previous_dense: float = -0.2124
    w_next_dense: float = 0.1795
    w_sentence_bm25: float = 0.2023
    w_passage_bm25: float = 0.4702
    w_previous_bm25: float = -0.1627
    w_next_bm25: float = 0.4538
    w_coverage: float = 0.2747
    w_left_coverage: float = 0.1847
    w_right_coverage: float = 0.3139
    w_length: float = 0.01817
    w_novel_words: float = -0.09422
    w_passage_dense_z: float = 0.4282
    w_sentence_bm25_z: float = 0.2436
    w_dense_rank: float = 0.2765
    w_bm25_rank: float = 0.2178
    w_previous_rank: float = -0.126
    w_next_rank: float = -0.08386
    w_paragraph_start: float = -0.172
    w_centred_dense: float = 0.2447
    w_centred_passage: float = 0.1329
    w_cue_date: float = 0.1468
    w_cue_number: float = 0.05272
    w_cue_person: float = -0.0404
    w_cue_place: float = 0.1274
    w_maxsim: float = 0.1126
    w_maxsim_z: float = 0.5492
    w_pair_maxsim: float = 0.07338
    w_pair_maxsim_z: float = 1.308
    w_typed_pair_z: float = 0.4985
    highlight_margin: float = 0.69
    """Also highlight a sentence of the passage whose fused log-odds is within this of the
    driver's (ln 2: at least half as likely to be the answer)."""
    a_bias: float = -5.209
    a_dense: float = 4.461
    a_passage_dense: float = 4.378
    a_coverage: float = 0
    a_corpus_coverage: float = 0
    a_margin: float = 0
    a_topic: float = 2.121
    a_dense_z: float = 0
    a_best_coverage: float = 0
    a_bm25: float = 0
    a_maxsim: float = 4.108
    threshold: float = 0.3737

    def vector(self) -> np.ndarray:
        """The fusion weights in ``FEATURES`` order."""
        return np.array([getattr(self, f"w_{name}") for name in FEATURES], dtype=np.float32)

    def abstention_vector(self) -> np.ndarray:
        """The abstention coefficients in ``EVIDENCE`` order (bias excluded)."""
        return np.array([getattr(self, f"a_{name}") for name in EVIDENCE], dtype=np.float64)

    @classmethod
    def from_vectors(cls, fusion: np.ndarray | None = None, abstention: np.ndarray | None = None,
                     base: RankingWeights | None = None, **extra: float) -> RankingWeights:
        """Weights with fitted vectors substituted (used by the benchmark's fitting)."""
        values = {f.name: getattr(base or cls(), f.name) for f in fields(cls)}
        if fusion is not None:
            values.update({f"w_{n}": float(v) for n, v in zip(FEATURES, fusion, strict=True)})
        if abstention is not None:
            values.update({f"a_{n}": float(v) for n, v in zip(EVIDENCE, abstention, strict=True)})
        values.update(extra)
        return cls(**values)


@dataclass(frozen=True)
class _Tables:
    """Corpus-wide lookups derived once per index (cheap; no model involved)."""

    prev: np.ndarray  # previous sentence in the same paragraph, or the sentence itself
    next: np.ndarray
    first_passage: np.ndarray  # passages containing sentence s: first..last (inclusive), -1: none
    last_passage: np.ndarray
    passage_first: np.ndarray  # sentences of passage p: passage_first..passage_last
    passage_last: np.ndarray
    span: int  # the most passages any one sentence belongs to
    facts: _SentenceFacts
    centre: np.ndarray  # mean sentence vector: the corpus' shared topic
    sentence_offset: np.ndarray  # |sentence vector - centre|, to centre similarities
    passage_offset: np.ndarray
    sample: np.ndarray  # fixed sentence ids whose scores stand for the corpus' in candidate mode
    openings: np.ndarray  # each document's first sentence, in document order


class _SentenceFacts:
    """Per-sentence values that need the text (answer-type flags, length, distinct words).

    Why lazy: computing them reads and tokenizes every sentence (about a minute at a
    million sentences); a question only needs the rows it scores, and rows once computed
    are kept.  Full ranking asks for every row on its first question, as before.
    """

    def __init__(self, index: CorpusIndex) -> None:
        n = len(index.sentences)
        self._index = weakref.proxy(index)  # a strong reference would pin the index in _TABLES
        self._known = np.zeros(n, dtype=bool)
        self._types = np.zeros((n, len(TYPED)), dtype=np.float32)
        self._log_length = np.zeros(n, dtype=np.float32)
        self._word_counts = np.zeros(n, dtype=np.float32)
        self._spans: dict[PhraseType, dict[int, tuple[frozenset[str], ...]]] = {}
        self._lock = threading.Lock()

    def rows(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(answer-type flags, log length, distinct word count) of sentences ``ids``."""
        missing = ids[~self._known[ids]]
        if missing.size:
            with self._lock:
                missing = missing[~self._known[missing]]
                texts = [self._index.sentence_text(int(i)) for i in missing]
                self._types[missing] = np.array([sentence_types(text) for text in texts],
                                                dtype=np.float32).reshape(len(texts), len(TYPED))
                self._log_length[missing] = np.log(np.maximum([len(text) for text in texts], 1)) \
                    .astype(np.float32) - np.float32(math.log(120))
                self._word_counts[missing] = [len(set(words)) for words in tokenize(texts)]
                self._known[missing] = True
        return self._types[ids], self._log_length[ids], self._word_counts[ids]

    def typed_spans(self, ids: np.ndarray, kind: PhraseType) -> list[tuple[frozenset[str], ...]]:
        """``qa.phrase.typed_spans`` of sentences ``ids``, each computed once per index and kind."""
        with self._lock:
            known = self._spans.setdefault(kind, {})
            for i in ids.tolist():
                if i not in known:
                    known[i] = typed_spans(self._index.sentence_text(i), kind)
            return [known[i] for i in ids.tolist()]


_TABLES: weakref.WeakKeyDictionary[CorpusIndex, _Tables] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class _SampleRows:
    """The sample's sentence vectors and their passages' vectors, as contiguous copies.

    Why: gathering 2,048 scattered rows (and their ~4,000 passages) from the tables for every
    question cost ~1 ms of the ~6 ms a candidate-mode question takes at 44k sentences; the
    copies cost ~9 MB per big index, and only indexes that rank candidates make them.
    """

    sentences: np.ndarray
    passages: np.ndarray  # vectors of ``passage_ids``
    passage_ids: np.ndarray
    first: np.ndarray  # the sample sentences' first and last passage
    last: np.ndarray


_SAMPLE_ROWS: weakref.WeakKeyDictionary[CorpusIndex, _SampleRows] = weakref.WeakKeyDictionary()


def _sample_rows(index: CorpusIndex, tables: _Tables) -> _SampleRows:
    cached = _SAMPLE_ROWS.get(index)
    if cached is None:
        sample = tables.sample
        first, last = tables.first_passage[sample], tables.last_passage[sample]
        inside = first >= 0
        passage_ids = np.unique(expand_ranges(first[inside], last[inside]))
        cached = _SampleRows(np.ascontiguousarray(index.sentence_vectors[sample]),
                             np.ascontiguousarray(index.passage_vectors[passage_ids]),
                             passage_ids, first, last)
        _SAMPLE_ROWS[index] = cached
    return cached

#: Sentences whose scores estimate the corpus-wide mean and spread in candidate mode.
_SAMPLE_SIZE = 2048


def _offset_norms(vectors: np.ndarray, centre: np.ndarray, chunk: int = 65_536) -> np.ndarray:
    """|row - centre| for every row, in chunks (no full-size temporary)."""
    out = np.empty(len(vectors), dtype=np.float32)
    for start in range(0, len(vectors), chunk):
        out[start:start + chunk] = np.linalg.norm(vectors[start:start + chunk] - centre, axis=1)
    return np.maximum(out, 1e-6)


def _tables(index: CorpusIndex) -> _Tables:
    cached = _TABLES.get(index)
    if cached is not None:
        return cached
    n = len(index.sentences)
    ids = np.arange(n)
    doc = np.fromiter((s.doc for s in index.sentences), dtype=np.int64, count=n)
    paragraph = np.fromiter((s.paragraph for s in index.sentences), dtype=np.int64, count=n)
    same_prev = np.zeros(n, dtype=bool)
    same_prev[1:] = (doc[1:] == doc[:-1]) & (paragraph[1:] == paragraph[:-1])
    prev = np.where(same_prev, ids - 1, ids)
    same_next = np.zeros(n, dtype=bool)
    same_next[:-1] = same_prev[1:]
    nxt = np.where(same_next, ids + 1, ids)
    count = len(index.passages)
    passage_first = np.fromiter((p.first for p in index.passages), dtype=np.int64, count=count)
    passage_last = np.fromiter((p.last for p in index.passages), dtype=np.int64, count=count)
    members = expand_ranges(passage_first, passage_last)
    owners = np.repeat(np.arange(count), np.maximum(passage_last - passage_first + 1, 0))
    last_passage = np.full(n, -1, dtype=np.int64)
    np.maximum.at(last_passage, members, owners)
    # ``sentence_passage`` already holds each sentence's first passage (0 for none: mark -1)
    first_passage = np.where(last_passage < 0, -1, index.sentence_passage).astype(np.int64)
    span = int((last_passage - first_passage).max()) + 1 if n else 1
    centre = index.sentence_vectors.mean(axis=0) if n else np.zeros(index.sentence_vectors.shape[1],
                                                                    dtype=np.float32)
    sample = np.sort(np.random.default_rng(0).choice(n, min(n, _SAMPLE_SIZE), replace=False))
    openings = np.flatnonzero(np.concatenate([[True], doc[1:] != doc[:-1]])) if n else ids
    tables = _Tables(prev, nxt, first_passage, last_passage, passage_first, passage_last, max(span, 1),
                     _SentenceFacts(index), centre.astype(np.float32),
                     _offset_norms(index.sentence_vectors, centre),
                     _offset_norms(index.passage_vectors, centre), sample, openings)
    _TABLES[index] = tables
    return tables


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    return (matrix / np.maximum(norms, 1e-6)).astype(np.float32)


def _max_normalise(values: np.ndarray) -> np.ndarray:
    top = float(values.max()) if values.size else 0.0
    return values / top if top > 0 else np.zeros_like(values)


def _reciprocal_rank(values: np.ndarray, k: float = 10.0, outside: np.ndarray | None = None,
                     outside_count: int = 0) -> np.ndarray:
    """RRF-style ``k / (k + rank)`` (1 for the best): a rank transform robust to outliers.

    ``values`` are ranked among themselves; when they are only part of the corpus, the
    ``outside_count`` sentences not among them are represented by the sample ``outside``
    of their scores: each value's rank grows by the estimated number of those above it.
    Why: ranks among candidates alone flatter a sentence (tenth of 300 candidates may be
    thousandth of the corpus), which over-weighted the neighbours of the best sentences.
    """
    ranks = np.empty(values.size, dtype=np.float32)
    ranks[np.argsort(-values, kind="stable")] = np.arange(values.size, dtype=np.float32)
    if outside is not None and outside.size and outside_count:
        above = outside.size - np.searchsorted(np.sort(outside), values, side="right")
        ranks += (above * (outside_count / outside.size)).astype(np.float32)
    return k / (k + ranks)


def _sigmoid(value: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, value))))


@dataclass(frozen=True)
class SentenceScores:
    """Per-sentence features, evidence and fused score for one question.

    Exposed so the benchmark can fit the weights on cached features instead of
    re-running the whole ranking for every trial.

    Attributes:
        features: ``(len(ids), len(FEATURES))``.
        fused: ``features @ weights.vector()``.
        evidence: ``(len(ids), len(EVIDENCE))`` inputs of the abstention model.
        ids: The sentence id of each row, ascending: every sentence of the corpus
            (``arange``) unless the corpus is big enough to rank candidates only.
        confidence: Set by the second stage (``qa.rerank``): each row's probability that
            it is the right answer, used instead of the abstention model on ``evidence``.
        phrases: Set by the second stage: the reader's answer span (offsets into the
            sentence) of the rows it is sure of; the other rows get no phrase.
        threshold: Set by the second stage: its own confidence threshold.
    """

    features: np.ndarray
    fused: np.ndarray
    evidence: np.ndarray
    ids: np.ndarray
    confidence: np.ndarray | None = None
    phrases: dict[int, tuple[int, int]] | None = None
    threshold: float | None = None


def _max_over_passages(values: np.ndarray, first: np.ndarray, last: np.ndarray, span: int,
                       position: Callable[[np.ndarray], np.ndarray], floor: float) -> np.ndarray:
    """For each sentence, the largest value of a passage containing it (``floor`` if none).

    ``values[position(p)]`` is passage ``p``'s value; a sentence's passages are the
    contiguous ids ``first..last``, at most ``span`` of them.
    """
    best = np.full(first.size, floor, dtype=np.float32)
    for step in range(span):
        passage = first + step
        inside = (first >= 0) & (passage <= last)
        if not inside.any():
            break
        best[inside] = np.maximum(best[inside], values[position(passage[inside])])
    return best


def _standardise(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``values`` in units of ``reference``'s spread around its mean (zeros when flat)."""
    spread = float(reference.std()) if reference.size else 0.0
    return (values - float(reference.mean())) / spread if spread > 1e-6 else np.zeros_like(values)


def score_sentences(index: CorpusIndex, question: str, question_vector: np.ndarray,
                    weights: RankingWeights, question_tokens: np.ndarray | None = None,
                    full_ranking_max: int = FULL_RANKING_MAX_SENTENCES,
                    pool: CandidatePool = DEFAULT_POOL) -> SentenceScores:
    """Features and fused scores of the sentences one question is ranked over.

    Every sentence when the corpus has at most ``full_ranking_max`` sentences; otherwise
    the candidates of ``qa.candidates.candidate_sentences``, with corpus-wide statistics
    (the z-scores' mean and spread) estimated on a fixed sample of sentences and ranks
    taken among the candidates and their neighbours.

    ``question_tokens`` (the question's token vectors) enables the late-interaction
    columns when the index stores sentence token vectors; otherwise they stay zero.
    """
    tables = _tables(index)
    n = len(index.sentences)
    vector = np.asarray(question_vector, dtype=np.float32)

    # Lexical evidence, one sparse BM25 lookup per distinct question word: the per-word
    # scores give both the BM25 sum and which sentences contain which words.
    words = list(dict.fromkeys(tokenize([question])[0]))
    bm25_all = np.zeros(n, dtype=np.float32)
    found: list[tuple[float, np.ndarray]] = []  # (idf, sentences containing the word)
    idf_total = 0.0
    corpus_coverage = 0.0
    for word in words:
        per_sentence = index.sentence_bm25.scores([word])
        present = per_sentence > 0
        frequency = int(present.sum())
        idf = math.log((n + 1) / (frequency + 0.5))  # unknown words weigh the most
        idf_total += idf
        if frequency:
            bm25_all += per_sentence
            found.append((idf, present))
            corpus_coverage += idf
    passage_bm25_all = _max_normalise(index.passage_bm25.scores(words)) if words else \
        np.zeros(len(index.passages), dtype=np.float32)

    full = n <= full_ranking_max
    if full:
        ids = np.arange(n)
        around = ids  # sentences whose scores the features read: ids and their neighbours
    else:
        ids = candidate_sentences(index, vector, bm25_all, passage_bm25_all, tables.first_passage,
                                  tables.last_passage, tables.passage_first, tables.passage_last, pool)
        around = np.unique(np.concatenate([ids, tables.prev[ids], tables.next[ids]]))

    def at(sentences: np.ndarray) -> np.ndarray:
        return sentences if full else np.searchsorted(around, sentences)

    prev, nxt = tables.prev[ids], tables.next[ids]
    here, before, after = at(ids), at(prev), at(nxt)
    has_prev, has_next = prev != ids, nxt != ids

    coverage = np.zeros(ids.size, dtype=np.float32)
    left = np.zeros(ids.size, dtype=np.float32)  # words in the sentence or the one before it
    right = np.zeros(ids.size, dtype=np.float32)  # ... or the one after it
    matched = np.zeros(ids.size, dtype=np.float32)
    for idf, present in found:
        in_sentence = present[ids]
        coverage += idf * in_sentence
        matched += in_sentence
        left += idf * (in_sentence | present[prev])
        right += idf * (in_sentence | present[nxt])
    if idf_total > 0:
        coverage /= idf_total
        left /= idf_total
        right /= idf_total
        corpus_coverage /= idf_total

    # Dense evidence: one product with the rows read (all, or the candidates' neighbourhood),
    # plus the same rows against the question with the corpus' shared topic removed
    # (spreads apart sentences that all look alike to the question).
    centred_question = _unit_rows(vector - tables.centre)
    centre_offset = float(tables.centre @ centred_question)
    rows = index.sentence_vectors if full else index.sentence_vectors[around]
    dense_around = rows @ vector
    dense = dense_around[here]
    centred_dense = ((rows @ centred_question)[here] - centre_offset) / tables.sentence_offset[ids]
    first, last = tables.first_passage[ids], tables.last_passage[ids]
    if full:
        passage_rows = index.passage_vectors
        passage_ids = np.arange(len(index.passages))
    else:
        inside = first >= 0
        passage_ids = np.unique(expand_ranges(first[inside], last[inside]))
        passage_rows = index.passage_vectors[passage_ids]

    def passage_at(passages: np.ndarray) -> np.ndarray:
        return passages if full else np.searchsorted(passage_ids, passages)

    passage_scores = passage_rows @ vector
    centred_passage_scores = (passage_rows @ centred_question - centre_offset) \
        / tables.passage_offset[passage_ids]
    passage_dense = _max_over_passages(passage_scores, first, last, tables.span, passage_at, -1.0)
    centred_passage = _max_over_passages(centred_passage_scores, first, last, tables.span, passage_at, -1.0)
    passage_bm25 = _max_over_passages(passage_bm25_all, first, last, tables.span, lambda p: p, 0.0)
    bm25 = bm25_all[ids]
    bm25_share_around = _max_normalise(bm25_all)[around]

    # Corpus-wide means and spreads: exact over every sentence, or estimated on a fixed
    # sample when only candidates are scored (candidates are the best, so their own
    # spread would flatten the z-scores).
    if full:
        dense_reference, passage_reference = dense, passage_dense
        dense_rank = _reciprocal_rank(dense_around)
        bm25_rank = _reciprocal_rank(bm25_all)
    else:
        sample, rows_of = tables.sample, _sample_rows(index, tables)
        dense_reference = rows_of.sentences @ vector
        passage_reference = _max_over_passages(
            rows_of.passages @ vector, rows_of.first, rows_of.last, tables.span,
            lambda p: np.searchsorted(rows_of.passage_ids, p), -1.0)
        outside = ~np.isin(sample, around)
        dense_rank = _reciprocal_rank(dense_around, outside=dense_reference[outside],
                                      outside_count=n - around.size)
        bm25_rank = _reciprocal_rank(bm25_all[around], outside=bm25_all[sample[outside]],
                                     outside_count=n - around.size)

    types, log_length, word_counts = tables.facts.rows(ids)
    cues = np.zeros((ids.size, len(TYPED)), dtype=np.float32)
    asked = question_type(question)
    if asked in TYPED:
        column = TYPED.index(asked)
        cues[:, column] = types[:, column]

    # A sentence with no neighbour on one side borrows its own score there (no penalty
    # for opening or closing a paragraph).
    features = np.column_stack([
        dense, _standardise(dense, dense_reference), passage_dense, dense_around[before],
        dense_around[after],
        bm25_share_around[here], passage_bm25, bm25_share_around[before], bm25_share_around[after],
        coverage, left, right, log_length,
        np.log1p(np.maximum(word_counts - matched, 0.0)),
        _standardise(passage_dense, passage_reference), _standardise(bm25, bm25_all),
        dense_rank[here], bm25_rank[here],
        np.where(has_prev, dense_rank[before], 0.0),
        np.where(has_next, dense_rank[after], 0.0), ~has_prev,
        centred_dense, centred_passage, cues,
        np.zeros((ids.size, len(LATE_FEATURES)), dtype=np.float32),
    ]).astype(np.float32)
    _add_late_features(index, features, ids, weights, question, question_tokens)

    def constant(value: float) -> np.ndarray:
        return np.full(ids.size, value, dtype=np.float32)

    # Abstention evidence: how well this sentence matches, and how much the corpus as a
    # whole is about the question (its words known here; its vector near the corpus'
    # centre; one sentence standing out from the rest).
    evidence = np.column_stack([
        dense, passage_dense, coverage, constant(corpus_coverage), constant(0.0),
        constant(float(vector @ tables.centre)), features[:, FEATURES.index("sentence_dense_z")],
        constant(float(coverage.max()) if coverage.size else 0.0), np.log1p(bm25),
        features[:, FEATURES.index("maxsim")],
    ]).astype(np.float32)
    return rescore(SentenceScores(features, features[:, 0], evidence, ids), weights)


def rescore(scores: SentenceScores, weights: RankingWeights) -> SentenceScores:
    """The same sentences' fused score and margin under other weights (features reused).

    Why: fitting tries many weight settings; the features do not depend on them.
    """
    fused = (scores.features @ weights.vector()).astype(np.float32)
    evidence = scores.evidence.copy()
    if fused.size:
        order = np.argsort(-fused)
        runner_up = np.full(fused.size, fused[order[0]], dtype=np.float32)
        if fused.size > 1:
            runner_up[order[0]] = fused[order[1]]
        evidence[:, EVIDENCE.index("margin")] = fused - runner_up
    return SentenceScores(scores.features, fused, evidence, scores.ids)


def confidences(evidence: np.ndarray, weights: RankingWeights) -> np.ndarray:
    """Calibrated probability that each sentence answers the question (logistic model)."""
    logits = weights.a_bias + evidence.astype(np.float64) @ weights.abstention_vector()
    return 1.0 / (1.0 + np.exp(-np.clip(logits, -50.0, 50.0)))


def late_interaction(index: CorpusIndex, question_tokens: np.ndarray | None,
                     candidates: np.ndarray) -> np.ndarray | None:
    """MaxSim of the question's token vectors over each candidate sentence's, or None.

    Vectorised: one matrix product of the candidates' token rows (gathered from the flat
    float16 table via the offsets) with the question's tokens, then a segmented max per
    sentence (``np.maximum.reduceat``) and the mean over question tokens.  The ranking
    scores these and ``context_interaction``'s rows in one such product
    (``_add_late_features``).

    Args:
        index: The corpus index (``sentence_tokens`` may be None: late interaction off).
        question_tokens: ``(q, dim)`` normalised token vectors of the question, or None.
        candidates: Sentence ids to score.
    """
    table = _token_table(index, question_tokens, candidates)
    if table is None:
        return None
    tokens, offsets, question = table
    return _maxsim(index, tokens, question, *_own_rows(index, offsets, candidates))


def _token_table(index: CorpusIndex, question_tokens: np.ndarray | None,
                 candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The token table, its offsets and the question's tokens, or None: nothing to score."""
    tokens, offsets = index.sentence_tokens, index.sentence_token_offsets
    if tokens is None or offsets is None or question_tokens is None or len(question_tokens) == 0 \
            or candidates.size == 0:
        return None
    return tokens, offsets, question_tokens


def _own_rows(index: CorpusIndex, offsets: np.ndarray, candidates: np.ndarray) -> tuple[np.ndarray, ...]:
    """Row ranges (starts, ends) of the candidates' own token rows."""
    return offsets[candidates], _own_ends(index)[candidates]


def _pair_rows(index: CorpusIndex, offsets: np.ndarray, candidates: np.ndarray) -> tuple[np.ndarray, ...]:
    """Row ranges of the candidates read in context (their own rows where they have none)."""
    own_end = _own_ends(index)[candidates]
    block_end = offsets[candidates + 1]
    has_pair = block_end > own_end + 1
    return np.where(has_pair, own_end + 1, offsets[candidates]), np.where(has_pair, block_end, own_end)


def context_interaction(index: CorpusIndex, question_tokens: np.ndarray | None,
                        candidates: np.ndarray) -> np.ndarray | None:
    """MaxSim over each candidate read with the sentence before it (``index.context``), or None.

    A sentence that opens its paragraph (or an index without context rows) is scored on its
    own rows: read alone, its text is the pair's.
    """
    table = _token_table(index, question_tokens, candidates)
    if table is None:
        return None
    tokens, offsets, question = table
    return _maxsim(index, tokens, question, *_pair_rows(index, offsets, candidates))


_OWN_ENDS: weakref.WeakKeyDictionary[CorpusIndex, tuple[np.ndarray, bool]] = weakref.WeakKeyDictionary()


def _own_layout(index: CorpusIndex) -> tuple[np.ndarray, bool]:
    """Where each sentence's own token rows end (``index.context.own_ends``), and whether any
    sentence has context rows after them: both once per index, not per question."""
    cached = _OWN_ENDS.get(index)
    if cached is None:
        offsets = index.sentence_token_offsets
        assert offsets is not None
        ends = own_ends(index.sentence_tokens, offsets)
        cached = (ends, bool((ends < offsets[1:]).any()))
        _OWN_ENDS[index] = cached
    return cached


def _own_ends(index: CorpusIndex) -> np.ndarray:
    """Where each sentence's own token rows end, once per index."""
    return _own_layout(index)[0]


def has_context_rows(index: CorpusIndex) -> bool:
    """Whether any sentence of the index has in-context token rows (format 3)."""
    return index.sentence_tokens is not None and index.sentence_token_offsets is not None and \
        _own_layout(index)[1]


def _maxsim(index: CorpusIndex, tokens: np.ndarray, question_tokens: np.ndarray,
            starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Mean over question tokens of the best cosine within rows ``starts[i]:ends[i]``."""
    lengths = ends - starts
    question = np.asarray(question_tokens, dtype=np.float32).T
    table = _float32_tokens(index, tokens)
    if isinstance(table, np.ndarray) and table.dtype == np.float32 and 2 * int(lengths.sum()) >= len(table):
        # Most of a small table is asked for (a short corpus: every sentence is a candidate):
        # one product over the whole table, no gathered copy; ``reduceat`` over the pairs
        # (start, end) reduces each range (a zero row after the table keeps ``end`` in range).
        similarities = np.vstack([token_similarities(table, question),
                                  np.zeros((1, question.shape[1]), np.float32)])
        bounds = np.column_stack([starts, ends]).reshape(-1)
        return np.maximum.reduceat(similarities, bounds, axis=0)[::2].mean(axis=1, dtype=np.float32)
    firsts = np.cumsum(lengths) - lengths
    rows = np.repeat(starts - firsts, lengths) + np.arange(int(lengths.sum()))
    gathered = _float32_tokens(index, tokens)[rows]
    if gathered.dtype != np.float32:
        gathered = gathered.astype(np.float32)
    # One matrix product, rows x question tokens (``token_similarities``).
    similarities = token_similarities(gathered, question)
    return np.maximum.reduceat(similarities, firsts, axis=0).mean(axis=1, dtype=np.float32)


#: Keep a float32 copy of the token table when it is at most this big (bytes): converting
#: float16 on every question costs ~2 ms per 1,000 tokens, the copy only memory.
_FLOAT32_COPY_MAX_BYTES = 64 << 20
_FLOAT32_TOKENS: weakref.WeakKeyDictionary[CorpusIndex, np.ndarray] = weakref.WeakKeyDictionary()


def _float32_tokens(index: CorpusIndex, tokens: np.ndarray) -> np.ndarray:
    """The token table as float32 if small enough to keep a copy, else as stored (float16)."""
    cached = _FLOAT32_TOKENS.get(index)
    if cached is not None:
        return cached
    if tokens.size * 4 > _FLOAT32_COPY_MAX_BYTES:
        return tokens
    copy = tokens.astype(np.float32)
    _FLOAT32_TOKENS[index] = copy
    return copy


def _add_late_features(index: CorpusIndex, features: np.ndarray, ids: np.ndarray, weights: RankingWeights,
                       question_text: str, question_tokens: np.ndarray | None) -> None:
    """Fill the ``LATE_FEATURES`` columns in place (left at zero when unavailable)."""
    base = features @ weights.vector()
    candidates = np.argsort(-base, kind="stable")[:LATE_CANDIDATES]
    table = _token_table(index, question_tokens, candidates)
    if table is None:
        return
    tokens, offsets, question = table
    starts, ends = _own_rows(index, offsets, ids[candidates])
    best = candidates[:PAIR_CANDIDATES] if has_context_rows(index) else candidates[:0]
    if best.size:  # both readings in one gather and one matrix product
        pair_starts, pair_ends = _pair_rows(index, offsets, ids[best])
        starts, ends = np.concatenate([starts, pair_starts]), np.concatenate([ends, pair_ends])
    values = _maxsim(index, tokens, question, starts, ends)
    _fill(features, FEATURES.index("maxsim"), candidates, values[:candidates.size])
    if best.size:
        _fill(features, FEATURES.index("pair_maxsim"), best, values[candidates.size:])
        _add_typed(index, features, ids, best, question_text)


def _add_typed(index: CorpusIndex, features: np.ndarray, ids: np.ndarray, best: np.ndarray,
               question: str) -> None:
    """Fill ``typed_pair_z`` for the in-context candidates ``best`` (rows of ``features``).

    Why an interaction with the in-context MaxSim and not a flag of its own: the sentence
    after the one that names the question's subject often holds the answer ("From 1996 to
    March 2000, this project was completed."); read with its predecessor it matches the
    question, and holding the asked kind of thing tells it from the predecessor, which only
    names the subject.  A flag alone rewards every date of the corpus; the SQuAD fit gives it
    next to no weight.  Only the in-context candidates are looked at (the spans are cached per
    sentence; the rest keep 0).
    """
    kind = phrase_type(question)
    if kind not in EVIDENCE_TYPES:
        return
    assert kind is not None
    asked = question_stems(question)
    holds = np.array([holds_asked(question, kind, asked, spans)
                      for spans in _tables(index).facts.typed_spans(ids[best], kind)], dtype=bool)
    rows = best[holds]
    features[rows, FEATURES.index("typed_pair_z")] = features[rows, FEATURES.index("pair_maxsim_z")]


def _fill(features: np.ndarray, column: int, candidates: np.ndarray, values: np.ndarray) -> None:
    """A score and its z-score over the candidates; the rest get the candidates' lowest."""
    features[:, column] = float(values.min())
    features[candidates, column] = values
    spread = float(values.std())
    z = (values - float(values.mean())) / spread if spread > 1e-6 else np.zeros_like(values)
    features[:, column + 1] = float(z.min())
    features[candidates, column + 1] = z


def has_late_interaction(index: CorpusIndex, question_tokens: np.ndarray | None) -> bool:
    """Whether the MaxSim feature can be computed (index and question token vectors)."""
    return index.sentence_tokens is not None and question_tokens is not None


#: A second stage over one question's scores (``qa.rerank``): (question, scores, weights) -> scores.
Rescorer = Callable[[str, SentenceScores, RankingWeights], SentenceScores]


def rank(index: CorpusIndex, question: str, question_vector: np.ndarray, top_k: int,
         weights: RankingWeights, question_tokens: np.ndarray | None = None,
         full_ranking_max: int = FULL_RANKING_MAX_SENTENCES, keep_highlights: bool = False,
         rescorer: Rescorer | None = None) -> Answer:
    """Build the ``Answer`` for one question from its (normalised) vector.

    Args:
        index: The corpus index.
        question: The cleaned question text.
        question_vector: Its normalised embedding.
        top_k: How many passages to return.
        weights: Fusion and abstention parameters.  The shipped defaults were fitted with
            the late-interaction feature; when it is unavailable (big corpus, old index,
            encoder without token vectors) ``WITHOUT_LATE_INTERACTION`` replaces them, the
            model fitted without it.
        question_tokens: The question's normalised token vectors (late interaction).
        full_ranking_max: Corpora with more sentences rank candidates only (see
            ``qa.candidates``).
        keep_highlights: For measuring the ranking apart from abstention only (see
            ``answer_from_scores``); every user-facing surface leaves it False.
        rescorer: The second stage (the trained reranker, ``qa.rerank``), or None. It is
            skipped for questions about the document itself and in another language,
            whose answers do not come from ranking sentences.
    """
    if weights == RankingWeights():
        if not has_late_interaction(index, question_tokens):
            weights = WITHOUT_LATE_INTERACTION
        elif not has_context_rows(index):
            weights = WITHOUT_CONTEXT_ROWS
    scores = score_sentences(index, question, question_vector, weights, question_tokens, full_ranking_max)
    if rescorer is not None and notice_for(question) is None and not asks_about_document(question):
        scores = rescorer(question, scores, weights)
    return answer_from_scores(index, question, scores, top_k, weights, keep_highlights)


def answer_from_scores(index: CorpusIndex, question: str, scores: SentenceScores, top_k: int,
                       weights: RankingWeights, keep_highlights: bool = False) -> Answer:
    """Turn sentence scores into passages, highlights and the (possibly withheld) answer.

    Of the passages around each of the best sentences, the one with the most softmax mass
    (the sum of its sentences' probabilities of holding the answer) is shown.  Why: of the
    windows around the best sentence, the one that also holds the runner-up (often the
    restatement next to the answer, or the answer next to it) is the one most likely to
    show the user the answer, and gets its neighbour highlighted too.

    When the answer is withheld (``answer`` None: low confidence, or a question in another
    language), the passages keep their order but carry no highlights and there is no
    phrase: every surface then says the same thing, "these are only the closest passages",
    instead of marking a sentence it does not assert.  ``keep_highlights=True`` keeps the
    ranking's highlights on a withheld answer; the benchmark uses it so sent@1 measures
    the ranking apart from abstention (``qa.evaluation``).
    """
    tables = _tables(index)
    ids, fused = scores.ids, scores.fused
    if fused.size == 0:
        return Answer(question, None, 0.0, ())
    order = np.argsort(-fused, kind="stable")
    probability = np.exp(fused.astype(np.float64) - float(fused.max()))

    every_sentence = ids.size == len(index.sentences)  # then row i is sentence i

    def scored_rows(passage: int) -> np.ndarray:
        """Rows of ``scores`` for the passage's sentences (those that were scored)."""
        members = np.arange(tables.passage_first[passage], tables.passage_last[passage] + 1)
        if every_sentence:
            return members
        rows = np.minimum(np.searchsorted(ids, members), ids.size - 1)
        return rows[ids[rows] == members]

    chosen: list[int] = []
    drivers: list[int] = []  # rows of ``scores``
    covered = np.zeros(ids.size, dtype=bool)
    for row in order:
        if len(chosen) >= top_k:
            break
        row = int(row)
        if covered[row]:
            continue  # already inside a returned passage: no near-duplicate passages
        sentence = int(ids[row])
        first, last = int(tables.first_passage[sentence]), int(tables.last_passage[sentence])
        if first < 0:
            continue
        masses = [float(probability[scored_rows(p)].sum()) for p in range(first, last + 1)]
        passage = first + int(np.argmax(masses))
        chosen.append(passage)
        drivers.append(row)
        covered[scored_rows(passage)] = True
    if not chosen:
        return Answer(question, None, 0.0, ())
    if asks_about_document(question) and notice_for(question) is None:
        return _about_document(index, question, tables, chosen, top_k, keep_highlights)
    if scores.confidence is not None:
        confidence = scores.confidence[drivers]
    else:
        confidence = confidences(scores.evidence[drivers], weights)
    # The fused ranking orders the passages (it is the better ranker); the displayed score
    # is the calibrated confidence capped by the passage above, so a list never shows a
    # lower-ranked passage with a higher score than the one before it.
    shown_scores = np.minimum.accumulate(confidence)
    passages = []
    for passage_id, driver, score in zip(chosen, drivers, shown_scores, strict=True):
        spans = [driver] + [
            row for row in scored_rows(passage_id).tolist()
            if row != driver and fused[row] >= fused[driver] - weights.highlight_margin
        ]
        passages.append(_passage(index, passage_id, float(score), [int(ids[row]) for row in spans]))
    best_confidence = float(confidence[0])
    notice = notice_for(question)
    threshold = weights.threshold if scores.threshold is None else scores.threshold
    if notice is not None or best_confidence < threshold:
        # Another language: the model reads it poorly, so no answer is asserted, but the
        # closest passages (often right: names and digits carry over) stay shown, unmarked.
        shown = passages if keep_highlights else [replace(p, highlights=()) for p in passages]
        return Answer(question, None, best_confidence, tuple(shown), notice=notice)
    answer = index.sentence_text(int(ids[drivers[0]]))
    phrase, phrase_span = None, None
    if scores.phrases is not None:
        read = scores.phrases.get(drivers[0])
        found = None if read is None else Span(*read)
    else:
        found = find_phrase(question, answer)
    if found is not None:
        offset = passages[0].highlights[0].start
        phrase = answer[found.start:found.end]
        phrase_span = Span(offset + found.start, offset + found.end)
    return Answer(question, answer, best_confidence, tuple(passages), phrase, phrase_span)


def _passage(index: CorpusIndex, passage_id: int, score: float, highlighted: list[int]) -> Passage:
    """One shown passage, with the given sentences (ids) highlighted."""
    record = index.passages[passage_id]
    return Passage(
        text=index.passage_text(passage_id),
        source=index.documents[record.doc].source,
        start=record.start,
        end=record.end,
        score=score,
        highlights=tuple(Span(index.sentences[s].start - record.start, index.sentences[s].end - record.start)
                         for s in highlighted),
        paragraph=record.paragraph + 1,
        page=index.documents[record.doc].page_of(record.start),
    )


def _opening_passages(tables: _Tables, opening: int, count: int) -> list[int]:
    """Up to ``count`` passages from a document's start, each beginning after the last ends."""
    first = int(tables.first_passage[opening])
    if first < 0:
        return []
    doc_end = int(np.searchsorted(tables.openings, opening, side="right"))
    stop = int(tables.openings[doc_end]) if doc_end < tables.openings.size else tables.first_passage.size
    found = [first]
    for passage in range(first + 1, tables.passage_first.size):
        if len(found) >= count or tables.passage_first[passage] >= stop:
            break
        if tables.passage_first[passage] > tables.passage_last[found[-1]]:
            found.append(passage)
    return found


def _about_document(index: CorpusIndex, question: str, tables: _Tables, chosen: list[int], top_k: int,
                    keep_highlights: bool) -> Answer:
    """The answer to a question about the document itself (``qa.about``).

    One document with a title line: the title is the answer (confidence 1: it answers by
    construction), shown in its passage, followed by the passages that open the document.
    No title line, or several documents: no answer, a notice saying why, and how each
    document opens (the ranking's documents first), so the user can ask about one.
    """
    if tables.openings.size == 1:
        opening = int(tables.openings[0])
        shown = _opening_passages(tables, opening, top_k)
        if not shown:
            return Answer(question, None, 0.0, ())
        title = index.sentence_text(opening)
        if is_title(title, whole_paragraph=int(tables.next[opening]) == opening):
            passages = [_passage(index, p, 1.0, [opening] if number == 0 else [])
                        for number, p in enumerate(shown)]
            return Answer(question, title.strip(), 1.0, tuple(passages))
        passages = [_passage(index, p, 0.0, [opening] if number == 0 and keep_highlights else [])
                    for number, p in enumerate(shown)]
        return Answer(question, None, 0.0, tuple(passages), notice=NO_TITLE_NOTICE)
    docs = list(dict.fromkeys(index.passages[p].doc for p in chosen))
    doc_of_opening = {index.sentences[int(s)].doc: int(s) for s in tables.openings}
    docs += [d for d in doc_of_opening if d not in docs]
    passages = []
    for doc in docs[:top_k]:
        shown = _opening_passages(tables, doc_of_opening[doc], 1)
        if shown:
            passages.append(_passage(index, shown[0], 0.0, [doc_of_opening[doc]] if keep_highlights else []))
    return Answer(question, None, 0.0, tuple(passages),
                  notice=MANY_NOTICE.format(count=tables.openings.size))


#: The model fitted without the late-interaction feature (cross-validated SQuAD sent@1
#: 0.795): used when token vectors are unavailable, so big corpora rank exactly as before.
WITHOUT_LATE_INTERACTION = RankingWeights(
    w_sentence_dense=0.09924, w_sentence_dense_z=0.4514, w_passage_dense=0.1212,
    w_previous_dense=0.06853, w_next_dense=0.0532, w_sentence_bm25=0.2488,
    w_passage_bm25=0.8325, w_previous_bm25=0.3577, w_next_bm25=0.2305, w_coverage=0.425,
    w_left_coverage=0.6484, w_right_coverage=0.3189, w_length=0.2799, w_novel_words=0.2702,
    w_passage_dense_z=1.046, w_sentence_bm25_z=0.4822, w_dense_rank=0.6305,
    w_bm25_rank=0.2831, w_previous_rank=0.3719, w_next_rank=-0.3697,
    w_paragraph_start=-0.3161, w_centred_dense=0.4762, w_centred_passage=0.2769,
    w_cue_date=0.2607, w_cue_number=0.1992, w_cue_person=0.3036, w_cue_place=0.2076,
    w_maxsim=0.0, w_maxsim_z=0.0, w_pair_maxsim=0.0, w_pair_maxsim_z=0.0, w_typed_pair_z=0.0,
    highlight_margin=0.69,
    a_bias=-4.181, a_dense=5.756,
    a_passage_dense=5.22, a_coverage=0.0, a_corpus_coverage=0.0, a_margin=0.0, a_topic=2.571,
    a_dense_z=0.0, a_best_coverage=0.0, a_bm25=0.0, a_maxsim=0.0, threshold=0.3229,
)


#: The model fitted with token vectors but without the in-context columns (the shipped
#: defaults of 2026-11-30, CV SQuAD sent@1 0.822): used for an index of format 2 (no
#: context rows), so an index built before format 3 ranks exactly as it did.
WITHOUT_CONTEXT_ROWS = RankingWeights(
    w_sentence_dense=-0.0004516, w_sentence_dense_z=-0.4032, w_passage_dense=0.1236,
    w_previous_dense=0.09204, w_next_dense=0.05841, w_sentence_bm25=0.2387, w_passage_bm25=0.7934,
    w_previous_bm25=0.3235, w_next_bm25=0.3026, w_coverage=0.2959, w_left_coverage=0.5031,
    w_right_coverage=0.2648, w_length=0.0611, w_novel_words=0.01795, w_passage_dense_z=1.025,
    w_sentence_bm25_z=0.2923, w_dense_rank=0.3923, w_bm25_rank=0.2951, w_previous_rank=0.4181,
    w_next_rank=-0.3283, w_paragraph_start=-0.2674, w_centred_dense=0.3271,
    w_centred_passage=0.2744, w_cue_date=0.2025, w_cue_number=0.1478, w_cue_person=0.2209,
    w_cue_place=0.1481, w_maxsim=0.1962, w_maxsim_z=1.173, w_pair_maxsim=0.0, w_pair_maxsim_z=0.0,
    w_typed_pair_z=0.0, highlight_margin=0.69, a_bias=-5.285, a_dense=4.517, a_passage_dense=4.215,
    a_coverage=0, a_corpus_coverage=0, a_margin=0, a_topic=2.114, a_dense_z=0, a_best_coverage=0, a_bm25=0,
    a_maxsim=4.268, threshold=0.3836,
)
