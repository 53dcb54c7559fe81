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
    """Join the wrapped lines of one paragraph with single spaces, undoing hyphenation."""
    return _join_lines_at(lines)[0]


def _join_lines_at(lines: list[str]) -> tuple[str, list[int]]:
    """``_join_lines`` plus the offset where each line starts in the joined text.

    Built as a list and joined once (linear time whatever the paragraph's length).  The
    offsets let page boundaries survive repair (a page can start mid-paragraph).
    """
    parts: list[str] = []
    starts: list[int] = []
    length = 0
    tail = ""  # the last two characters joined so far
    for line in lines:
        if not parts:
            pass
        elif len(tail) == 2 and tail[1] == "-" and "a" <= tail[0] <= "z" and line[:1].islower():
            parts[-1] = parts[-1][:-1]  # "envi-" + "ronment" -> "environment"
            length -= 1
            tail = tail[0]
        else:
            parts.append(" ")
            length += 1
            tail = " "
        starts.append(length)
        parts.append(line)
        length += len(line)
        tail = (tail + line)[-2:]
    return "".join(parts), starts


def repair_text(raw: str) -> str:
    """Rebuild paragraphs from hard-wrapped, page-broken text.

    Args:
        raw: Text as extracted (any newline convention, form feeds for page breaks).

    Returns:
        Paragraphs separated by exactly one blank line; inside a paragraph, single spaces.
    """
    return repair_pages(raw)[0]


def repair_pages(raw: str) -> tuple[str, tuple[int, ...]]:
    """``repair_text``, also returning where each form-feed-separated page starts.

    Why here and not after: repair joins a sentence broken across a page, so a page can
    begin in the middle of a repaired paragraph (even mid-word, after "envi-" + "ronment");
    only repair knows where each page's first line went.

    Args:
        raw: Text as extracted, pages separated by form feeds (``\\f``).

    Returns:
        The repaired text (identical to ``repair_text(raw)``) and, for each page, the
        offset in it where the page's text starts.  A page with no text starts where the
        next text does (or at the end), so ``bisect_right(starts, offset)`` is the 1-based
        page of an offset.
    """
    text = unicodedata.normalize("NFC", raw)  # NFC never composes across a form feed
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    blocks: list[list[str]] = [[]]
    page_blocks: list[int] = []  # for each page, the block its first line goes into
    for number, page in enumerate(text.split("\f")):
        if number and blocks[-1]:
            blocks.append([])  # a page break ends a block, as the blank line it was
        page_blocks.append(len(blocks) - 1)
        for line in _CONTROL.sub(" ", page).split("\n"):
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
    joined: list[str] = []
    paragraph_starts: list[int] = []
    length = 0
    for group in groups:
        if joined:
            length += 2  # the "\n\n" between groups
        group_text, starts = _join_lines_at(group)
        paragraph_starts.extend(length + start for start in starts)
        joined.append(group_text)
        length += len(group_text)
    repaired = "\n\n".join(joined)
    page_starts = tuple(
        paragraph_starts[block] if block < len(paragraph_starts) else len(repaired)
        for block in page_blocks
    )
    return repaired, page_starts
