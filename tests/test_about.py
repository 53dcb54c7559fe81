"""Questions about the document itself: title, topic, summary (``qa.about``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa import QA
from qa.about import MANY_NOTICE, NO_TITLE_NOTICE, asks_about_document, is_title

ABOUT_THE_DOCUMENT = [
    "What is the title of this talk?",
    "What's the title of the speech?",
    "What is this speech called?",
    "What is the speech titled?",
    "What is the name of this document?",
    "What is this speech about?",
    "What was the speech mainly about?",
    "what's this talk about",
    "What is the main topic of the speech?",
    "What is the subject of this report?",
    "What is the main topic?",
    "What is the speech's title?",
    "Summarize the speech.",
    "Give me a summary of this document",
    "What does this speech cover?",
]

ABOUT_SOMETHING_IN_IT = [
    "What is the name of the aid agency?",
    "What did the speech say about Kitakyushu?",
    "What is the speech's view on pollution?",
    "Which title did the city receive for environmental protection?",
    "What is the topic of the JICA study?",
    "What was the experts' report called?",
    "What is the title of the report compiled by experts?",
    "What is the main source of pollution?",
    "Who gave this speech?",
]


@pytest.mark.parametrize("question", ABOUT_THE_DOCUMENT)
def test_questions_about_the_document_are_recognised(question: str) -> None:
    assert asks_about_document(question)


@pytest.mark.parametrize("question", ABOUT_SOMETHING_IN_IT)
def test_questions_about_its_content_are_not(question: str) -> None:
    assert not asks_about_document(question)


def test_a_title_is_a_short_line_standing_alone() -> None:
    assert is_title("Environmental Protection and International Cooperation in Dalian", True)
    assert not is_title("Environmental Protection in Dalian", False)  # shares its paragraph
    assert not is_title("Dalian won the award in 2001.", True)  # a sentence
    assert not is_title(" ".join(["word"] * 30), True)  # prose, not a title
    assert not is_title("2001", True)  # no letters


def _first_line(path: Path) -> str:
    return next(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def test_the_speech_answers_with_its_title_and_opening(speech_path: Path) -> None:
    answer = QA.default().ask("What is this speech about?", top_k=3)
    title = _first_line(speech_path)
    assert answer.answer == title
    assert answer.confidence == 1.0 and answer.notice is None and answer.phrase is None
    first = answer.passages[0]
    assert [first.text[s.start:s.end] for s in first.highlights] == [title]
    assert len(answer.passages) == 3
    # then the passages that open the speech, in order, none highlighted, none overlapping
    assert [p.start for p in answer.passages] == sorted(p.start for p in answer.passages)
    assert all(a.end <= b.start for a, b in zip(answer.passages, answer.passages[1:], strict=False))
    assert all(not p.highlights for p in answer.passages[1:])
    # and the JSON says the same
    assert answer.to_dict()["answer"] == title


def test_a_document_without_a_title_line_gets_its_opening_and_no_answer(tmp_path: Path,
                                                                        fake_encoder: object) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("The harbour was dredged in 1998. It reopened a year later.\n\n"
                     "Ferries now run twice a day to the islands.\n", encoding="utf-8")
    engine = QA.from_paths(notes, index_dir=tmp_path / "idx", encoder=fake_encoder)
    answer = engine.ask("What is this document about?")
    assert answer.answer is None and answer.notice == NO_TITLE_NOTICE
    assert answer.passages and answer.passages[0].start == 0
    assert all(not p.highlights for p in answer.passages)


def test_several_documents_show_how_each_opens(tmp_path: Path, fake_encoder: object) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "harbour.txt").write_text("Harbour Works in Numbers\n\nThe harbour was dredged in 1998.\n",
                                        encoding="utf-8")
    (folder / "parks.txt").write_text("A Report on City Parks\n\nThe city planted a thousand trees.\n",
                                      encoding="utf-8")
    engine = QA.from_paths(folder, index_dir=tmp_path / "idx", encoder=fake_encoder)
    answer = engine.ask("What is the title of the report?")
    assert answer.answer is None
    assert answer.notice == MANY_NOTICE.format(count=2)
    assert sorted(p.source.split("/")[-1] for p in answer.passages) == ["harbour.txt", "parks.txt"]
    assert all(p.start == 0 and not p.highlights for p in answer.passages)


def test_another_language_keeps_its_own_notice() -> None:
    answer = QA.default().ask("¿De qué trata este discurso?")
    assert answer.answer is None and answer.notice is not None
    assert "English" in answer.notice
