"""The answer phrase (``Answer.phrase``) and the notice for questions in another language."""

from __future__ import annotations

import pytest

from qa import QA
from qa.language import NOTICE, notice_for
from qa.phrase import PhraseType, find_phrase, phrase_type

# Questions about the speech and the exact phrase the engine marks inside the answer sentence
# (measured: bench/RESULTS.md, "The answer phrase").  Worded like users, not copied.
SPEECH_PHRASES = [
    ("In which year did Dalian win the Global 500 prize?", "2001"),
    ("In what year was the city given two goals to achieve?", "1999"),
    ("Since when has the city cooperated with countries abroad?", "1980s"),
    ("When was the model zone proposed?", "end of 1993"),
    ("How much was the machinery from JICA worth?", "RMB 30,000,000"),
    ("Which Japanese prime minister visited China in 1997?", "Mr. Ryutaro Hashimoto"),
    ("When did the Japanese prime minister visit China?", "1997"),
    ("How much money was allotted to the city from the loans?", "USD100 million"),
    ("What was the total investment?", "RMB 1.68 billion"),
    ("How many projects did the investment include?", "nine"),
    ("Which agency examined environmental improvement in 47 cities?",
     "State Environmental Protection Administration"),
    ("Which Japanese city does the speaker single out for cooperation?", "Kitakyushu City"),
    ("For how many years has the city come first in the national evaluation?", "twelve"),
]


@pytest.fixture(scope="module")
def engine() -> QA:
    qa = QA.default()
    qa.warm_up()
    return qa


@pytest.mark.parametrize(("question", "phrase"), SPEECH_PHRASES)
def test_speech_answers_carry_their_phrase(engine: QA, question: str, phrase: str) -> None:
    answer = engine.ask(question)
    assert answer.answer is not None
    assert answer.phrase == phrase
    best = answer.passages[0]
    span = answer.phrase_span
    assert span is not None
    assert best.text[span.start:span.end] == phrase
    sentence = best.highlights[0]
    assert sentence.start <= span.start < span.end <= sentence.end  # inside the highlighted answer
    data = answer.to_dict()
    assert data["phrase"] == phrase
    assert data["phrase_span"] == {"start": span.start, "end": span.end}


def test_no_answer_means_no_phrase(engine: QA) -> None:
    answer = engine.ask("What is the recipe for a chocolate cake?")
    assert answer.answer is None
    assert answer.phrase is None and answer.phrase_span is None
    assert answer.notice is None


def test_question_in_chinese_gets_a_notice_and_passages(engine: QA) -> None:
    answer = engine.ask("大连什么时候获得全球500佳奖？")
    assert answer.notice == NOTICE
    assert answer.answer is None and answer.phrase is None
    assert answer.passages  # the closest passages are still shown
    assert answer.to_dict()["notice"] == NOTICE


@pytest.mark.parametrize("question", [
    "大连什么时候获得全球500佳奖？",
    "Когда Далянь получил премию?",
    "¿Cuándo ganó Dalian el premio Global 500?",
    "Quand est-ce que Dalian a reçu le prix?",
    "Wann hat Dalian den Preis bekommen?",
])
def test_other_languages_are_noticed(question: str) -> None:
    assert notice_for(question) == NOTICE


@pytest.mark.parametrize("question", [
    "When did Dalian win the Global 500 award?",
    "Who is Mr. Mizuno?",
    "Was the project in Kitakyushu a success?",
    "What did JICA send?",
    "Où?",  # too little to tell: answered as usual
])
def test_english_questions_get_no_notice(question: str) -> None:
    assert notice_for(question) is None


@pytest.mark.parametrize(("question", "kind"), [
    ("When did it open?", PhraseType.DATE),
    ("How long did the project run?", PhraseType.RANGE),
    ("How much did it cost?", PhraseType.AMOUNT),
    ("How many bridges are there?", PhraseType.COUNT),
    ("Who founded the company?", PhraseType.PERSON),
    ("Which UN body gave the award?", PhraseType.ORGANISATION),
    ("Where is the harbour?", PhraseType.PLACE),
    ("What was the report called?", PhraseType.NAME),
    ("What did the survey measure?", PhraseType.THING),
    ("Why did the mayor resign?", None),
])
def test_phrase_types(question: str, kind: PhraseType | None) -> None:
    assert phrase_type(question) is kind


@pytest.mark.parametrize(("question", "sentence", "phrase"), [
    ("How long did the survey take?",
     "From the end of 1996 to March 2000, this project was successfully completed.",
     "end of 1996 to March 2000"),
    ("When was the bridge opened?", "The harbour bridge was opened on 3 May 1921 by the governor.",
     "3 May 1921"),
    ("How much did the new road cost?", "The new road cost $4.5 million and took two years.",
     "$4.5 million"),
    ("Who designed the library?", "The library was designed by Mr. Arthur Blake of Leeds.",
     "Mr. Arthur Blake of Leeds"),
    ("What was the report called?",
     "The experts published a report, “A Blueprint for the Coast”, in 2002.", "A Blueprint for the Coast"),
])
def test_find_phrase_on_plain_sentences(question: str, sentence: str, phrase: str) -> None:
    span = find_phrase(question, sentence)
    assert span is not None
    assert sentence[span.start:span.end] == phrase


def test_no_phrase_when_the_sentence_holds_no_fitting_part() -> None:
    assert find_phrase("When was the bridge opened?", "The bridge is made of steel.") is None
    assert find_phrase("Why was the bridge built?", "It was built in 1921 for the trams.") is None
    # a part that only repeats the question is not an answer
    assert find_phrase("Which city is Mayor Sueyoshi from?", "Mayor Sueyoshi spoke.") is None
