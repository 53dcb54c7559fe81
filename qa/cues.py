"""Answer-type cues: does a sentence hold the kind of thing the question asks for?

Why: "When did Dalian win the award?" is answered by the sentence with a year, and dense
similarity alone often prefers a sentence that repeats the question's words without the
date.  A small, measured boost for the expected type (dates for *when*, numbers for *how
many*, names for *who*, places for *where*) fixes many of those near-misses.
"""

from __future__ import annotations

import re
from enum import Enum


class AnswerType(Enum):
    """What kind of answer a question expects."""

    DATE = "date"
    NUMBER = "number"
    PERSON = "person"
    PLACE = "place"
    OTHER = "other"


_MONTHS = (r"January|February|March|April|May|June|July|August|September|October|November|"
           r"December|Jan\.|Feb\.|Mar\.|Apr\.|Aug\.|Sept?\.|Oct\.|Nov\.|Dec\.")
_DATE = re.compile(rf"\b(1[0-9]{{3}}|20[0-9]{{2}})s?\b|\b({_MONTHS})\b|\b\d+(st|nd|rd|th) century\b"
                   r"|\bcentur(y|ies)\b", re.IGNORECASE)
_NUMBER_WORDS = (r"one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|"
                 r"thirty|forty|fifty|hundred|thousand|million|billion|dozen|half|percent")
_NUMBER = re.compile(rf"\d|\b({_NUMBER_WORDS})\b", re.IGNORECASE)
_PERSON = re.compile(r"\b(Mr|Mrs|Ms|Dr|Prof|President|Mayor|King|Queen|Duke|Prime Minister)\b\.?"
                     r"|(?<=[a-z,] )[A-Z][a-z]+ [A-Z][a-z]+")
_PLACE = re.compile(r"\b(in|at|near|from|to) (the )?[A-Z][a-z]+")

#: Nouns whose value is a quantity: "what was the total investment?" asks for a number.
_QUANTITIES = (r"total|sum|budget|cost|price|value|amount|investment|population|size|area|length|"
               r"height|depth|width|weight|rate|percentage|number|count|capacity|speed|temperature")

_QUESTION_TYPES: tuple[tuple[re.Pattern[str], AnswerType], ...] = (
    (re.compile(r"^\s*when\b|\b(what|which) (years?|dates?|months?|decades?|centur(y|ies)|period)\b"
                r"|\bin what year\b|\bhow long ago\b|\bsince when\b|\buntil when\b",
                re.IGNORECASE), AnswerType.DATE),
    (re.compile(r"\bhow (many|much|long|far|large|big|old|high|tall|fast|often)\b"
                r"|\bwhat (percentage|proportion|share|amount|number|quantity|sum)\b"
                rf"|\bwhat (is|was|were|are) the ((total|overall|combined|annual) )?({_QUANTITIES})\b",
                re.IGNORECASE), AnswerType.NUMBER),
    (re.compile(r"^\s*who(m|se)?\b|\bwhich (person|people|official|leader)\b", re.IGNORECASE),
     AnswerType.PERSON),
    (re.compile(r"^\s*where\b|\bwhat (country|city|place|region)\b|\bwhich (country|city)\b",
                re.IGNORECASE), AnswerType.PLACE),
)

_SENTENCE_PATTERNS = {
    AnswerType.DATE: _DATE,
    AnswerType.NUMBER: _NUMBER,
    AnswerType.PERSON: _PERSON,
    AnswerType.PLACE: _PLACE,
}


#: The answer types that have a sentence pattern, in the column order of ``sentence_types``.
TYPED: tuple[AnswerType, ...] = (AnswerType.DATE, AnswerType.NUMBER, AnswerType.PERSON,
                                 AnswerType.PLACE)


def question_type(question: str) -> AnswerType:
    """The answer type a question asks for (``OTHER`` when no cue applies)."""
    for pattern, answer_type in _QUESTION_TYPES:
        if pattern.search(question):
            return answer_type
    return AnswerType.OTHER


def matches_type(sentence: str, answer_type: AnswerType) -> bool:
    """Whether ``sentence`` contains something of ``answer_type``."""
    pattern = _SENTENCE_PATTERNS.get(answer_type)
    return bool(pattern and pattern.search(sentence))


def sentence_types(sentence: str) -> tuple[bool, ...]:
    """Which answer types ``sentence`` holds, in ``TYPED`` order.

    Why a tuple for all types: the ranking computes it once per sentence at first use of
    an index, so a question only looks up the column of the type it asks for.
    """
    return tuple(matches_type(sentence, answer_type) for answer_type in TYPED)
