"""Result types of the public API: frozen, JSON-ready, the same shape whatever the settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Span:
    """Half-open character offsets ``[start, end)``."""

    start: int
    end: int

    def to_dict(self) -> dict[str, int]:
        """JSON-ready form."""
        return {"start": self.start, "end": self.end}


@dataclass(frozen=True)
class Passage:
    """A returned passage with its answering sentence(s) marked.

    Attributes:
        text: The passage text, exactly ``document_text[start:end]``.
        source: Document name (file name; the speech's is ``dalian_speech.txt``).
        start: Offset of ``text`` in the document's repaired text.
        end: End offset of ``text`` in the document.
        score: Relevance in [0, 1] (calibrated: comparable across questions).
        highlights: Spans *in ``text``* of the answering sentence(s), best first.
        paragraph: 1-based paragraph number in its document (for "where is this").
        page: 1-based page the passage starts on, for paged formats (PDF); None for
            formats without pages.
    """

    text: str
    source: str
    start: int
    end: int
    score: float
    highlights: tuple[Span, ...] = field(default_factory=tuple)
    paragraph: int = 1
    page: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "text": self.text,
            "source": self.source,
            "start": self.start,
            "end": self.end,
            "score": round(self.score, 4),
            "paragraph": self.paragraph,
            "page": self.page,
            "highlights": [span.to_dict() for span in self.highlights],
        }


@dataclass(frozen=True)
class Answer:
    """What a question gets back.

    Attributes:
        question: The question as asked (after whitespace clean-up).
        answer: The best answering sentence, or ``None`` when the corpus does not seem to
            answer (the closest passages are still in ``passages``).
        confidence: Calibrated probability-like score in [0, 1] that ``answer`` answers.
        passages: Best first.
        phrase: The shortest part of ``answer`` that answers (a date, amount, count, name or
            short noun phrase), or ``None`` when there is no answer or no such part.
        phrase_span: Where ``phrase`` is *in the first passage's text* (inside its first
            highlight), or ``None`` with ``phrase``.
        notice: A plain message for the user when the question itself is the problem (e.g.
            another language: "Questions in English work best ..."); ``None`` otherwise.
    """

    question: str
    answer: str | None
    confidence: float
    passages: tuple[Passage, ...]
    phrase: str | None = None
    phrase_span: Span | None = None
    notice: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (used by the CLI's ``--json`` and the web API)."""
        return {
            "question": self.question,
            "answer": self.answer,
            "confidence": round(self.confidence, 4),
            "phrase": self.phrase,
            "phrase_span": self.phrase_span.to_dict() if self.phrase_span else None,
            "notice": self.notice,
            "passages": [passage.to_dict() for passage in self.passages],
        }
