"""BM25 over passages or sentences (bm25s), with one tokenizer shared by build and query.

Why bm25s: a small, fast, well-kept library whose save format is JSON plus ``.npy``
arrays loaded with ``allow_pickle=False``, so an index a user hands us cannot run code.
"""

from __future__ import annotations

import functools
from pathlib import Path

import bm25s
import numpy as np
import Stemmer


@functools.lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


def tokenize(texts: list[str]) -> list[list[str]]:
    """Lower-cased, stop-word-free, stemmed tokens (same for documents and questions)."""
    result = bm25s.tokenize(texts, stopwords="en", stemmer=_stemmer(),
                            return_ids=False, show_progress=False)
    return [list(tokens) for tokens in result]  # type: ignore[union-attr]


class LexicalIndex:
    """BM25 scores of every item for a question, from a saved or freshly built bm25s model."""

    def __init__(self, model: bm25s.BM25, size: int) -> None:
        self._model = model
        self.size = size

    @classmethod
    def build(cls, texts: list[str]) -> LexicalIndex:
        """Index ``texts``; item i of the result is ``texts[i]``."""
        model = bm25s.BM25()
        model.index(tokenize(texts), show_progress=False)
        return cls(model, len(texts))

    @classmethod
    def from_tokens(cls, tokens: list[list[str]]) -> LexicalIndex:
        """Index already tokenized texts (``tokenize`` output); item i is ``tokens[i]``.

        Why: a session's layered corpus needs BM25 statistics over the shared corpus plus
        its uploads; the shared texts are tokenized once and reused, not re-read per upload.
        """
        model = bm25s.BM25()
        model.index(tokens, show_progress=False)
        return cls(model, len(tokens))

    def save(self, folder: Path) -> None:
        """Write JSON + ``.npy`` files into ``folder`` (no pickle)."""
        self._model.save(str(folder), allow_pickle=False)

    @classmethod
    def load(cls, folder: Path, size: int) -> LexicalIndex:
        """Load with ``allow_pickle=False``; ``size`` is the expected item count."""
        model = bm25s.BM25.load(str(folder), allow_pickle=False, load_corpus=False)
        return cls(model, size)

    def scores(self, question_tokens: list[str]) -> np.ndarray:
        """BM25 score of every item (zeros when no question word is in the vocabulary)."""
        known = [t for t in question_tokens if t in self._model.vocab_dict]
        if not known:
            return np.zeros(self.size, dtype=np.float32)
        scores = self._model.get_scores(known)
        return np.asarray(scores, dtype=np.float32)
