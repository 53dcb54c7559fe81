"""The dense vector index: which FAISS index to use, and reading vectors back.

Inner product over L2-normalised vectors is cosine similarity.  Exact search
(``IndexFlatIP``) is the right choice at the sizes of a speech or a report collection: it
is exact and, below ``HNSW_THRESHOLD`` items, a single question scans it in a few
milliseconds.  A flat scan grows linearly (measured by ``bench/perf.py scale``: ~0.1-0.5 us
per stored vector on the 2-core benchmark machine, i.e. 10-50 ms at 100k), so larger
tables get an HNSW graph (``IndexHNSWFlat``), whose search time grows roughly with log N.
IVF was measured too (100k clustered vectors: recall@10 1.0 at nprobe 8, 0.15 ms, 26 s to
train and fill, vs HNSW's 0.98 at 0.19 ms, 36 s) and not chosen: it keeps the vectors in its
inverted lists, so the ranking's row access would need a second 1.5 KB copy per vector,
and its quality hinges on a k-means training step; on uniform random vectors both
degrade alike (see ``bench/RESULTS.md``).

HNSW keeps the full float32 vectors as its storage, so ``all_vectors`` (the per-sentence
dot products of the ranking) works the same for both kinds, without a copy.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import faiss
import numpy as np

logger = logging.getLogger(__name__)

FLAT = "flat"
HNSW = "hnsw"

HNSW_THRESHOLD = 20_000
"""Tables with at least this many vectors get an HNSW index (chosen by measurement: a flat
scan of 20k vectors costs ~2-10 ms per question on the 2-core machine, about what
embedding the question costs, and grows linearly; HNSW stays under 1 ms to 1M)."""


@dataclass(frozen=True)
class HNSWParams:
    """HNSW graph parameters (recorded in the manifest).

    Attributes:
        m: Neighbours per node.  Measured on 100k clustered vectors: M=16/efConstruction=40
            builds 1.8x faster than M=32/64 (36 s vs 65 s on the loaded 2-core machine) and
            reaches recall@10 0.98 at efSearch 64 (0.2 ms), where M=32 reaches 0.99 at 32;
            once ``ef_search`` is calibrated both meet the target, so the cheaper build wins.
            Links cost 4 bytes each: ~130 bytes per vector on top of its 1.5 KB of float32.
        ef_construction: Build-time beam (faiss' default 40: build time is what grows the
            ``speech-qa index`` wall time on a large collection).
        ef_search: Smallest query-time beam tried; ``build_vector_index`` raises it until
            the measured recall reaches ``target_recall``.  Stored in the index file.
        target_recall: Recall@10 against exact search that the calibration must reach;
            0.98 leaves a margin for the issue's 0.95 (measured: calibration 0.971 at a
            beam where fresh in-distribution queries got 0.950).
    """

    m: int = 16
    ef_construction: int = 40
    ef_search: int = 64
    target_recall: float = 0.98


DEFAULT_HNSW = HNSWParams()
_EF_LADDER = (16, 32, 64, 128, 256, 512, 1024, 2048)
_CALIBRATION_QUERIES = 200
_RECALL_K = 10


def choose_kind(count: int, threshold: int = HNSW_THRESHOLD) -> str:
    """The index kind for a table of ``count`` vectors."""
    return HNSW if count >= threshold else FLAT


def recall_at_k(found: np.ndarray, exact: np.ndarray) -> float:
    """Mean fraction of each row of ``exact`` ids that also appear in the same row of ``found``."""
    if exact.size == 0:
        return 1.0
    hits = sum(len(set(f[f >= 0].tolist()) & set(e[e >= 0].tolist()))
               for f, e in zip(found, exact, strict=True))
    return hits / float((exact >= 0).sum())


def _calibration_queries(held_out: np.ndarray, stored: np.ndarray, rank: int = 10) -> np.ndarray:
    """Held-out rows plus, for each, its normalised midpoint with its ``rank``-th neighbour.

    Why midpoints: a question is near the passages that answer it, not equal to any of
    them; a held-out row alone lies on the data and is found too easily (measured: 1.0
    recall at a beam that gave 0.92 on off-corpus queries).  Midpoints of *random* pairs
    were tried and rejected: they fall between topics, where no neighbour is near, and
    pushed the beam to 2048 (24 ms) on data that 64 (0.2 ms) served at recall 0.98.
    """
    if len(held_out) == 0 or len(stored) <= rank:
        return held_out
    scores = held_out @ stored.T
    neighbour = np.argpartition(-scores, rank, axis=1)[:, rank]
    mixed = held_out + stored[neighbour]
    midpoints = mixed / np.maximum(np.linalg.norm(mixed, axis=1, keepdims=True), 1e-6)
    return np.ascontiguousarray(np.concatenate([held_out, midpoints.astype(np.float32)]))


def calibrate_ef_search(index: faiss.IndexHNSW, stored: np.ndarray, queries: np.ndarray,
                        minimum: int, target: float) -> tuple[int, float]:
    """Smallest ``efSearch`` whose recall@10 on held-out queries reaches ``target``.

    Why measured per index: the beam a graph needs depends on the data (text embeddings
    cluster and need a small beam; near-uniform vectors need a large one), so a fixed
    value is either slow on easy data or inexact on hard data.  Why held out: a stored
    vector used as a query sits on the graph and is found too easily (measured: 0.97
    "recall" on stored rows where fresh queries got 0.93).

    Args:
        index: The graph holding ``stored`` (and not ``queries``).
        stored: The vectors in ``index``, row i is id i (exact answers come from them).
        queries: Vectors from the same corpus that are not in the graph yet.
        minimum: First ``efSearch`` tried.
        target: Recall@10 to reach.

    Returns:
        The chosen ``efSearch`` (left set on ``index``) and the recall measured with it.
    """
    k = min(_RECALL_K, len(stored))
    if k == 0 or len(queries) == 0:
        index.hnsw.efSearch = minimum
        return minimum, 1.0
    scores = queries @ stored.T
    exact = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    recall = 0.0
    ef = minimum
    for ef in [minimum, *[e for e in _EF_LADDER if e > minimum]]:
        index.hnsw.efSearch = ef
        _, found = index.search(queries, k)
        recall = recall_at_k(found, exact)
        if recall >= target:
            break
    return ef, recall


def build_vector_index(vectors: np.ndarray, threshold: int = HNSW_THRESHOLD,
                       hnsw: HNSWParams = DEFAULT_HNSW) -> tuple[faiss.Index, dict[str, Any]]:
    """Build the index for ``vectors`` (rows L2-normalised).

    Args:
        vectors: One row per item; row i becomes FAISS id i.
        threshold: Row count from which an HNSW graph replaces exact search.
        hnsw: Graph parameters used above the threshold.

    Returns:
        The index and its description for the manifest: ``kind`` (``flat`` or ``hnsw``),
        ``count``, and for HNSW its parameters and the recall@10 its ``efSearch`` was
        calibrated to (see ``calibrate_ef_search``).  Above the threshold, a graph that
        cannot reach ``hnsw.target_recall`` at any beam is replaced by exact search, and
        the recall it reached is recorded as ``hnsw_rejected_recall_at_10``.
    """
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    dimension = vectors.shape[1]
    kind = choose_kind(len(vectors), threshold)
    if kind == FLAT:
        flat = faiss.IndexFlatIP(dimension)
        if len(vectors):
            flat.add(vectors)
        return flat, describe(flat)
    graph = faiss.IndexHNSWFlat(dimension, hnsw.m, faiss.METRIC_INNER_PRODUCT)
    graph.hnsw.efConstruction = hnsw.ef_construction
    # The last rows are added after calibrating, so they serve as unseen queries first
    # (row order, hence ids, is unchanged).
    held_out = min(_CALIBRATION_QUERIES, len(vectors) // 10)
    cut = len(vectors) - held_out
    graph.add(vectors[:cut])
    _, recall = calibrate_ef_search(graph, vectors[:cut], _calibration_queries(vectors[cut:], vectors[:cut]),
                                    hnsw.ef_search, hnsw.target_recall)
    if recall < hnsw.target_recall:
        # Even the widest beam misses neighbours (structureless data: measured 0.73 at
        # efSearch 2048 on 100k uniform random vectors, at half a flat scan's time), so
        # wrong passages would be returned: exact search is the better trade.
        logger.warning("HNSW reached recall@10 %.3f < %.2f on %d vectors; using exact search",
                       recall, hnsw.target_recall, len(vectors))
        del graph
        flat = faiss.IndexFlatIP(dimension)
        flat.add(vectors)
        return flat, dict(describe(flat), hnsw_rejected_recall_at_10=round(recall, 4),
                          target_recall=hnsw.target_recall)
    if held_out:
        graph.add(vectors[cut:])
    return graph, dict(describe(graph), calibrated_recall_at_10=round(recall, 4),
                       target_recall=hnsw.target_recall)


def describe(index: faiss.Index) -> dict[str, Any]:
    """Kind and parameters of an index, for the manifest (so a reader knows what it got)."""
    concrete = faiss.downcast_index(index)
    if isinstance(concrete, faiss.IndexHNSW):
        graph: Any = concrete.hnsw
        return {
            "kind": HNSW, "count": int(index.ntotal),
            "m": int(graph.nb_neighbors(1)),  # links per node above level 0 == M
            "ef_construction": int(graph.efConstruction),
            "ef_search": int(graph.efSearch),
        }
    return {"kind": FLAT, "count": int(index.ntotal)}


class _FaissVectors:
    """A read-only array interface over memory owned by a FAISS index, keeping it alive.

    Why: copying every vector out of FAISS (``reconstruct_n``) doubled the memory of a
    loaded index (1.5 KB per sentence and per passage).  A numpy view costs nothing, and
    because its ``base`` is this object (not an ndarray, so numpy never collapses it away),
    the index that owns the memory lives as long as any view of it.
    """

    def __init__(self, owner: faiss.Index, rows: np.ndarray) -> None:
        self.owner = owner
        self.__array_interface__ = {
            "shape": rows.shape, "typestr": rows.dtype.str, "version": 3,
            "data": (rows.ctypes.data, True),  # True: read-only
        }


def _flat_storage(index: faiss.Index) -> faiss.IndexFlat | None:
    concrete = faiss.downcast_index(index)
    if isinstance(concrete, faiss.IndexHNSW):
        concrete = faiss.downcast_index(concrete.storage)
    return concrete if isinstance(concrete, faiss.IndexFlat) else None


def all_vectors(index: faiss.Index) -> np.ndarray:
    """Every stored vector, row i for item i (for per-sentence dot products).

    A read-only zero-copy view when the index stores plain float32 rows (flat or HNSW);
    a copy otherwise.
    """
    if index.ntotal == 0:
        return np.zeros((0, index.d), dtype=np.float32)
    storage = _flat_storage(index)
    if storage is None:
        return np.asarray(index.reconstruct_n(0, index.ntotal), dtype=np.float32)
    raw = faiss.rev_swig_ptr(storage.get_xb(), storage.ntotal * storage.d)
    rows = np.asarray(raw, dtype=np.float32).reshape(storage.ntotal, storage.d)
    return np.asarray(_FaissVectors(index, rows))


def search(index: faiss.Index, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` items for one normalised query vector: (scores, ids), ids -1 padded."""
    k = max(1, min(k, index.ntotal))
    scores, ids = index.search(np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32), k)
    return scores[0], ids[0]
