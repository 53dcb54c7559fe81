"""The vector index switch (flat below a threshold, HNSW above) and its recall.

Small random data with a lowered threshold, so the HNSW path runs in milliseconds; no
timing assertions (speed is measured by ``bench/perf.py``, not by tests).
"""

from __future__ import annotations

import gc

import faiss
import numpy as np
import pytest

from index.vectors import (
    FLAT,
    HNSW,
    HNSWParams,
    all_vectors,
    build_vector_index,
    choose_kind,
    describe,
    recall_at_k,
    search,
)

DIMENSION = 32


def clustered(count: int, seed: int = 0, centres: int = 20, spread: float = 0.6) -> np.ndarray:
    """Unit vectors around a few centres: the shape of text embeddings, in miniature.

    The centres are the same for every ``seed`` (one "corpus topic space"); the seed
    draws the points, so queries and stored vectors come from the same distribution.
    """
    middle = np.random.default_rng(12345).standard_normal((centres, DIMENSION)).astype(np.float32)
    middle /= np.linalg.norm(middle, axis=1, keepdims=True)
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((count, DIMENSION)).astype(np.float32) * spread / np.sqrt(DIMENSION)
    vectors = middle[rng.integers(0, centres, count)] + noise
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def uniform(count: int, seed: int = 3) -> np.ndarray:
    """Uniform random unit vectors (no structure: the hardest case for a graph)."""
    vectors = np.random.default_rng(seed).standard_normal((count, DIMENSION)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_choose_kind_switches_at_the_threshold() -> None:
    assert choose_kind(99, threshold=100) == FLAT
    assert choose_kind(100, threshold=100) == HNSW


def test_below_threshold_is_exact_flat_search() -> None:
    vectors = clustered(300)
    index, info = build_vector_index(vectors, threshold=1000)
    assert info == {"kind": FLAT, "count": 300}
    scores, ids = search(index, vectors[7], 5)
    assert ids[0] == 7
    assert scores[0] == pytest.approx(1.0, abs=1e-5)


def test_above_threshold_builds_hnsw_and_records_its_parameters() -> None:
    vectors = clustered(1500)
    index, info = build_vector_index(vectors, threshold=1000, hnsw=HNSWParams(m=8))
    assert isinstance(faiss.downcast_index(index), faiss.IndexHNSWFlat)
    assert info["kind"] == HNSW and info["count"] == 1500 and info["m"] == 8
    assert info["ef_search"] >= 64
    assert info["calibrated_recall_at_10"] >= info["target_recall"]
    assert describe(index)["ef_search"] == info["ef_search"]


def test_hnsw_recall_at_10_against_exact_search() -> None:
    vectors = clustered(2000, seed=1)
    queries = clustered(100, seed=2)
    exact, _ = build_vector_index(vectors, threshold=10**9)
    graph, _ = build_vector_index(vectors, threshold=1000)
    _, truth = exact.search(queries, 10)
    _, found = graph.search(queries, 10)
    assert recall_at_k(found, truth) >= 0.95


def test_calibration_raises_ef_search_on_hard_data() -> None:
    """Uniform random vectors have no neighbourhoods: the calibrated beam must grow."""
    _, easy = build_vector_index(clustered(1500), threshold=1000, hnsw=HNSWParams(m=4, ef_search=16))
    _, hard = build_vector_index(uniform(1500), threshold=1000, hnsw=HNSWParams(m=4, ef_search=16))
    assert hard["kind"] == FLAT or hard["ef_search"] > easy["ef_search"]


def test_a_graph_that_misses_the_target_falls_back_to_exact_search() -> None:
    index, info = build_vector_index(uniform(1500), threshold=1000,
                                     hnsw=HNSWParams(m=2, ef_construction=4, ef_search=16,
                                                     target_recall=1.01))
    assert info["kind"] == FLAT and info["count"] == 1500
    assert 0.0 <= info["hnsw_rejected_recall_at_10"] <= 1.0
    assert isinstance(faiss.downcast_index(index), faiss.IndexFlatIP)


@pytest.mark.parametrize("threshold", [10**9, 100])
def test_all_vectors_is_a_zero_copy_view_that_outlives_the_name(threshold: int) -> None:
    vectors = clustered(400)
    index, _ = build_vector_index(vectors, threshold=threshold)
    view = all_vectors(index)
    del index
    gc.collect()
    np.testing.assert_array_equal(view, vectors)
    assert not view.flags.writeable
    assert not view.flags.owndata


def test_round_trip_keeps_the_calibrated_beam(tmp_path) -> None:  # type: ignore[no-untyped-def]
    vectors = clustered(1200)
    index, info = build_vector_index(vectors, threshold=1000)
    path = str(tmp_path / "v.faiss")
    faiss.write_index(index, path)
    loaded = faiss.read_index(path)
    assert describe(loaded)["ef_search"] == info["ef_search"]
    np.testing.assert_array_equal(all_vectors(loaded), vectors)


def test_recall_at_k_ignores_padding() -> None:
    found = np.array([[1, 2, -1], [4, 5, 6]])
    exact = np.array([[1, 3, -1], [4, 5, 6]])
    assert recall_at_k(found, exact) == pytest.approx(4 / 5)


def test_empty_table() -> None:
    index, info = build_vector_index(np.zeros((0, DIMENSION), dtype=np.float32))
    assert info["count"] == 0
    assert all_vectors(index).shape == (0, DIMENSION)
