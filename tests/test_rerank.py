"""The second stage: the shipped reranker, its fusion with the ranking, and the engine's use of it."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from index.reranker import RERANKER_DIR, Reranker, RerankResult, default_reranker, reranker_available
from qa import QA
from qa.ranking import SentenceScores
from qa.rerank import RerankEvidence, RerankWeights, combine


class WordScorer:
    """A fake reranker: relevance = words shared with the question; span = the first digit run."""

    version = "fake-1"

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[str, ...]]] = []

    def score(self, question: str, sentences: Sequence[str]) -> RerankResult:
        self.calls.append((question, tuple(sentences)))
        words = set(question.lower().strip("?").split())
        relevance = np.array([len(words & set(s.lower().strip(".").split())) - 2.0 for s in sentences],
                             dtype=np.float32)
        spans: list[tuple[int, int] | None] = []
        for s in sentences:
            digits = [i for i, ch in enumerate(s) if ch.isdigit()]
            spans.append((digits[0], digits[-1] + 1) if digits else None)
        return RerankResult(relevance, tuple(spans), np.array([0.9 if sp else 0.0 for sp in spans],
                                                              dtype=np.float32))


def _scores(fused: list[float]) -> SentenceScores:
    n = len(fused)
    return SentenceScores(np.zeros((n, 1), dtype=np.float32), np.array(fused, dtype=np.float32),
                          np.zeros((n, 10), dtype=np.float32), np.arange(n))


def _evidence(rows: list[int], relevance: list[float]) -> RerankEvidence:
    return RerankEvidence(np.array(rows), np.array(relevance, dtype=np.float32),
                          tuple((0, 1) for _ in rows), np.array([0.8] * len(rows), dtype=np.float32),
                          np.array([0.5] * len(rows)))


def test_combine_reorders_only_the_candidates_and_keeps_the_rest_below() -> None:
    scores = _scores([5.0, 4.0, 3.0, 2.0, 1.0])
    weights = RerankWeights(candidates=3, w_stage1=1.0, w_relevance=2.0)
    out = combine(scores, _evidence([0, 1, 2], [0.0, 0.0, 3.0]), weights)
    order = list(np.argsort(-out.fused))
    assert order[0] == 2, "the candidate the reranker prefers comes first"
    assert set(order[:3]) == {0, 1, 2}
    assert order[3:] == [3, 4], "sentences not read keep their stage-1 order, below every candidate"
    assert out.confidence is not None and out.confidence[2] > out.confidence[0]
    assert out.confidence[3] == 0.0 and out.threshold == weights.threshold


def test_combine_shows_a_phrase_only_when_the_reader_is_sure() -> None:
    scores = _scores([2.0, 1.0])
    evidence = RerankEvidence(np.array([0, 1]), np.array([1.0, 0.0], dtype=np.float32),
                              ((0, 4), (1, 3)), np.array([0.2, 0.9], dtype=np.float32), np.array([0.5, 0.5]))
    out = combine(scores, evidence, RerankWeights(candidates=2, phrase_min=0.5, phrase_from_reader=True))
    assert out.phrases == {1: (1, 3)}
    assert combine(scores, evidence, RerankWeights(candidates=2)).phrases is None, "the rules' phrase"


def test_the_engine_asks_the_reranker_for_the_best_few_sentences(fake_encoder: object,
                                                                 tmp_path: Path) -> None:
    doc = tmp_path / "notes.txt"
    doc.write_text("The bridge opened in 1931 after years of work.\n\nThe river floods every spring.\n\n"
                   "Tickets cost five dollars at the gate.\n\nThe bridge was painted red in 1990.\n",
                   encoding="utf-8")
    scorer = WordScorer()
    weights = RerankWeights(candidates=3, threshold=0.0, phrase_min=0.5, phrase_from_reader=True)
    engine = QA.from_paths([doc], encoder=fake_encoder)  # type: ignore[arg-type]
    engine.reranker, engine.rerank_weights = scorer, weights
    answer = engine.ask("When was the bridge painted red?")
    assert len(scorer.calls) == 1 and len(scorer.calls[0][1]) == 3, "one batch of the best 3 sentences"
    assert answer.answer == "The bridge was painted red in 1990."
    assert answer.phrase == "1990"
    assert answer.phrase_span is not None
    top = answer.passages[0]
    assert top.text[answer.phrase_span.start:answer.phrase_span.end] == "1990"


def test_a_fake_encoder_gets_no_reranker_by_default(fake_encoder: object, tmp_path: Path) -> None:
    """The second stage was fitted on the bundled model's ranking; another encoder ranks alone."""
    doc = tmp_path / "a.txt"
    doc.write_text("One sentence here.\n", encoding="utf-8")
    assert QA.from_paths([doc], encoder=fake_encoder).reranker is None  # type: ignore[arg-type]


def test_cached_answers_are_keyed_by_the_model_version(fake_encoder: object, tmp_path: Path) -> None:
    doc = tmp_path / "a.txt"
    doc.write_text("The museum opens at nine.\n\nThe cafe closes at five.\n", encoding="utf-8")
    scorer = WordScorer()
    engine = QA.from_paths([doc], encoder=fake_encoder)  # type: ignore[arg-type]
    engine.reranker = scorer
    engine.ask("When does the museum open?")
    scorer.version = "fake-2"
    engine.ask("When does the museum open?")
    assert len(scorer.calls) == 2, "a new model version must not be served the old cached answer"
    engine.ask("When does the museum open?")
    assert len(scorer.calls) == 2


# ------------------------------------------------------------------------ the shipped model
needs_model = pytest.mark.skipif(not reranker_available(), reason="no trained reranker weights shipped")


@needs_model
def test_the_shipped_weights_are_described_by_their_card() -> None:
    card = json.loads((RERANKER_DIR / "reranker.json").read_text(encoding="utf-8"))
    assert card["version"] and card["max_length"] >= 64
    assert "XQuAD" in card["training"]["data"]
    held_out = set(card["training"]["held_out_articles"])
    assert held_out.isdisjoint(card["training"]["train_articles"]), "split by article"
    for bench_article in ("Normans", "Computational_complexity_theory", "Southern_California"):
        assert bench_article not in card["training"]["train_articles"]
    size = sum(f.stat().st_size for f in RERANKER_DIR.iterdir())
    assert size < 60 * 2**20, f"the reranker adds {size / 2**20:.1f} MB"


@needs_model
def test_the_real_reranker_prefers_the_answering_sentence_and_finds_the_span() -> None:
    reranker = default_reranker()
    assert reranker is not None
    sentences = ["Dalian is a coastal city in the north-east of China.",
                 "In 2001, Dalian received the Global 500 award from the United Nations Environment "
                 "Programme.",
                 "The city has worked with Kitakyushu on the environment since the 1980s."]
    result = reranker.score("In which year did Dalian win the UN's Global 500 prize?", sentences)
    assert int(np.argmax(result.relevance)) == 1
    assert result.relevance[1] > 0 > result.relevance[0], "above 0: answers; below: does not"
    span = result.spans[1]
    assert span is not None and sentences[1][span[0]:].startswith("2001"), "the span starts at the year"
    for sentence, found in zip(sentences, result.spans, strict=True):
        assert found is not None and 0 <= found[0] < found[1] <= len(sentence)


@needs_model
def test_the_reranker_rejects_a_corrupt_card(tmp_path: Path) -> None:
    from index.errors import ModelLoadError

    (tmp_path / "reranker.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelLoadError, match=r"reranker\.json"):
        Reranker(tmp_path).score("q", ["s"])


def test_importing_qa_still_loads_no_model() -> None:
    code = ("import sys, qa, qa.rerank, index.reranker; "
            "print('torch' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_default_weights_are_the_fitted_ones() -> None:
    """The shipped parameters came from the fit (bench/rerank_eval.py), not from hand-set defaults."""
    defaults = RerankWeights()
    assert 1 <= defaults.candidates <= 10
    assert 0.0 < defaults.threshold < 1.0 and 0.0 < defaults.phrase_min < 1.0
    assert defaults.w_relevance > 0, "the reranker's relevance must count for the answer"


# Reranked answers pinned on the speech (the real engine, both models): the sentence shown
# first contains the fragment, and the phrase is the short answer. The first six are answered
# wrongly without the reranker (measured 2026-12-06; see bench/RESULTS.md for the sets).
PINNED = [
    ("What was the experts' report called?", "Development study on creation of Dalian Environmental", None),
    ("Which government does the speaker represent?", "as the representative of the Dalian City Government",
     None),
    ("Where were the electric furnaces that needed their pollution fixed?",
     "pollution from steelmakers’ electric furnaces", None),
    ("After finding where the pollution came from, what did KITA come up with?",
     "developed a proposal for countermeasures", None),
    ("How did the technical help from Japan benefit Dalian's own green efforts?",
     "not only contributed to the promotion", None),
    ("Does the speaker also thank the people in the audience?", "all the participants here today", None),
    ("Which agency helped turn the model zone into a development project?",
     "assistance was received from JICA",
     "JICA"),
    ("How much was the machinery from JICA worth?", "RMB 30,000,000", "RMB 30,000,000"),
    ("How many projects did the investment include?", "Contents of investment included nine projects",
     "nine"),
    ("Which agency examined environmental improvement in 47 cities?",
     "State Environmental Protection Administration", "State Environmental Protection Administration"),
    ("Who compiled the report on the model zone?", "compiled by Chinese and Japanese experts",
     "Chinese and Japanese experts"),
    ("Did Dalian get its air-monitoring trucks from Japan? Who sent them?", "JICA sent our city", "JICA"),
    ("How many plants for cleaning dirty water were on the spending list?",
     "two sewage processing plant projects",
     "two"),
]


@pytest.fixture(scope="module")
def speech_engine() -> QA:
    engine = QA.default()
    assert engine.reranker is not None, "the bundled model's engine reranks by default"
    return engine


@needs_model
@pytest.mark.parametrize(("question", "fragment", "phrase"), PINNED)
def test_reranked_answers_on_the_speech(speech_engine: QA, question: str, fragment: str,
                                        phrase: str | None) -> None:
    answer = speech_engine.ask(question)
    assert answer.answer is not None and fragment in answer.answer, f"{question!r} -> {answer.answer!r}"
    if phrase is not None:
        assert answer.phrase == phrase
        top = answer.passages[0]
        assert answer.phrase_span is not None
        assert top.text[answer.phrase_span.start:answer.phrase_span.end] == phrase


@needs_model
def test_confidence_is_high_only_when_right(speech_engine: QA) -> None:
    """Off-topic questions are declined with low confidence; none gets 0.9 or more."""
    for question in ("What is the recipe for a chocolate cake?", "Who won the football world cup in 2014?",
                     "How do I reset my router password?"):
        answer = speech_engine.ask(question)
        assert answer.answer is None and answer.confidence < 0.3, (question, answer.confidence)


def test_an_operator_can_switch_the_second_stage_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPEECH_QA_RERANK", "0")
    assert QA.default().reranker is None
    monkeypatch.setenv("SPEECH_QA_RERANK", "1")
    assert (QA.default().reranker is not None) == reranker_available()
