"""The trained reranker: reads a question with each candidate sentence and scores the pair.

Why a second model: the bi-encoder embeds the question and the sentence apart, so it
cannot tell "the sentence about the award" from "the sentence that says *when* the award
came". A cross-encoder reads both at once. It is trained here (``bench/train_reranker.py``)
from the bundled MiniLM and ships inside this package (``index/models/reranker``: fp16
safetensors, its tokenizer, and ``reranker.json`` with its version, data and figures).

Two outputs per pair, from one forward pass (``index.reranker_model.ReaderRanker``):

- ``relevance``: a logit trained against a fixed "none of these" logit of 0, so a value
  above 0 means "this sentence answers the question" on its own scale, not only "better
  than the other candidates";
- the best answer span inside the sentence (character offsets) and its probability.

Only the few best sentences of the fast ranking are read (``qa.rerank``), so the cost is
a handful of short pairs per question.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from index.errors import ModelLoadError

logger = logging.getLogger(__name__)

RERANKER_DIR = Path(__file__).resolve().parent / "models" / "reranker"
CARD_FILE = "reranker.json"


@dataclass(frozen=True)
class RerankResult:
    """Scores of one question against candidate sentences, in the order given.

    Attributes:
        relevance: ``(n,)`` logits; above 0: the model reads the sentence as answering.
        spans: Per sentence, the best answer span as ``(start, end)`` character offsets
            into that sentence (half-open), or None when the sentence had no tokens.
        span_probability: ``(n,)`` probability of that span (start times end softmax
            over the sentence's tokens): how sure the model is of the phrase.
    """

    relevance: np.ndarray
    spans: tuple[tuple[int, int] | None, ...]
    span_probability: np.ndarray


class PairScorer(Protocol):
    """Anything that scores (question, sentence) pairs: the real model, or a test fake."""

    @property
    def version(self) -> str:
        """Names the weights (part of every cache key an answer goes into)."""
        ...

    def score(self, question: str, sentences: Sequence[str]) -> RerankResult:
        """Score ``question`` against each sentence."""
        ...


@dataclass(frozen=True)
class ModelCard:
    """What ``reranker.json`` says of the shipped weights."""

    version: str
    max_length: int
    max_span_tokens: int

    @classmethod
    def read(cls, folder: Path) -> ModelCard:
        try:
            data = json.loads((folder / CARD_FILE).read_text(encoding="utf-8"))
            return cls(str(data["version"]), int(data["max_length"]), int(data["max_span_tokens"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelLoadError(f"the reranker's card {folder / CARD_FILE} is unreadable: {exc}") from exc


def reranker_available(folder: Path = RERANKER_DIR) -> bool:
    """Whether trained weights are shipped (the ranking works without them, as before)."""
    return (folder / CARD_FILE).is_file() and (folder / "model.safetensors").is_file()


def _best_spans(start: np.ndarray, end: np.ndarray, sequence: np.ndarray, offsets: np.ndarray,
                max_tokens: int) -> tuple[list[tuple[int, int] | None], np.ndarray]:
    """Per row, the most probable (start <= end, at most ``max_tokens``) span of sequence 1."""
    spans: list[tuple[int, int] | None] = []
    probability = np.zeros(start.shape[0], dtype=np.float32)
    for row in range(start.shape[0]):
        tokens = np.flatnonzero(sequence[row] == 1)
        if tokens.size == 0:
            spans.append(None)
            continue
        s = start[row, tokens].astype(np.float64)
        e = end[row, tokens].astype(np.float64)
        s = np.exp(s - s.max())
        s /= s.sum()
        e = np.exp(e - e.max())
        e /= e.sum()
        pair = np.triu(np.outer(s, e)) - np.triu(np.outer(s, e), max_tokens)
        i, j = np.unravel_index(int(np.argmax(pair)), pair.shape)
        probability[row] = pair[i, j]
        spans.append((int(offsets[row, tokens[i], 0]), int(offsets[row, tokens[j], 1])))
    return spans, probability


class Reranker:
    """The shipped cross-encoder, loaded lazily on first use (once per process, locked)."""

    def __init__(self, folder: Path = RERANKER_DIR) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self._run: Any = None

    @cached_property
    def card(self) -> ModelCard:
        return ModelCard.read(self.folder)

    @property
    def version(self) -> str:
        """Names the weights: part of every cache key an answer goes into."""
        return self.card.version

    @cached_property
    def _tokenizer(self) -> Any:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        # longest_first: trims the sentence as only_second would (it is the longer side) and also
        # a question longer than max_length (2,000 characters are allowed), which only_second
        # refuses with an exception.
        tokenizer.enable_truncation(self.card.max_length, strategy="longest_first")
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        return tokenizer

    def warm_up(self) -> None:
        """Load the weights now (a server's start), so the first question is not slower."""
        self._runner()

    def _runner(self) -> Any:
        if self._run is None:
            with self._lock:
                if self._run is None:
                    _ = self.card  # a missing or broken card is named before any weight is read
                    try:
                        self._run = self._load_onnx()
                    except ModelLoadError as exc:
                        logger.warning("reranker: onnxruntime unavailable (%s); running it on torch", exc)
                        self._run = self._load_torch()
        return self._run

    def _load_onnx(self) -> Any:
        """The graph exported once from the shipped weights (``index.onnx_cache``), on onnxruntime."""
        from index.onnx_cache import cached_onnx_session

        folder = self.folder

        def export(dest: Path) -> None:
            from index.reranker_model import export_onnx  # torch: only on a cache miss

            export_onnx(folder, dest)

        def probe(session: Any) -> list[float]:
            ids = np.array([[101, 2043, 2106, 102, 1999, 2541, 102]], dtype=np.int64)
            types = np.array([[0, 0, 0, 0, 1, 1, 1]], dtype=np.int64)
            outputs = session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids),
                                         "token_type_ids": types})
            return [float(outputs[0][0]), float(outputs[1][0, 4]), float(outputs[2][0, 5])]

        session = cached_onnx_session("reranker", [folder / "model.safetensors", folder / "config.json"],
                                      export, probe=probe)

        def run(ids: np.ndarray, mask: np.ndarray, types: np.ndarray) -> tuple[np.ndarray, ...]:
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            return tuple(session.run(None, feed))

        return run

    def _load_torch(self) -> Any:
        try:
            import torch

            from index.reranker_model import ReaderRanker

            model = ReaderRanker.load(self.folder)
        except Exception as exc:  # one clear message for a broken install
            raise ModelLoadError(f"cannot load the reranker at {self.folder}: {exc}") from exc

        def run(ids: np.ndarray, mask: np.ndarray, types: np.ndarray) -> tuple[np.ndarray, ...]:
            with torch.inference_mode():
                outputs = model(torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(types))
            return tuple(o.float().numpy() for o in outputs)

        return run

    def score(self, question: str, sentences: Sequence[str]) -> RerankResult:
        """Relevance and answer span of each sentence for ``question`` (one batch)."""
        if not sentences:
            return RerankResult(np.zeros(0, dtype=np.float32), (), np.zeros(0, dtype=np.float32))
        run = self._runner()
        encodings = self._tokenizer.encode_batch([(question, s) for s in sentences])
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        types = np.array([e.type_ids for e in encodings], dtype=np.int64)
        sequence = np.array([[-1 if s is None else s for s in e.sequence_ids] for e in encodings])
        offsets = np.array([e.offsets for e in encodings], dtype=np.int64)
        relevance, start, end = run(ids, mask, types)
        spans, probability = _best_spans(start, end, sequence, offsets, self.card.max_span_tokens)
        return RerankResult(relevance.astype(np.float32), tuple(spans), probability)


_default: Reranker | None = None
_default_lock = threading.Lock()


def default_reranker() -> Reranker | None:
    """The process-wide shipped reranker, or None when no weights ship with this install."""
    global _default
    with _default_lock:
        if _default is None and reranker_available():
            _default = Reranker()
        return _default
