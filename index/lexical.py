"""BM25 over passages or sentences (bm25s), with one tokenizer shared by build and query.

Why bm25s: a small, fast, well-kept library whose save format is JSON plus ``.npy``
arrays loaded with ``allow_pickle=False``, so an index a user hands us cannot run code.
"""

from __future__ import annotations

import functools
import logging
import math
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import bm25s
import numpy as np
import Stemmer

# bm25s sets its own logger to DEBUG, so any handler (the CLI's included) printed
# "Building index from tokens" on every build: its chatter is not for operators.
logging.getLogger("bm25s").setLevel(logging.WARNING)


@functools.lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


#: bm25s's own word pattern and English stop words (``bm25s.tokenize``'s defaults).
_WORD = re.compile(r"(?u)\b\w\w+\b")
_STOPWORDS = frozenset(bm25s.stopwords.STOPWORDS_EN)


def tokenize(texts: list[str]) -> list[list[str]]:
    """Lower-cased, stop-word-free, stemmed tokens (same for documents and questions).

    The same steps as ``bm25s.tokenize(texts, stopwords="en", stemmer=...)``, which it
    replaced: lower-case, bm25s's word pattern, its English stop words, PyStemmer's English
    stemmer (``tests/test_lexical.py`` holds the two equal). Why not call it: it builds three
    (disabled) tqdm bars per call, about 0.3 ms of every question's 1-3 ms of ranking.
    """
    stem = _stemmer().stemWords
    return [stem([word for word in _WORD.findall(text.lower()) if word not in _STOPWORDS])
            for text in texts]


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


class TermPostings:
    """Term frequencies of a block of tokenized texts: for each word, the texts holding it.

    Why: BM25 over a union of blocks (a shared corpus and a visitor's uploads) needs the
    union's statistics (text count, document frequencies, average length); keeping each
    block's raw term frequencies lets ``UnionLexicalIndex`` score the union exactly without
    rebuilding anything for the shared block.
    """

    def __init__(self, tokens: Sequence[Sequence[str]]) -> None:
        self.size = len(tokens)
        self.lengths = np.array([len(words) for words in tokens], dtype=np.float32)
        rows: dict[str, list[int]] = {}
        counts: dict[str, list[int]] = {}
        for row, words in enumerate(tokens):
            for word, count in Counter(words).items():
                rows.setdefault(word, []).append(row)
                counts.setdefault(word, []).append(count)
        self.postings: dict[str, tuple[np.ndarray, np.ndarray]] = {
            word: (np.array(rows[word], dtype=np.int64), np.array(counts[word], dtype=np.float32))
            for word in rows
        }


class UnionLexicalIndex(LexicalIndex):
    """BM25 over several ``TermPostings`` blocks laid end to end, as if indexed together.

    Same scores as ``LexicalIndex.build`` over the concatenated texts (bm25s' defaults:
    Lucene IDF ``ln(1 + (N - df + 0.5) / (df + 0.5))``, ``k1`` 1.5, ``b`` 0.75), computed per
    question from the blocks' postings, so adding a block costs only that block. Not saved:
    it serves in memory (a session's layered corpus).
    """

    k1 = 1.5
    b = 0.75

    def __init__(self, blocks: Sequence[TermPostings]) -> None:
        self.blocks = list(blocks)
        self._offsets = np.cumsum([0, *(block.size for block in self.blocks)])
        size = int(self._offsets[-1])
        super().__init__(None, size)  # type: ignore[arg-type]
        total = float(sum(float(block.lengths.sum()) for block in self.blocks))
        self._average = total / size if size else 1.0
        self._lengths = np.concatenate([block.lengths for block in self.blocks]) if self.blocks \
            else np.zeros(0, dtype=np.float32)

    def save(self, folder: Path) -> None:
        """A union is an in-memory view; save the index built over its texts instead."""
        raise NotImplementedError("a union of BM25 blocks is not saved")

    def scores(self, question_tokens: list[str]) -> np.ndarray:
        """BM25 score of every item of the union (zeros for words no block knows)."""
        out = np.zeros(self.size, dtype=np.float32)
        for word in question_tokens:
            hits = [(block, offset, block.postings[word])
                    for block, offset in zip(self.blocks, self._offsets[:-1], strict=False)
                    if word in block.postings]
            if not hits:
                continue
            frequency = sum(len(rows) for _, _, (rows, _) in hits)
            idf = np.float32(math.log(1 + (self.size - frequency + 0.5) / (frequency + 0.5)))
            for _, offset, (rows, counts) in hits:
                ids = rows + offset
                norm = self.k1 * ((1 - self.b) + self.b * self._lengths[ids] / self._average)
                out[ids] += idf * (counts / (norm + counts))
        return out
