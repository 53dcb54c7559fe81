"""Hybrid retrieval and sentence ranking: from one question vector to an ``Answer``.

How a question is scored (all on precomputed index data; the only model call is the
question's embedding, made by the caller):

1. Candidates: the top passages by dense similarity and by BM25, plus the top sentences
   by each, so recall does not hinge on one retriever.
2. Every candidate sentence gets features: its own dense similarity and BM25 score, the
   best dense/BM25 score of a passage containing it (context), its best neighbour's dense
   similarity, and an answer-type cue.  A weighted sum fuses them (weights fitted across
   articles by ``bench/quality.py``; see ``RankingWeights``).
3. The best sentences drive the passages: each returned passage is the best passage
   around one of the top sentences, so the top-k passages are diverse, not overlapping
   copies of one answer.
4. A logistic confidence on the best sentence's raw scores decides abstention.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from index import CorpusIndex, tokenize
from index.vectors import search
from qa.cues import matches_type, question_type
from qa.types import Answer, Passage, Span


@dataclass(frozen=True)
class RankingWeights:
    """Weights of the fused sentence score and the abstention model.

    The defaults were fitted by cross-validation across the three SQuAD articles in
    ``bench/data`` (fit on two, test on the third); see ``bench/RESULTS.md``.
    """

    sentence_dense: float = 1.0
    passage_dense: float = 0.35
    neighbour_dense: float = 0.1
    sentence_bm25: float = 0.35
    passage_bm25: float = 0.1
    answer_type: float = 0.06
    highlight_margin: float = 0.08
    candidates: int = 100
    # Confidence = sigmoid(conf_scale * (fused-ish evidence - conf_bias)); abstain below threshold.
    conf_dense: float = 1.0
    conf_bm25: float = 0.0
    conf_bias: float = 0.3
    conf_scale: float = 12.0
    threshold: float = 0.5


def _normalise(values: np.ndarray) -> np.ndarray:
    top = float(values.max()) if values.size else 0.0
    return values / top if top > 0 else np.zeros_like(values)


def _sigmoid(value: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, value))))


@dataclass(frozen=True)
class SentenceScores:
    """Per-candidate-sentence features and fused score (exposed for the benchmark)."""

    ids: np.ndarray
    dense: np.ndarray
    bm25: np.ndarray
    fused: np.ndarray


def score_sentences(index: CorpusIndex, question: str, question_vector: np.ndarray,
                    weights: RankingWeights) -> SentenceScores:
    """Fused scores of the candidate sentences for one question."""
    tokens = tokenize([question])[0]
    n_sentences = len(index.sentences)
    wide = weights.candidates
    # Lexical scores over the whole tables (sparse, cheap); dense over the top candidates.
    sentence_bm25_all = index.sentence_bm25.scores(tokens)
    passage_bm25_all = index.passage_bm25.scores(tokens)
    if len(index.passages) <= wide:
        passage_ids = np.arange(len(index.passages))
    else:
        _, dense_ids = search(index.passage_index, question_vector, wide)
        lexical_ids = np.argpartition(-passage_bm25_all, wide)[:wide]
        passage_ids = np.union1d(dense_ids[dense_ids >= 0], lexical_ids)
    sentence_set: set[int] = set()
    for passage_id in passage_ids:
        record = index.passages[int(passage_id)]
        sentence_set.update(range(record.first, record.last + 1))
    if n_sentences > wide:
        _, dense_sentence_ids = search(index.sentence_index, question_vector, wide)
        sentence_set.update(int(i) for i in dense_sentence_ids if i >= 0)
        sentence_set.update(int(i) for i in np.argpartition(-sentence_bm25_all, wide)[:wide])
        for sentence_id in list(sentence_set):  # make sure each sentence's passage is scored
            passage_ids = np.union1d(passage_ids, [index.sentence_passage[sentence_id]])
    ids = np.array(sorted(sentence_set), dtype=np.int64)

    dense = index.sentence_vectors[ids] @ question_vector
    passage_dense_scores = index.passage_vectors[passage_ids] @ question_vector
    passage_bm25 = _normalise(passage_bm25_all[passage_ids])
    position = {int(s): i for i, s in enumerate(ids)}
    best_passage_dense = np.zeros(len(ids), dtype=np.float32)
    best_passage_bm25 = np.zeros(len(ids), dtype=np.float32)
    for p_index, passage_id in enumerate(passage_ids):
        record = index.passages[int(passage_id)]
        for sentence_id in range(record.first, record.last + 1):
            i = position.get(sentence_id)
            if i is not None:
                best_passage_dense[i] = max(best_passage_dense[i], passage_dense_scores[p_index])
                best_passage_bm25[i] = max(best_passage_bm25[i], passage_bm25[p_index])
    neighbour = np.zeros(len(ids), dtype=np.float32)
    for i, sentence_id in enumerate(ids):
        sentence = index.sentences[int(sentence_id)]
        for other in (int(sentence_id) - 1, int(sentence_id) + 1):
            j = position.get(other)
            if j is not None and index.sentences[other].doc == sentence.doc \
                    and index.sentences[other].paragraph == sentence.paragraph:
                neighbour[i] = max(neighbour[i], dense[j])
    answer_type = question_type(question)
    cue = np.array([matches_type(index.sentence_text(int(s)), answer_type) for s in ids],
                   dtype=np.float32)
    bm25 = sentence_bm25_all[ids]
    fused = (weights.sentence_dense * dense
             + weights.passage_dense * best_passage_dense
             + weights.neighbour_dense * neighbour
             + weights.sentence_bm25 * _normalise(bm25)
             + weights.passage_bm25 * best_passage_bm25
             + weights.answer_type * cue)
    return SentenceScores(ids, dense.astype(np.float32), bm25, fused.astype(np.float32))


def confidence(dense: float, bm25: float, weights: RankingWeights) -> float:
    """Calibrated probability-like score that a sentence answers the question."""
    evidence = weights.conf_dense * dense + weights.conf_bm25 * math.log1p(max(bm25, 0.0))
    return _sigmoid(weights.conf_scale * (evidence - weights.conf_bias))


def rank(index: CorpusIndex, question: str, question_vector: np.ndarray, top_k: int,
         weights: RankingWeights) -> Answer:
    """Build the ``Answer`` for one question from its (normalised) vector.

    Args:
        index: The corpus index.
        question: The cleaned question text.
        question_vector: Its normalised embedding.
        top_k: How many passages to return.
        weights: Fusion and abstention parameters.
    """
    scores = score_sentences(index, question, question_vector, weights)
    order = np.argsort(-scores.fused, kind="stable")
    chosen_passages: list[int] = []
    drivers: list[int] = []  # position (in ``scores``) of the sentence behind each passage
    for i in order:
        if len(chosen_passages) >= top_k:
            break
        sentence_id = int(scores.ids[i])
        passage_id = _best_passage_for(index, sentence_id, question_vector)
        if passage_id in chosen_passages or any(
            index.passages[p].first <= sentence_id <= index.passages[p].last for p in chosen_passages
        ):
            continue
        chosen_passages.append(passage_id)
        drivers.append(int(i))
    best = drivers[0] if drivers else None
    position = {int(s): i for i, s in enumerate(scores.ids)}
    passages = []
    for passage_id, driver in zip(chosen_passages, drivers, strict=False):
        record = index.passages[passage_id]
        text = index.passage_text(passage_id)
        spans = [driver]
        for sentence_id in range(record.first, record.last + 1):
            j = position.get(sentence_id)
            if j is not None and j != driver and \
                    scores.fused[j] >= scores.fused[driver] - weights.highlight_margin:
                spans.append(j)
        highlights = tuple(
            Span(index.sentences[int(scores.ids[j])].start - record.start,
                 index.sentences[int(scores.ids[j])].end - record.start)
            for j in spans
        )
        passages.append(Passage(
            text=text,
            source=index.documents[record.doc].source,
            start=record.start,
            end=record.end,
            score=confidence(float(scores.dense[driver]), float(scores.bm25[driver]), weights),
            highlights=highlights,
            paragraph=record.paragraph + 1,
        ))
    if best is None:
        return Answer(question, None, 0.0, ())
    best_confidence = confidence(float(scores.dense[best]), float(scores.bm25[best]), weights)
    answer = index.sentence_text(int(scores.ids[best])) if best_confidence >= weights.threshold else None
    return Answer(question, answer, best_confidence, tuple(passages))


def _best_passage_for(index: CorpusIndex, sentence_id: int, question_vector: np.ndarray) -> int:
    """Among the passages containing a sentence, the one most similar to the question."""
    first = int(index.sentence_passage[sentence_id])
    best, best_score = first, -2.0
    candidate = first
    while candidate < len(index.passages) and index.passages[candidate].first <= sentence_id:
        if index.passages[candidate].last >= sentence_id:
            similarity = float(index.passage_vectors[candidate] @ question_vector)
            if similarity > best_score:
                best, best_score = candidate, similarity
        candidate += 1
    return best
