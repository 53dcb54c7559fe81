"""The answer phrase (``Answer.phrase``) and the notice for questions in another language."""

from __future__ import annotations

import pytest

from qa import QA
from qa.language import NOTICE, notice_for
from qa.phrase import PhraseType, find_phrase, holds_asked, phrase_type, question_stems, typed_spans

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
    "¿De qué trata este discurso?",  # one function word, but Spanish punctuation
    "De qué trata este discurso",
    "Di cosa parla questo discorso?",
])
def test_other_languages_are_noticed(question: str) -> None:
    assert notice_for(question) == NOTICE


@pytest.mark.parametrize("question", [
    "When did Dalian win the Global 500 award?",
    "Who is Mr. Mizuno?",
    "Was the project in Kitakyushu a success?",
    "What did JICA send?",
    "Où?",  # too little to tell: answered as usual
    "What did Maciot de Bethencourt buy?",  # a name's particle is not another language
    "What is this speech about?",
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


@pytest.mark.parametrize(("question", "kind"), [
    ("Who was the mayor when the bridge opened?", PhraseType.PERSON),  # the opening wh-word decides
    ("Where was the treaty signed when the war ended?", PhraseType.PLACE),
    ("How many ships sailed when the fleet left?", PhraseType.COUNT),
    ("What did the team win in 2004?", PhraseType.THING),  # "did the" is no modifier of "team"
    ("Which football team won the cup?", PhraseType.ORGANISATION),
])
def test_phrase_types_by_opening_word(question: str, kind: PhraseType) -> None:
    assert phrase_type(question) is kind


# One sentence per rule of qa/phrase.py (issue 12, round 2); sentences written for the tests.
WIND_FARM = "Its forty thousand panels, built on 2,500 hectares, produce 300 megawatts."


@pytest.mark.parametrize(("question", "sentence", "phrase"), [
    # amounts carry a unit or currency that fits what the question names; a bare number is a count
    ("How much power does the wind farm produce?", WIND_FARM, "300 megawatts"),
    ("How much land does the wind farm cover?", WIND_FARM, "2,500 hectares"),
    ("How much did the wind farm cost?",
     "Its forty thousand panels cost $1.2 billion and produce 300 megawatts.",
     "$1.2 billion"),
    ("What percentage of voters took part?",
     "Turnout was 64% of registered voters, up from 58% in 2015.", "64%"),
    # a count next to the noun asked about, even when it looks like a year
    ("How many kilometres does the pipeline run?",
     "The pipeline runs 1200 kilometres from the coast to the capital.",
     "1200"),
    # "what year" wants the year alone
    ("What year did the dam open?", "The dam opened in June 1936 after five years of work.", "1936"),
    # people: a title's "of Place" and a lone title are not the person; groups named by origin;
    # apposition to the question's word; the agent of a passive; a name after "named"
    ("Who signed the charter?",
     "In 1215, King John of England signed the charter at Runnymede.", "King John"),
    ("Who built the railway?", "The railway was built by Chinese and Irish workers in the 1860s.",
     "Chinese and Irish workers"),
    ("Who was the admiral of the fleet?",
     "The Spanish fleet sailed from Lisbon in May 1588 under its admiral, the Duke of Medina Sidonia.",
     "Duke of Medina Sidonia"),
    ("Who designed the tower?",
     "The tower, finished in 1889 for the Paris fair, was designed by Gustave Eiffel.",
     "Gustave Eiffel"),
    ("Who led the rebels into London?",
     "In June 1381 a farmer named Wat Tyler from Kent led the rebels into London.",
     "Wat Tyler"),
    ("Who was the director of the museum?",
     "The exhibition in Vienna was opened by Ms. Clara Stein, Director of the City Museum, in March.",
     "Ms. Clara Stein"),
    # a regnal number the question also says stays; the asked one's epithet is not an answer;
    # the words of an agent phrase are no distance; a role's list in apposition
    ("Who defeated Louis II?", "In 1879, Emperor Peter II of Brazil defeated King Louis II near the river.",
     "Emperor Peter II"),
    ("Who made Pepin king?", "In 751, Pope Zachary made Pepin the Short king of the Franks.", "Pope Zachary"),
    ("Who defeated the invaders?",
     "The invaders crossed the river near Lyon in May but were defeated by the Roman general Aetius.",
     "Aetius"),
    ("Who were the two consuls at Cannae?",
     "At Cannae, under two Roman consuls, Lucius Paullus and Terentius Varro, the legions were surrounded.",
     "Lucius Paullus and Terentius Varro"),
    # places after a preposition of place, with their compass word; "from" only when asked
    ("Where did the refugees settle?", "After the war the refugees from Lisbon settled in northern Brazil.",
     "northern Brazil"),
    # organisations keep their head word, also in lower case
    ("Which council approved the plan?", "The plan was approved by the Leeds City Council in May.",
     "Leeds City Council"),
    ("What committee did the university set up?",
     "In 2019 the university set up a joint safety review committee.",
     "joint safety review committee"),
    # two or more asked for: the list, not its first item
    ("Who were the two founders of the company?",
     "The company was founded in 1976 by Steve Jobs and Steve Wozniak in a garage.",
     "Steve Jobs and Steve Wozniak"),
    ("Which two cities hosted the games?", "In 1998 the games were hosted by Lyon and Marseille.",
     "Lyon and Marseille"),
    # noun phrases: a definition by copula; the noun of "what kind of ..."; a passive is no definition
    ("What is the term for a three-line Japanese poem?", "A haiku is a three-line Japanese poem.", "haiku"),
    ("What kind of engine powered the car?", "The car was powered by a small steam engine built in Leeds.",
     "small steam engine"),
    ("What did the museum receive for its new wing?",
     "In 1998, the Hillside Museum was given the Carnegie Medal for its new wing.", "Carnegie Medal"),
])
def test_find_phrase_rules(question: str, sentence: str, phrase: str) -> None:
    span = find_phrase(question, sentence)
    assert span is not None
    assert sentence[span.start:span.end] == phrase


def test_a_bare_number_is_no_amount_when_a_measured_one_is_there() -> None:
    span = find_phrase("How much power does the wind farm produce?", WIND_FARM)
    assert span is not None and "forty" not in WIND_FARM[span.start:span.end]


@pytest.mark.parametrize(("question", "sentence", "holds"), [
    # a date range for "how long"; the sentence that only names the project holds none
    ("How long did the JICA project take?", "From the end of 1996 to March 2000, this project was completed.",
     True),
    ("How long did the JICA project take?", "During that time, JICA helped to turn the zone into a study.",
     False),
    # money asked: a currency, not another unit; another quantity asked: not a currency
    ("How much was spent on the model city?", "The total investment was RMB 1.68 billion.", True),
    ("How much was spent on the model city?", "The park covers 300 hectares.", False),
    ("How much land does the park cover?", "The park covers 300 hectares.", True),
    ("How much land does the park cover?", "The total investment was RMB 1.68 billion.", False),
    # a count is a number, not a year
    ("How many projects were funded?", "Contents of investment included nine projects.", True),
    ("How many projects were funded?", "The projects were funded in 1998.", False),
    # a name the question already says is no answer; another name is
    ("Who recommended Dalian for the prize?", "Through a recommendation from Kitakyushu City, Dalian won it.",
     True),
    ("Who recommended Dalian for the prize?", "This was an evaluation of Dalian's activities.", False),
])
def test_a_sentence_holds_the_kind_of_thing_asked(question: str, sentence: str, holds: bool) -> None:
    kind = phrase_type(question)
    assert kind is not None
    assert holds_asked(question, kind, question_stems(question), typed_spans(sentence, kind)) is holds
