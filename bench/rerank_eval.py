"""The trained reranker's benchmark and fit (issue 18): every set with and without it, side by side.

Run from the repository root::

    .venv/bin/python bench/rerank_eval.py          # prints the report, rewrites its RESULTS.md section

What it does:

1. Builds each corpus as ``bench/quality.py`` does (one index per article): the three
   SQuAD 2.0 dev articles (``--squad``), XQuAD's 12 held-out articles (``--xquad``; the
   reranker never saw them: ``bench/train_reranker.py`` holds them out, and the three SQuAD
   articles too), and the bundled speech with its question sets. Off-topic questions:
   every other SQuAD article's questions (SQuAD), 20 questions of each other held-out
   article (XQuAD), every SQuAD question (the speech).
2. "Without the model" is today's ranking: on SQuAD its weights cross-validated across the
   three articles (as ``bench/quality.py``), elsewhere the shipped ``RankingWeights``.
3. "With the model" reranks that ranking's best ``candidates`` sentences. The second
   stage's parameters (``qa.rerank.RerankWeights``: the order's two weights, the
   confidence model, its threshold, the phrase's minimum probability) are fitted with
   leave-one-article-out cross-validation over the 15 SQuAD and XQuAD articles: every
   figure on those is from a fit that did not see its article. The speech's sets are never
   fitted on; they get the parameters fitted on all 15 articles, which are the shipped
   defaults (printed at the end).

The reranker's scores are cached on disk per model version (``bench/out/rerank``), so a
re-run costs the ranking's time only.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

sys.path.insert(0, str(Path(__file__).resolve().parent))

from embedcache import CachingEncoder
from fit import Group, fit_fusion
from quality import TOP_K, Article, fit_weights, squad_normalise, token_f1, write_section
from shared_data import SQUAD_3_ARTICLES, XQUAD_EN, require
from train_reranker import held_out_titles

from index import CorpusIndex, default_encoder
from index.reranker import Reranker, RerankResult
from ingest import ChunkingParams
from qa.evaluation import (
    EvalQuestion,
    EvalSet,
    contains_answer,
    evaluate,
    first_sentence,
    load_eval_file,
    summarise,
)
from qa.phrase import find_phrase
from qa.ranking import RankingWeights, SentenceScores, answer_from_scores, rescore
from qa.rerank import RerankEvidence, RerankWeights, combine, read_candidates
from qa.types import Answer

HERE = Path(__file__).resolve().parent
CACHE = HERE / "out" / "rerank"
MAX_CANDIDATES = 8
OFF_TOPIC_PER_ARTICLE = 20
SPEECH_SETS = (("speech's own questions", "speech_questions.json"),
               ("paraphrases (issue 12)", "speech_paraphrases.json"),
               ("paraphrases, new (issue 18)", "speech_paraphrases_2.json"),
               ("speech short answers", "speech_phrases.json"))


class CachedReranker:
    """The shipped reranker with its scores remembered on disk (benchmark speed only)."""

    def __init__(self, inner: Reranker) -> None:
        self.inner = inner
        self.version = inner.version
        self.file = CACHE / f"{self.version}.jsonl"
        self.file.parent.mkdir(parents=True, exist_ok=True)
        self.memory: dict[str, tuple[float, list[int] | None, float]] = {}
        if self.file.exists():
            for line in self.file.read_text(encoding="utf-8").splitlines():
                key, relevance, span, probability = json.loads(line)
                self.memory[key] = (relevance, span, probability)
        self.pairs_scored = 0
        self.seconds = 0.0

    @staticmethod
    def _key(question: str, sentence: str) -> str:
        return hashlib.sha256(f"{question}\x00{sentence}".encode()).hexdigest()[:32]

    def score(self, question: str, sentences: Sequence[str]) -> RerankResult:
        keys = [self._key(question, s) for s in sentences]
        missing = [i for i, k in enumerate(keys) if k not in self.memory]
        if missing:
            started = time.perf_counter()
            result = self.inner.score(question, [sentences[i] for i in missing])
            self.seconds += time.perf_counter() - started
            self.pairs_scored += len(missing)
            with self.file.open("a", encoding="utf-8") as out:
                for n, i in enumerate(missing):
                    span = result.spans[n]
                    value = (float(result.relevance[n]), list(span) if span else None,
                             float(result.span_probability[n]))
                    self.memory[keys[i]] = value
                    out.write(json.dumps([keys[i], *value]) + "\n")
        values = [self.memory[k] for k in keys]
        return RerankResult(np.array([v[0] for v in values], dtype=np.float32),
                            tuple(tuple(v[1]) if v[1] else None for v in values),  # type: ignore[misc]
                            np.array([v[2] for v in values], dtype=np.float32))


@dataclass
class Asked:
    """One question asked of one corpus, with both stages' evidence."""

    group: str  # the set it is reported in
    fold: str  # the article: the unit of cross-validation
    question: EvalQuestion
    text: str
    index: CorpusIndex
    weights: RankingWeights
    scores: SentenceScores
    evidence: RerankEvidence
    positive: np.ndarray  # per candidate row of ``evidence``

    def top(self, count: int) -> RerankEvidence:
        e = self.evidence
        return RerankEvidence(e.rows[:count], e.relevance[:count], e.spans[:count],
                              e.span_probability[:count], e.stage1_confidence[:count])


def ask_all(article: Article, group: str, weights: RankingWeights, reranker: CachedReranker,
            keep: Sequence[int] | None = None) -> list[Asked]:
    asked = []
    numbers = range(len(article.questions)) if keep is None else keep
    for number in numbers:
        question, text = article.questions[number], article.texts[number]
        scores = rescore(article.scores[number], weights)
        evidence = read_candidates(article.index, text, scores, weights, reranker, MAX_CANDIDATES)
        positive = np.array([question.answerable and contains_answer(
            article.index.sentence_text(int(scores.ids[row])), question.answers) for row in evidence.rows],
            dtype=bool)
        asked.append(Asked(group, article.name, question, text, article.index, weights, scores,
                           evidence, positive))
    return asked


# ------------------------------------------------------------------------------ the fit
def _logistic(x: np.ndarray, y: np.ndarray, sample: np.ndarray, l2: float = 0.01) -> np.ndarray:
    """Weighted logistic regression (bias first): a calibrated probability, not a ranking."""
    design = np.column_stack([np.ones(len(x)), x])
    sample = sample / sample.sum()

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = design @ w
        value = float(np.sum(sample * (np.logaddexp(0, z) - y * z))) + l2 * float(w[1:] @ w[1:])
        p = 1 / (1 + np.exp(-np.clip(z, -50, 50)))
        gradient = design.T @ (sample * (p - y))
        gradient[1:] += 2 * l2 * w[1:]
        return value, gradient

    return np.asarray(minimize(loss, np.zeros(design.shape[1]), jac=True, method="L-BFGS-B").x)


def _combined(asked: Asked, count: int, w_stage1: float, w_relevance: float) -> np.ndarray:
    e = asked.top(count)
    stage1 = asked.scores.fused[e.rows].astype(np.float64)
    return w_stage1 * (stage1 - stage1.max()) + w_relevance * e.relevance


def _phrase_gain(asked: Sequence[Asked], weights: RerankWeights, threshold: float) -> float:
    """Sum over shown phrases of (F1 - 0.5): a phrase more wrong than right costs."""
    total = 0.0
    for a in asked:
        if not a.question.answerable:
            continue
        e = a.top(weights.candidates)
        best = int(np.argmax(_combined(a, weights.candidates, weights.w_stage1, weights.w_relevance)))
        span = e.spans[best]
        if not a.positive[best] or span is None or e.span_probability[best] < threshold:
            continue
        sentence = a.index.sentence_text(int(a.scores.ids[e.rows[best]]))
        phrase = sentence[span[0]:span[1]]
        total += max(token_f1(phrase, g) for g in a.question.answers) - 0.5
    return total


def fit_rerank(asked: Sequence[Asked], count: int, max_off_topic_answered: float = 0.01) -> RerankWeights:
    """Second-stage parameters fitted on ``asked`` only (see the module docstring)."""
    groups = []
    for a in asked:
        positive = a.positive[:count]
        if positive.any():
            e = a.top(count)
            stage1 = a.scores.fused[e.rows].astype(np.float64)
            groups.append(Group(np.column_stack([stage1 - stage1.max(), e.relevance]), positive))
    w_stage1, w_relevance = fit_fusion(groups, l2=0.01)
    rows, labels, sample = [], [], []
    answerable = sum(a.question.answerable for a in asked)
    off_topic = max(len(asked) - answerable, 1)
    for a in asked:
        combined = _combined(a, count, w_stage1, w_relevance)
        e = a.top(count)
        best = int(np.argmax(combined))
        runner_up = float(np.max(np.delete(combined, best))) if combined.size > 1 else combined[best] - 10
        p = float(np.clip(e.stage1_confidence[best], 1e-6, 1 - 1e-6))
        rows.append([np.log(p / (1 - p)), e.relevance[best], combined[best] - runner_up])
        labels.append(float(a.question.answerable and a.positive[best]))
        # Answerable and off-topic questions weigh the same in total, whatever each set's mix.
        sample.append(1 / answerable if a.question.answerable else 1 / off_topic)
    c = _logistic(np.array(rows), np.array(labels), np.array(sample))
    weights = RerankWeights(candidates=count, w_stage1=float(w_stage1), w_relevance=float(w_relevance),
                            c_bias=float(c[0]), c_stage1=float(c[1]), c_relevance=float(c[2]),
                            c_margin=float(c[3]))
    confidence = 1 / (1 + np.exp(-(np.array(rows) @ c[1:] + c[0])))
    off = np.sort(confidence[[not a.question.answerable for a in asked]])
    allowed = int(np.floor(max_off_topic_answered * off.size))
    threshold = float(off[-allowed - 1]) + 1e-6 if off.size > allowed else 0.5
    candidates = [0.05 * k for k in range(1, 20)]
    phrase_min = max(candidates, key=lambda t: _phrase_gain(asked, weights, t))
    return replace(weights, threshold=min(threshold, 0.95), phrase_min=phrase_min, phrase_from_reader=True)


# ------------------------------------------------------------------------------ answers
def answer_without(a: Asked) -> Answer:
    return answer_from_scores(a.index, a.text, a.scores, TOP_K, a.weights, keep_highlights=True)


def answer_with(a: Asked, weights: RerankWeights) -> Answer:
    combined = combine(a.scores, a.top(weights.candidates), replace(weights, phrase_from_reader=True))
    return answer_from_scores(a.index, a.text, combined, TOP_K, a.weights, keep_highlights=True)


def answer_with_rule_phrase(a: Asked, weights: RerankWeights) -> Answer:
    """The reranked answer with ``qa.phrase``'s rules choosing the phrase (for comparison)."""
    answer = answer_with(a, weights)
    sentence = answer.answer if answer.answer is not None else None
    if sentence is None:
        return answer
    found = find_phrase(a.text, sentence)
    return replace(answer, phrase=None if found is None else sentence[found.start:found.end])


@dataclass(frozen=True)
class SetFigures:
    """One set's figures under one pipeline."""

    questions: int
    off_topic: int
    sent_at_1: float
    hit_at_3: float
    answerable_declined: float
    off_topic_declined: float
    sure: int  # answers shown with confidence >= 0.9
    sure_right: float
    unsure: int  # confidence <= 0.3
    unsure_right_to_decline: float


def figures(answers: Sequence[Answer], asked: Sequence[Asked]) -> SetFigures:
    questions = [a.question for a in asked]
    metrics = summarise(evaluate(answers, questions))
    right = [q.answerable and contains_answer(first_sentence(ans), q.answers)
             for ans, q in zip(answers, questions, strict=True)]
    sure = [r for ans, r in zip(answers, right, strict=True) if ans.confidence >= 0.9 and ans.answer]
    unsure = [not r for ans, r in zip(answers, right, strict=True) if ans.confidence <= 0.3]
    return SetFigures(metrics.answerable, metrics.off_topic, metrics.sent_at_1, metrics.hit_at_3,
                      metrics.answerable_declined, metrics.off_topic_declined,
                      len(sure), float(np.mean(sure)) if sure else float("nan"),
                      len(unsure), float(np.mean(unsure)) if unsure else float("nan"))


@dataclass(frozen=True)
class PhraseFigures:
    questions: int
    coverage: float
    exact: float
    f1: float


def phrase_figures(answers: Sequence[Answer], asked: Sequence[Asked],
                   gold: Sequence[Sequence[str]] | None = None) -> PhraseFigures:
    """Phrases of answerable questions' shown answers: share that got one, EM and F1 on those."""
    pairs = [(ans, gold[i] if gold is not None else a.question.answers)
             for i, (ans, a) in enumerate(zip(answers, asked, strict=True)) if a.question.answerable]
    shown = [(ans.phrase, g) for ans, g in pairs if ans.phrase is not None and ans.answer is not None]
    exact = [max(float(squad_normalise(p) == squad_normalise(x)) for x in g) for p, g in shown]
    f1 = [max(token_f1(p, x) for x in g) for p, g in shown]
    return PhraseFigures(len(pairs), len(shown) / max(len(pairs), 1),
                         float(np.mean(exact)) if exact else 0.0, float(np.mean(f1)) if f1 else 0.0)


# ------------------------------------------------------------------------------ the run
def build(args: argparse.Namespace, encoder: CachingEncoder, reranker: CachedReranker,
          params: ChunkingParams) -> tuple[list[Asked], dict[str, list[Asked]], list[list[str]]]:
    squad_sets = load_eval_file(require(args.squad, "squad"))
    xquad_all = load_eval_file(require(args.xquad, "xquad"))
    held = held_out_titles([s.name for s in xquad_all])
    xquad_sets = [s for s in xquad_all if s.name in held]
    fitted: list[Asked] = []
    for own in squad_sets:
        foreign = [q.question for other in squad_sets if other is not own for q in other.questions]
        article = Article.build(own, foreign, encoder, params)
        others = [Article.build(s, [q.question for o in squad_sets if o is not s for q in o.questions],
                                encoder, params) for s in squad_sets if s is not own]
        fitted += ask_all(article, "SQuAD, 3 articles", fit_weights(others), reranker)
    shipped = RankingWeights()
    for own in xquad_sets:
        foreign = [q.question for other in xquad_sets if other is not own
                   for q in other.questions[:: max(1, len(other.questions) // 2)][:2]]
        foreign = foreign[:OFF_TOPIC_PER_ARTICLE]
        article = Article.build(own, foreign, encoder, params)
        fitted += ask_all(article, "XQuAD, 12 held-out articles", shipped, reranker)
    speech: dict[str, list[Asked]] = {}
    off_topic = [q.question for s in squad_sets for q in s.questions]
    gold: list[list[str]] = []
    for label, file in SPEECH_SETS:
        path = HERE / "data" / file
        if not path.exists():
            continue
        eval_set = load_eval_file(path)[0]
        if file == "speech_phrases.json":
            gold = [item["phrase"] for item in json.loads(path.read_text(encoding="utf-8"))]
            article = Article.build(eval_set, [], encoder, params)
        else:
            article = Article.build(EvalSet(eval_set.name, None, eval_set.questions), off_topic, encoder,
                                    params)
        speech[label] = ask_all(article, label, shipped, reranker)
    return fitted, speech, gold


def cross_validated(fitted: Sequence[Asked], count: int, off_topic: float) -> dict[str, RerankWeights]:
    folds = sorted({a.fold for a in fitted})
    return {fold: fit_rerank([a for a in fitted if a.fold != fold], count, off_topic) for fold in folds}


def _cell(value: float) -> str:
    return "-" if value != value else f"{value:.3f}"


def table(rows: Sequence[tuple[str, str, SetFigures]]) -> list[str]:
    lines = ["| set | pipeline | answerable | sent@1 | hit@3 | answerable declined | off-topic declined "
             "| answers at conf >= 0.9 | of those right | at conf <= 0.3 | of those rightly declined |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, pipeline, f in rows:
        lines.append(f"| {name} | {pipeline} | {f.questions} | {f.sent_at_1:.3f} | {f.hit_at_3:.3f} "
                     f"| {f.answerable_declined:.3f} | {_cell(f.off_topic_declined) if f.off_topic else '-'} "
                     f"| {f.sure} | {_cell(f.sure_right)} | {f.unsure} "
                     f"| {_cell(f.unsure_right_to_decline)} |")
    return lines


START, END = "<!-- rerank:start -->", "<!-- rerank:end -->"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--squad", type=Path, default=SQUAD_3_ARTICLES)
    parser.add_argument("--xquad", type=Path, default=XQUAD_EN)
    parser.add_argument("--candidates", type=int, nargs="+", default=[5, 8],
                        help="candidate counts to measure (the first is shipped)")
    parser.add_argument("--off-topic-answered", type=float, nargs="+", default=[0.03, 0.01],
                        help="the threshold answers at most this share of the fit's off-topic questions "
                             "(several: each measured; the first is shipped)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md")
    parser.add_argument("--model", type=Path, default=None, help="reranker folder (default: the shipped one)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    encoder = CachingEncoder(default_encoder())
    reranker = CachedReranker(Reranker(args.model) if args.model else Reranker())
    fitted, speech, gold = build(args, encoder, reranker, ChunkingParams())
    groups = sorted({a.group for a in fitted})
    lines = [
        "# The trained reranker (issue 18)",
        "",
        f"- Date: {datetime.date.today().isoformat()}; machine: 2 CPU cores, no GPU ({platform.machine()}, "
        f"Python {platform.python_version()}); model `{reranker.version}` (`index/models/reranker`).",
        "- Command: `.venv/bin/python bench/rerank_eval.py` (reranker scores cached in `bench/out/rerank`).",
        "- Without: today's ranking. With: its best N sentences reranked; the second stage fitted "
        "leave-one-article-out over the 15 SQuAD + XQuAD articles (never on the speech). Reliability: "
        "of the answers shown at confidence >= 0.9, the share whose first sentence is right; of the "
        "questions at confidence <= 0.3, the share where declining was right (off-topic, or the first "
        "sentence wrong).",
        "",
    ]
    shipped_weights: RerankWeights | None = None
    settings = [(c, m) for c in args.candidates for m in args.off_topic_answered]
    for count, off_share in settings:
        folds = cross_validated(fitted, count, off_share)
        everything = fit_rerank(fitted, count, off_share)
        shipped_weights = shipped_weights or everything
        rows: list[tuple[str, str, SetFigures]] = []
        phrase_rows: list[str] = []
        for group in groups:
            members = [a for a in fitted if a.group == group]
            without = [answer_without(a) for a in members]
            with_model = [answer_with(a, folds[a.fold]) for a in members]
            rules = [answer_with_rule_phrase(a, folds[a.fold]) for a in members]
            rows += [(group, "without", figures(without, members)),
                     (group, f"**with, top {count}**", figures(with_model, members))]
            for name, answers in (("rules, without", without), ("rules, with", rules),
                                  ("reader, with", with_model)):
                p = phrase_figures(answers, members)
                phrase_rows.append(f"| {group} | {name} | {p.questions} | {p.coverage:.3f} | {p.exact:.3f} "
                                   f"| {p.f1:.3f} |")
        for label, members in speech.items():
            without = [answer_without(a) for a in members]
            with_model = [answer_with(a, everything) for a in members]
            rows += [(label, "without", figures(without, members)),
                     (label, f"**with, top {count}**", figures(with_model, members))]
            if label == "speech short answers" and gold:
                rules = [answer_with_rule_phrase(a, everything) for a in members]
                for name, answers in (("rules, without", without), ("rules, with", rules),
                                      ("reader, with", with_model)):
                    p = phrase_figures(answers, members, gold)
                    phrase_rows.append(f"| {label} | {name} | {p.questions} | {p.coverage:.3f} "
                                       f"| {p.exact:.3f} | - |")
        lines += [f"## Top {count} sentences reranked, threshold answering at most {off_share:.0%} "
                  "of the fit's off-topic questions", "", *table(rows), "",
                  "Answer phrase (on answerable questions; exact match and F1 on those that got one):", "",
                  "| set | phrase from | questions | got a phrase | exact | F1 |",
                  "|---|---|---:|---:|---:|---:|",
                  *phrase_rows, "",
                  "Fitted on all 15 articles: `" + ", ".join(f"{f.name}={getattr(everything, f.name):.4g}"
                                                            for f in fields(everything)) + "`", ""]
    lines.append(f"Reranker pairs scored this run: {reranker.pairs_scored} in {reranker.seconds:.1f} s; "
                 f"whole run {time.perf_counter() - started:.0f} s.")
    report = "\n".join(lines)
    print(report)
    if not args.no_write:
        write_section(HERE / "RESULTS.md", report + "\n", START, END)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
