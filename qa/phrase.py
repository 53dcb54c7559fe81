"""The exact answer phrase: the shortest part of the answer sentence that answers.

Why heuristics and not a reader model: no extractive reader ships as a package this project
can install offline (spaCy's and NLTK's taggers download their data at run time; spaCy's
English models reach PyPI only as third parties' re-uploads, not a source to depend on), and the
ranking already found the sentence; what is left is pointing at the date, amount, count,
name or short noun phrase inside it.  Three signals do most of that work:

1. The answer type the question asks for (*when* -> a date, *how much* -> an amount,
   *who* -> a name, *which organisation* -> a capitalised name, ...), a finer version of
   ``qa.cues``.
2. Words the question and the sentence share: the answer is the part of the sentence the
   question does *not* repeat, and it sits next to the words it does repeat ("measured in
   **bits**").

3. A few sure signs around a candidate, in place of a tagger: an amount carries a unit or
   currency that measures what the question names ("how much **power**" -> "300 megawatts",
   not "forty thousand"); a count sits next to the noun counted; a name follows the
   question's word in apposition ("their **leader** Rollo"), *by* in a passive, *named*, or
   a preposition of place; a noun phrase is tied to the question's words by a copula
   ("[asked] is **X**") or ends in the noun of "what/which NOUN".

Candidates are chunks of the sentence (runs of content words between punctuation and
function words, or typed matches such as "RMB 1.68 billion" and "From the end of 1996 to
March 2000"); the one nearest the shared words wins.  ``None`` when no candidate fits: a
wrong phrase is worse than none.  Measured in ``bench/quality.py`` (SQuAD exact match and
token F1 against the gold answers; a short-answer set about the speech).
"""

from __future__ import annotations

import bisect
import functools
import re
from dataclasses import dataclass
from enum import Enum

import numpy as np

from qa.types import Span


def _word_set(text: str) -> frozenset[str]:
    """The whitespace-separated words of ``text`` (for long word lists)."""
    return frozenset(text.split())



class PhraseType(Enum):
    """The kind of phrase a question asks for."""

    RANGE = "range"  # how long / over which period: a date range or a duration
    DATE = "date"
    AMOUNT = "amount"  # money, percentages, measured quantities
    COUNT = "count"
    PERSON = "person"
    ORGANISATION = "organisation"
    PLACE = "place"
    NAME = "name"  # what is X called / what is the name of X: a title or proper name
    THING = "thing"  # any other what/which question: a short noun phrase


#: A word between *which/what* and the noun it asks about ("which **UN** body"), not the
#: verb or article of another clause ("what **did the** team win").
_MODIFIER = r"(?!(?:did|does|do|is|was|were|are|has|had|have|will|would|can|could|the|a|an)\b)[\w.]+"

_TYPES: tuple[tuple[re.Pattern[str], PhraseType], ...] = (
    (re.compile(r"\bhow long\b(?! ago)|\b(over|during|for) (what|which) (period|time|years)\b"
                r"|\bbetween (what|which) (years|dates)\b|\bwhat (period|time ?span|time frame)\b",
                re.I), PhraseType.RANGE),
    (re.compile(r"^\s*when\b|\b(what|which) (years?|dates?|months?|decades?|centur(y|ies)|day)\b"
                r"|\bhow long ago\b|\bsince when\b|\buntil when\b|\bwhen\b", re.I), PhraseType.DATE),
    (re.compile(r"\bhow much\b|\bwhat (percentage|proportion|share|amount|sum|fraction|value|cost|price)\b"
                r"|\bworth\b|\bhow (far|large|big|old|high|tall|fast|heavy|deep|wide)\b"
                r"|\bwhat (is|was|were|are) the ((total|overall|combined|annual) )?"
                r"(budget|cost|price|value|amount|investment|population|size|area|length|height|"
                r"depth|width|weight|rate|speed|temperature)\b", re.I), PhraseType.AMOUNT),
    (re.compile(r"\bhow many\b|\bwhat number\b|\bthe number of\b", re.I), PhraseType.COUNT),
    (re.compile(rf"\b(which|what) ({_MODIFIER} ){{0,2}}(organi[sz]ations?|agency|agencies|body|bodies|"
                r"company|companies|"
                r"institutions?|universit(y|ies)|group|government|administration|party|team|"
                r"ministry|department|association|committee|council|programme|program)\b", re.I),
     PhraseType.ORGANISATION),
    (re.compile(r"^\s*(who(m|se)?)\b|\b(to|by|from|with) whom\b|\bwho\b"
                rf"|\b(which|what) ({_MODIFIER} ){{0,2}}(person|people|"
                r"man|woman|official|leader|king|queen|president|prime minister|mayor|scientist|"
                r"individuals?)\b", re.I), PhraseType.PERSON),
    (re.compile(r"^\s*where\b|\bwhere\b|\b(what|which) (country|countries|city|cities|place|region|"
                r"state|county|area|town|continent|island|river|location)\b", re.I), PhraseType.PLACE),
    (re.compile(r"\b(called|named|titled|the name of|the title of)\b|\bwhat (was|is) the name\b", re.I),
     PhraseType.NAME),
    (re.compile(r"\b(what|which)\b", re.I), PhraseType.THING),
)


#: A question's opening words decide its type before any later clause does.
_LEADING: tuple[tuple[re.Pattern[str], PhraseType], ...] = (
    (re.compile(r"\s*(?:(?:to|by|from|with|for) )?(?:who|whom|whose)\b(?! (?:is|was) the name)", re.I),
     PhraseType.PERSON),
    (re.compile(r"\s*(?:(?:to|from) )?where\b", re.I), PhraseType.PLACE),
    (re.compile(r"\s*(?:(?:by|for|in|over|after) )?how many\b", re.I), PhraseType.COUNT),
    (re.compile(r"\s*(?:(?:by|for|in) )?how much\b(?! (?:longer|time)\b)", re.I), PhraseType.AMOUNT),
)


def phrase_type(question: str) -> PhraseType | None:
    """The phrase type ``question`` asks for, or None (why/how/yes-no questions: no phrase)."""
    if re.match(r"\s*(why|how (do|does|did|can|could|is|are|was|were|should)\b)", question, re.I):
        return None
    for pattern, kind in _LEADING:
        if pattern.match(question):
            return kind  # the opening wh-word wins over one in a clause ("Who led ... when ...?")
    for pattern, kind in _TYPES:
        if pattern.search(question):
            return kind
    return None


_MONTH = (r"(?:January|February|March|April|May|June|July|August|September|October|November|"
          r"December|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept?|Oct|Nov|Dec)\.?")
_YEAR = r"(?:1[0-9]{3}|20[0-9]{2})s?"
_DAY = r"(?:[0-9]{1,2}(?:st|nd|rd|th)?)"
_DATE_ONE = (rf"(?:(?:the )?(?:end|beginning|start|middle|spring|summer|autumn|fall|winter) of )?"
             rf"(?:{_DAY} {_MONTH},? {_YEAR}|{_MONTH} {_DAY},? {_YEAR}|{_MONTH},? {_YEAR}|"
             rf"{_MONTH} {_DAY}|(?:the )?{_YEAR}|(?<=\bin )[1-9][0-9]{{2}}\b(?! ?%)"
             rf"|(?:the )?[0-9]{{1,2}}(?:st|nd|rd|th)(?: and [0-9]{{1,2}}(?:st|nd|rd|th))? centur(?:y|ies))")
_DATE = re.compile(rf"\b(?:(?:from|between) )?{_DATE_ONE}(?:\s*(?:to|until|till|and|-|–)\s*{_DATE_ONE})?\b",
                   re.I)
_NUMBER_WORD = (r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|"
                r"fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|"
                r"eighty|ninety|hundred|a hundred|several|dozens?|a dozen)")
_SCALE = r"(?:hundred|thousand|million|billion|trillion|bn|m|k)"
_CURRENCY = r"(?:RMB|USD|US\$|\$|£|€|¥|yen|EUR|GBP|JPY|CNY)"
_NUM = rf"(?:[0-9][0-9,]*(?:\.[0-9]+)?|{_NUMBER_WORD})"
#: Units of measure an amount carries ("300 megawatts", "12 km²", "40%"): with one, a number is
#: a quantity; without one ("forty thousand panels") it is a count.
_UNIT = (r"(?:dollars|yuan|renminbi|pounds|euros|yen|rupees|francs|marks|won|pesos|cents|"
         r"percent|per ?cent|percentage points|%|"
         r"(?:square|sq\.?|cubic) (?:kilomet(?:re|er)s?|km|miles?|mi|met(?:re|er)s?|m|feet|ft|yards?)|"
         r"km²|km2|m²|m2|m³|m3|sq ?mi|"
         r"kilomet(?:re|er)s?|km|miles?|mi|met(?:re|er)s?|m|centimet(?:re|er)s?|cm|millimet(?:re|er)s?|mm|"
         r"feet|foot|ft|inch(?:es)?|yards?|nautical miles|"
         r"acres?|hectares?|ha|tons?|tonnes?|t|kilograms?|kg|grams?|g|lbs?|ounces?|oz|"
         r"lit(?:re|er)s?|l|gallons?|barrels?|"
         r"(?:kilo|mega|giga|tera)?watts?(?:[ -]hours?)?|[kMGT]Wh?|MWe|volts?|kV|"
         r"degrees(?: (?:Celsius|Fahrenheit|C|F))?|°[CF]?|"
         r"mph|km/h|kph|knots|miles per hour|kilomet(?:re|er)s per hour|"
         r"bits|bytes|[kMGT]B|calories|kcal|joules|decibels|dB|hertz|Hz|"
         r"years? old|passengers|visitors|residents|inhabitants|people)")
_AMOUNT = re.compile(
    rf"(?:{_CURRENCY}\s?{_NUM}(?:\s{_SCALE}\b)?|{_NUM}(?:\s{_SCALE}\b)?(?:\s|-)?(?:{_CURRENCY}|{_UNIT})"
    rf"(?![\w²³])|{_NUM}\s{_SCALE}\b)", re.I)
#: An amount with its unit or currency (not a bare "forty thousand").
_MEASURED = re.compile(rf"{_CURRENCY}|(?<=[\d\s-]){_UNIT}(?![\w²³])", re.I)
_MONEY_UNIT = re.compile(rf"{_CURRENCY}|dollars|yuan|renminbi|pounds|euros|rupees|francs|marks|won|"
                         r"pesos|cents", re.I)
_AUXILIARY = _word_set("do does did is are was were has have had will would can could should")


#: Score added to a noun phrase whose head is the noun of the question's *what/which*
#: ("which **anniversary**" -> "25th anniversary"), besides the words it brings.
WH_HEAD_BONUS = 1.5


def _wh_heads(question: str) -> set[str]:
    """Stems of the noun after *what/which* ("what type of Turing **machine**"): up to two
    words, since without a tagger "what architecture type came" cannot tell noun from verb."""
    found = re.search(r"\b(?:what|which)\s+(?:(?:kind|type|sort|form|part|piece)s?\s+of\s+)?"
                      r"([A-Za-z][\w'’\-]*)(?:\s+([A-Za-z][\w'’\-]*))?", question, re.I)
    if found is None:
        return set()
    heads = set()
    for word in found.groups():
        if word is None or word.lower() in _STOP or word.lower() in _AUXILIARY:
            break
        heads.add(_stem(word))
    return heads


def _counted_noun(question: str, sentence: str, end: int) -> bool:
    """Whether the words after a number (up to two) hold the noun a *how many* question
    counts ("how many **cities**" -> "47 **cities**", "2000 **kilometres**")."""
    noun = re.search(r"\bhow many ([a-z]+)", question, re.I)
    if noun is None:
        return False
    counted = _stem(noun.group(1))
    return any(_stem(w) == counted for _, _, w in _words(sentence[end:end + 30])[:2])


@functools.lru_cache(maxsize=256)
def _money_asked(question: str) -> bool | None:
    """True when a *how much* question asks for money, False when it names another
    quantity ("how much **power**"), None when it cannot tell ("how much was it").

    Cached: the ranking asks it once per in-context candidate of the same question.
    """
    if _MONEY_QUESTION.search(question):
        return True
    noun = re.search(r"\bhow much ([a-z]+)\b", question, re.I)
    if noun and noun.group(1).lower() not in _AUXILIARY and noun.group(1).lower() not in _STOP:
        return False
    return None


#: What a question names -> the units that measure it ("how much **power**" -> megawatts).
_UNIT_CLASSES: tuple[tuple[re.Pattern[str], re.Pattern[str]], ...] = tuple(
    (re.compile(asks, re.I), re.compile(units, re.I)) for asks, units in (
        (r"\b(power|capacity|electricity|energy|output|generat\w*|produc\w*)\b",
         r"watt|[kMGT]Wh?\b|MWe|joule|calorie|kcal"),
        (r"\b(land|area|large|big|size|cover\w*|surface|space)\b",
         r"square|sq|km²|km2|m²|m2|acre|hectare|\bha\b"),
        (r"\b(far|distance|long|length|wide|width|high|height|tall|deep|depth|away|elevation)\b",
         r"kilomet|\bkm\b|mile|\bmi\b|met(re|er)|\bm\b|feet|foot|\bft\b|inch|yard|\bcm\b|\bmm\b"),
        (r"\b(heavy|weight|weigh\w*|mass|load|cargo|waste|emission\w*|produce)\b",
         r"\btons?\b|tonne|\bt\b|kilogram|\bkg\b|gram|\bg\b|\blbs?\b|ounce|pounds"),
        (r"\b(water|liquid|oil|fuel|volume|rain\w*)\b", r"lit(re|er)|gallon|barrel|cubic|m³|m3"),
        (r"\b(hot|cold|warm|temperature|heat)\b", r"degree|°"),
        (r"\b(fast|speed|quick\w*)\b", r"mph|km/h|kph|knot|per hour"),
        (r"\b(percentage|proportion|share|fraction|rate|percent)\b", r"%|per ?cent"),
        (r"\b(old|age)\b", r"years? old"),
    ))


def _unit_fits(question: str, unit: str) -> bool:
    """Whether ``unit`` measures something the question names."""
    return any(asks.search(question) and units.search(unit) for asks, units in _UNIT_CLASSES)


#: Questions about money: their amount carries a currency.
_MONEY_QUESTION = re.compile(r"\b(?:money|cost|costs|spend|spent|pay|paid|worth|price|budget|invest\w*|"
                             r"fund\w*|loans?|raised?|earn\w*|revenue|income|salary|wages?|GDP|sell|sold|buy|bought|"
                             r"afford|charge\w*|fee|fees|fine|fined|donat\w*|grant\w*|allot\w*)\b", re.I)
_COUNT = re.compile(rf"\b{_NUM}(?:\s{_SCALE})?\b", re.I)
_QUOTED = re.compile(r"[“\"]([^”\"]{2,80})[”\"]")
_WORD = re.compile(r"[A-Za-z0-9][\w'’.\-]*[\w]|[A-Za-z0-9]")

#: Words that end a chunk: function words, auxiliaries and common verbs (no tagger here).
_STOP = _word_set("""
a an the this that these those it its they them their he him his she her we our us you your i my
me is are was were be been being am has have had do does did done will would shall should can could
may might must of in on at by for to from with without into onto over under about as than then
and or but nor so yet if because while when where which who whom whose what why how
not no also only very more most such both either neither each every all any some other another
through during after before since until between among against within upon via per
there here thus however although though whether once
""")

#: Capitalised words that open sentences or clauses without being names.
_CAPITAL_STOP = _word_set("""
In On At By For To From With During After Before Since Until The This That These Those It Its
A An And But Or Next Then Finally Presently Also However Although Through As One Of
""")

_NAME = re.compile(r"\b(?:(?:Mr|Mrs|Ms|Dr|Prof|St|Mt)\.\s)?[A-Z][\w'’\-.]*"
                   r"(?:(?:\s(?:of|the|de|du|von|van|for|on|la|le|del|da)){1,2}\s"
                   # "Bank of the West", not "China on the 25th"
                   r"(?:(?:Mr|Mrs|Ms|Dr)\.\s)?[A-Z][\w'’\-.]*"
                   r"|\s(?:(?:Mr|Mrs|Ms|Dr)\.\s)?[A-Z0-9][\w'’\-.]*)*"
                   )


_COMPASS_BEFORE = re.compile(r"\b(?:(?:far|upper|lower)\s+)?(?:north|south|east|west|central|"
                             r"north-?east|north-?west|south-?east|south-?west)(?:ern)?\s+$")
_DEMONYM = r"[A-Z][a-z]+(?:ish|ian|ean|an|ese|ic|i)"
_GROUP = re.compile(rf"\b{_DEMONYM}(?:,? (?:and|or) {_DEMONYM})? [a-z]{{3,}}(?:s|men|people)\b")


_ORG_HEAD = re.compile(r"\b(Administration|Agency|Association|Organi[sz]ation|Programme|Program|Group|"
                       r"Government|Ministry|Department|Committee|Council|Commission|Company|Corporation|"
                       r"University|Institute|Bank|Fund|Party|Union|Society|Office|Bureau|Board)\b|^[A-Z]{2,}$")
_LEADING_TITLE = re.compile(r"^(?:(?:Mr|Mrs|Ms|Dr)\.\s)?(?:[A-Z][a-z]+\s){0,2}"
                            r"(?:President|Chairman|Director|Head|Mayor|Minister|Secretary|Governor)"
                            r" of (?:the )?")


_PERSON_MARK = re.compile(r"\b(Mr|Mrs|Ms|Dr|Prof|Mayor|President|King|Queen|Duke|Minister)\b"
                          r"|^[A-Z][a-z]+ [A-Z][a-z]+$")


_ABBREVIATION = re.compile(r"\b(Mr|Mrs|Ms|Dr|St|Jr|Sr|Inc|Co|Ltd|Corp|[A-Z])\.$")


@dataclass(frozen=True)
class _Candidate:
    start: int
    end: int
    kind: str  # "typed" | "chunk" | "quoted" | "name" | "list"


def _stem(word: str) -> str:
    word = re.sub(r"['’]s$", "", word.lower()).strip(".'’")  # "Guy's" is "Guy"
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            word = word[:-len(suffix)]
            break
    # "settle" / "settled", "produce" / "produced": the silent e goes with the suffix
    return (word[:-1] if len(word) > 4 and word.endswith("e") else word)[:6]


def _words(text: str) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), m.group()) for m in _WORD.finditer(text)]


def _trim(sentence: str, start: int, end: int) -> tuple[int, int]:
    """Strip spaces, commas and dangling function words at both ends of a span."""
    text = sentence[start:end]
    lead = len(text) - len(text.lstrip(" ,;:"))
    start += lead
    text = sentence[start:end].rstrip(" ,;:.")
    end = start + len(text)
    words = _words(sentence[start:end])
    while words and words[0][2].lower() in _STOP and words[0][2].lower() not in ("the",):
        start += words[0][1]
        words = _words(sentence[start:end])
        lead = len(sentence[start:end]) - len(sentence[start:end].lstrip(" ,;:"))
        start += lead
        words = _words(sentence[start:end])
    while words and words[-1][2].lower() in _STOP:
        end = start + words[-1][0]
        end = start + len(sentence[start:end].rstrip(" ,;:"))
        words = _words(sentence[start:end])
    return start, end


def _chunks(sentence: str) -> list[_Candidate]:
    """Runs of content words, cut at punctuation and function words."""
    result: list[_Candidate] = []
    run: list[tuple[int, int]] = []
    words = _words(sentence)
    for index, (start, end, word) in enumerate(words):
        gap = sentence[words[index - 1][1]:start] if index else ""
        breaks = any(ch in gap for ch in ",;:()“”\"") or gap.strip(" -")
        if word.lower() in _STOP or breaks:
            if run:
                result.append(_Candidate(run[0][0], run[-1][1], "chunk"))
            run = []
        if word.lower() not in _STOP:
            run.append((start, end))
    if run:
        result.append(_Candidate(run[0][0], run[-1][1], "chunk"))
    # a verb or adverb opening a run is not part of the noun phrase after it
    # ("proving **lower bounds**", "Closely related **fields**"); a lone one stays, as a verb
    trimmed = []
    for chunk in result:
        inner = _words(sentence[chunk.start:chunk.end])
        while len(inner) > 1 and _VERBISH.fullmatch(inner[0][2].lower()):
            inner = inner[1:]
        while len(inner) > 1 and _VERBISH.fullmatch(inner[-1][2]):
            inner = inner[:-1]  # "a small steam engine **built** in Leeds": a clause begins
        offset = chunk.start
        trimmed.append(_Candidate(offset + inner[0][0], offset + inner[-1][1], "chunk"))
    return trimmed


def _coordinated(sentence: str, candidates: list[_Candidate]) -> list[_Candidate]:
    """Lists of candidates joined by commas and *and/or* ("time and storage", "William of
    Volpiano and John of Ravenna"), for questions that ask for two or more things."""
    ordered = sorted({(c.start, c.end): c for c in candidates}.values(), key=lambda c: c.start)
    joined = []
    for index, first in enumerate(ordered):
        end = first.end
        for following in ordered[index + 1:]:
            if following.start < end:
                continue
            if not re.fullmatch(r",?\s+(?:and|or)\s+|,\s+", sentence[end:following.start]):
                break
            end = following.end
            if re.search(r"\b(?:and|or)\s+$", sentence[first.start:following.start]):
                joined.append(_Candidate(first.start, end, "list"))
                break
    return joined


def _typed(sentence: str, kind: PhraseType, question: str = "") -> list[_Candidate]:
    found: list[_Candidate] = []
    if kind in (PhraseType.DATE, PhraseType.RANGE):
        found += [_Candidate(*_trim(sentence, *m.span()), "typed") for m in _DATE.finditer(sentence)]
    if kind is PhraseType.RANGE:
        found += [_Candidate(*_trim(sentence, *m.span()), "typed") for m in re.finditer(
            rf"\b(?:a period of |the past |over )?{_NUM}(?:\s(?:years?|months?|weeks?|days?|hours?|"
            rf"minutes?|decades?|centuries))\b", sentence, re.I)]
    if kind is PhraseType.AMOUNT:
        found += [_Candidate(*_trim(sentence, *m.span()), "typed") for m in _AMOUNT.finditer(sentence)]
    if kind is PhraseType.COUNT:
        for m in _COUNT.finditer(sentence):
            if (_DATE.fullmatch(m.group()) and re.fullmatch(_YEAR, m.group())
                    and not _counted_noun(question, sentence, m.end())):
                continue  # a year is not a count ("2000 kilometres" is)
            found.append(_Candidate(*_trim(sentence, *m.span()), "typed"))
    if kind in (PhraseType.PERSON, PhraseType.ORGANISATION, PhraseType.PLACE, PhraseType.NAME,
                PhraseType.THING):
        for m in _NAME.finditer(sentence):
            start, end = m.span()
            words = m.group().split()
            while words and (words[0] in _CAPITAL_STOP or not words[0][0].isalpha()):
                start += len(words[0]) + 1
                words = words[1:]  # "In 1064" is not a name
            if words and kind is PhraseType.ORGANISATION:
                title = _LEADING_TITLE.match(sentence[start:end])
                start += title.end() if title else 0
            if words and kind is PhraseType.PERSON:
                # "Duke William II of Normandy", "Mayor Sueyoshi of Kitakyushu": a regnal number or
                # a title's holder ends the person's name; "of" names the title's domain
                regnal = re.search(r"\s[IVX]+\b(?= of )|^(?:Mr|Mrs|Ms|Dr|Mayor|President|King|Queen|Duke|"
                                   r"Duchess|Count|Countess|Earl|Prince|Princess|Emperor|Empress|Governor|"
                                   r"Bishop|Archbishop|Lord|Lady|Sir)\.? [A-Z][\w'’\-]+(?= of )",
                                   sentence[start:end])
                end = start + regnal.end() if regnal else end
            # one capitalised word opening the sentence ("Soon", "Many"), or a sentence inside
            # the text ("... or no. Notable examples"), is as likely a plain word as a name:
            # it competes as a chunk, without the name bonus
            opening = len(words) == 1 and not words[0].isupper() and (
                not sentence[:start].strip() or re.search(r"[.!?]\s+$", sentence[:start]) is not None)
            if words and end > start:
                found.append(_Candidate(start, end, "chunk" if opening else "name"))
        if kind is PhraseType.PLACE:
            found = [_Candidate(c.start - len(compass.group()), c.end, c.kind)
                     if (compass := _COMPASS_BEFORE.search(sentence[:c.start])) else c for c in found]
        # a people or group named by its origin: "Turkish forces", "Chinese and Japanese experts"
        found += [_Candidate(m.start(), m.end(), "name") for m in _GROUP.finditer(sentence)
                  if m.group().rsplit(" ", 1)[-1] not in _STOP]
    if kind in (PhraseType.NAME, PhraseType.THING, PhraseType.ORGANISATION):
        found += [_Candidate(m.start(1), m.end(1), "quoted") for m in _QUOTED.finditer(sentence)]
    return [c for c in found if c.end > c.start]


_TITLE_STEMS = frozenset(_stem(w) for w in _word_set("""
Mr Mrs Ms Dr Prof Mayor President King Queen Duke Duchess Count Countess Earl Prince Princess Emperor
Empress Governor Bishop Archbishop Lord Lady Sir Pope Saint
"""))


def find_phrase(question: str, sentence: str) -> Span | None:
    """Offsets in ``sentence`` of the phrase that answers ``question``, or None.

    Args:
        question: The question as asked.
        sentence: The answer sentence (the ranking's best).

    Returns:
        A span of ``sentence`` (date, amount, count, name or short noun phrase), or None
        when the question asks for no such thing or the sentence holds no fitting part.
    """
    kind = phrase_type(question)
    if kind is None or not sentence.strip():
        return None
    asked = {_stem(w) for _, _, w in _words(question) if w.lower() not in _STOP}
    words = _words(sentence)
    shared = [(s, e) for s, e, w in words if w.lower() not in _STOP and _stem(w) in asked]
    typed = _typed(sentence, kind, question)
    candidates = typed if kind not in (PhraseType.THING, PhraseType.NAME) else typed + _chunks(sentence)
    if kind in (PhraseType.PERSON, PhraseType.PLACE):
        candidates = typed
    if re.search(r"\b(?:two|three|four|both)\b", question, re.I):
        candidates = _coordinated(sentence, candidates) + candidates  # ties go to the list
    heads = _wh_heads(question)
    if kind is PhraseType.ORGANISATION and heads:
        # "what group ..." -> "the Dalian environmental model city guidance group" (lower case)
        candidates = candidates + [_Candidate(c.start, c.end, "name") for c in _chunks(sentence)
                                   if _stem(_words(sentence[c.start:c.end])[-1][2]) in heads]
    word_starts = [s for s, _, _ in words]
    money = _money_asked(question) if kind is PhraseType.AMOUNT else None

    def word_at(offset: int) -> int:
        return max(0, bisect.bisect_right(word_starts, offset) - 1)

    shared_words = [word_at(s) for s, _ in shared]
    content = np.array([w.lower() not in _STOP for _, _, w in words], dtype=np.int64)
    best: tuple[float, _Candidate] | None = None
    for candidate in candidates:
        inside = [_stem(w) for _, _, w in _words(sentence[candidate.start:candidate.end])
                  if w.lower() not in _STOP]
        new = [w for w in inside if w not in asked]
        lead = _words(sentence[candidate.start:candidate.end])[:2]
        if (candidate.kind == "name" and len(lead) == 2 and _stem(lead[0][2]) in asked
                and lead[1][2] in ("the", "of", "de", "von", "van", "la", "le", "du", "da")):
            continue  # "(Ralph) the Timid", "(Richard) of Normandy": the asked one's own name
        repeated = len(inside) - len(new)
        if kind is PhraseType.PERSON:
            new = [w for w in new if w not in _TITLE_STEMS]  # "King (Harold II)": a title is no one
        if not new or (len(inside) > 6 and candidate.kind == "chunk"):
            continue  # restates the question, or too long to be a phrase
        first, last = word_at(candidate.start), word_at(max(candidate.end - 1, candidate.start))
        outside = [w for w in shared_words if not first <= w <= last]
        headed = bool(heads) and kind in (PhraseType.THING, PhraseType.NAME) and len(new) < len(inside) and (
            _stem(_words(sentence[candidate.start:candidate.end])[-1][2]) in heads)
        if len(outside) < len(shared_words) and (candidate.kind != "chunk" or headed):
            distance = 0.0  # holds some of the question's words: next to them by definition
        elif outside:
            # content words between the candidate and each shared word ("measured in bits": 0)
            gaps = sorted(int(content[w + 1:first].sum()) if w < first
                          else int(content[last + 1:w].sum()) for w in outside)
            distance = gaps[0] + 0.25 * (gaps[1] if len(gaps) > 1 else gaps[0])
        else:
            distance = 0.0 if shared_words else 12.0
        score = -float(distance) - 0.5 * repeated
        if candidate.kind != "chunk":
            score += {"quoted": 2.5, "list": 3.0}.get(candidate.kind, 2.0)  # "list": two or more asked
        elif _NAMING.search(sentence[:candidate.start]):
            score += CHUNK_NAMED_BONUS  # "is referred to as **a problem instance**"
        if kind is PhraseType.ORGANISATION and (_ORG_HEAD.search(sentence[candidate.start:candidate.end]) or (
                heads and _stem(_words(sentence[candidate.start:candidate.end])[-1][2]) in heads)):
            score += 3.0
        if kind is PhraseType.PERSON and _PERSON_MARK.search(sentence[candidate.start:candidate.end]):
            score += 1.0
        if headed:
            score += WH_HEAD_BONUS  # "what kind of problems" -> "decision problems"
        if kind is PhraseType.COUNT and _counted_noun(question, sentence, candidate.end):
            score += 1.5  # "how many **projects**" -> "nine projects"
        if kind is PhraseType.AMOUNT:
            measured = _MEASURED.search(sentence[candidate.start:candidate.end])
            if not measured:
                score -= 2.0  # "forty thousand (panels)": a count, unless nothing carries a unit
            elif money is not None and money != bool(_MONEY_UNIT.match(measured.group())):
                score -= 1.0  # money asked and a measure given, or the other way round
            elif money is False and _unit_fits(question, measured.group()):
                score += 1.0  # "how much power" -> "300 megawatts", not "2,500 hectares"
        score += _context_bonus(kind, question, sentence, candidate, asked, shared_words, first, last)
        if best is None or score > best[0]:
            best = (score, candidate)
    if best is None:
        return None
    score, candidate = best
    if kind in (PhraseType.THING, PhraseType.NAME) and score < THING_MIN_SCORE:
        return None  # far from anything the question says: a guess, not a phrase
    if candidate.kind == "quoted":
        return Span(candidate.start, candidate.end)  # a title is kept whole, articles and all
    named = kind in (PhraseType.PERSON, PhraseType.PLACE, PhraseType.ORGANISATION, PhraseType.DATE)
    start, end = _strip_asked(sentence, candidate.start, candidate.end, asked, named,
                              keep_head=kind is PhraseType.ORGANISATION)
    if kind is PhraseType.DATE and re.search(r"\b(?:what|which) year\b", question, re.I):
        year = re.search(rf"\b{_YEAR}\b", sentence[start:end])
        if year and not re.search(r"\b(?:to|until|and|-|–)\b", sentence[start:end]):
            start, end = start + year.start(), start + year.end()  # "April 1191" -> "1191"
    return Span(start, end) if end > start else None


#: Lower-case words that are verbs or adverbs, not the head of a noun phrase (no tagger):
#: participles, -ly adverbs and the commonest irregular participles.
_VERBISH = re.compile(r"(?!(?:family|assembly|supply|monopoly|anomaly|reply|ally|rally|butterfly|belly|"
                      r"jelly|lily|bully|gully)$)"
                      r"[a-z]+(?:ed|ly)|(?:taken|given|known|made|seen|done|shown|held|built|found|"
                      r"written|chosen|driven|grown|become|begun|brought|thought|sought|taught|kept|left|"
                      r"meant|put|set|told|won|lost|paid|led|read|run|spent|sent|understood|usually|often)")
#: Score added to a noun phrase that a copula ties to the question's words (after it: "[asked]
#: is **X**"; before it: "**X** are [asked]").  Chosen on the Normans and complexity articles:
#: (before, after) 2 / 1.5 / 1 by 1.5 / 1 / 0; 2 and 1.5 gave more phrases (coverage 0.64)
#: at lower exact match (0.46); 1 / 1.5 kept exact match (0.48) at coverage 0.60.
COPULA_BONUS = 1.0
COPULA_SUBJECT_BONUS = 1.5
_COPULA_BEFORE = re.compile(r"\b(?:is|are|was|were)\s+(?:(?:a|an|the)\s+)?$")
_COPULA_AFTER = re.compile(r"\s+(?:is|are|was|were)\b")


def _passive(text: str) -> bool:
    """Whether ``text`` (what follows a copula) opens with a participle: "was **awarded**"
    is a passive verb, not a definition."""
    following = _words(text[:40])
    return bool(following) and _VERBISH.fullmatch(following[0][2].lower()) is not None


def _word_start(sentence: str, index: int) -> int:
    """Offset of the ``index``-th word of ``sentence``."""
    words = _words(sentence)
    return words[index][0] if index < len(words) else len(sentence)


_PLACE_BEFORE = re.compile(r"\b(?:in|at|to|into|near|from|across|throughout|toward|towards)\s+(?:the\s+)?"
                           r"(?:(?:north|south|east|west)(?:ern)?\s+|(?:far|upper|lower|central)\s+)*$", re.I)
_AGENT_BEFORE = re.compile(r"\bby\s+(?:the\s+)?(?:[A-Za-z]+\s+){0,2}$")  # "by the Byzantine general"
_SUBJECT_QUESTION = re.compile(r"\s*who\s+(?!(?:did|does|do|is|was|were|are|will|would|can|could|has|had|"
                               r"have|should|might|may)\b)[a-z]+", re.I)
_OBJECT_QUESTION = re.compile(r"\s*(?:who|whom)\s+(?:did|does|do|will|would|can|could|should)\b", re.I)


def _context_bonus(kind: PhraseType, question: str, sentence: str, candidate: _Candidate,
                   asked: set[str], shared_words: list[int], first: int, last: int) -> float:
    """What the words around a candidate say about its role (no tagger: a few sure signs).

    * Apposition: a name right after a word of the question ("their **leader** Rollo",
      "the Byzantine **general** Alexius Komnenos") is the one the question means.
    * Places follow a preposition of place ("fled **to** southern Italy").
    * *Who did X ...?* asks for the object, after the question's words; *Who VERBed ...?*
      for the subject, before them, or for the agent of a passive (*by* Sweyn Forkbeard).
    """
    if candidate.kind == "chunk" and kind in (PhraseType.PERSON, PhraseType.PLACE):
        return 0.0
    bonus = 0.0
    before = sentence[:candidate.start]
    if kind in (PhraseType.THING, PhraseType.NAME) and candidate.kind == "chunk":
        opening = _words(sentence[candidate.start:candidate.end])[0][2]
        if _VERBISH.fullmatch(opening.lower()):
            return -1.5  # "is **regarded**", "are **used**": a verb, not the thing asked for
    if kind in (PhraseType.THING, PhraseType.NAME):
        # a definition: "[question's words] is **a computational problem**" or
        # "**Decision problems** are [question's words]"
        if (_COPULA_BEFORE.search(before) and shared_words and min(shared_words) < first
                and not re.search(r"[,;:]", sentence[_word_start(sentence, min(shared_words)):
                                                     candidate.start])):
            bonus += COPULA_BONUS
        elif ((copula := _COPULA_AFTER.match(sentence[candidate.end:])) and shared_words
              and max(shared_words) > last and not _passive(sentence[candidate.end + copula.end():])):
            bonus += COPULA_SUBJECT_BONUS
    previous = _words(before[-40:])
    text = sentence[candidate.start:candidate.end]
    if kind in (PhraseType.PERSON, PhraseType.NAME) and candidate.kind in ("name", "list"):
        if (previous and previous[-1][2].islower() and _stem(previous[-1][2]) in asked
                and not re.fullmatch(_NUM, previous[-1][2], re.I)  # "two (Roman consuls)" is no role
                and re.search(r"\w\s*,?\s*$", before)):
            bonus += 1.5  # "their leader Rollo"
        after = _words(sentence[candidate.end:candidate.end + 40])
        if after and _stem(after[0][2]) in asked and re.match(r"\s*,\s*\w", sentence[candidate.end:]):
            bonus += 1.5  # "Mr. Mizuno, President of ..."
    if kind is PhraseType.PERSON:
        words = _words(text)
        if len(words) > 2 and _stem(words[0][2]) in asked and words[1][2] == "of":
            bonus -= 3.0  # "President of the Association": the office, not its holder
        if len(words) == 1 and re.fullmatch(_DEMONYM, text):
            bonus -= 1.0  # "Chinese" alone describes, it does not name
    place = _PLACE_BEFORE.search(before) if kind is PhraseType.PLACE else None
    if place and (not place.group().lower().startswith("from") or re.search(r"\bfrom\b", question, re.I)):
        bonus += 1.0  # "settled in ...", but "from ..." only when the question asks "from where"
    if kind in (PhraseType.PERSON, PhraseType.PLACE) and candidate.kind == "name" and re.search(
            r"\b(?:named|called)\s+$", before):
        bonus += 1.0  # "A Norman named Oursel"
    if kind is PhraseType.PERSON and shared_words:
        outside = [w for w in shared_words if not first <= w <= last]
        if _SUBJECT_QUESTION.match(question):
            agent = _AGENT_BEFORE.search(before)
            if agent:
                # the words of the agent phrase ("by the Roman general") are no distance
                bonus += 1.5 + sum(w[2].lower() not in _STOP for w in _words(agent.group())[1:])
            elif outside and last < min(outside):
                bonus += 0.5
        elif _OBJECT_QUESTION.match(question) and outside and first > min(outside):
            bonus += 0.5
    return bonus


#: A chunk right after a naming verb ("is called", "known as", "referred to as") is what
#: a "what is the term/name for ..." question asks for.
_NAMING = re.compile(r"\b(?:called|named|termed|dubbed|known as|referred to as|defined as|described as|"
                     r"regarded as|considered|such as|including|namely)\s*(?:the |a |an )?$", re.I)
CHUNK_NAMED_BONUS = 2.0

#: Lowest candidate score (minus its distance in words to the question's words, plus 2
#: for a typed/name/quoted candidate) at which an open *what/which* question gets a phrase.
THING_MIN_SCORE = 1.0


def _strip_asked(sentence: str, start: int, end: int, asked: set[str], named: bool,
                 keep_head: bool = False) -> tuple[int, int]:
    """Drop leading words the question already says ("**Mayor** Sueyoshi"), and trailing
    ones too for names ("Sueyoshi **of Kitakyushu**"), but not for noun phrases, whose
    head the question often repeats ("what machine" -> "Turing machines")."""
    words = _words(sentence[start:end])
    original = len(words)
    while len(words) > 1 and (_stem(words[0][2]) in asked or words[0][2].lower() in _STOP):
        words = words[1:]
    lead_kept = len(words) == original
    # an organisation keeps its head ("City **Government**"), a king his number ("William **II**")
    while len(words) > 1 and (words[-1][2].lower() in _STOP or (
            named and _stem(words[-1][2]) in asked and not keep_head
            and not re.fullmatch(r"[IVX]+", words[-1][2]))):
        words = words[:-1]
    if not words:
        return start, start
    new_end = end if len(words) == original and lead_kept else start + words[-1][1]
    while new_end > start and sentence[new_end - 1] in ".,;:" and not _ABBREVIATION.search(
            sentence[start:new_end]):
        new_end -= 1
    if sentence[new_end - 2:new_end] in ("'s", "’s"):
        new_end -= 2
    return (start if lead_kept else start + words[0][0]), new_end


#: Phrase types whose typed spans (dates, amounts, counts, names) are evidence that a
#: sentence holds the kind of thing asked (``qa.ranking``'s ``typed_pair_z`` column).
EVIDENCE_TYPES: tuple[PhraseType, ...] = (PhraseType.RANGE, PhraseType.DATE, PhraseType.AMOUNT,
                                          PhraseType.COUNT, PhraseType.PERSON, PhraseType.ORGANISATION,
                                          PhraseType.PLACE)

_NAMED = (PhraseType.PERSON, PhraseType.ORGANISATION, PhraseType.PLACE)

#: Markers in an amount's word set: whether it carries a currency or another unit.
_MONEY_MARK, _MEASURE_MARK = "$money", "$measure"


def typed_spans(sentence: str, kind: PhraseType) -> tuple[frozenset[str], ...]:
    """The typed spans of ``kind`` in ``sentence``, each as its set of word stems.

    Why stems, not offsets: this is the question-independent part of "does the sentence hold
    the kind of thing asked", cached per sentence by the ranking (the regular expressions cost
    up to 0.5 ms a sentence); ``holds_asked`` finishes it per question cheaply.  An amount's set
    carries a marker for its currency or other unit (an amount without one is not kept: "forty
    thousand" is a count); a name's is its stems (the question may only repeat it); a year-like
    number is no count.
    """
    found = _typed(sentence, kind)
    result = []
    for candidate in found:
        text = sentence[candidate.start:candidate.end]
        stems = {_stem(w) for _, _, w in _words(text) if w.lower() not in _STOP}
        if kind is PhraseType.AMOUNT:
            measured = _MEASURED.search(text)
            if not measured:
                continue
            stems.add(_MONEY_MARK if _MONEY_UNIT.match(measured.group()) else _MEASURE_MARK)
        elif kind in _NAMED and candidate.kind == "chunk":
            continue  # a capitalised sentence opener, not a name
        result.append(frozenset(stems))
    return tuple(result)


def question_stems(question: str) -> frozenset[str]:
    """Stems of the question's content words (what a typed span may merely repeat)."""
    return frozenset(_stem(w) for _, _, w in _words(question) if w.lower() not in _STOP)


def holds_asked(question: str, kind: PhraseType, asked: frozenset[str],
                spans: tuple[frozenset[str], ...]) -> bool:
    """Whether a sentence's ``typed_spans`` hold what ``question`` (of ``kind``) asks for.

    A money question (*how much was spent*) needs a currency, another *how much NOUN* a
    different unit; a name must bring a word the question does not already say ("Kitakyushu"
    is no answer to "What did Kitakyushu recommend?").
    """
    if kind is PhraseType.AMOUNT:
        money = _money_asked(question)
        if money is None:
            return bool(spans)
        return any((_MONEY_MARK if money else _MEASURE_MARK) in span for span in spans)
    if kind in _NAMED:
        return any(span - asked for span in spans)
    return bool(spans)
