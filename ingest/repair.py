"""Repair text extracted from PDFs and hard-wrapped files into clean paragraphs.

Why: the bundled speech (like most PDF extractions) wraps lines mid-sentence, indents
lines with stray spaces and even breaks a sentence across a page ("the creation of one or
two" ... "“model city” was proposed").  Splitting that text into sentences directly would
cut sentences at page breaks, so we first rebuild paragraphs.  Words are kept verbatim;
only whitespace (and end-of-line hyphenation of a split word) changes.
"""

from __future__ import annotations

import re
import unicodedata

# Sentence-final punctuation, optionally followed by closing quotes/brackets.
_TERMINAL = re.compile(r"[.!?…:;][\"'”’)\]»]*$")
_OPENERS = "\"'“‘([«"
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u3000]+")
# Control characters other than newline and tab are noise from extraction.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def _starts_lowercase(line: str) -> bool:
    stripped = line.lstrip(_OPENERS)
    return bool(stripped) and stripped[0].islower()


_TAIL = 256
"""Characters of a growing paragraph's end that decide how the next piece joins it.

Why only the tail: rescanning the whole paragraph for every joined line made a file that
is one 50 MB paragraph take hours (quadratic); the decisions depend only on its end.
"""


def _continues(previous: str, following: str) -> bool:
    """True when a blank-line gap (page break) falls inside a sentence."""
    if previous.endswith("-"):
        return True
    return not _TERMINAL.search(previous[-_TAIL:]) and _starts_lowercase(following)


def _join_lines(lines: list[str]) -> str:
    """Join the wrapped lines of one paragraph with single spaces, undoing hyphenation.

    Built as a list and joined once (linear time whatever the paragraph's length).
    """
    parts: list[str] = []
    tail = ""  # the last two characters joined so far
    for line in lines:
        if not parts:
            parts.append(line)
        elif len(tail) == 2 and tail[1] == "-" and "a" <= tail[0] <= "z" and line[:1].islower():
            parts[-1] = parts[-1][:-1]  # "envi-" + "ronment" -> "environment"
            parts.append(line)
            tail = tail[0]
        else:
            parts.append(" ")
            parts.append(line)
            tail = " "
        tail = (tail + line)[-2:]
    return "".join(parts)


def repair_text(raw: str) -> str:
    """Rebuild paragraphs from hard-wrapped, page-broken text.

    Args:
        raw: Text as extracted (any newline convention, form feeds for page breaks).

    Returns:
        Paragraphs separated by exactly one blank line; inside a paragraph, single spaces.
    """
    text = unicodedata.normalize("NFC", raw)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n\n")
    text = _CONTROL.sub(" ", text)
    blocks: list[list[str]] = [[]]
    for line in text.split("\n"):
        line = _SPACES.sub(" ", line).strip()
        if line:
            blocks[-1].append(line)
        elif blocks[-1]:
            blocks.append([])
    paragraphs = [_join_lines(block) for block in blocks if block]
    groups: list[list[str]] = []  # paragraphs that a page break split, joined once at the end
    tail = ""  # the end of the current group as joined so far
    for paragraph in paragraphs:
        if groups and _continues(tail, paragraph):
            groups[-1].append(paragraph)
            tail = _join_lines([tail, paragraph])[-_TAIL:]
        else:
            groups.append([paragraph])
            tail = paragraph[-_TAIL:]
    return "\n\n".join(_join_lines(group) for group in groups)
