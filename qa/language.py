"""Questions the model cannot read: another script or another language.

Why: the bundled encoder (all-MiniLM-L6-v2) and BM25 both work on English words.  A
question in Chinese still lands near the right passages (names and digits carry over), but
its confidence is low, and a bare "not in the speech" would be wrong: the speech does
answer it.  Such a question gets a plain notice, and the closest passages stay shown.

Detection is deliberately simple and cheap (no language-identification model ships
offline): the share of letters outside the Latin script, or, for Latin-script questions,
common function words of other European languages with no English ones.
"""

from __future__ import annotations

import re
import unicodedata


def _word_set(text: str) -> frozenset[str]:
    """The whitespace-separated words of ``text`` (for long word lists)."""
    return frozenset(text.split())



NOTICE = ("Questions in English work best: this one looks like another language, so it "
          "got no answer; here are the closest passages.")

_WORD = re.compile(r"[^\W\d_]+")

_ENGLISH = _word_set("""
the a an of in on at to for from by with what which who whom whose when where why how is are
was were do does did has have had and or not this that these those it its does many much
""")

#: Frequent function words of languages users of a Latin keyboard write in (none of them
#: English words).
_OTHER = _word_set("""
el la los las del por para con una uno que qué cuándo cuando dónde quién cómo cuál cuánto
este esta estos estas ese esa trata
le les des du une est sont avec pour dans qui quoi quand où comment quel quelle combien
ce cette ces
der die das den dem im hat und ist sind mit für von wann wo wer wie welche welcher warum nicht ein eine
dieser diese dieses
il lo gli della delle che chi quando dove come perché sono quale quanto questo questa cosa
o os as um uma com não quem onde quando porque qual quanto
het een en van wat wie waar wanneer hoe welke niet
""")


def is_latin_letter(char: str) -> bool:
    """Whether ``char`` is a letter of the Latin script (accented letters included)."""
    return char.isalpha() and unicodedata.name(char, "").startswith("LATIN")


def notice_for(question: str) -> str | None:
    """A plain notice when ``question`` is not in English, else None.

    Args:
        question: The cleaned question.

    Returns:
        ``NOTICE`` when over a third of its letters are outside the Latin script (Chinese,
        Japanese, Cyrillic, Arabic, ...), or when it has at least two function words of
        another European language, more than its English ones, or Spanish's opening
        ``¿``/``¡``; otherwise None.
    """
    letters = [c for c in question if c.isalpha()]
    if not letters:
        return None
    foreign_script = sum(not is_latin_letter(c) for c in letters)
    if foreign_script * 3 > len(letters):
        return NOTICE
    if "¿" in question or "¡" in question:
        return NOTICE  # Spanish punctuation: no English question opens with it
    words = [w.lower() for w in _WORD.findall(question)]
    english = sum(w in _ENGLISH for w in words)
    other = sum(w in _OTHER and w not in _ENGLISH for w in words)
    if other >= 2 and other > english:
        return NOTICE
    return None
