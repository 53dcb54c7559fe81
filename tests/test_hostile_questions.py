"""Hostile questions through the Python API and the CLI: answered, or refused clearly.

(The ``/ask`` endpoint gets the same questions in ``test_server_security.py``.)  Control
characters, 1 MB of text, only punctuation, other scripts, lone surrogates (which JSON can
carry), invisible characters: each either gets a well-formed ``Answer`` (JSON-ready,
encodable as UTF-8, offsets that slice back) or a ``QuestionError`` with a message a person
can act on; and the engine keeps answering ordinary questions afterwards.  Real model.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qa import QA, Answer, QuestionError
from qa.question import MAX_QUESTION_CHARS
from ui.cli import main

ROOT = Path(__file__).resolve().parents[1]
GLOBAL_500 = "When did Dalian receive the Global 500 award?"

ANSWERED = {
    "control characters": "When\x01 did\x07 Dalian\x1b[31m receive\r\n the Global\x7f 500\x85 award?",
    "bidi and zero-width": "\u202eWhen\u200b did Dalian\u2066 receive the Global 500 award?\u2069",
    "lone surrogates": "When \ud800did Dalian\udfff receive the Global 500 award?",
    "only punctuation": "?!?...,;:()[]",
    "unicode punctuation": "¿¡«»—…‽",
    "chinese": "大连什么时候获得全球500佳奖？",
    "arabic": "متى فازت داليان بجائزة جلوبال 500؟",
    "emoji": "🌊🏭🌳❓",
    "one long word": "x" * MAX_QUESTION_CHARS,
    "combining marks": "e\u0301" * 500,
    "html": "<script>alert(1)</script><b>award</b>?",
    "sql-ish": "'; DROP TABLE passages; --",
    "at the limit": ("award " * 400)[:MAX_QUESTION_CHARS],
}
REFUSED = {
    "1 MB of text": ("a" * 2**20, "the limit is 2000"),
    "just over the limit": ("b" * (MAX_QUESTION_CHARS + 1), "the limit is 2000"),
    "empty": ("", "question is empty"),
    "only spaces": (" \t\n\u00a0\u3000", "question is empty"),
    "only invisible": ("\u200b\u200d\ufeff\x00\x1f", "question is empty"),
}
NOT_TEXT = [None, 42, b"bytes?", ["a", "list"]]


@pytest.fixture(scope="module")
def engine(real_encoder: object) -> QA:
    engine = QA.default()
    engine.warm_up()
    return engine


def assert_well_formed(answer: Answer) -> None:
    """JSON-ready, UTF-8 encodable, highlights inside their passages, confidence a probability."""
    data = answer.to_dict()
    json.dumps(data, ensure_ascii=False).encode("utf-8")
    assert 0.0 <= answer.confidence <= 1.0
    assert answer.question == answer.question.strip() and answer.question
    assert not any(ord(ch) < 32 or 0xD800 <= ord(ch) <= 0xDFFF for ch in answer.question)
    for passage in answer.passages:
        for span in passage.highlights:
            assert 0 <= span.start < span.end <= len(passage.text)


@pytest.mark.parametrize("name", list(ANSWERED))
def test_api_answers_odd_questions(engine: QA, name: str) -> None:
    answer = engine.ask(ANSWERED[name])
    assert_well_formed(answer)
    assert answer.passages, "the closest passages are always returned"
    if "Global 500" in ANSWERED[name]:  # the noise is stripped and the question still answered
        assert answer.answer is not None and "2001" in answer.answer
    if name in {"only punctuation", "unicode punctuation", "emoji"}:
        assert answer.answer is None  # nothing to answer: "not in the document", not a guess


@pytest.mark.parametrize("name", list(REFUSED))
def test_api_refuses_unusable_questions_clearly(engine: QA, name: str) -> None:
    question, phrase = REFUSED[name]
    with pytest.raises(QuestionError, match=phrase) as caught:
        engine.ask(question)
    assert isinstance(caught.value, ValueError)
    assert len(str(caught.value)) < 200  # the question itself is not echoed back


@pytest.mark.parametrize("value", NOT_TEXT)
def test_api_refuses_non_text(engine: QA, value: object) -> None:
    with pytest.raises(QuestionError, match="question must be text"):
        engine.ask(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("top_k", [0, -1, 51, 2.5, "3", True, None])
def test_api_refuses_bad_top_k(engine: QA, top_k: object) -> None:
    with pytest.raises(QuestionError, match="top_k must be a whole number"):
        engine.ask("What is Dalian?", top_k=top_k)  # type: ignore[arg-type]


_ANY_CHARACTER = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(question=st.text(_ANY_CHARACTER, max_size=300))
def test_api_any_text_is_answered_or_refused(engine: QA, question: str) -> None:
    try:
        answer = engine.ask(question)
    except QuestionError as exc:
        assert "empty" in str(exc)
        return
    assert_well_formed(answer)


def test_engine_still_answers_after_the_abuse(engine: QA) -> None:
    for question in [*ANSWERED.values(), *(q for q, _ in REFUSED.values())]:
        with contextlib.suppress(QuestionError):
            engine.ask(question)
    answer = engine.ask(GLOBAL_500)
    assert answer.answer is not None and "2001" in answer.answer


# ---------------------------------------------------------------------------- CLI
@pytest.mark.parametrize("name", ["control characters", "lone surrogates", "chinese", "arabic",
                                  "only punctuation"])
def test_cli_answers_odd_questions(engine: QA, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ask", ANSWERED[name], "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"question", "answer", "confidence", "phrase", "phrase_span", "notice", "passages"}
    if "Global 500" in ANSWERED[name]:
        assert "2001" in result["answer"]


@pytest.mark.parametrize("name", list(REFUSED))
def test_cli_refuses_in_one_line(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    question, phrase = REFUSED[name]
    assert main(["ask", question]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("speech-qa: error: ") and captured.err.count("\n") == 1
    assert phrase in captured.err


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ui.cli", *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)


def test_cli_process_refuses_a_huge_argument_quickly() -> None:
    """100 KB in argv (Linux caps one argument at 128 KB): exit 2, no model loaded, no traceback."""
    completed = run_cli("ask", "q" * 100_000)
    assert completed.returncode == 2
    assert completed.stderr.strip().endswith("the limit is 2000")
    assert "Traceback" not in completed.stderr


def test_cli_process_answers_other_scripts_as_json() -> None:
    """Arabic with control characters in a real process: valid UTF-8 JSON on stdout."""
    completed = run_cli("ask", "\x07" + ANSWERED["arabic"] + "\x1b\x7f", "--json")
    assert completed.returncode == 0, completed.stderr[-2000:]
    result = json.loads(completed.stdout)
    assert result["question"] == ANSWERED["arabic"]
