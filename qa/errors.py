"""Errors of the question-answering layer."""

from __future__ import annotations

from ingest.errors import SpeechQAError


class QAError(SpeechQAError):
    """Base of errors the qa layer raises itself."""


class QuestionError(QAError, ValueError):
    """The question is unusable (empty, too long); a ``ValueError`` for callers."""
