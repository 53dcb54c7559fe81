"""An encoder wrapper that remembers every embedding on disk (benchmark speed only).

Why: the quality benchmark builds each article's index under several chunking settings
and asks ~1,500 questions (answerable and off-topic) per run; with the cache the model
embeds each distinct text once per machine, so tuning loops cost numpy time, not model
time, on a 2-core box shared with others.  Vectors are stored as ``.npy`` (no pickle),
keyed by the SHA-256 of the text.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from index import Encoder

DEFAULT_DIR = Path(__file__).resolve().parent / "out" / "embeddings"


class CachingEncoder:
    """Delegates to ``inner`` for texts it has not seen; same interface as ``Encoder``."""

    def __init__(self, inner: Encoder, folder: Path = DEFAULT_DIR) -> None:
        self.inner = inner
        self.name = inner.name
        self.dimension = inner.dimension
        self.folder = folder / inner.name.replace("/", "__")
        self.folder.mkdir(parents=True, exist_ok=True)
        self._keys_file = self.folder / "keys.txt"
        self._vectors_file = self.folder / "vectors.npy"
        self._memory: dict[str, np.ndarray] = {}
        if self._keys_file.exists() and self._vectors_file.exists():
            keys = self._keys_file.read_text(encoding="utf-8").split()
            vectors = np.load(self._vectors_file, allow_pickle=False)
            if len(keys) == len(vectors):
                self._memory = dict(zip(keys, vectors, strict=True))
        self.model_calls = 0

    @staticmethod
    def _key(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def encode(self, texts: list[str], *, batch_size: int = 64,
               show_progress: bool = False) -> np.ndarray:
        """Embeddings of ``texts``, computing only the unseen ones (then saved)."""
        keys = [self._key(text) for text in texts]
        missing = list(dict.fromkeys(t for t, k in zip(texts, keys, strict=True) if k not in self._memory))
        if missing:
            self.model_calls += 1
            vectors = self.inner.encode(missing, batch_size=batch_size, show_progress=show_progress)
            for text, vector in zip(missing, vectors, strict=True):
                self._memory[self._key(text)] = vector
            self._save()
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self._memory[key] for key in keys]).astype(np.float32)

    def _save(self) -> None:
        keys = list(self._memory)
        np.save(self._vectors_file, np.stack([self._memory[k] for k in keys]), allow_pickle=False)
        self._keys_file.write_text("\n".join(keys), encoding="utf-8")
