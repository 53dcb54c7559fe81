"""Embedding for big index builds, spread over a Ray cluster (``speech-qa index --ray-address``).

Why an encoder and not a Ray version of the build: building takes any encoder object
(``encode``, and ``encode_with_tokens`` for late interaction), so all the index logic (which
texts, in what order, the tables, FAISS, BM25, the manifest) stays in ``index/`` and the
index written is the one a local build writes. Only the model's forward passes move: the
texts are cut into chunks, and a pool of Ray actors, each holding the bundled model once,
embeds them; results come back in order.

Only ``ui/`` imports Ray. Nothing here is saved: vectors travel as NumPy arrays.
"""

from __future__ import annotations

import logging
import math
import os
from typing import Any

import numpy as np
import ray
from ray.util import ActorPool
from tqdm import tqdm

from qa import default_encoder
from ui.cluster import REPLICA_ENV, start_ray

logger = logging.getLogger(__name__)

CHUNK_TEXTS = 512
"""Texts per Ray task: big enough that a task's overhead (a few ms) is small next to its
model time (seconds), small enough that every worker gets several chunks to balance."""


@ray.remote(num_cpus=1)
class _EncoderWorker:
    """One process with the bundled model loaded once; embeds chunks of texts."""

    def __init__(self) -> None:
        self.encoder = default_encoder()
        self.encoder.warm_up()

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        return self.encoder.encode(texts, batch_size=batch_size)

    def encode_with_tokens(self, texts: list[str], batch_size: int) -> tuple[np.ndarray, list[np.ndarray]]:
        return self.encoder.encode_with_tokens(texts, batch_size=batch_size)


class RayEncoder:
    """The bundled model's ``encode`` / ``encode_with_tokens``, run by a pool of Ray actors.

    Same name and dimension as the bundled encoder, so the manifest is the same and the
    index loads anywhere the bundled model does.
    """

    def __init__(self, workers: int, chunk: int = CHUNK_TEXTS) -> None:
        """Start ``workers`` actors (each loads the model once, on a CPU of the cluster).

        Args:
            workers: Actors to start; Ray places them across the cluster's nodes.
            chunk: Texts per task.
        """
        if workers < 1 or chunk < 1:
            raise ValueError("workers and chunk must be at least 1")
        local = default_encoder()  # its name and dimension only: the weights stay unloaded here
        self.name = local.name
        self.dimension = local.dimension
        self.workers = workers
        self.chunk = chunk
        self._actors = [_EncoderWorker.options(  # type: ignore[attr-defined]
            runtime_env={"env_vars": REPLICA_ENV}).remote() for _ in range(workers)]
        self._pool = ActorPool(self._actors)

    def _chunks(self, texts: list[str]) -> list[list[str]]:
        # At least one chunk per worker when there is enough text, so all of them work.
        size = min(self.chunk, max(1, math.ceil(len(texts) / self.workers)))
        return [texts[i:i + size] for i in range(0, len(texts), size)]

    def _map(self, method: str, texts: list[str], batch_size: int, show_progress: bool) -> list[Any]:
        chunks = self._chunks(texts)
        results = []
        with tqdm(total=len(texts), unit="text", desc=f"embed on {self.workers} Ray workers",
                  disable=not show_progress) as bar:
            for (result, size) in zip(
                self._pool.map(lambda actor, part: getattr(actor, method).remote(part, batch_size), chunks),
                (len(part) for part in chunks), strict=True,
            ):
                results.append(result)
                bar.update(size)
        return results

    def encode(self, texts: list[str], *, batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
        """Normalised float32 rows, in the order of ``texts`` (as the bundled encoder)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        parts = self._map("encode", list(texts), batch_size, show_progress)
        return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)

    def encode_with_tokens(self, texts: list[str], *, batch_size: int = 64,
                           show_progress: bool = False) -> tuple[np.ndarray, list[np.ndarray]]:
        """Sentence vectors and token vectors, as ``BundledEncoder.encode_with_tokens``."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32), []
        parts = self._map("encode_with_tokens", list(texts), batch_size, show_progress)
        vectors = np.ascontiguousarray(np.concatenate([v for v, _ in parts]), dtype=np.float32)
        # Copies: Ray hands back read-only views of its shared memory.
        return vectors, [np.array(tokens, dtype=np.float32) for _, rows in parts for tokens in rows]

    def close(self) -> None:
        """Stop the actors (their model memory is freed on every node)."""
        for actor in self._actors:
            ray.kill(actor)
        self._actors = []


def cluster_encoder(address: str | None, workers: int | None) -> tuple[RayEncoder, bool]:
    """Join ``address`` (or start a local Ray with ``workers`` CPUs) and make the encoder.

    With an address and no ``workers``, one worker per CPU of the cluster.

    Returns:
        ``(encoder, started_ray)``: shut Ray down afterwards if this started it.
    """
    local_cpus = workers or os.cpu_count() or 1
    started = start_ray(address, workers=local_cpus)
    count = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    logger.info("embedding with %d Ray worker(s)", count)
    return RayEncoder(count), started


__all__ = ["CHUNK_TEXTS", "RayEncoder", "cluster_encoder"]
