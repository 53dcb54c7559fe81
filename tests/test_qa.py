"""The engine with the real bundled model: answers about the speech, shape, offsets, errors."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from qa import QA, Answer, QuestionError

# Paraphrased questions (not copied phrases) and a verbatim fragment of the one sentence
# of the speech that answers each.
SPEECH_QUESTIONS = [
    ("When did Dalian receive the Global 500 award?", "Global 500"),
    ("Which organisation gave Dalian the Global 500 honour?", "United Nations Environment Programme"),
    ("Who recommended Dalian for the UNEP prize?", "through a recommendation from Kitakyushu City"),
    ("Which Japanese city has Dalian worked with most closely on the environment?",
     "cooperation and exchange with Kitakyushu City in Japan"),
    ("In which year did Dalian get the task of achieving two goals?", "In 1999"),
    ("How many Chinese cities were compared in the SEPA environmental assessment?", "47 cities"),
    ("For how long has Dalian ranked first in the national environmental evaluation?",
     "past twelve years"),
    ("Who suggested creating an environmental model zone in Dalian, and when?",
     "At the end of 1993, Mayor Sueyoshi"),
    ("Between which years did the JICA development project run?", "From the end of 1996 to March 2000"),
    ("What equipment did JICA donate to the city?", "automatic atmospheric observation trucks"),
    ("What was the value of the monitoring machinery provided by JICA?", "RMB 30,000,000"),
    ("Which Japanese prime minister came to China for the anniversary of normalised relations?",
     "Ryutaro Hashimoto"),
    ("What was the overall investment in the model city project?", "RMB 1.68 billion"),
    ("How much yen loan money did the city receive?", "USD100 million"),
    ("How many projects did the investment cover?", "nine projects"),
    ("What body did the municipal government set up for the model city work?",
     "environmental model city guidance group"),
    ("What was the city's urban development motto?", "being the best, not the biggest"),
    ("Since when has Dalian cooperated with cities around the world?", "Since the 1980s"),
    ("What did the KITA field survey look for?", "identify pollution sources"),
    ("What areas did the JICA study cover?", "current state of air, water"),
    ("What kind of city does Dalian hope to build in the future?", "urban eco-cycle"),
    ("What does Dalian want to become a model of for developing countries?",
     "model city of “sustainable development”"),
    ("Whom does the speaker thank at the end?", "extend my gratitude to the Japanese Government"),
    ("How good is the environmental quality compared with the last two decades?",
     "highest standard in these 20 years"),
    ("Which report set out a blueprint for environmental preservation?",
     "Development study on creation of Dalian Environmental Model Zone"),
    ("Was the Japanese proposal for model cities accepted by China?", "The proposal was accepted by China"),
]

OFF_TOPIC = [
    "What is the recipe for a chocolate cake?",
    "Who won the football world cup in 2014?",
    "How do I reset my router password?",
]


@pytest.fixture(scope="module")
def engine() -> QA:
    qa = QA.default()
    qa.warm_up()
    return qa


def test_importing_qa_loads_no_model() -> None:
    import subprocess

    code = ("import sys, qa; "
            "print('sentence_transformers' in sys.modules, 'torch' in sys.modules, 'gradio' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "False"]


# Misses measured on this held-out set (see bench/RESULTS.md for the benchmark numbers):
# the answer sits in the sentence next to the one that restates the question, or the
# question shares almost no words with its answer.  Strict xfail: fixing one fails the
# test, so a change in either direction is seen.
# 2026-12-01, the in-context MaxSim (index format 3): the motto question is now right, and
# the answering sentence is now highlighted for the Kitakyushu and investment questions;
# the UNEP and "proposal accepted" questions now get the neighbouring sentence first (its
# reading with the sentence before it matches the question too). On the benchmark's bigger
# held-out sets the same change is +6 of 68 paraphrases and +5 of 473 SQuAD questions.
# 2026-12-01, ``typed_pair_z`` (the in-context MaxSim of a sentence holding the asked kind of
# thing): the UNEP and overall-investment questions are now right (+1 of 68 paraphrases,
# +4 of 473 SQuAD questions, +2 of the speech's 36 on the benchmark).
# 2026-12-06, the trained reranker (issue 18, qa/rerank.py): "Whom does the speaker thank"
# and "proposal accepted" are now right and answered; the overall-investment question now
# gets the yen-loan sentence beside it first (both name amounts of money), highlighted alone.
FIRST_ANSWER_MISSES = {
    "Which Japanese city has Dalian worked with most closely on the environment?",
    "Between which years did the JICA development project run?",
    "What was the overall investment in the model city project?",
}
HIGHLIGHT_MISSES = {
    "Between which years did the JICA development project run?",
    "What was the overall investment in the model city project?",
}


def _cases(misses: set[str]) -> list[object]:
    return [
        pytest.param(q, e, marks=pytest.mark.xfail(strict=True, reason="known ranking miss"))
        if q in misses else (q, e)
        for q, e in SPEECH_QUESTIONS
    ]


@pytest.mark.parametrize(("question", "expected"), _cases(FIRST_ANSWER_MISSES))
def test_first_answer_is_the_answering_sentence(engine: QA, question: str, expected: str) -> None:
    """The sentence shown first (``Answer.answer``) is the one that answers."""
    answer = engine.ask(question)
    assert answer.answer is not None, f"abstained on {question!r}"
    assert expected in answer.answer, f"{question!r} -> {answer.answer!r}"
    best = answer.passages[0]
    assert best.text[best.highlights[0].start:best.highlights[0].end] == answer.answer


@pytest.mark.parametrize(("question", "expected"), _cases(HIGHLIGHT_MISSES))
def test_answering_sentence_is_highlighted(engine: QA, question: str, expected: str) -> None:
    """Each question's answering sentence is one of the highlighted sentences shown."""
    answer = engine.ask(question)
    highlighted = [p.text[h.start:h.end] for p in answer.passages for h in p.highlights]
    assert any(expected in sentence for sentence in highlighted), f"{question!r} -> {highlighted!r}"


def test_first_answer_accuracy_over_the_whole_question_set(engine: QA) -> None:
    """Held-out accuracy through ``ask`` (a declined answer counts as a miss) stays at 23 of 26.

    It was 21 before the in-context reading and 20 with it (see ``FIRST_ANSWER_MISSES``), 22
    with ``typed_pair_z``, 23 with the trained reranker.
    """
    right = sum(expected in (engine.ask(q).answer or "") for q, expected in SPEECH_QUESTIONS)
    assert len(SPEECH_QUESTIONS) - len(FIRST_ANSWER_MISSES) >= 23
    assert right >= 23


def test_passage_scores_follow_the_displayed_order(engine: QA) -> None:
    for question, _ in SPEECH_QUESTIONS:
        scores = [p.score for p in engine.ask(question).passages]
        assert scores == sorted(scores, reverse=True), (question, scores)


@pytest.mark.parametrize("question", OFF_TOPIC)
def test_off_topic_questions_are_declined_but_show_closest_passages(engine: QA, question: str) -> None:
    answer = engine.ask(question)
    assert answer.answer is None
    assert len(answer.passages) == 3  # the closest ones are still returned
    assert answer.confidence < 0.5


@pytest.mark.parametrize("question", [*OFF_TOPIC, "大连什么时候获得全球500佳奖？"])
def test_no_answer_marks_nothing(engine: QA, question: str) -> None:
    """Issue 13 item 7: a withheld answer highlights no sentence and has no phrase anywhere."""
    answer = engine.ask(question)
    assert answer.answer is None
    assert answer.passages, "the closest passages are still shown"
    assert all(passage.highlights == () for passage in answer.passages)
    assert answer.phrase is None and answer.phrase_span is None
    data = answer.to_dict()
    assert data["answer"] is None and data["phrase"] is None and data["phrase_span"] is None
    assert [p["highlights"] for p in data["passages"]] == [[] for _ in answer.passages]


def test_answer_shape_and_offsets(engine: QA) -> None:
    answer = engine.ask("When did Dalian receive the Global 500 award?", top_k=4)
    assert isinstance(answer, Answer)
    assert len(answer.passages) == 4
    text = engine.index.documents[0].text
    scores = [p.score for p in answer.passages]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert 0.0 <= answer.confidence <= 1.0
    for passage in answer.passages:
        assert passage.source == "dalian_speech.txt"
        assert text[passage.start:passage.end] == passage.text
        assert passage.highlights
        for span in passage.highlights:
            assert 0 <= span.start < span.end <= len(passage.text)
    best = answer.passages[0]
    assert best.text[best.highlights[0].start:best.highlights[0].end] == answer.answer
    highlighted = [p.text[h.start:h.end] for p in answer.passages for h in p.highlights[:1]]
    assert len(set(highlighted)) == len(highlighted)  # each passage answers with its own sentence
    data = answer.to_dict()
    assert data["answer"] == answer.answer
    assert data["passages"][0]["highlights"][0] == {"start": best.highlights[0].start,
                                                     "end": best.highlights[0].end}
    import json
    json.dumps(data)


def test_repeated_question_comes_from_the_cache(engine: QA) -> None:
    first = engine.ask("What did JICA send to Dalian?")
    assert engine.ask("  What did JICA send to   Dalian? ") is first


def test_ask_many_matches_ask(engine: QA) -> None:
    questions = [q for q, _ in SPEECH_QUESTIONS[:5]]
    fresh = QA(lambda: engine.index, engine.encoder)
    batch = fresh.ask_many(questions)
    assert [a.answer for a in batch] == [engine.ask(q).answer for q in questions]


@pytest.mark.parametrize(
    ("question", "message"),
    [("", "question is empty"), ("   \n\t ", "question is empty"),
     ("x" * 2001, "2001 characters long; the limit is 2000"), (None, "question must be text")],
)
def test_bad_questions_raise_value_errors(engine: QA, question: object, message: str) -> None:
    with pytest.raises(QuestionError, match=message) as info:
        engine.ask(question)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("top_k", [0, 51, -1, 2.5, True])
def test_bad_top_k(engine: QA, top_k: object) -> None:
    with pytest.raises(QuestionError, match="top_k"):
        engine.ask("When?", top_k=top_k)  # type: ignore[arg-type]


def test_module_level_ask_uses_the_bundled_speech() -> None:
    from qa import ask

    answer = ask("When did Dalian win the Global 500 award?")
    assert answer.answer is not None and "2001" in answer.answer


def test_own_documents_cite_their_source(tmp_path: Path) -> None:
    folder = tmp_path / "reports"
    folder.mkdir()
    (folder / "harbour.txt").write_text(
        "The harbour authority dredged the northern channel in 2015.\n\n"
        "Container traffic doubled after the new cranes arrived.", encoding="utf-8")
    (folder / "parks.md").write_text(
        "# Parks\n\nThe city planted forty thousand trees along the coastal road.", encoding="utf-8")
    index_dir = tmp_path / "idx"
    built = QA.from_paths([folder], index_dir=index_dir)
    answer = built.ask("How many trees were planted?")
    assert answer.passages[0].source == "reports/parks.md"
    assert answer.answer is not None and "forty thousand trees" in answer.answer
    reloaded = QA.load(index_dir)
    again = reloaded.ask("When was the channel dredged?")
    assert again.passages[0].source == "reports/harbour.txt"
    assert again.answer is not None and "2015" in again.answer
