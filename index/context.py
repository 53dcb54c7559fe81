"""Sentence-in-context token vectors: each sentence read together with the one before it.

Why: a paraphrased question often names what the answer sentence only points at ("this
project", "it"), or uses the words of the sentence before it. Encoding the previous sentence
and the sentence together as one text gives token vectors that carry that context, and
MaxSim of the question over them (``qa.ranking``, ``pair_maxsim``) lifted held-out
paraphrased questions from 0.574 to 0.662 sent@1 and SQuAD from 0.822 to 0.835 in the
experiment behind it (``bench/RESULTS.md``, issue 12 round 4).

How it is stored (index format 3), with no new file: a sentence's block of rows in the token
table (``offsets[i]:offsets[i+1]``) holds its own token vectors; when the sentence follows
another in the same paragraph, one all-zero row and then the pair's token vectors follow.
Real token vectors are normalised (length 1), so the zero row cannot be mistaken for one.
Every code path that moves token blocks (segments, removal, session layers) keeps working
unchanged, and an index of format 2 (no pair rows) reads as "every sentence opens its
paragraph".
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np

from index.records import SentenceRecord


def previous_in_paragraph(sentences: Sequence[SentenceRecord]) -> list[int]:
    """For each sentence, the index of the sentence before it in its paragraph, or -1.

    The same rule as the ranking's neighbour tables: the previous sentence of the same
    document and paragraph.
    """
    previous = []
    for number, sentence in enumerate(sentences):
        before = sentences[number - 1] if number else None
        same = before is not None and before.doc == sentence.doc and before.paragraph == sentence.paragraph
        previous.append(number - 1 if same else -1)
    return previous


def context_texts(sentence_texts: Sequence[str], previous: Sequence[int]) -> list[str | None]:
    """The text to encode in context for each sentence (None: it opens its paragraph)."""
    return [f"{sentence_texts[before]} {text}" if before >= 0 else None
            for text, before in zip(sentence_texts, previous, strict=True)]


def with_context_rows(own: np.ndarray, context: np.ndarray | None) -> np.ndarray:
    """One sentence's block: its own rows, then (if any) a zero row and the pair's rows."""
    if context is None:
        return own
    separator = np.zeros((1, own.shape[1]), dtype=own.dtype)
    return np.concatenate([own, separator, context.astype(own.dtype)])


def distinct_contexts(texts: Sequence[str | None]) -> list[str]:
    """The distinct texts to encode in context (each forward pass once)."""
    return list(dict.fromkeys(t for t in texts if t is not None))


_ZERO_ROWS: dict[int, tuple[weakref.ref[np.ndarray], np.ndarray]] = {}
_ZERO_LOCK = threading.Lock()


def _zero_rows_of(part: np.ndarray) -> np.ndarray:
    """Row numbers of the all-zero rows of one array, cached per array object.

    Why cached by array: a session's token table stacks the shared table (read by every
    session) with its own; scanning the shared part once per process, not once per
    session, keeps the scan off each session's first question.
    """
    key = id(part)
    with _ZERO_LOCK:
        cached = _ZERO_ROWS.get(key)
        if cached is not None and cached[0]() is part:
            return cached[1]
    rows = np.flatnonzero(~np.asarray(part).any(axis=1)).astype(np.int64)

    def forget(_: object, key: int = key) -> None:
        with _ZERO_LOCK:
            _ZERO_ROWS.pop(key, None)

    with _ZERO_LOCK:
        _ZERO_ROWS[key] = (weakref.ref(part, forget), rows)
    return rows


def separator_rows(tokens: Any) -> np.ndarray:
    """Row numbers of every separator (all-zero) row of a token table, ascending.

    ``tokens`` is a ``(rows, dim)`` array, or a table of stacked parts with a ``parts``
    attribute (a session's union, ``qa.layered.StackedRows``): each part is scanned once.
    """
    parts = getattr(tokens, "parts", None)
    if parts is None:
        return _zero_rows_of(tokens)
    found, start = [], 0
    for part in parts:
        found.append(_zero_rows_of(part) + start)
        start += len(part)
    return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)


def own_ends(tokens: Any, offsets: np.ndarray) -> np.ndarray:
    """For each sentence, the end (exclusive) of its own rows in the token table.

    Equal to ``offsets[i + 1]`` when the sentence has no pair rows; otherwise the pair's
    rows are ``own_ends[i] + 1 : offsets[i + 1]``.
    """
    ends = offsets[1:].copy()
    separators = separator_rows(tokens)
    if separators.size:
        sentence = np.searchsorted(offsets, separators, side="right") - 1
        # One separator per block at most; the first of a block ends its own rows.
        first = np.unique(sentence, return_index=True)[1]
        ends[sentence[first]] = separators[first]
    return ends


__all__ = ["context_texts", "distinct_contexts", "own_ends", "previous_in_paragraph",
           "separator_rows", "with_context_rows"]
