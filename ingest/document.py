"""Core ingest types: a document and the sentence/passage spans cut from it.

Offsets always point into ``Document.text`` (the *repaired* text), so every span can be
sliced back out of its document exactly; tests rely on that invariant.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass


@dataclass(frozen=True)
class Document:
    """A readable document after text repair.

    Attributes:
        doc_id: Stable identifier (the file name, unique within a corpus).
        source: Human-readable source name shown to users (the file name).
        text: Repaired text: paragraphs separated by a blank line, words verbatim.
        page_starts: For paged formats (PDF), the offset in ``text`` where each page
            begins, in page order; empty for formats without pages.
    """

    doc_id: str
    source: str
    text: str
    page_starts: tuple[int, ...] = ()

    def page_of(self, offset: int) -> int | None:
        """The 1-based page holding ``offset`` (a passage cites the page it starts on).

        Returns:
            The page number, or None when the document has no pages.
        """
        if not self.page_starts:
            return None
        return max(1, bisect_right(self.page_starts, offset))


@dataclass(frozen=True)
class SentenceSpan:
    """One sentence of a document: ``doc.text[start:end]`` is the sentence."""

    start: int
    end: int
    paragraph: int  # 0-based paragraph number in the document


@dataclass(frozen=True)
class PassageSpan:
    """Consecutive sentences of one paragraph, the unit returned to users.

    Attributes:
        start: Offset of the first sentence in the document text.
        end: End offset of the last sentence.
        paragraph: 0-based paragraph number.
        first_sentence: Index (into the document's sentence list) of the first sentence.
        last_sentence: Index of the last sentence (inclusive).
    """

    start: int
    end: int
    paragraph: int
    first_sentence: int
    last_sentence: int
