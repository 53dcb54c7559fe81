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


def _continues(previous: str, following: str) -> bool:
    """True when a blank-line gap (page break) falls inside a sentence."""
    if previous.endswith("-"):
        return True
    return not _TERMINAL.search(previous) and _starts_lowercase(following)


def _join_lines(lines: list[str]) -> str:
    """Join the wrapped lines of one paragraph with single spaces, undoing hyphenation."""
    out = ""
    for line in lines:
        if not out:
            out = line
        elif re.search(r"[a-z]-$", out) and line[:1].islower():
            out = out[:-1] + line  # "envi-" + "ronment" -> "environment"
        else:
            out = out + " " + line
    return out


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
    merged: list[str] = []
    for paragraph in paragraphs:
        if merged and _continues(merged[-1], paragraph):
            merged[-1] = _join_lines([merged[-1], paragraph])
        else:
            merged.append(paragraph)
    return "\n\n".join(merged)
