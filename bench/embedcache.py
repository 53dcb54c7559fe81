"""An encoder wrapper that remembers every embedding on disk (benchmark speed only).

Why: the quality benchmark builds each article's index under several chunking settings
and asks ~1,500 questions (answerable and off-topic) per run; with the cache the model
embeds each distinct text once per machine, so tuning loops cost numpy time, not model
time, on a 2-core box shared with others.  Vectors are stored as ``.npy`` (no pickle),
keyed by the SHA-256 of the text.  Token vectors (late interaction) are cached the same
way, as one flat float16 ``.npy`` plus int64 offsets, for the texts asked for with tokens.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from index import Encoder
from index.encoder import token_encoder

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
        self._token_keys_file = self.folder / "token_keys.txt"
        self._tokens_file = self.folder / "tokens.npy"
        self._token_offsets_file = self.folder / "token_offsets.npy"
        self._tokens: dict[str, np.ndarray] = {}
        if all(f.exists() for f in (self._token_keys_file, self._tokens_file, self._token_offsets_file)):
            keys = self._token_keys_file.read_text(encoding="utf-8").split()
            flat = np.load(self._tokens_file, allow_pickle=False)
            offsets = np.load(self._token_offsets_file, allow_pickle=False)
            if len(offsets) == len(keys) + 1 and offsets[-1] == len(flat):
                self._tokens = {k: flat[offsets[i]:offsets[i + 1]] for i, k in enumerate(keys)}

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

    def encode_with_tokens(self, texts: list[str], *, batch_size: int = 64,
                           show_progress: bool = False) -> tuple[np.ndarray, list[np.ndarray]]:
        """Vectors and token vectors of ``texts`` (only unseen ones go to the model).

        Token vectors come back as float32 but are cached as float16 (what the index
        stores for sentences; for questions the rounding moves MaxSim by ~1e-4).
        """
        inner = token_encoder(self.inner)
        if inner is None:
            raise TypeError(f"{self.inner!r} has no token vectors")
        keys = [self._key(text) for text in texts]
        missing = list(dict.fromkeys(t for t, k in zip(texts, keys, strict=True)
                                     if k not in self._tokens or k not in self._memory))
        if missing:
            self.model_calls += 1
            vectors, tokens = inner.encode_with_tokens(missing, batch_size=batch_size,
                                                       show_progress=show_progress)
            for text, vector, rows in zip(missing, vectors, tokens, strict=True):
                self._memory[self._key(text)] = vector
                self._tokens[self._key(text)] = rows.astype(np.float16)
            self._save()
            self._save_tokens()
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32), []
        return (np.stack([self._memory[key] for key in keys]).astype(np.float32),
                [self._tokens[key].astype(np.float32) for key in keys])

    def _save_tokens(self) -> None:
        keys = list(self._tokens)
        offsets = np.zeros(len(keys) + 1, dtype=np.int64)
        np.cumsum([len(self._tokens[k]) for k in keys], out=offsets[1:])
        np.save(self._tokens_file, np.concatenate([self._tokens[k] for k in keys]), allow_pickle=False)
        np.save(self._token_offsets_file, offsets, allow_pickle=False)
        self._token_keys_file.write_text("\n".join(keys), encoding="utf-8")

    def _save(self) -> None:
        keys = list(self._memory)
        np.save(self._vectors_file, np.stack([self._memory[k] for k in keys]), allow_pickle=False)
        self._keys_file.write_text("\n".join(keys), encoding="utf-8")
