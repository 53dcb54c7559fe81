"""The second stage: the trained reranker rescores the fast ranking's best few sentences.

Why two stages: the fast features (``qa.ranking``) rank every sentence in about 2 ms, and
they find the answering sentence among their best few almost always (hit@3 0.96 on the
paraphrased speech questions); what they miss is *which* of those few answers. The
cross-encoder (``index.reranker``) reads the question with each of them, at a few
milliseconds a pair, so only ``candidates`` of them are read.

How the two are combined (``RerankWeights``, fitted by ``bench/rerank_eval.py`` with
leave-one-article-out cross-validation across 15 articles the reranker never saw in
training; figures in ``bench/RESULTS.md``):

- the order: ``w_stage1 * (fused - best fused) + w_relevance * relevance``, a conditional
  logit over the candidates (so differences are log-odds, as the stage-1 score's are);
  the sentences not read stay below every candidate, in their stage-1 order;
- the confidence: a logistic model of "the shown answer is right" on the stage-1
  confidence's logit, the reranker's relevance of the shown sentence (trained against a
  fixed "none of these" logit of 0) and its margin over the runner-up; it is fitted on
  answerable *and* off-topic questions, so 0.9 means nine in ten such answers are right;
- the answer phrase: ``qa.phrase``'s rules on the shown sentence, which measured better
  than the reader's span head (``phrase_from_reader`` switches to the reader).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from index import CorpusIndex
from index.reranker import PairScorer
from qa.ranking import RankingWeights, SentenceScores, confidences


@dataclass(frozen=True)
class RerankWeights:
    """Parameters of the second stage (see the module docstring); fitted, not hand-set."""

    candidates: int = 5
    """Sentences read by the reranker per question: the stage-1 best this many (8 measured
    the same on every set but one paraphrase, at 1.6 times the pairs)."""
    w_stage1: float = 0.7382
    w_relevance: float = 0.3583
    c_bias: float = -2.319
    c_stage1: float = 0.544
    c_relevance: float = 0.2952
    c_margin: float = 0.5459
    threshold: float = 0.1138
    """Below this confidence the answer is withheld (the passages are still shown); fitted to
    answer at most 3% of the fit's off-topic questions (1% declined a third of the paraphrases)."""
    phrase_from_reader: bool = False
    """Whether the reader's span replaces ``qa.phrase``'s rules. Measured: the rules win on
    every set (SQuAD EM 0.515 against 0.483 at coverage 0.65 against 0.43; speech short
    answers 0.90 against 0.43), so the rules stay."""
    phrase_min: float = 0.15
    """The reader's span probability needed to show the phrase."""


@dataclass(frozen=True)
class RerankEvidence:
    """What the reranker said of one question's candidates (rows of the stage-1 scores)."""

    rows: np.ndarray
    relevance: np.ndarray
    spans: tuple[tuple[int, int] | None, ...]
    span_probability: np.ndarray
    stage1_confidence: np.ndarray


def _logit(p: np.ndarray) -> np.ndarray:
    clipped = np.clip(p.astype(np.float64), 1e-6, 1 - 1e-6)
    return np.log(clipped / (1 - clipped))


def read_candidates(index: CorpusIndex, question: str, scores: SentenceScores, weights: RankingWeights,
                    reranker: PairScorer, count: int) -> RerankEvidence:
    """Score the stage-1 best ``count`` sentences with the reranker (one batch)."""
    rows = np.argsort(-scores.fused, kind="stable")[:count]
    texts = [index.sentence_text(int(scores.ids[row])) for row in rows]
    result = reranker.score(question, texts)
    return RerankEvidence(rows, result.relevance, result.spans, result.span_probability,
                          confidences(scores.evidence[rows], weights))


def combine(scores: SentenceScores, evidence: RerankEvidence, weights: RerankWeights) -> SentenceScores:
    """The stage-1 scores with the candidates reordered, their confidence and phrases set.

    The candidates' fused score becomes the combined log-odds; every other sentence keeps
    its stage-1 order, one unit below the lowest candidate (so it can still be shown as a
    later passage, never ahead of a candidate).
    """
    rows = evidence.rows
    if rows.size == 0:
        return scores
    stage1 = scores.fused[rows].astype(np.float64)
    combined = weights.w_stage1 * (stage1 - stage1.max()) + weights.w_relevance * evidence.relevance
    fused = scores.fused.astype(np.float64).copy()
    others = np.ones(fused.size, dtype=bool)
    others[rows] = False
    if others.any():
        fused[others] = fused[others] - fused[others].max() + combined.min() - 1.0
    fused[rows] = combined
    # Each candidate's margin is over the best *other* candidate: the runner-up for the best.
    ranked = np.sort(combined)[::-1]
    second = ranked[1] if combined.size > 1 else ranked[0] - 10.0
    runner_up = np.where(np.arange(combined.size) == int(np.argmax(combined)), second, ranked[0])
    logit = (weights.c_bias + weights.c_stage1 * _logit(evidence.stage1_confidence)
             + weights.c_relevance * evidence.relevance + weights.c_margin * (combined - runner_up))
    confidence = np.zeros(fused.size, dtype=np.float64)
    confidence[rows] = 1.0 / (1.0 + np.exp(-np.clip(logit, -50.0, 50.0)))
    phrases: dict[int, tuple[int, int]] | None = None
    if weights.phrase_from_reader:
        phrases = {}
        for row, span, probability in zip(rows.tolist(), evidence.spans, evidence.span_probability,
                                          strict=True):
            if span is not None and probability >= weights.phrase_min:
                phrases[int(row)] = span
    return replace(scores, fused=fused.astype(np.float32), confidence=confidence, phrases=phrases,
                   threshold=weights.threshold)


def rerank(index: CorpusIndex, question: str, scores: SentenceScores, weights: RankingWeights,
           reranker: PairScorer, rerank_weights: RerankWeights) -> SentenceScores:
    """``combine(read_candidates(...))``: the second stage in one call."""
    evidence = read_candidates(index, question, scores, weights, reranker, rerank_weights.candidates)
    return combine(scores, evidence, rerank_weights)

