"""Validate and normalise a question before it reaches the model.

Why: a blank question cannot be answered, and a 1 MB paste would be truncated by the
model anyway while costing BM25 time; both get a clear message instead.
"""

from __future__ import annotations

import re

from qa.errors import QuestionError

MAX_QUESTION_CHARS = 2000
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff"
                      r"\ud800-\udfff]")
"""Control and invisible formatting characters, bidi overrides, and lone surrogates (which
JSON can carry, e.g. ``"\\ud800"`` sent to ``/ask``, but no tokenizer or UTF-8 output can)."""
_SPACES = re.compile(r"\s+")


MAX_TOP_K = 50
"""Most passages one answer returns, on every surface (Python, CLI, page, JSON API)."""


def check_top_k(top_k: object) -> int:
    """``top_k`` as given, when it is a whole number from 1 to ``MAX_TOP_K`` (bool is not).

    Raises:
        QuestionError: Anything else, naming the range.
    """
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= MAX_TOP_K:
        raise QuestionError(f"top_k must be a whole number from 1 to {MAX_TOP_K}, got {top_k!r}")
    return top_k


def clean_question(question: object) -> str:
    """Return the question with control characters removed and whitespace collapsed.

    Raises:
        QuestionError: Not a string, blank, or longer than ``MAX_QUESTION_CHARS``.
    """
    if not isinstance(question, str):
        raise QuestionError(f"question must be text, got {type(question).__name__}")
    if len(question) > MAX_QUESTION_CHARS:
        raise QuestionError(
            f"question is {len(question)} characters long; the limit is {MAX_QUESTION_CHARS}"
        )
    cleaned = _SPACES.sub(" ", _CONTROL.sub(" ", question)).strip()
    if not cleaned:
        raise QuestionError("question is empty; type a question about the document")
    return cleaned


def question_problem(question: object, top_k: object = 3) -> str | None:
    """Why a question (and passage count) would be refused, or None when it is fine.

    For surfaces that explain a refusal in their own place (the page) without catching
    and re-parsing exceptions.
    """
    try:
        clean_question(question)
        check_top_k(top_k)
    except QuestionError as exc:
        return str(exc)
    return None
