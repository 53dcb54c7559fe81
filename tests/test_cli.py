"""The ``speech-qa`` command line, run as a real subprocess (as users run it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ui.cli_format import mark_highlights

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``speech-qa`` in a fresh process with the test session's private cache."""
    return subprocess.run(
        [sys.executable, "-m", "ui.cli", *args],
        capture_output=True, text=True, timeout=300, cwd=REPO,
        env={**os.environ, **(env or {})},
    )


def test_ask_prints_the_answer_with_brackets_when_piped() -> None:
    result = run_cli("ask", "When did Dalian receive the Global 500 award?")
    assert result.returncode == 0, result.stderr
    first_line = result.stdout.splitlines()[0]
    assert first_line.startswith("Answer: ") and "2001" in first_line
    assert "[[" in result.stdout and "]]" in result.stdout  # answering sentence marked
    assert "\033[" not in result.stdout  # no colour codes when piped
    assert "dalian_speech.txt, paragraph" in result.stdout
    assert "Traceback" not in result.stderr


def test_ask_json_and_top_k() -> None:
    result = run_cli("ask", "How much was invested in total?", "--json", "--top-k", "2")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == {"question", "answer", "confidence", "phrase", "phrase_span", "notice", "passages"}
    assert len(data["passages"]) == 2
    for passage in data["passages"]:
        for span in passage["highlights"]:
            assert 0 <= span["start"] < span["end"] <= len(passage["text"])


def test_index_then_ask_your_own_documents(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "bridge.txt").write_text(
        "The Xinghai Bay Bridge opened to traffic in 2015. The bridge is six kilometres long.",
        encoding="utf-8")
    index_dir = tmp_path / "idx"
    built = run_cli("index", str(docs), "--index", str(index_dir))
    assert built.returncode == 0, built.stderr
    assert "Indexed 1 document(s)" in built.stdout
    assert (index_dir / "manifest.json").is_file()
    asked = run_cli("ask", "How long is the bridge?", "--index", str(index_dir), "--json")
    assert asked.returncode == 0, asked.stderr
    data = json.loads(asked.stdout)
    assert data["passages"][0]["source"] == "docs/bridge.txt"
    assert "six kilometres" in data["answer"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ask", ""], "question is empty"),
        (["ask", "   "], "question is empty"),
        (["ask", "x" * 2001], "the limit is 2000"),
        (["ask", "Why?", "--index", "/nonexistent/idx"], "no index directory here"),
        (["index", "/nonexistent/file.txt", "--index", "IDX"], "no such file or folder"),
    ],
)
def test_bad_input_is_one_line_on_stderr_with_exit_2(tmp_path: Path, args: list[str],
                                                     message: str) -> None:
    args = [str(tmp_path / "idx") if a == "IDX" else a for a in args]
    result = run_cli(*args)
    assert result.returncode == 2
    last_line = result.stderr.strip().splitlines()[-1]  # (a progress bar may come before it)
    assert last_line.startswith("speech-qa: error: ") and message in last_line
    assert result.stderr.count("speech-qa: error:") == 1
    assert "Traceback" not in result.stderr


def test_bad_files_and_foreign_index(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    result = run_cli("index", str(empty), "--index", str(tmp_path / "idx"))
    assert result.returncode == 2 and "empty.txt: file is empty" in result.stderr
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "manifest.json").write_text('{"hello": "world"}')
    result = run_cli("ask", "Why?", "--index", str(foreign))
    assert result.returncode == 2 and "not a speech-qa index manifest" in result.stderr


def test_failed_index_run_keeps_the_existing_index(tmp_path: Path) -> None:
    good = tmp_path / "good.txt"
    good.write_text("Seagulls nest on the cliffs every spring.", encoding="utf-8")
    index_dir = tmp_path / "idx"
    assert run_cli("index", str(good), "--index", str(index_dir)).returncode == 0
    before = {p.name: p.read_bytes() for p in index_dir.iterdir() if p.is_file()}
    binary = tmp_path / "bad.txt"
    binary.write_bytes(b"\x00\xff" * 100)
    result = run_cli("index", str(binary), "--index", str(index_dir))
    assert result.returncode == 2 and "already holds an index of 1 document(s)" in result.stderr
    result = run_cli("index", str(binary), "--index", str(index_dir), "--replace")
    assert result.returncode == 2 and "bad.txt" in result.stderr
    after = {p.name: p.read_bytes() for p in index_dir.iterdir() if p.is_file()}
    assert after == before
    assert run_cli("ask", "Where do seagulls nest?", "--index", str(index_dir)).returncode == 0


def test_other_model_index_is_refused(tmp_path: Path) -> None:
    index_dir = tmp_path / "idx"
    good = tmp_path / "good.txt"
    good.write_text("Seagulls nest on the cliffs every spring.", encoding="utf-8")
    assert run_cli("index", str(good), "--index", str(index_dir)).returncode == 0
    manifest_path = index_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["model"]["name"] = "some-other/model"
    manifest_path.write_text(json.dumps(manifest))
    result = run_cli("ask", "Where?", "--index", str(index_dir))
    assert result.returncode == 2 and "built with model 'some-other/model'" in result.stderr


def test_mark_highlights() -> None:
    assert mark_highlights("abc def ghi", [(4, 7)], colour=False) == "abc [[def]] ghi"
    assert mark_highlights("abc def", [(0, 3)], colour=True) == "\033[1;33mabc\033[0m def"


def test_ask_marks_the_answer_phrase_when_piped() -> None:
    result = run_cli("ask", "When did Dalian win the Global 500 award?", "--top-k", "1")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1] == "Phrase: {{2001}}"
    assert "[[In {{2001}}, through a recommendation" in result.stdout  # inside the marked sentence


def test_ask_json_carries_the_phrase_and_its_span() -> None:
    result = run_cli("ask", "What was the total investment in the model city?", "--json", "--top-k", "1")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    span = data["phrase_span"]
    assert data["phrase"] == "RMB 1.68 billion"
    assert data["passages"][0]["text"][span["start"]:span["end"]] == data["phrase"]


def test_question_in_another_language_gets_the_english_notice() -> None:
    result = run_cli("ask", "大连什么时候获得全球500佳奖？", "--top-k", "2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Questions in English work best")
    assert "No answer" not in result.stdout and "dalian_speech.txt, paragraph" in result.stdout


def test_no_answer_is_printed_without_marks() -> None:
    """Issue 13 item 7: no answer, no [[...]] (the closest passages are shown unmarked)."""
    result = run_cli("ask", "What is the recipe for a chocolate cake?", "--top-k", "2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("No answer")
    assert "dalian_speech.txt, paragraph" in result.stdout
    assert "[[" not in result.stdout and "{{" not in result.stdout


def test_no_answer_json_has_no_highlights() -> None:
    result = run_cli("ask", "What is the recipe for a chocolate cake?", "--json", "--top-k", "2")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["answer"] is None and data["phrase"] is None and data["phrase_span"] is None
    assert len(data["passages"]) == 2
    assert all(passage["highlights"] == [] for passage in data["passages"])


def test_mark_highlights_with_the_phrase() -> None:
    text = "Intro. In 2001, it won. Outro."
    assert mark_highlights(text, [(7, 23)], colour=False, phrase=(10, 14)) == \
        "Intro. [[In {{2001}}, it won.]] Outro."
    coloured = mark_highlights(text, [(7, 23)], colour=True, phrase=(10, 14))
    assert coloured == "Intro. \033[1;33mIn \033[1;4;33m2001\033[0m\033[1;33m, it won.\033[0m Outro."


def test_pdf_answers_cite_their_page(tmp_path: Path, make_pdf) -> None:  # type: ignore[no-untyped-def]
    path = make_pdf(tmp_path, [
        "Energy report of the city.\n\nThe harbour was cleaned between 2001 and 2004.",
        "The wind farm on Changxing Island produces 300 megawatts of power.",
    ], name="energy.pdf")
    index_dir = tmp_path / "idx"
    assert run_cli("index", str(path), "--index", str(index_dir)).returncode == 0
    question = "How much power does the wind farm produce?"
    shown = run_cli("ask", question, "--index", str(index_dir), "--top-k", "2")
    assert shown.returncode == 0, shown.stderr
    assert "[1] energy.pdf, p. 2, paragraph 2, chars" in shown.stdout
    data = json.loads(run_cli("ask", question, "--index", str(index_dir), "--json").stdout)
    assert data["passages"][0]["page"] == 2 and data["passages"][0]["source"] == "energy.pdf"


def test_text_answers_show_no_page() -> None:
    result = run_cli("ask", "When did Dalian receive the Global 500 award?", "--json", "--top-k", "1")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["passages"][0]["page"] is None
    assert ", p. " not in run_cli("ask", "When did Dalian receive the Global 500 award?").stdout


def test_a_damaged_pdf_that_is_read_anyway_is_read_quietly(tmp_path: Path, make_pdf) -> None:  # type: ignore[no-untyped-def]
    """pypdf recovers a cut-short end-of-file marker: its "EOF marker" note must not reach stderr.

    (pypdf 7 does not recover any truncation that makes it log "EOF marker not found";
    "EOF marker seems truncated" comes from the same logger on a file it does read.)
    """
    path = make_pdf(tmp_path, ["The wind farm produces 300 megawatts."], name="cut.pdf")
    data = path.read_bytes()
    path.write_bytes(data[:data.rindex(b"%%EOF")] + b"%%EO")
    index_dir = tmp_path / "idx"
    built = run_cli("index", str(path), "--index", str(index_dir))
    assert built.returncode == 0, built.stderr
    assert "EOF" not in built.stderr and "pypdf" not in built.stderr, built.stderr
    asked = run_cli("ask", "How much power does the wind farm produce?", "--index", str(index_dir))
    assert "300 megawatts" in asked.stdout


def test_folder_with_bad_files_is_indexed_partially_with_exit_3(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "bridge.txt").write_text("The Xinghai Bay Bridge opened to traffic in 2015.", encoding="utf-8")
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 truncated")
    (docs / "notes.rst").write_text("Unsupported.", encoding="utf-8")
    (docs / "NOEXT").write_text("No extension.", encoding="utf-8")
    index_dir = tmp_path / "idx"
    result = run_cli("index", str(docs), str(docs / "bridge.txt"), "--index", str(index_dir))
    assert result.returncode == 3, result.stderr
    assert "Indexed 1 document(s)" in result.stdout
    skipped = [line for line in result.stderr.splitlines() if line.startswith("speech-qa: skipped ")]
    assert sorted(line.split(":")[1].strip().rsplit("/", 1)[-1] + ":" + line.split(": ")[2].split(" ")[0]
                  for line in skipped) == ["NOEXT:unsupported", "bridge.txt:duplicate",
                                           "broken.pdf:unreadable", "notes.rst:unsupported"]
    assert "Traceback" not in result.stderr
    asked = run_cli("ask", "When did the bridge open?", "--index", str(index_dir))
    assert asked.returncode == 0 and "2015" in asked.stdout
    strict = run_cli("index", str(docs), "--index", str(tmp_path / "strict"), "--strict")
    assert strict.returncode == 2 and not (tmp_path / "strict").exists()
    assert strict.stderr.strip().splitlines()[-1].startswith("speech-qa: error: ")


def test_add_remove_list_and_the_refusal_that_names_add(tmp_path: Path) -> None:
    first = tmp_path / "bridge.txt"
    first.write_text("The Xinghai Bay Bridge opened to traffic in 2015. It is six kilometres long.",
                     encoding="utf-8")
    second = tmp_path / "lake.txt"
    second.write_text("Lake Brennan holds forty million cubic metres of water.", encoding="utf-8")
    index_dir = tmp_path / "idx"
    assert run_cli("index", str(first), "--index", str(index_dir)).returncode == 0
    refused = run_cli("index", str(second), "--index", str(index_dir))
    assert refused.returncode == 2
    assert "speech-qa add" in refused.stderr and "--replace" in refused.stderr
    added = run_cli("add", str(second), str(first), "--index", str(index_dir))
    assert added.returncode == 0, added.stderr
    assert "Added 1 document(s); the index now holds 2 document(s)" in added.stdout
    assert "skipped" in added.stderr and "duplicate" in added.stderr
    listed = run_cli("list", "--index", str(index_dir), "--json")
    rows = json.loads(listed.stdout)
    assert [row["source"] for row in rows] == ["bridge.txt", "lake.txt"]
    assert rows[1]["sentences"] == 1 and rows[1]["passages"] == 1 and rows[1]["size"] == 55
    table = run_cli("list", "--index", str(index_dir)).stdout.splitlines()
    assert table[0].split() == ["source", "passages", "sentences", "size", "added", "(UTC)"]
    assert table[-1] == "2 document(s), 2 passages, 3 sentences"
    asked = run_cli("ask", "How much water does Lake Brennan hold?", "--index", str(index_dir))
    assert "forty million" in asked.stdout
    unknown = run_cli("remove", "nope.txt", "--index", str(index_dir))
    assert unknown.returncode == 2 and "no document named 'nope.txt'" in unknown.stderr
    removed = run_cli("remove", "lake.txt", "--index", str(index_dir))
    assert removed.returncode == 0 and "Removed 1 document(s)" in removed.stdout
    assert [r["source"] for r in json.loads(run_cli("list", "--index", str(index_dir), "--json").stdout)] == [
        "bridge.txt"]
    replaced = run_cli("index", str(second), "--index", str(index_dir), "--replace")
    assert replaced.returncode == 0
    assert [r["source"] for r in json.loads(run_cli("list", "--index", str(index_dir), "--json").stdout)] == [
        "lake.txt"]
    done_bars = [line for line in unknown.stderr.split("\r") if "done" in line]
    assert not done_bars  # no "done 3/3" bar after a failure


def test_index_into_a_foreign_folder_refuses_before_embedding(tmp_path: Path) -> None:
    foreign = tmp_path / "some-folder"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine", encoding="utf-8")
    good = tmp_path / "good.txt"
    good.write_text("Seagulls nest on the cliffs every spring.", encoding="utf-8")
    result = run_cli("index", str(good), "--index", str(foreign))
    assert result.returncode == 2 and "is not a speech-qa index" in result.stderr
    assert "embed" not in result.stderr and "Batches" not in result.stderr  # refused before any work
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]


def test_ask_within_sources_and_an_unknown_source(tmp_path: Path) -> None:
    (tmp_path / "bridge.txt").write_text("The Xinghai Bay Bridge opened to traffic in 2015. "
                                         "It is six kilometres long.", encoding="utf-8")
    (tmp_path / "lake.txt").write_text("Lake Brennan holds forty million cubic metres of water. "
                                       "The lake opened to swimmers in 2012.", encoding="utf-8")
    index_dir = tmp_path / "idx"
    assert run_cli("index", str(tmp_path / "bridge.txt"), str(tmp_path / "lake.txt"),
                   "--index", str(index_dir)).returncode == 0
    question = "When did the bridge open to traffic?"
    whole = json.loads(run_cli("ask", question, "--index", str(index_dir), "--json").stdout)
    assert whole["passages"][0]["source"] == "bridge.txt"
    within = run_cli("ask", question, "--index", str(index_dir), "--json", "--source", "lake.txt")
    assert within.returncode == 0, within.stderr
    assert {p["source"] for p in json.loads(within.stdout)["passages"]} == {"lake.txt"}
    unknown = run_cli("ask", question, "--index", str(index_dir), "--source", "lake.txt",
                      "--source", "sea.txt")
    assert unknown.returncode == 2 and "'sea.txt'" in unknown.stderr
    assert len(unknown.stderr.strip().splitlines()) == 1
