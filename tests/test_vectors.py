"""The vector index switch (flat below a threshold, IVF above, the fp16 scan where IVF
misses its target; HNSW on request) and its recall.

Small random data with a lowered threshold, so the approximate paths run in well under a
second; no timing assertions (speed is measured by ``bench/perf.py``, not by tests).  The
last sections walk real IVF and scan files through ``check_faiss_file``, intact and
tampered with.
"""

from __future__ import annotations

import gc
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pytest

from index.errors import IndexLoadError
from index.faiss_guard import check_faiss_file
from index.vectors import (
    APPROXIMATE_THRESHOLD,
    FLAT,
    HNSW,
    HNSW_THRESHOLD,
    IVF,
    SCAN,
    HNSWParams,
    IVFParams,
    ScanParams,
    all_vectors,
    build_vector_index,
    choose_kind,
    describe,
    ivf_list_count,
    probe_ladder,
    recall_at_k,
    recall_with_ties,
    search,
)

DIMENSION = 32
Built = tuple[np.ndarray, faiss.Index, dict[str, Any]]


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
    """Uniform random unit vectors (no structure: the hardest case for any approximate index)."""
    vectors = np.random.default_rng(seed).standard_normal((count, DIMENSION)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def exact_ids(vectors: np.ndarray, queries: np.ndarray, k: int = 10) -> np.ndarray:
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)
    return flat.search(queries, k)[1]


def assert_refined(index: faiss.Index, base_kind: type, qtype: int, count: int) -> None:
    """``index`` is codes of ``qtype`` in a ``base_kind`` re-ranked by ``count`` exact rows."""
    concrete = faiss.downcast_index(index)
    assert isinstance(concrete, faiss.IndexRefineFlat)
    base = faiss.downcast_index(concrete.base_index)
    assert isinstance(base, base_kind)
    assert base.sq.qtype == qtype
    assert base.ntotal == concrete.refine_index.ntotal == index.ntotal == count


@pytest.fixture(scope="module")
def ivf_built() -> Built:
    """2,000 clustered vectors above a threshold of 1,000: the ivf kind (built once)."""
    vectors = clustered(2000)
    index, info = build_vector_index(vectors, threshold=1000)
    return vectors, index, info


@pytest.fixture(scope="module")
def scan_built() -> Built:
    """2,000 uniform random vectors above a threshold of 1,000: IVF misses, the scan kind."""
    vectors = uniform(2000)
    index, info = build_vector_index(vectors, threshold=1000)
    return vectors, index, info


# ---------------------------------------------------------------------------- the switch
def test_choose_kind_switches_at_the_threshold() -> None:
    assert choose_kind(99, threshold=100) == FLAT
    assert choose_kind(100, threshold=100) == IVF
    assert choose_kind(100, threshold=100, approximate=HNSW) == HNSW
    assert choose_kind(0, threshold=0) == FLAT
    assert HNSW_THRESHOLD == APPROXIMATE_THRESHOLD  # the former name, still imported by bench/perf.py


def test_below_threshold_is_exact_flat_search() -> None:
    vectors = clustered(300)
    index, info = build_vector_index(vectors, threshold=1000)
    assert info == {"kind": FLAT, "count": 300}
    scores, ids = search(index, vectors[7], 5)
    assert ids[0] == 7
    assert scores[0] == pytest.approx(1.0, abs=1e-5)


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown vector index kind"):
        build_vector_index(clustered(200), threshold=100, approximate="lsh")


# ---------------------------------------------------------------------------- IVF
def test_above_threshold_builds_ivf_and_records_its_parameters(ivf_built: Built) -> None:
    _, index, info = ivf_built
    assert_refined(index, faiss.IndexIVFScalarQuantizer, faiss.ScalarQuantizer.QT_8bit, 2000)
    assert info["kind"] == IVF and info["count"] == 2000 and info["codec"] == "sq8"
    # 1,800 rows train k-means (200 are held out for the calibration): 46 lists of >= 39 rows
    assert info["nlist"] == ivf_list_count(2000, 1800) == 46
    assert info["nprobe"] in probe_ladder(46)
    assert info["k_factor"] == IVFParams().k_factor
    assert info["calibrated_recall_at_10"] >= info["target_recall"] == IVFParams().target_recall
    assert describe(index) == {k: v for k, v in info.items()
                               if k not in ("calibrated_recall_at_10", "target_recall")}


def test_ivf_keeps_row_order_as_ids(ivf_built: Built) -> None:
    """The held-out rows are added after the calibration: ids must still be row numbers."""
    vectors, index, _ = ivf_built
    for row in (0, 1, 1799, 1800, 1999):
        scores, ids = search(index, vectors[row], 3)
        assert ids[0] == row
        assert scores[0] == pytest.approx(1.0, abs=1e-4)


def test_ivf_recall_at_10_against_exact_search() -> None:
    vectors = clustered(2000, seed=1)
    queries = clustered(100, seed=2)
    index, info = build_vector_index(vectors, threshold=1000)
    assert info["kind"] == IVF
    _, found = index.search(queries, 10)
    assert recall_at_k(found, exact_ids(vectors, queries)) >= 0.95
    one = np.stack([search(index, query, 10)[1] for query in queries])  # the product's call
    np.testing.assert_array_equal(one, found)


def test_calibration_raises_nprobe_on_harder_data() -> None:
    """Wider clusters overlap more lists: the calibrated probe count must grow."""
    _, easy = build_vector_index(clustered(2000), threshold=1000)
    _, hard = build_vector_index(clustered(2000, spread=1.2), threshold=1000)
    assert easy["kind"] == IVF
    assert hard["kind"] != IVF or hard["nprobe"] > easy["nprobe"]


# ---------------------------------------------------------------------------- the scan
def test_uniform_random_data_gets_the_scan_and_records_why(scan_built: Built) -> None:
    """No neighbourhoods: no probe count up to the cap reaches 0.98, so every row's fp16 code
    is scanned and the shortlist re-ranked exactly against the float32 rows."""
    _, index, info = scan_built
    assert_refined(index, faiss.IndexScalarQuantizer, faiss.ScalarQuantizer.QT_fp16, 2000)
    assert info["kind"] == SCAN and info["count"] == 2000 and info["codec"] == "fp16"
    assert info["k_factor"] in ScanParams().k_factors
    assert info["calibrated_recall_at_10"] >= info["target_recall"] == ScanParams().target_recall
    assert 0.0 <= info["ivf_rejected_recall_at_10"] < IVFParams().target_recall  # why not IVF
    assert "ivf_target_recall" not in info  # the same target as the scan's
    assert describe(index) == {k: v for k, v in info.items()
                               if k not in ("calibrated_recall_at_10", "target_recall",
                                            "ivf_rejected_recall_at_10")}


def test_scan_recall_at_10_against_exact_search(scan_built: Built) -> None:
    vectors, index, _ = scan_built
    queries = uniform(200, seed=8)
    _, found = index.search(queries, 10)
    assert recall_at_k(found, exact_ids(vectors, queries)) >= 0.95
    one = np.stack([search(index, query, 10)[1] for query in queries])  # the product's call
    np.testing.assert_array_equal(one, found)


def test_scan_keeps_row_order_as_ids(scan_built: Built) -> None:
    """The held-out rows are added after the calibration: ids must still be row numbers."""
    vectors, index, _ = scan_built
    for row in (0, 1, 1799, 1800, 1999):
        scores, ids = search(index, vectors[row], 3)
        assert ids[0] == row
        assert scores[0] == pytest.approx(1.0, abs=1e-5)  # re-ranked: the exact float32 score


def test_scan_calibration_raises_k_factor_for_a_stricter_target() -> None:
    _, info = build_vector_index(uniform(2000), threshold=1000, scan=ScanParams(target_recall=1.0))
    assert info["kind"] == SCAN and info["k_factor"] > ScanParams().k_factors[0]
    assert info["calibrated_recall_at_10"] == 1.0
    assert info["ivf_target_recall"] == IVFParams().target_recall  # IVF was held to its own


def test_an_unreachable_target_falls_back_to_exact_search() -> None:
    """IVF and the scan both miss: exact search, with both recalls recorded."""
    impossible = 1.01
    index, info = build_vector_index(clustered(2000), threshold=1000, ivf=IVFParams(target_recall=impossible),
                                     scan=ScanParams(target_recall=impossible))
    assert info["kind"] == FLAT and info["count"] == 2000 and info["target_recall"] == impossible
    assert 0.9 <= info["ivf_rejected_recall_at_10"] <= 1.0
    assert 0.9 <= info["scan_rejected_recall_at_10"] <= 1.0
    assert isinstance(faiss.downcast_index(index), faiss.IndexFlatIP)


def test_an_ivf_miss_alone_does_not_give_up_the_approximate_index() -> None:
    """Clustered data held to an unreachable IVF target still gets the scan, not exact search."""
    vectors = clustered(2000)
    index, info = build_vector_index(vectors, threshold=1000, ivf=IVFParams(target_recall=1.01))
    assert info["kind"] == SCAN and info["ivf_target_recall"] == 1.01
    assert 0.9 <= info["ivf_rejected_recall_at_10"] <= 1.0
    queries = clustered(100, seed=2)
    assert recall_at_k(index.search(queries, 10)[1], exact_ids(vectors, queries)) >= 0.95


def test_builds_are_deterministic() -> None:
    vectors = clustered(2000, seed=4)
    first, _ = build_vector_index(vectors, threshold=1000)
    second, _ = build_vector_index(vectors, threshold=1000)
    np.testing.assert_array_equal(faiss.serialize_index(first), faiss.serialize_index(second))


def test_probe_ladder() -> None:
    assert probe_ladder(1) == [1]
    assert probe_ladder(46) == [1, 2, 4, 8, 11]
    assert probe_ladder(64) == [1, 2, 4, 8, 16]
    assert probe_ladder(1265) == [1, 2, 4, 8, 16, 32, 64, 128, 256, 316]


# ---------------------------------------------------------------------------- HNSW (on request)
def test_hnsw_on_request_records_its_parameters() -> None:
    vectors = clustered(1500)
    index, info = build_vector_index(vectors, threshold=1000, hnsw=HNSWParams(m=8), approximate=HNSW)
    assert isinstance(faiss.downcast_index(index), faiss.IndexHNSWFlat)
    assert info["kind"] == HNSW and info["count"] == 1500 and info["m"] == 8
    assert info["ef_search"] >= 64
    assert info["calibrated_recall_at_10"] >= info["target_recall"]
    assert describe(index)["ef_search"] == info["ef_search"]
    queries = clustered(100, seed=2)
    _, found = index.search(queries, 10)
    assert recall_at_k(found, exact_ids(vectors, queries)) >= 0.95


def test_hnsw_calibration_raises_ef_search_on_hard_data() -> None:
    """Uniform random vectors have no neighbourhoods: the calibrated beam must grow."""
    _, easy = build_vector_index(clustered(1500), threshold=1000, hnsw=HNSWParams(m=4, ef_search=16),
                                 approximate=HNSW)
    _, hard = build_vector_index(uniform(1500), threshold=1000, hnsw=HNSWParams(m=4, ef_search=16),
                                 approximate=HNSW)
    assert hard["kind"] != HNSW or hard["ef_search"] > easy["ef_search"]


def test_a_graph_that_misses_the_target_falls_back_to_the_scan() -> None:
    index, info = build_vector_index(uniform(1500), threshold=1000,
                                     hnsw=HNSWParams(m=2, ef_construction=4, ef_search=16,
                                                     target_recall=1.01), approximate=HNSW)
    assert info["kind"] == SCAN and info["count"] == 1500
    assert 0.0 <= info["hnsw_rejected_recall_at_10"] <= 1.0
    assert info["hnsw_target_recall"] == 1.01
    assert isinstance(faiss.downcast_index(index), faiss.IndexRefineFlat)


# ---------------------------------------------------------------------------- vectors, files
@pytest.mark.parametrize(("data", "threshold", "approximate", "kind"), [
    (clustered, 10**9, IVF, FLAT), (clustered, 1000, IVF, IVF), (clustered, 1000, HNSW, HNSW),
    (uniform, 1000, IVF, SCAN),
])
def test_all_vectors_is_a_zero_copy_view_that_outlives_the_name(
        data: Callable[[int], np.ndarray], threshold: int, approximate: str, kind: str) -> None:
    vectors = data(2000)
    index, info = build_vector_index(vectors, threshold=threshold, approximate=approximate)
    assert info["kind"] == kind
    view = all_vectors(index)
    del index
    gc.collect()
    np.testing.assert_array_equal(view, vectors)
    assert not view.flags.writeable
    assert not view.flags.owndata


def read_checked(path: Path) -> faiss.Index:
    """What ``CorpusIndex.load`` does: the guard walks the file, then FAISS reads it."""
    check_faiss_file(path)
    return faiss.read_index(str(path))


@pytest.mark.parametrize(("data", "approximate", "kind"), [
    (clustered, IVF, IVF), (clustered, HNSW, HNSW), (uniform, IVF, SCAN),
])
def test_round_trip_keeps_the_calibrated_parameters_and_results(
        tmp_path: Path, data: Callable[..., np.ndarray], approximate: str, kind: str) -> None:
    vectors = data(2000)
    queries = data(50, seed=9)
    # a k_factor other than IndexRefineFlat's default 1, so that only the file can carry it
    index, info = build_vector_index(vectors, threshold=1000, approximate=approximate,
                                     scan=ScanParams(k_factors=(3.0,)))
    assert info["kind"] == kind
    path = tmp_path / "v.faiss"
    faiss.write_index(index, str(path))
    loaded = read_checked(path)
    assert describe(loaded) == describe(index)  # nprobe / k_factor / efSearch travel in the file
    if kind == SCAN:
        refined: Any = faiss.downcast_index(loaded)
        assert describe(loaded)["k_factor"] == refined.k_factor == 3.0
    np.testing.assert_array_equal(loaded.search(queries, 10)[1], index.search(queries, 10)[1])
    np.testing.assert_array_equal(all_vectors(loaded), vectors)
    assert not all_vectors(loaded).flags.owndata


def test_recall_at_k_ignores_padding() -> None:
    found = np.array([[1, 2, -1], [4, 5, 6]])
    exact = np.array([[1, 3, -1], [4, 5, 6]])
    assert recall_at_k(found, exact) == pytest.approx(4 / 5)


def test_recall_with_ties_counts_equally_near_rows_and_not_farther_ones() -> None:
    stored = np.array([[1, 0], [1, 0], [1, 0], [0.6, 0.8], [0, 1]], dtype=np.float32)
    queries = np.array([[1, 0]], dtype=np.float32)
    kth = np.array([1.0])  # exact top 2: any two of the three identical rows
    assert recall_with_ties(np.array([[2, 1]]), queries, stored, kth) == 1.0
    assert recall_with_ties(np.array([[2, 3]]), queries, stored, kth) == 0.5
    assert recall_with_ties(np.array([[0, -1]]), queries, stored, kth) == 0.5
    assert recall_at_k(np.array([[2, 1]]), np.array([[0, 1]])) == 0.5  # ids alone call a tie a miss


def test_repeated_rows_still_get_the_approximate_index() -> None:
    """A collection that repeats its sentences (ties at the top) is not pushed to exact search."""
    distinct = clustered(600, seed=11)
    vectors = np.repeat(distinct, 12, axis=0)  # every row 12 times: the exact top 10 are ties
    index, info = build_vector_index(vectors, threshold=2_000)
    assert info["kind"] == IVF, info
    queries = clustered(100, seed=12)
    kth = faiss.knn(queries, vectors, 10, metric=faiss.METRIC_INNER_PRODUCT)[0][:, 9]
    assert recall_with_ties(index.search(queries, 10)[1], queries, vectors, kth) >= 0.95


def test_empty_table() -> None:
    index, info = build_vector_index(np.zeros((0, DIMENSION), dtype=np.float32))
    assert info["count"] == 0
    assert all_vectors(index).shape == (0, DIMENSION)


# ---------------------------------------------------------------------------- the file guard
@pytest.fixture(scope="module")
def ivf_bytes(ivf_built: Built) -> bytes:
    return bytes(faiss.serialize_index(ivf_built[1]))


def refused(path: Path, data: bytes, *phrases: str) -> str:
    path.write_bytes(data)
    with pytest.raises(IndexLoadError) as caught:
        check_faiss_file(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: not a readable FAISS index"), message
    for phrase in phrases:
        assert phrase in message, message
    return message


def list_sizes_offset(data: bytes) -> int:
    """Where the first list size sits: after ``ilar``, nlist, code size, ``full``, count."""
    at = data.index(b"ilar")
    assert data[at + 20:at + 24] == b"full"
    return at + 32


def test_guard_accepts_a_real_ivf_file_and_faiss_reads_it(tmp_path: Path, ivf_built: Built,
                                                          ivf_bytes: bytes) -> None:
    _, index, _ = ivf_built
    path = tmp_path / "v.faiss"
    path.write_bytes(ivf_bytes)
    assert check_faiss_file(path) == (DIMENSION, 2000)
    assert describe(faiss.read_index(str(path))) == describe(index)


def test_guard_accepts_sparse_list_sizes(tmp_path: Path) -> None:
    """A table smaller than half its lists writes (list, size) pairs, not one size per list."""
    vectors = clustered(600)
    base = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(DIMENSION), DIMENSION, 12,
                                         faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
    base.train(vectors)
    index = faiss.IndexRefineFlat(base)
    index.add(vectors[:3])
    path = tmp_path / "sparse.faiss"
    faiss.write_index(index, str(path))
    assert b"sprs" in path.read_bytes()
    assert check_faiss_file(path) == (DIMENSION, 3)
    assert faiss.read_index(str(path)).ntotal == 3


def test_guard_refuses_every_truncation_of_an_ivf_file(tmp_path: Path, ivf_bytes: bytes) -> None:
    path = tmp_path / "v.faiss"
    sizes = list_sizes_offset(ivf_bytes)
    cuts = sorted({*range(0, 160), *range(sizes - 200, sizes + 8 * 46 + 64),  # every field boundary
                   *range(160, len(ivf_bytes), 1009), *range(len(ivf_bytes) - 200, len(ivf_bytes))})
    for keep in cuts:
        refused(path, ivf_bytes[:keep])


def test_guard_refuses_trailing_bytes(tmp_path: Path, ivf_bytes: bytes) -> None:
    refused(tmp_path / "v.faiss", ivf_bytes + b"\0" * 8, "unexpected bytes")


@pytest.mark.parametrize("claim", [2**20, 2**40, 2**63 - 1])
def test_guard_refuses_a_list_size_inflated_past_the_end(tmp_path: Path, ivf_bytes: bytes, claim: int,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    data = bytearray(ivf_bytes)
    at = list_sizes_offset(ivf_bytes)
    (first,) = struct.unpack_from("<Q", data, at)
    struct.pack_into("<Q", data, at, claim)
    refused(tmp_path / "v.faiss", bytes(data), "vectors, the header says 2000")
    struct.pack_into("<Q", data, at + 8, 0)  # keep the sum: move list 1's rows to list 0
    (second,) = struct.unpack_from("<Q", ivf_bytes, at + 8)
    struct.pack_into("<Q", data, at, first + second)
    refused(tmp_path / "v.faiss", bytes(data))  # the sizes add up, but not the data after them


def test_guard_refuses_list_ids_outside_the_table(tmp_path: Path, ivf_bytes: bytes) -> None:
    """The refine step reads rows by these ids: one past the end would read past the rows."""
    data = bytearray(ivf_bytes)
    at = list_sizes_offset(ivf_bytes)
    (first,) = struct.unpack_from("<Q", data, at)
    ids_at = at + 8 * 46 + first * DIMENSION  # list 0's codes, then its ids
    assert 0 <= struct.unpack_from("<q", data, ids_at)[0] < 2000
    struct.pack_into("<q", data, ids_at, 2000)
    refused(tmp_path / "v.faiss", bytes(data), "outside 0..1999")


@pytest.mark.parametrize(("field", "value", "phrase"), [
    ("k_factor", 1e9, "k_factor"), ("k_factor", 0.0, "k_factor"),
    ("nprobe", 0, "nprobe"), ("nprobe", 47, "nprobe"), ("nlist", 47, "quantizer"),
])
def test_guard_refuses_parameters_a_search_would_trust(tmp_path: Path, ivf_bytes: bytes, field: str,
                                                       value: float, phrase: str) -> None:
    data = bytearray(ivf_bytes)
    if field == "k_factor":
        struct.pack_into("<f", data, len(data) - 4, value)
    else:  # IxRF + header (4 + 33), IwSq + header (4 + 33), then nlist, nprobe
        struct.pack_into("<Q", data, 74 + (8 if field == "nprobe" else 0), int(value))
    refused(tmp_path / "v.faiss", bytes(data), phrase)


def foreign(kind: str) -> faiss.Index:
    vectors = clustered(600)
    quantizer = faiss.IndexFlatIP(DIMENSION)
    if kind == "ivf-pq":
        base: faiss.Index = faiss.IndexIVFPQ(quantizer, DIMENSION, 8, 4, 8, faiss.METRIC_INNER_PRODUCT)
    elif kind == "ivf-flat":
        base = faiss.IndexIVFFlat(quantizer, DIMENSION, 8, faiss.METRIC_INNER_PRODUCT)
    elif kind == "sq4":
        base = faiss.IndexIVFScalarQuantizer(quantizer, DIMENSION, 8, faiss.ScalarQuantizer.QT_4bit,
                                             faiss.METRIC_INNER_PRODUCT)
    elif kind == "hnsw-quantizer":
        hnsw_quantizer = faiss.IndexHNSWFlat(DIMENSION, 8, faiss.METRIC_INNER_PRODUCT)
        base = faiss.IndexIVFScalarQuantizer(hnsw_quantizer, DIMENSION, 8, faiss.ScalarQuantizer.QT_8bit,
                                             faiss.METRIC_INNER_PRODUCT)
    elif kind == "bare-ivf-sq8":
        base = faiss.IndexIVFScalarQuantizer(quantizer, DIMENSION, 8, faiss.ScalarQuantizer.QT_8bit,
                                             faiss.METRIC_INNER_PRODUCT)
        base.train(vectors)
        base.add(vectors)
        return base
    else:  # refine over a flat index (no IVF)
        base = faiss.IndexFlatIP(DIMENSION)
    base.train(vectors)
    index = faiss.IndexRefineFlat(base)
    index.add(vectors)
    return index


@pytest.mark.parametrize(("kind", "phrase"), [
    ("ivf-pq", "refined index of kind b'IwPQ'"), ("ivf-flat", "refined index of kind b'IwFl'"),
    ("flat", "refined index of kind b'IxFI'"), ("sq4", "8-bit codes"),
    ("hnsw-quantizer", "IVF quantizer of kind b'IHNf'"), ("bare-ivf-sq8", "not one speech-qa writes"),
])
def test_guard_refuses_a_foreign_sub_kind(tmp_path: Path, kind: str, phrase: str) -> None:
    refused(tmp_path / "v.faiss", bytes(faiss.serialize_index(foreign(kind))), phrase)


def test_an_hnsw_file_from_the_previous_version_passes_and_loads(tmp_path: Path) -> None:
    vectors = clustered(1500)
    graph = faiss.IndexHNSWFlat(DIMENSION, 16, faiss.METRIC_INNER_PRODUCT)  # as 0.x built it
    graph.hnsw.efSearch = 128
    graph.add(vectors)
    path = tmp_path / "sentences.faiss"
    faiss.write_index(graph, str(path))
    loaded = read_checked(path)
    assert describe(loaded)["kind"] == HNSW and describe(loaded)["ef_search"] == 128
    assert search(loaded, vectors[5], 1)[1][0] == 5
    np.testing.assert_array_equal(all_vectors(loaded), vectors)
    data = bytearray(path.read_bytes())
    ef_search_at = data.index(b"IxFI") - 8  # efSearch, then the deprecated upper_beam, then storage
    assert struct.unpack_from("<i", data, ef_search_at)[0] == 128
    struct.pack_into("<i", data, ef_search_at, 2**31 - 1)  # a search would allocate 16 GB of heap
    refused(path, bytes(data), "efSearch")


# ---------------------------------------------------------------------------- the file guard: scan
# IxRF header, then IxSQ + its header, the quantizer (qtype, rangestat, rangestat_arg, d,
# code_size), the trained values (count + floats), the codes (count + bytes), then the refine
# IxFI (header, count + floats) and the k_factor.
_SQ_AT = 4 + 33 + 4 + 33  # the quantizer's fields
_TRAINED_AT = _SQ_AT + 28  # the trained values' count
_CODES_AT = _TRAINED_AT + 8  # the codes' count (fp16: nothing trained)


@pytest.fixture(scope="module")
def scan_bytes(scan_built: Built) -> bytes:
    return bytes(faiss.serialize_index(scan_built[1]))


def scan_of(qtype: int, count: int = 300) -> bytes:
    """A scan-shaped file (refine over an exhaustive scalar quantizer) with codes of ``qtype``."""
    vectors = uniform(count)
    base = faiss.IndexScalarQuantizer(DIMENSION, qtype, faiss.METRIC_INNER_PRODUCT)
    base.train(vectors)
    index = faiss.IndexRefineFlat(base)
    index.add(vectors)
    return bytes(faiss.serialize_index(index))


def test_scan_layout_is_the_one_the_guard_walks(scan_bytes: bytes) -> None:
    assert scan_bytes[:4] == b"IxRF" and scan_bytes[37:41] == b"IxSQ"
    assert struct.unpack_from("<iifQQ", scan_bytes, _SQ_AT) == (
        faiss.ScalarQuantizer.QT_fp16, 0, 0.0, DIMENSION, 2 * DIMENSION)
    assert struct.unpack_from("<Q", scan_bytes, _TRAINED_AT)[0] == 0
    assert struct.unpack_from("<Q", scan_bytes, _CODES_AT)[0] == 2000 * 2 * DIMENSION
    refine_at = _CODES_AT + 8 + 2000 * 2 * DIMENSION
    assert scan_bytes[refine_at:refine_at + 4] == b"IxFI"
    assert len(scan_bytes) == refine_at + 4 + 33 + 8 + 2000 * DIMENSION * 4 + 4


def test_guard_accepts_a_real_scan_file_and_faiss_reads_it(tmp_path: Path, scan_built: Built,
                                                           scan_bytes: bytes) -> None:
    vectors, index, _ = scan_built
    path = tmp_path / "v.faiss"
    path.write_bytes(scan_bytes)
    assert check_faiss_file(path) == (DIMENSION, 2000)
    loaded = faiss.read_index(str(path))
    assert describe(loaded) == describe(index)
    queries = uniform(50, seed=9)
    np.testing.assert_array_equal(loaded.search(queries, 10)[1], index.search(queries, 10)[1])
    np.testing.assert_array_equal(all_vectors(loaded), vectors)


def test_guard_refuses_every_truncation_of_a_scan_file(tmp_path: Path, scan_bytes: bytes) -> None:
    path = tmp_path / "v.faiss"
    refine_at = _CODES_AT + 8 + 2000 * 2 * DIMENSION
    cuts = sorted({*range(0, _CODES_AT + 64), *range(refine_at - 64, refine_at + 64),  # every field boundary
                   *range(_CODES_AT, len(scan_bytes), 997), *range(len(scan_bytes) - 64, len(scan_bytes))})
    for keep in cuts:
        refused(path, scan_bytes[:keep])


def test_guard_refuses_trailing_bytes_after_a_scan(tmp_path: Path, scan_bytes: bytes) -> None:
    refused(tmp_path / "v.faiss", scan_bytes + b"\0" * 4, "unexpected bytes")


@pytest.mark.parametrize("claim", [2**20, 2**40, 2**63 - 1])
def test_guard_refuses_a_code_vector_inflated_past_the_end(tmp_path: Path, scan_bytes: bytes,
                                                           claim: int) -> None:
    data = bytearray(scan_bytes)
    struct.pack_into("<Q", data, _CODES_AT, claim)
    refused(tmp_path / "v.faiss", bytes(data), "scanned codes", "past the end of the file")


@pytest.mark.parametrize("change", [-64, 64, -2 * DIMENSION, 2 * DIMENSION])
def test_guard_refuses_codes_that_are_not_one_per_vector(tmp_path: Path, scan_bytes: bytes,
                                                         change: int) -> None:
    """The file stays self-consistent (the bytes follow the claimed count), but a search
    would read codes that are not there, or rows that have none."""
    data = bytearray(scan_bytes)
    codes = 2000 * 2 * DIMENSION
    struct.pack_into("<Q", data, _CODES_AT, codes + change)
    end = _CODES_AT + 8 + codes
    data[end:end] = b"\0" * change if change > 0 else b""
    if change < 0:
        del data[end + change:end]
    refused(tmp_path / "v.faiss", bytes(data), f"{codes + change} bytes of codes for 2000 vectors")


def test_guard_refuses_a_scan_whose_header_disagrees_with_its_wrapper(tmp_path: Path,
                                                                      scan_bytes: bytes) -> None:
    data = bytearray(scan_bytes)
    codes = 1999 * 2 * DIMENSION  # one vector fewer, consistently in the scan's header and codes
    struct.pack_into("<q", data, 41 + 4, 1999)
    struct.pack_into("<Q", data, _CODES_AT, codes)
    del data[_CODES_AT + 8 + codes:_CODES_AT + 8 + codes + 2 * DIMENSION]
    refused(tmp_path / "v.faiss", bytes(data), "scanned codes and their refine wrapper disagree")


@pytest.mark.parametrize(("field", "value", "phrase"), [
    ("code_size", DIMENSION, "code size 32"), ("dimension", 2 * DIMENSION, "dimension 64"),
    ("k_factor", 1e9, "k_factor"), ("k_factor", 0.5, "k_factor"), ("k_factor", float("nan"), "k_factor"),
])
def test_guard_refuses_scan_parameters_a_search_would_trust(tmp_path: Path, scan_bytes: bytes, field: str,
                                                            value: float, phrase: str) -> None:
    data = bytearray(scan_bytes)
    if field == "k_factor":
        struct.pack_into("<f", data, len(data) - 4, value)
    else:  # qtype, rangestat, rangestat_arg, then d and code_size
        struct.pack_into("<Q", data, _SQ_AT + 12 + (8 if field == "code_size" else 0), int(value))
    refused(tmp_path / "v.faiss", bytes(data), phrase)


def test_guard_refuses_trained_values_for_fp16(tmp_path: Path, scan_bytes: bytes) -> None:
    """fp16 codes have no range: a file that carries one was not written by speech-qa."""
    data = bytearray(scan_bytes)
    struct.pack_into("<Q", data, _TRAINED_AT, 2 * DIMENSION)
    data[_CODES_AT:_CODES_AT] = b"\0" * (2 * DIMENSION * 4)
    refused(tmp_path / "v.faiss", bytes(data), f"{2 * DIMENSION} ranges")


@pytest.mark.parametrize("qtype", ["QT_8bit", "QT_4bit", "QT_6bit", "QT_8bit_uniform", "QT_bf16",
                                   "QT_8bit_direct"])
def test_guard_refuses_other_scalar_quantizer_types(tmp_path: Path, qtype: str) -> None:
    number = getattr(faiss.ScalarQuantizer, qtype)
    data = scan_of(number)
    assert struct.unpack_from("<i", data, _SQ_AT)[0] == number  # a genuine FAISS file of that type
    refused(tmp_path / "v.faiss", data, f"scalar quantizer of type {number}", "fp16")


def test_guard_refuses_a_qtype_swapped_in_place(tmp_path: Path, scan_bytes: bytes) -> None:
    """fp16 codes relabelled as 8-bit (the quantizer then reads half a code per vector)."""
    data = bytearray(scan_bytes)
    struct.pack_into("<i", data, _SQ_AT, faiss.ScalarQuantizer.QT_8bit)
    refused(tmp_path / "v.faiss", bytes(data), "type 0")


def test_guard_refuses_an_unrefined_scan(tmp_path: Path) -> None:
    """A bare scalar-quantizer index keeps no float32 rows: not a kind speech-qa writes."""
    base = faiss.IndexScalarQuantizer(DIMENSION, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
    base.add(uniform(100))
    refused(tmp_path / "v.faiss", bytes(faiss.serialize_index(base)), "b'IxSQ' is not one speech-qa writes")


def _hnsw_graph(count: int = 400) -> faiss.IndexHNSWFlat:
    graph = faiss.IndexHNSWFlat(DIMENSION, 8, faiss.METRIC_INNER_PRODUCT)
    graph.add(clustered(count, seed=5))
    return graph


def test_an_hnsw_graph_pointing_outside_its_nodes_is_refused(tmp_path: Path) -> None:
    """FAISS follows neighbour ids, levels and the entry point as raw array indexes."""
    path = tmp_path / "sentences.faiss"
    graph = _hnsw_graph()
    data = bytearray(faiss.serialize_index(graph).tobytes())
    neighbours = faiss.vector_to_array(graph.hnsw.neighbors).astype("<i4")
    first = bytes(data).index(neighbours[:8].tobytes())
    struct.pack_into("<i", data, first + 4, graph.ntotal + 7)  # a neighbour past the last node
    refused(path, bytes(data), "neighbour ids outside the table")

    graph = _hnsw_graph()
    graph.hnsw.entry_point = graph.ntotal + 1000
    refused(path, faiss.serialize_index(graph).tobytes(), "entry point")

    graph = _hnsw_graph()
    graph.hnsw.max_level = graph.hnsw.max_level + 3
    refused(path, faiss.serialize_index(graph).tobytes(), "entry point")

    graph = _hnsw_graph()
    levels = faiss.vector_to_array(graph.hnsw.levels)
    levels[10] = 40  # a level the per-level table does not have
    faiss.copy_array_to_vector(levels, graph.hnsw.levels)
    refused(path, faiss.serialize_index(graph).tobytes(), "levels")


@pytest.mark.parametrize("count", [0, 1, 2, 400])
def test_real_hnsw_graphs_of_any_size_pass_the_range_checks(tmp_path: Path, count: int) -> None:
    graph = faiss.IndexHNSWFlat(DIMENSION, 8, faiss.METRIC_INNER_PRODUCT)
    if count:
        graph.add(clustered(count, seed=6))
    path = tmp_path / "sentences.faiss"
    faiss.write_index(graph, str(path))
    assert read_checked(path).ntotal == count


def test_search_uses_one_thread_and_restores_the_setting() -> None:
    vectors = clustered(3000, seed=8)
    index, _ = build_vector_index(vectors, threshold=2_000)
    before = faiss.omp_get_max_threads()
    assert search(index, vectors[7], 3)[1][0] == 7
    assert faiss.omp_get_max_threads() == before
