"""Result types of the public API: frozen, JSON-ready, the same shape whatever the settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ingest.corpus import SKIP_DUPLICATE, SkippedFile


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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Answer:
        """Rebuild an ``Answer`` from ``to_dict()`` (e.g. one that crossed a process boundary).

        Scores come back rounded as ``to_dict`` rounded them.
        """
        span = data.get("phrase_span")
        return cls(
            question=data["question"],
            answer=data["answer"],
            confidence=float(data["confidence"]),
            passages=tuple(
                Passage(text=p["text"], source=p["source"], start=int(p["start"]), end=int(p["end"]),
                        score=float(p["score"]), paragraph=int(p.get("paragraph", 1)),
                        highlights=tuple(Span(int(h["start"]), int(h["end"])) for h in p["highlights"]),
                        page=None if p.get("page") is None else int(p["page"]))
                for p in data["passages"]
            ),
            phrase=data.get("phrase"),
            phrase_span=Span(int(span["start"]), int(span["end"])) if span else None,
            notice=data.get("notice"),
        )


@dataclass(frozen=True)
class DocumentInfo:
    """One document of a collection, as ``QA.documents`` and ``speech-qa list`` show it.

    Attributes:
        source: Its name in answers (``Passage.source``) and for ``QA.remove``.
        passages: Passages it was cut into.
        sentences: Sentences it holds.
        size: Bytes of its text (UTF-8, after reading and repair; not the file's size).
        added_at: When it joined the collection (UTC, ISO 8601, e.g. ``2026-03-01T09:30:00Z``).
        pages: Its pages, for paged formats (PDF) when the index is loaded; None for
            formats without pages, or when only the manifest was read.
    """

    source: str
    passages: int
    sentences: int
    size: int
    added_at: str
    pages: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"source": self.source, "passages": self.passages, "sentences": self.sentences,
                "size": self.size, "added_at": self.added_at, "pages": self.pages}


@dataclass(frozen=True)
class UpdateReport:
    """What ``QA.from_paths``, ``QA.add`` or ``QA.remove`` did to a collection.

    Attributes:
        added: Sources indexed (new ones and new versions of replaced ones).
        replaced: Sources whose previous version was replaced by new content.
        removed: Sources removed.
        skipped: Files left out, each with its reason: ``unreadable``, ``unsupported``
            or ``duplicate`` (the same file twice, or text already in the collection).
    """

    added: tuple[str, ...] = ()
    replaced: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    skipped: tuple[SkippedFile, ...] = ()

    @property
    def partial(self) -> bool:
        """True when a file could not be indexed (unreadable or unsupported): its content
        is missing from the collection.  Duplicates are not counted: their text is there."""
        return any(item.reason != SKIP_DUPLICATE for item in self.skipped)
