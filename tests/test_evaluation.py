"""Metrics and dataset readers of ``qa.evaluation`` on hand-made examples, and ``speech-qa eval``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qa.evaluation import (
    EvalFormatError,
    EvalQuestion,
    contains_answer,
    evaluate,
    first_sentence,
    load_eval_file,
    normalise,
    score_answer,
    summarise,
    with_off_topic,
)
from qa.types import Answer, Passage, Span

REPO = Path(__file__).resolve().parents[1]


def passage(text: str, highlight: str | None = None) -> Passage:
    """A passage whose first highlight is ``highlight`` (a substring of ``text``)."""
    spans: tuple[Span, ...] = ()
    if highlight is not None:
        start = text.index(highlight)
        spans = (Span(start, start + len(highlight)),)
    return Passage(text=text, source="doc.txt", start=0, end=len(text), score=0.5, highlights=spans)


P_RIGHT = "The bridge opened in 2015. It is six kilometres long."
P_OTHER = "The city has a port. Ferries leave daily."


def test_normalise_forgives_typography_only() -> None:
    assert normalise("  “Being  the BEST”\n") == '"being the best"'
    assert contains_answer("It opened in\n2015.", ["in 2015"])
    assert contains_answer("It’s long", ["it's long"])
    assert not contains_answer("It opened in 2016.", ["2015"])
    assert not contains_answer(None, ["2015"])
    assert not contains_answer("anything", [""])  # an empty answer never matches


def test_metrics_on_a_hand_made_example() -> None:
    when = EvalQuestion("When did the bridge open?", ("2015",))
    length = EvalQuestion("How long is the bridge?", ("six kilometres",))
    ferries = EvalQuestion("How often do ferries leave?", ("daily",))
    off_topic = EvalQuestion("Who painted the Mona Lisa?")
    off_topic_2 = EvalQuestion("What is a prime number?")
    answers = [
        # sentence right, first passage right.
        Answer(when.question, "The bridge opened in 2015.", 0.9,
               (passage(P_RIGHT, "The bridge opened in 2015."), passage(P_OTHER, "The city has a port."))),
        # wrong sentence highlighted, but the first passage holds the answer; and declined.
        Answer(length.question, None, 0.1,
               (passage(P_RIGHT, "The bridge opened in 2015."), passage(P_OTHER, "Ferries leave daily."))),
        # answer only in the third passage.
        Answer(ferries.question, "The bridge opened in 2015.", 0.6,
               (passage(P_RIGHT, "The bridge opened in 2015."), passage("No.", "No."),
                passage(P_OTHER, "Ferries leave daily."))),
        Answer(off_topic.question, None, 0.05, (passage(P_OTHER, "The city has a port."),)),
        Answer(off_topic_2.question, "The city has a port.", 0.7,
               (passage(P_OTHER, "The city has a port."),)),
    ]
    results = evaluate(answers, [when, length, ferries, off_topic, off_topic_2])
    assert [r.passage_rank for r in results[:3]] == [1, 1, 3]
    assert [r.sentence_hit for r in results[:3]] == [True, False, False]
    metrics = summarise(results)
    assert metrics.answerable == 3 and metrics.off_topic == 2
    assert metrics.sent_at_1 == pytest.approx(1 / 3)
    assert metrics.hit_at_1 == pytest.approx(2 / 3)
    assert metrics.hit_at_3 == pytest.approx(1.0)
    assert metrics.mrr_at_10 == pytest.approx((1 + 1 + 1 / 3) / 3)
    assert metrics.off_topic_declined == pytest.approx(1 / 2)
    assert metrics.answerable_declined == pytest.approx(1 / 3)
    assert json.loads(json.dumps(metrics.to_dict()))["sent_at_1"] == pytest.approx(0.3333)


def test_no_passage_found_scores_zero_and_empty_summary_is_zero() -> None:
    question = EvalQuestion("Q?", ("x",))
    result = score_answer(Answer("Q?", None, 0.0, ()), question)
    assert result.passage_rank == 0 and not result.sentence_hit and result.declined
    assert summarise([]).sent_at_1 == 0.0
    assert first_sentence(Answer("Q?", "x y", 0.3, ())) == "x y"
    with pytest.raises(ValueError, match="2 answers for 1 questions"):
        evaluate([Answer("Q?", None, 0.0, ())] * 2, [question])


def write_squad(path: Path) -> None:
    """Two tiny SQuAD articles, one impossible question (skipped) and a duplicate answer text."""
    data = {"version": "v2.0", "data": [
        {"title": "Bridges", "paragraphs": [
            {"context": "The Xinghai Bay Bridge opened to traffic in 2015.",
             "qas": [{"id": "1", "question": "When did the Xinghai Bay Bridge open?", "is_impossible": False,
                      "answers": [{"text": "2015", "answer_start": 44},
                                  {"text": "2015", "answer_start": 44}]},
                     {"id": "2", "question": "When did the bridge close?", "is_impossible": True,
                      "answers": [], "plausible_answers": [{"text": "2015", "answer_start": 44}]}]},
            {"context": "The bridge is six kilometres long and carries eight lanes.",
             "qas": [{"id": "3", "question": "How many lanes does the bridge carry?",
                      "is_impossible": False, "answers": [{"text": "eight lanes", "answer_start": 47}]}]},
        ]},
        {"title": "Volcanoes", "paragraphs": [
            {"context": "Mount Etna in Sicily is one of the most active volcanoes in the world.",
             "qas": [{"id": "4", "question": "Where is Mount Etna?", "is_impossible": False,
                      "answers": [{"text": "Sicily", "answer_start": 14}]}]},
        ]},
    ]}
    path.write_text(json.dumps(data), encoding="utf-8")


def test_readers(tmp_path: Path) -> None:
    squad = tmp_path / "squad.json"
    write_squad(squad)
    sets = load_eval_file(squad)
    assert [s.name for s in sets] == ["Bridges", "Volcanoes"]
    bridges = sets[0]
    assert bridges.documents is not None
    assert bridges.documents[0].text == ("The Xinghai Bay Bridge opened to traffic in 2015.\n\n"
                                         "The bridge is six kilometres long and carries eight lanes.")
    assert [q.answers for q in bridges.questions] == [("2015",), ("eight lanes",)]  # impossible skipped
    mixed = with_off_topic(sets)
    assert [q.question for q in mixed[1].questions if not q.answerable] == [
        "When did the Xinghai Bay Bridge open?", "How many lanes does the bridge carry?"]

    simple = tmp_path / "simple.json"
    simple.write_text(json.dumps([{"question": " Q1? ", "answer": "a"},
                                  {"question": "Q2?", "answer": ["b", "c"]},
                                  {"question": "Q3?", "answer": None}]), encoding="utf-8")
    (only,) = load_eval_file(simple)
    assert only.documents is None and only.name == "simple.json"
    assert [(q.question, q.answers) for q in only.questions] == [("Q1?", ("a",)), ("Q2?", ("b", "c")),
                                                                 ("Q3?", ())]


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    ('{"data": [{"title": "x"}]}', "not in SQuAD form"),
    ('[{"answer": "a"}]', "needs a non-empty 'question'"),
    ('[{"question": "q", "answer": 3}]', "'answer' must be"),
    ('"just a string"', "expected a JSON list"),
])
def test_bad_files_name_the_problem(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(EvalFormatError, match=message):
        load_eval_file(path)
    with pytest.raises(EvalFormatError, match="cannot be read"):
        load_eval_file(tmp_path / "missing.json")


def test_rank_highlights_slice_back_and_fit_helpers(fake_encoder: object) -> None:
    """The ranking contract the metrics rely on: the first highlight is a sentence of the passage."""
    from index import CorpusIndex
    from ingest import Document
    from qa.ranking import RankingWeights, rank, score_sentences

    text = ("The bridge opened in 2015. It is six kilometres long. It has eight lanes.\n\n"
            "Ferries leave the port daily. The port is busy.")
    index = CorpusIndex.build([Document("d", "d.txt", text)], fake_encoder)  # type: ignore[arg-type]
    vector = fake_encoder.encode(["When did the bridge open?"])[0]  # type: ignore[attr-defined]
    answer = rank(index, "When did the bridge open?", vector, 3, RankingWeights())
    sentences = {index.sentence_text(i) for i in range(len(index.sentences))}
    for item in answer.passages:
        assert text[item.start:item.end] == item.text
        for span in item.highlights:
            assert item.text[span.start:span.end] in sentences
    assert first_sentence(answer) == "The bridge opened in 2015."
    scores = score_sentences(index, "When did the bridge open?", vector, RankingWeights())
    assert scores.features.shape[0] == len(index.sentences) and np.isfinite(scores.features).all()


def test_late_interaction_matches_a_direct_maxsim(real_encoder: object) -> None:
    """MaxSim from the stored float16 tokens equals a per-sentence loop, and feeds the ranking."""
    from index import CorpusIndex
    from ingest import Document
    from qa.ranking import FEATURES, RankingWeights, late_interaction, rank, score_sentences

    text = ("The bridge opened in 2015. It is six kilometres long. It has eight lanes.\n\n"
            "Ferries leave the port daily. The port is busy.")
    index = CorpusIndex.build([Document("d", "d.txt", text)], real_encoder)  # type: ignore[arg-type]
    assert index.manifest["late_interaction"] is True and index.sentence_tokens is not None
    offsets = index.sentence_token_offsets
    assert offsets is not None
    question = "How long is the bridge?"
    vectors, tokens = real_encoder.encode_with_tokens([question])  # type: ignore[attr-defined]
    candidates = np.arange(len(index.sentences))

    def own(i: int) -> np.ndarray:  # a block's rows before its zero row (format 3), if any
        block = index.sentence_tokens[offsets[i]:offsets[i + 1]].astype(np.float32)  # type: ignore[index]
        zero = np.flatnonzero(~block.any(axis=1))
        return block[:zero[0]] if zero.size else block

    assert any(own(i).shape[0] != offsets[i + 1] - offsets[i] for i in candidates)
    direct = [float((own(i) @ tokens[0].T).max(axis=0).mean()) for i in candidates]
    np.testing.assert_allclose(late_interaction(index, tokens[0], candidates), direct, atol=1e-5)
    scores = score_sentences(index, question, vectors[0], RankingWeights(), tokens[0])
    assert scores.features[:, FEATURES.index("maxsim")].max() == pytest.approx(max(direct), abs=1e-5)
    answer = rank(index, question, vectors[0], 3, RankingWeights(), tokens[0])
    assert first_sentence(answer) == "It is six kilometres long."


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the ``speech-qa`` console script's entry point in a fresh process.

    Why not ``python -m ui.cli``: run that way the module is ``__main__``, while plugins
    (``ui.cli_eval``) register their subcommands with the importable ``ui.cli``.
    """
    entry = "import sys; from ui.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", entry, *args], capture_output=True, text=True,
                          timeout=300, cwd=REPO, env=dict(os.environ))


def test_eval_cli_on_both_formats(tmp_path: Path) -> None:
    squad = tmp_path / "squad.json"
    write_squad(squad)
    result = run_cli("eval", str(squad), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report["sets"]) == {"Bridges", "Volcanoes"}
    pooled = report["pooled"]
    assert pooled["answerable"] == 3 and pooled["off_topic"] == 3
    assert pooled["hit_at_3"] == 1.0  # tiny documents: the answer is always among the passages

    docs = tmp_path / "bridge.txt"
    docs.write_text("The Xinghai Bay Bridge opened to traffic in 2015. It carries eight lanes.",
                    encoding="utf-8")
    simple = tmp_path / "questions.json"
    simple.write_text(json.dumps([{"question": "When did the bridge open?", "answer": "2015"}]),
                      encoding="utf-8")
    table = run_cli("eval", str(simple), "--docs", str(docs))
    assert table.returncode == 0, table.stderr
    assert table.stdout.startswith("| set | questions | sent@1")
    assert "| questions.json | 1 | 1.000 |" in table.stdout

    bad = tmp_path / "bad.json"
    bad.write_text("{nope", encoding="utf-8")
    failed = run_cli("eval", str(bad))
    assert failed.returncode == 2 and "not valid JSON" in failed.stderr and "Traceback" not in failed.stderr


@pytest.mark.parametrize(("question", "expected"), [
    ("Between which years did the bridge project run?", "date"),
    ("Since when has the port been open?", "date"),
    ("What was the overall investment in the harbour?", "number"),
    ("What is the total cost of the bridge?", "number"),
    ("What was the name of the bridge?", "other"),
    ("Who opened the bridge?", "person"),
])
def test_question_types_used_as_answer_cues(question: str, expected: str) -> None:
    """The answer-type cues the ranking uses (``qa.cues``) read these questions as intended."""
    from qa.cues import question_type

    assert question_type(question).value == expected
