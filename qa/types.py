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
    """

    text: str
    source: str
    start: int
    end: int
    score: float
    highlights: tuple[Span, ...] = field(default_factory=tuple)
    paragraph: int = 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "text": self.text,
            "source": self.source,
            "start": self.start,
            "end": self.end,
            "score": round(self.score, 4),
            "paragraph": self.paragraph,
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
    """

    question: str
    answer: str | None
    confidence: float
    passages: tuple[Passage, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (used by the CLI's ``--json`` and the web API)."""
        return {
            "question": self.question,
            "answer": self.answer,
            "confidence": round(self.confidence, 4),
            "passages": [passage.to_dict() for passage in self.passages],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Answer:
        """Rebuild an ``Answer`` from ``to_dict()`` (e.g. one that crossed a process boundary).

        Scores come back rounded as ``to_dict`` rounded them.
        """
        return cls(
            question=data["question"],
            answer=data["answer"],
            confidence=float(data["confidence"]),
            passages=tuple(
                Passage(text=p["text"], source=p["source"], start=int(p["start"]), end=int(p["end"]),
                        score=float(p["score"]), paragraph=int(p.get("paragraph", 1)),
                        highlights=tuple(Span(int(h["start"]), int(h["end"])) for h in p["highlights"]))
                for p in data["passages"]
            ),
        )
