"""A newcomer's first hour (issue 13): the rough edges of the CLI and the Python API.

Each test holds one promise a user met cold: a non-UTF-8 terminal still prints the answer,
the CLI names its own options in errors, the Python API takes one path or one question as
naturally as a list, and everything refused on purpose shares one base class.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ingest import IngestError
from qa import QA, IndexLoadError, QuestionError, SpeechQAError

REPO = Path(__file__).resolve().parents[1]
QUESTION = "When did Dalian receive the Global 500 award?"


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ui.cli", *args], capture_output=True, text=True,
                          timeout=300, cwd=REPO, env={**os.environ, **(env or {})})


# ---------------------------------------------------------------------------- 1. terminals
def test_ascii_terminal_prints_the_answer_with_replacements() -> None:
    result = subprocess.run([sys.executable, "-m", "ui.cli", "ask", QUESTION, "--top-k", "1"],
                            capture_output=True, cwd=REPO, timeout=300,
                            env={**os.environ, "PYTHONIOENCODING": "ascii"})
    assert result.returncode == 0, result.stderr
    text = result.stdout.decode("ascii")  # every byte is ASCII
    assert text.startswith("Answer: ") and "2001" in text
    assert "?" in text  # the speech's curly quotes, replaced rather than fatal
    assert result.stderr == b""


def test_ascii_terminal_json_is_escaped_and_lossless() -> None:
    result = subprocess.run([sys.executable, "-m", "ui.cli", "ask", QUESTION, "--top-k", "1", "--json"],
                            capture_output=True, cwd=REPO, timeout=300,
                            env={**os.environ, "PYTHONIOENCODING": "ascii"})
    assert result.returncode == 0, result.stderr
    raw = result.stdout.decode("ascii")
    parsed = json.loads(raw)
    assert "2001" in parsed["answer"]
    texts = [parsed["answer"]] + [passage["text"] for passage in parsed["passages"]]
    if not all(text.isascii() for text in texts):
        assert "\\u" in raw  # non-ASCII characters escaped, so the parsed text is exact
    assert "?" not in parsed["answer"]


# ---------------------------------------------------------------------------- 3. the CLI
def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("speech-qa ") and any(ch.isdigit() for ch in result.stdout)


def test_every_positional_argument_has_help() -> None:
    from ui.cli import build_parser

    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, sub in subparsers.choices.items():  # type: ignore[attr-defined]
        for action in sub._actions:
            if not action.option_strings and action.dest != "help":
                assert action.help, f"`speech-qa {name}` argument {action.dest!r} has no help text"


@pytest.mark.parametrize("value", ["abc", "0", "51", "2.5"])
def test_top_k_error_names_the_option_and_its_range(value: str) -> None:
    result = run_cli("ask", QUESTION, "--top-k", value)
    assert result.returncode == 2
    assert "--top-k" in result.stderr and "1 to 50" in result.stderr
    assert "_top_k" not in result.stderr and "Traceback" not in result.stderr


def test_eval_shows_progress(tmp_path: Path) -> None:
    from ui.cli_eval import run_eval

    questions = tmp_path / "q.json"
    questions.write_text(json.dumps([{"question": QUESTION, "answer": "2001"},
                                     {"question": "Who won the football world cup?", "answer": None}]))
    captured = io.StringIO()
    old, sys.stderr = sys.stderr, captured
    try:
        report = run_eval(questions, show_progress=True)
    finally:
        sys.stderr = old
    assert report.pooled is not None
    assert "eval" in captured.getvalue() and "2/2" in captured.getvalue()


# ---------------------------------------------------------------------------- 4. stray output
def test_first_ask_from_python_prints_nothing() -> None:
    code = ("from qa import ask; a = ask('When did Dalian win the Global 500 award?'); "
            "assert a.answer and '2001' in a.answer")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                            timeout=300, env=os.environ.copy())
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "Loading weights" not in result.stderr
    assert result.stderr.strip() == ""


# ---------------------------------------------------------------------------- 6. Python API traps
@pytest.fixture
def folder(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "trees.txt").write_text("The city planted 4,000 oak trees along the river in 2019.\n")
    (docs / "trams.txt").write_text("The new tram line opened in March 2021 with twelve stops.\n")
    return docs


def test_from_paths_takes_one_string_path(folder: Path, fake_encoder: object) -> None:
    engine = QA.from_paths(str(folder / "trees.txt"), encoder=fake_encoder)  # type: ignore[arg-type]
    assert [d.source for d in engine.index.documents] == ["trees.txt"]


def test_from_paths_takes_one_path_object(folder: Path, fake_encoder: object) -> None:
    engine = QA.from_paths(folder, encoder=fake_encoder)  # type: ignore[arg-type]
    assert sorted(d.source for d in engine.index.documents) == ["docs/trams.txt", "docs/trees.txt"]


def test_ask_many_with_one_string_is_one_question(folder: Path, fake_encoder: object) -> None:
    engine = QA.from_paths([folder], encoder=fake_encoder)  # type: ignore[arg-type]
    answers = engine.ask_many("When did the tram line open?")
    assert len(answers) == 1 and answers[0].question == "When did the tram line open?"


def test_one_base_class_for_everything_refused_on_purpose(tmp_path: Path, fake_encoder: object) -> None:
    with pytest.raises(SpeechQAError):
        QA.from_paths(tmp_path / "missing.txt", encoder=fake_encoder)  # type: ignore[arg-type]
    with pytest.raises(SpeechQAError):
        QA.load(tmp_path / "nowhere", encoder=fake_encoder)  # type: ignore[arg-type]
    (tmp_path / "a.txt").write_text("Some text about rivers.")
    engine = QA.from_paths(tmp_path / "a.txt", encoder=fake_encoder)  # type: ignore[arg-type]
    with pytest.raises(SpeechQAError):
        engine.ask("")
    assert issubclass(QuestionError, SpeechQAError) and issubclass(QuestionError, ValueError)
    assert issubclass(IngestError, SpeechQAError) and issubclass(IndexLoadError, SpeechQAError)
