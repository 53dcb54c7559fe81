"""Term statistics of a table (which stemmed words each item holds, how often), and BM25 from them.

Why store counts and not BM25 scores: a BM25 score depends on the whole collection (the
inverse document frequency of each word, the average item length), so scores stored by
one build go stale as soon as a document is added or removed.  Counts do not: an index
made of segments stores each segment's counts, an ``add`` tokenizes only the new text,
and the scores are computed from the merged counts when the index is loaded (vectorised
numpy, ~0.1 s for 60k items).

The scores are exactly bm25s' (method "lucene": Lucene IDF, Robertson term saturation,
k1 1.5, b 0.75, float32), computed with the same operations in the same precision, and
handed to a ``bm25s.BM25`` for querying, so an index built in one go and the same
documents added one by one answer identically (tested against bm25s itself).

On disk a table's statistics are a folder of four files (no pickle):
``vocab.json`` (the words, a JSON list of strings), ``terms.npy`` (int32 word ids),
``counts.npy`` (int32 occurrences, >= 1) and ``offsets.npy`` (int64; item i owns entries
``offsets[i]:offsets[i+1]``).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import bm25s
import numpy as np

from index.errors import IndexLoadError
from index.lexical import LexicalIndex, tokenize

K1 = 1.5
B = 0.75
VOCAB_FILE = "vocab.json"
TERMS_FILE = "terms.npy"
COUNTS_FILE = "counts.npy"
OFFSETS_FILE = "offsets.npy"
FILES = (VOCAB_FILE, TERMS_FILE, COUNTS_FILE, OFFSETS_FILE)


@dataclass(frozen=True)
class TermStats:
    """Which words each item of a table holds and how often (see the module docstring).

    Attributes:
        vocab: The words; ``terms`` index into it.
        offsets: int64 ``(items + 1,)``; item i owns entries ``offsets[i]:offsets[i+1]``.
        terms: int32 word ids, each at most once per item.
        counts: int32 occurrences of each entry's word in its item (>= 1).
    """

    vocab: tuple[str, ...]
    offsets: np.ndarray
    terms: np.ndarray
    counts: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @classmethod
    def from_texts(cls, texts: Sequence[str]) -> TermStats:
        """Tokenize (the same tokenizer as questions) and count the words of every text."""
        words: dict[str, int] = {}
        offsets = np.zeros(len(texts) + 1, dtype=np.int64)
        terms: list[int] = []
        counts: list[int] = []
        for number, tokens in enumerate(tokenize(list(texts))):
            for word, count in Counter(tokens).items():
                terms.append(words.setdefault(word, len(words)))
                counts.append(count)
            offsets[number + 1] = len(terms)
        return cls(tuple(words), offsets, np.asarray(terms, dtype=np.int32),
                   np.asarray(counts, dtype=np.int32))

    @classmethod
    def concat(cls, parts: Sequence[TermStats]) -> TermStats:
        """The items of ``parts`` in order, over one merged vocabulary."""
        if len(parts) == 1:
            return parts[0]
        words: dict[str, int] = {}
        terms, counts, lengths = [], [], []
        for part in parts:
            mapping = np.asarray([words.setdefault(w, len(words)) for w in part.vocab], dtype=np.int32)
            terms.append(mapping[part.terms] if len(part.terms) else part.terms)
            counts.append(part.counts)
            lengths.append(np.diff(part.offsets))
        offsets = np.zeros(sum(len(p) for p in parts) + 1, dtype=np.int64)
        np.cumsum(np.concatenate(lengths), out=offsets[1:])
        return cls(tuple(words), offsets, np.concatenate(terms).astype(np.int32),
                   np.concatenate(counts).astype(np.int32))

    def subset(self, rows: np.ndarray) -> TermStats:
        """Items ``rows`` (in that order), keeping the vocabulary (unused words are harmless)."""
        rows = np.asarray(rows, dtype=np.int64)
        starts, ends = self.offsets[rows], self.offsets[rows + 1]
        lengths = ends - starts
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        take = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends, strict=True)]) \
            if len(rows) else np.zeros(0, dtype=np.int64)
        return TermStats(self.vocab, offsets, self.terms[take], self.counts[take])

    # ------------------------------------------------------------------ BM25
    def bm25(self) -> LexicalIndex:
        """BM25 over these items, exactly as ``bm25s.BM25().index(tokens)`` scores them."""
        n_items = len(self)
        lengths = np.asarray([0], dtype=np.int64)
        if n_items:
            entry_item = np.repeat(np.arange(n_items, dtype=np.int64), np.diff(self.offsets))
            lengths = np.bincount(entry_item, weights=self.counts, minlength=n_items).astype(np.int64)
        else:
            entry_item = np.zeros(0, dtype=np.int64)
        average = lengths.mean() or 1.0  # as bm25s: float64 mean of the token counts
        frequencies = np.bincount(self.terms, minlength=len(self.vocab))
        idf = np.zeros(len(self.vocab), dtype=np.float32)
        for term, df in enumerate(frequencies.tolist()):
            if df:  # math.log, as bm25s (numpy's SIMD log may differ in the last bit)
                idf[term] = math.log(1 + (n_items - df + 0.5) / (df + 0.5))
        saturation = K1 * ((1 - B) + B * lengths.astype(np.float64) / average) if n_items else lengths
        tf = self.counts.astype(np.float32).astype(np.float64)
        tfc = tf / (saturation[entry_item] + tf)
        scores = (idf[self.terms].astype(np.float64) * tfc).astype(np.float32)
        # bm25s' CSC layout: one column per word, rows (items) ascending within it.
        order = np.lexsort((entry_item, self.terms))
        indptr = np.zeros(len(self.vocab) + 1, dtype=np.int64)
        np.cumsum(frequencies, out=indptr[1:])
        model = bm25s.BM25()
        model.scores = {"data": scores[order], "indices": entry_item[order].astype(np.int32),
                        "indptr": indptr, "num_docs": n_items}
        model.vocab_dict = {word: number for number, word in enumerate(self.vocab)}
        model.nonoccurrence_array = None
        return LexicalIndex(model, n_items)

    # ------------------------------------------------------------------ disk
    def save(self, folder: Path) -> None:
        """Write the four files into ``folder`` (created)."""
        folder.mkdir(parents=True, exist_ok=True)
        (folder / VOCAB_FILE).write_text(json.dumps(list(self.vocab), ensure_ascii=False),
                                         encoding="utf-8")
        np.save(folder / TERMS_FILE, self.terms, allow_pickle=False)
        np.save(folder / COUNTS_FILE, self.counts, allow_pickle=False)
        np.save(folder / OFFSETS_FILE, self.offsets, allow_pickle=False)

    @classmethod
    def load(cls, folder: Path, size: int) -> TermStats:
        """Read and validate a table's statistics for ``size`` items.

        Raises:
            IndexLoadError: A file is missing, not ours, of the wrong type or shape, or a
                number points outside the vocabulary or the entries (the message names it).
        """
        vocab_path = folder / VOCAB_FILE
        try:
            vocab = json.loads(vocab_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise IndexLoadError(
                f"{vocab_path}: not a readable JSON word list ({type(exc).__name__})") from exc
        if not isinstance(vocab, list) or not all(isinstance(word, str) for word in vocab):
            raise IndexLoadError(f"{vocab_path}: not a JSON list of words")
        if len(set(vocab)) != len(vocab):
            raise IndexLoadError(f"{vocab_path}: lists a word twice")
        terms = _array(folder / TERMS_FILE, np.int32)
        counts = _array(folder / COUNTS_FILE, np.int32)
        offsets = _array(folder / OFFSETS_FILE, np.int64)
        if offsets.shape != (size + 1,):
            raise IndexLoadError(
                f"{folder / OFFSETS_FILE}: expected {size + 1} offsets, found {offsets.shape}")
        if counts.shape != terms.shape:
            raise IndexLoadError(f"{folder / COUNTS_FILE}: {counts.shape} counts for {terms.shape} terms")
        if offsets[0] != 0 or offsets[-1] != len(terms) or (np.diff(offsets) < 0).any():
            raise IndexLoadError(f"{folder / OFFSETS_FILE}: offsets do not cover the {len(terms)} entries")
        if len(terms) and (terms.min() < 0 or terms.max() >= len(vocab)):
            raise IndexLoadError(f"{folder / TERMS_FILE}: word ids outside the {len(vocab)}-word vocabulary")
        if len(counts) and counts.min() < 1:
            raise IndexLoadError(f"{folder / COUNTS_FILE}: counts must be at least 1")
        stats = cls(tuple(vocab), offsets, terms, counts)
        if len(terms):
            entry_item = np.repeat(np.arange(size, dtype=np.int64), np.diff(offsets))
            keys = entry_item * max(len(vocab), 1) + terms
            if len(np.unique(keys)) != len(keys):
                raise IndexLoadError(f"{folder / TERMS_FILE}: an item lists a word twice")
        return stats


def _array(path: Path, dtype: type[np.generic]) -> np.ndarray:
    """One 1-d ``.npy`` of ``dtype`` without pickle; anything else names the file."""
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, MemoryError) as exc:
        reason = " ".join(str(exc).split())[:120]
        raise IndexLoadError(f"{path}: not a readable .npy array ({reason})") from exc
    if not isinstance(array, np.ndarray) or array.dtype != dtype or array.ndim != 1:
        raise IndexLoadError(f"{path}: expected a 1-d {np.dtype(dtype).name} array")
    return array


def bm25_of(texts: Sequence[str]) -> tuple[TermStats, LexicalIndex]:
    """Statistics and BM25 of ``texts`` (what a build computes beside the model)."""
    stats = TermStats.from_texts(texts)
    return stats, stats.bm25()
