"""The dense vector index: which FAISS index to use, and reading vectors back.

Inner product over L2-normalised vectors is cosine similarity.  Exact search
(``IndexFlatIP``) is the right choice at the sizes of a speech or a report collection: it
is exact and, below ``APPROXIMATE_THRESHOLD`` items, a single question scans it in a few
milliseconds.  A flat scan grows linearly (measured by ``bench/perf.py scale``: ~0.1-0.5 us
per stored vector on the 2-core benchmark machine, i.e. 10-50 ms at 100k), so larger
tables get an inverted-file index (kind ``ivf``): k-means splits the vectors into ``nlist``
lists, and a question scans only the ``nprobe`` lists whose centroids are nearest.

Why IVF and not HNSW (the previous choice, still readable and buildable for comparison):
measured on 1M synthetic clustered 384-d vectors, HNSW (M16) reached only recall@10 0.872
at efSearch 2048, so the build fell back to exact search (137 ms per question), while
IVF-Flat with 4,096 lists (trained on 262k sample rows; 60 s to train, 25 s to add)
reached 0.981 at nprobe 4 (0.34 ms) and 1.000 at nprobe 8 (0.45 ms).  At 100k clustered
vectors IVF-Flat (1,264 lists) reached 1.0 at nprobe 8 (0.15 ms, 26 s to build) where HNSW
reached 0.98 (36 s).  The index built here (below), on 100k clustered vectors on a quiet
machine: 11 s to build, nprobe 16, recall@10 0.999 on fresh queries, 0.35 ms per question
against 15.6 ms for exact search, 1,948 bytes per vector against 1,536.

The layout is ``IndexRefineFlat`` over ``IndexIVFScalarQuantizer`` (SQ8): the inverted
lists hold 1-byte-per-dimension codes (384 B per vector, a quarter of the float32 row)
that only shortlist ``k * k_factor`` candidates, and the refine step re-ranks that
shortlist exactly against an ``IndexFlat`` holding the float32 rows in id order.  That
flat index is also what ``all_vectors`` (the per-sentence dot products of the ranking)
views without a copy, as for the flat and HNSW kinds; IVF-Flat would have kept a second
1.5 KB float32 copy per vector in its lists.  Measured at 100k clustered vectors: the SQ8
codes alone (k_factor 1) stop at recall@10 0.977 however many lists are probed; with
k_factor 2 or 4 the same lists give 0.999 at nprobe 16 (4 is kept: re-ranking 40 rows
exactly costs microseconds).

An approximate index is only kept when it is accurate on the data it holds: ``efSearch``
(HNSW) or ``nprobe`` (IVF) is calibrated at build time on held-out rows.  When no setting
reaches the target recall (structureless data, such as uniform random vectors, where no
neighbourhood is tighter than any other, so IVF would have to probe most of its lists),
the table gets an exhaustive scan of compact codes instead (kind ``scan``):
``IndexRefineFlat`` over an fp16 ``IndexScalarQuantizer``.  Every question reads every
row's 2-byte-per-dimension code, half the bytes of the float32 rows exact search reads
(both are bound by memory bandwidth: half the bytes took half the time), and re-ranks the
best ``k * k_factor`` exactly against the same refine ``IndexFlat`` of float32 rows, so
``all_vectors`` stays a view.  Its ``k_factor`` is calibrated like ``nprobe``; should even
the largest miss the target, exact search is used.  IVF is tried first because on data
with structure (text embeddings) it answers in under a millisecond (measured above), 20x
faster than the scan at 100k and over 100x at 1M; the scan costs no training (fp16 codes
have no range), only a conversion of the rows and one calibration pass.  Measured on
384-d uniform random unit vectors (the issue's timing data), one question per search,
interleaved with exact search on the loaded 2-core machine: at 100k the scan took
6.9-7.5 ms (median, four runs) against 15.3-16.7 ms for exact search, recall@10 1.000 on
200 fresh questions; at 1M 66.5 ms against 156.7 ms, recall@10 0.9995 at k_factor 1 and
1.000 from 2.  The product build at 100k took 13.2 s: 11.0 s for the IVF attempt it
rejected (k-means, then recall 0.614 with a quarter of the lists probed), 2.2 s for the
scan (k_factor 1, calibrated recall 0.9998).  It stores 2,304 bytes per vector (768 of
codes, 1,536 of float32 rows) against exact search's 1,536.  Why fp16 and not 8-bit
codes: see ``ScanParams``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import faiss
import numpy as np

logger = logging.getLogger(__name__)
_Setting = TypeVar("_Setting", int, float)

FLAT = "flat"
HNSW = "hnsw"
IVF = "ivf"
SCAN = "scan"

APPROXIMATE_THRESHOLD = 20_000
"""Tables with at least this many vectors get an approximate index (chosen by measurement:
a flat scan of 20k vectors costs ~2-10 ms per question on the 2-core machine, about what
embedding the question costs, and grows linearly; IVF stays under 1 ms to 1M)."""
HNSW_THRESHOLD = APPROXIMATE_THRESHOLD  # the former name (bench/perf.py imports it)


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


@dataclass(frozen=True)
class IVFParams:
    """Inverted-file parameters (the resulting ``nlist``, ``nprobe`` and ``k_factor`` are
    recorded in the manifest).

    Attributes:
        target_recall: Recall@10 against exact search that the ``nprobe`` calibration must
            reach (0.98, as for HNSW).
        k_factor: The refine step re-ranks ``k * k_factor`` SQ8 candidates with the exact
            float32 rows.  Measured at 100k clustered vectors: 1 stops at recall 0.977 (the
            8-bit codes misorder close neighbours), 2 and 4 reach 0.999 at nprobe 16; 4
            keeps a margin at the cost of 40 exact dot products per question.
        lists_per_sqrt: ``nlist`` is this times the square root of the row count (1,265
            lists at 100k, 4,000 at 1M, as measured above), capped so that every list gets
            at least 39 training rows (faiss' minimum for a meaningful centroid).
        training_per_list: k-means trains on this many sampled rows per list (a fixed-seed
            sample, so builds are deterministic): 81k of 100k rows, 256k of 1M.
        max_probed_fraction: The calibration tries ``nprobe`` up to this fraction of the
            lists.  Data that needs more has no usable neighbourhoods (100k uniform random
            vectors: recall 0.57 with a quarter of the lists probed, 0.81 with half), and
            the index's advantage shrinks as it probes more (100k clustered, one question:
            2.2 ms for a quarter of the lists, 4.6 ms for half, 9.0 ms for all, vs 15.5 ms
            for exact search), while it costs 27% more memory and a k-means build; such
            data gets the fp16 scan instead (``ScanParams``).
    """

    target_recall: float = 0.98
    k_factor: float = 4.0
    lists_per_sqrt: float = 4.0
    training_per_list: int = 64
    max_probed_fraction: float = 0.25


@dataclass(frozen=True)
class ScanParams:
    """The exhaustive scan of compact codes that replaces IVF when IVF misses its target
    (the resulting ``k_factor`` is recorded in the manifest, with ``codec`` "fp16").

    The layout is ``IndexRefineFlat`` over ``IndexScalarQuantizer(QT_fp16)``: every
    question scans every row's 16-bit code and the best ``k * k_factor`` are re-ranked
    exactly against the float32 rows of the refine ``IndexFlat`` (the rows ``all_vectors``
    views).  Why fp16 and not 8-bit codes (measured on this 2-core machine, 384-d uniform
    random unit vectors, 200 fresh questions, one per search, the two codecs and exact
    search interleaved in each run): at 100k the two scans cost the same (medians 6.9-7.5 ms
    fp16 and 7.1-7.6 ms SQ8 over three runs, exact search 15.3-16.7 ms); at 1M fp16 was
    faster (66.5 ms against 73.0 ms, exact search 156.7 ms, one run; an earlier run on the same
    machine: 62.7 against 88.7 ms).  fp16 needs no training and no range (SQ8 learns a min and
    max per dimension from the rows it is built with; later rows outside it are clipped),
    and its scores are accurate enough to rank alone: recall@10 1.000 at k_factor 1 (100k)
    and 0.9995 (1M), where SQ8 got 0.977 and 0.975 and needed k_factor 2.  The cost is
    memory: 768 bytes of codes per vector against 384 (2,304 bytes per vector with the
    float32 rows, against 1,920 for SQ8 and 1,536 for exact search).

    Attributes:
        target_recall: Recall@10 against exact search that the ``k_factor`` calibration
            must reach (0.98, as for IVF and HNSW), on the same held-out questions.
        k_factors: The ``k_factor`` values tried, smallest first; the first to reach the
            target is kept.  A larger one costs ``k * k_factor`` exact dot products per
            question and a longer shortlist heap, nothing measurable next to the scan
            (100k uniform, one question per search: medians 6.71, 6.70 and 6.78 ms at
            k_factor 1, 4 and 16).  When the last misses the target too, exact search is
            used.
    """

    target_recall: float = 0.98
    k_factors: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0)


DEFAULT_HNSW = HNSWParams()
DEFAULT_IVF = IVFParams()
DEFAULT_SCAN = ScanParams()
_SCAN_CODEC = faiss.ScalarQuantizer.QT_fp16
_EF_LADDER = (16, 32, 64, 128, 256, 512, 1024, 2048)
_CALIBRATION_QUERIES = 200
_RECALL_K = 10
_MIN_TRAINING_PER_LIST = 39  # below this, faiss' k-means warns that centroids are unreliable
_SAMPLE_SEED = 0


def choose_kind(count: int, threshold: int = APPROXIMATE_THRESHOLD, approximate: str = IVF) -> str:
    """The index kind for a table of ``count`` vectors (``approximate`` from ``threshold`` on)."""
    return approximate if count >= max(threshold, 1) else FLAT


def ivf_list_count(count: int, trainable: int, params: IVFParams = DEFAULT_IVF) -> int:
    """``nlist`` for ``count`` vectors of which ``trainable`` may be used to train k-means."""
    return max(1, min(round(params.lists_per_sqrt * math.sqrt(count)), trainable // _MIN_TRAINING_PER_LIST))


def probe_ladder(nlist: int, max_probed_fraction: float = DEFAULT_IVF.max_probed_fraction) -> list[int]:
    """The ``nprobe`` values the calibration tries: 1, 2, 4, ... up to the cap, then the cap."""
    cap = max(1, int(nlist * max_probed_fraction))
    ladder = [1 << i for i in range(cap.bit_length()) if 1 << i <= cap]
    return ladder if ladder[-1] == cap else [*ladder, cap]


def recall_at_k(found: np.ndarray, exact: np.ndarray) -> float:
    """Mean fraction of each row of ``exact`` ids that also appear in the same row of ``found``."""
    if exact.size == 0:
        return 1.0
    hits = sum(len(set(f[f >= 0].tolist()) & set(e[e >= 0].tolist()))
               for f, e in zip(found, exact, strict=True))
    return hits / float((exact >= 0).sum())


def recall_with_ties(found: np.ndarray, queries: np.ndarray, stored: np.ndarray,
                     kth_score: np.ndarray) -> float:
    """Share of found ids that are as near to their query as the exact ``k``-th neighbour.

    Why not ids: a collection repeats sentences ("Thank you.", boilerplate, a paragraph
    quoted in two reports), and identical vectors tie.  When more than ``k`` rows tie at
    the top, exact search keeps an arbitrary ``k`` of them and an approximate index
    another ``k``: equally right answers that id-based recall counts as misses (measured:
    0.10 on the build benchmark's 44k sentences, whose top 10 were all ties, so the table
    fell back to exact search).  A found row counts when its similarity reaches the
    ``k``-th exact one (a 1e-5 slack absorbs float rounding).
    """
    if found.size == 0:
        return 1.0
    valid = found >= 0
    rows = stored[np.where(valid, found, 0)]
    scores = np.einsum("qkd,qd->qk", rows, queries)
    hits = valid & (scores >= kth_score[:, None] - 1e-5)
    return float(hits.sum()) / float(found.size)


def _exact_neighbours(queries: np.ndarray, stored: np.ndarray, k: int) -> np.ndarray:
    """Ids of the ``k`` best inner products, best first (blockwise: no queries x rows matrix)."""
    _, ids = faiss.knn(queries, stored, k, metric=faiss.METRIC_INNER_PRODUCT)
    return np.asarray(ids)


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
    neighbour = _exact_neighbours(held_out, stored, rank + 1)[:, rank]
    mixed = held_out + stored[neighbour]
    midpoints = mixed / np.maximum(np.linalg.norm(mixed, axis=1, keepdims=True), 1e-6)
    return np.ascontiguousarray(np.concatenate([held_out, midpoints.astype(np.float32)]))


def _smallest_accurate(index: faiss.Index, settings: Sequence[_Setting], apply: Callable[[_Setting], None],
                       stored: np.ndarray, queries: np.ndarray, target: float) -> tuple[_Setting, float]:
    """The setting after the first of ``settings`` whose recall@10 on ``queries`` reaches
    ``target`` (or that first one when it is the last), else the last; left applied on
    ``index`` by ``apply``.  Returns it and the recall measured with it.

    Why one step more: the calibration questions (held-out rows and midpoints) are easier
    than real ones.  Measured on the build benchmark's real index with 500 SQuAD questions:
    the sentence table calibrated to 1.0 at nprobe 2, where the questions got 0.968 (0.996
    at 4); the passage table to 0.981 at nprobe 32, where they got 0.973 (0.992 at 64).
    Doubling a setting costs a fraction of a millisecond (nprobe 32 -> 64: 0.16 -> 0.26 ms).
    """
    k = min(_RECALL_K, len(stored))
    if k == 0 or len(queries) == 0:
        apply(settings[0])
        return settings[0], 1.0
    exact_scores, _ = faiss.knn(queries, stored, k, metric=faiss.METRIC_INNER_PRODUCT)
    kth_score = np.asarray(exact_scores)[:, k - 1]
    def measured(setting: _Setting) -> float:
        apply(setting)
        _, found = index.search(queries, k)
        return recall_with_ties(found, queries, stored, kth_score)

    for number, setting in enumerate(settings):
        recall = measured(setting)
        if recall >= target:
            if number + 1 < len(settings):
                setting = settings[number + 1]
                recall = measured(setting)
            return setting, recall
    return setting, recall


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
    graph: Any = index.hnsw

    def apply(ef: int) -> None:
        graph.efSearch = ef

    return _smallest_accurate(index, [minimum, *[e for e in _EF_LADDER if e > minimum]], apply,
                              stored, queries, target)


def calibrate_nprobe(index: faiss.Index, stored: np.ndarray, queries: np.ndarray,
                     target: float, max_probed_fraction: float = DEFAULT_IVF.max_probed_fraction
                     ) -> tuple[int, float]:
    """Smallest ``nprobe`` (on ``probe_ladder``) whose recall@10 on held-out queries
    reaches ``target``: the IVF counterpart of ``calibrate_ef_search`` (same reasons, same
    queries).  ``index`` is an IVF index or an ``IndexRefine`` over one; the chosen value is
    left set on the IVF index, whose file header stores it."""
    ivf: Any = faiss.extract_index_ivf(index)

    def apply(nprobe: int) -> None:
        ivf.nprobe = nprobe

    return _smallest_accurate(index, probe_ladder(int(ivf.nlist), max_probed_fraction), apply,
                              stored, queries, target)


def calibrate_k_factor(index: faiss.IndexRefine, stored: np.ndarray, queries: np.ndarray,
                       k_factors: Sequence[float], target: float) -> tuple[float, float]:
    """Smallest of ``k_factors`` whose recall@10 on held-out queries reaches ``target``: the
    scan's counterpart of ``calibrate_nprobe`` (same queries, same tie-aware recall).  The
    chosen value is left set on ``index``, whose file stores it."""
    refine: Any = index

    def apply(k_factor: float) -> None:
        refine.k_factor = k_factor

    return _smallest_accurate(index, list(k_factors), apply, stored, queries, target)


def _hnsw_graph(vectors: np.ndarray, cut: int, queries: np.ndarray,
                params: HNSWParams) -> tuple[faiss.Index, float]:
    """An HNSW graph of ``vectors[:cut]`` with ``efSearch`` calibrated on ``queries``."""
    graph = faiss.IndexHNSWFlat(vectors.shape[1], params.m, faiss.METRIC_INNER_PRODUCT)
    graph.hnsw.efConstruction = params.ef_construction
    graph.add(vectors[:cut])
    _, recall = calibrate_ef_search(graph, vectors[:cut], queries, params.ef_search, params.target_recall)
    return graph, recall


def _ivf_sq8_refined(vectors: np.ndarray, cut: int, queries: np.ndarray,
                     params: IVFParams) -> tuple[faiss.Index, float]:
    """IVF-SQ8 under an exact refine step, holding ``vectors[:cut]``, ``nprobe`` calibrated
    on ``queries``.  k-means and the SQ8 ranges train on a fixed-seed sample of those rows."""
    dimension = vectors.shape[1]
    nlist = ivf_list_count(len(vectors), cut, params)
    size = min(cut, params.training_per_list * nlist)
    training = vectors[:cut] if size == cut else vectors[
        np.sort(np.random.default_rng(_SAMPLE_SEED).choice(cut, size=size, replace=False))]
    base = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(dimension), dimension, nlist,
                                         faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
    base.train(training)  # spherical k-means: faiss sets cp.spherical for inner product
    del training
    index = faiss.IndexRefineFlat(base)  # the refine IndexFlat (IP) holds the float32 rows
    index.k_factor = params.k_factor
    index.add(vectors[:cut])
    _, recall = calibrate_nprobe(index, vectors[:cut], queries, params.target_recall,
                                 params.max_probed_fraction)
    return index, recall


def _scan_refined(vectors: np.ndarray, cut: int, queries: np.ndarray,
                  params: ScanParams) -> tuple[faiss.Index, float]:
    """An exhaustive fp16 scan under an exact refine step, holding ``vectors[:cut]``, its
    ``k_factor`` calibrated on ``queries``.  Nothing to train (fp16 codes have no range)."""
    base = faiss.IndexScalarQuantizer(vectors.shape[1], _SCAN_CODEC, faiss.METRIC_INNER_PRODUCT)
    index = faiss.IndexRefineFlat(base)  # the refine IndexFlat (IP) holds the float32 rows
    index.add(vectors[:cut])
    _, recall = calibrate_k_factor(index, vectors[:cut], queries, params.k_factors, params.target_recall)
    return index, recall


def build_vector_index(vectors: np.ndarray, threshold: int = APPROXIMATE_THRESHOLD,
                       hnsw: HNSWParams = DEFAULT_HNSW, ivf: IVFParams = DEFAULT_IVF,
                       approximate: str = IVF,
                       scan: ScanParams = DEFAULT_SCAN) -> tuple[faiss.Index, dict[str, Any]]:
    """Build the index for ``vectors`` (rows L2-normalised).

    Args:
        vectors: One row per item; row i becomes FAISS id i.
        threshold: Row count from which an approximate index replaces exact search.
        hnsw: Graph parameters, when ``approximate`` is ``HNSW``.
        ivf: Inverted-file parameters, when ``approximate`` is ``IVF``.
        approximate: The kind built from ``threshold`` on: ``IVF`` (the product's) or
            ``HNSW`` (the previous choice, kept for benchmarks and comparisons).
        scan: Parameters of the exhaustive fp16 scan built when ``approximate`` misses its
            target recall.

    Returns:
        The index and its description for the manifest: ``kind`` (``flat``, ``ivf``,
        ``scan`` or ``hnsw``), ``count``, the parameters ``describe`` reads from the index,
        and for an approximate kind the recall@10 its ``nprobe``/``k_factor``/``efSearch``
        was calibrated to (``calibrated_recall_at_10``, ``target_recall``).  An approximate
        index that cannot reach its target recall is replaced by the scan, and the recall
        it reached is recorded as ``ivf_rejected_recall_at_10`` (or
        ``hnsw_rejected_recall_at_10``; with ``ivf_target_recall`` when its target differs
        from the scan's).  When the scan misses its target too, exact search is used and
        ``scan_rejected_recall_at_10`` is recorded as well.
    """
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    kind = choose_kind(len(vectors), threshold, approximate)
    if kind == FLAT:
        flat = _exact(vectors)
        return flat, describe(flat)
    if kind not in (IVF, HNSW):
        raise ValueError(f"unknown vector index kind {approximate!r}")
    # The last rows are added after calibrating, so they serve as unseen queries first
    # (row order, hence ids, is unchanged).
    held_out = min(_CALIBRATION_QUERIES, len(vectors) // 10)
    cut = len(vectors) - held_out
    queries = _calibration_queries(vectors[cut:], vectors[:cut])
    if kind == IVF:
        index, recall = _ivf_sq8_refined(vectors, cut, queries, ivf)
        target = ivf.target_recall
    else:
        index, recall = _hnsw_graph(vectors, cut, queries, hnsw)
        target = hnsw.target_recall
    rejected: dict[str, Any] = {}
    if recall < target:
        # Even the widest setting misses neighbours (structureless data, measured on 100k
        # uniform random vectors: HNSW 0.73 at efSearch 2048, at half a flat scan's time;
        # IVF 0.57 with a quarter of its 1,265 lists probed, 0.81 with half), so wrong
        # passages would be returned.  Scanning every row's fp16 code and re-ranking the
        # shortlist exactly is accurate on any data, at half the time of exact search.
        logger.info("%s reached recall@10 %.3f < %.2f on %d vectors; using an fp16 scan",
                    kind.upper(), recall, target, len(vectors))
        rejected[f"{kind}_rejected_recall_at_10"] = round(recall, 4)
        if target != scan.target_recall:
            rejected[f"{kind}_target_recall"] = target
        del index  # before the scan allocates its copy of the rows
        index, recall = _scan_refined(vectors, cut, queries, scan)
        target = scan.target_recall
        if recall < target:
            logger.warning("the fp16 scan reached recall@10 %.3f < %.2f on %d vectors; "
                           "using exact search", recall, target, len(vectors))
            del index
            return _exact(vectors), {"kind": FLAT, "count": len(vectors), **rejected,
                                     "scan_rejected_recall_at_10": round(recall, 4),
                                     "target_recall": target}
    if held_out:
        index.add(vectors[cut:])
    return index, {**describe(index), "calibrated_recall_at_10": round(recall, 4),
                   "target_recall": target, **rejected}


def _exact(vectors: np.ndarray) -> faiss.IndexFlatIP:
    flat = faiss.IndexFlatIP(vectors.shape[1])
    if len(vectors):
        flat.add(vectors)
    return flat


_CODECS = {faiss.ScalarQuantizer.QT_8bit: "sq8", faiss.ScalarQuantizer.QT_fp16: "fp16"}


def _codec(quantizer: Any) -> str:
    qtype = int(quantizer.qtype)
    return _CODECS.get(qtype, f"sq-type-{qtype}")


def describe(index: faiss.Index) -> dict[str, Any]:
    """Kind and parameters of an index, for the manifest (so a reader knows what it got)."""
    concrete = faiss.downcast_index(index)
    if isinstance(concrete, faiss.IndexRefine):
        base = faiss.downcast_index(concrete.base_index)
        if isinstance(base, faiss.IndexIVFScalarQuantizer):
            return {
                "kind": IVF, "count": int(index.ntotal),
                "nlist": int(base.nlist), "nprobe": int(base.nprobe),
                "k_factor": float(concrete.k_factor), "codec": _codec(base.sq),
            }
        if isinstance(base, faiss.IndexScalarQuantizer):
            return {
                "kind": SCAN, "count": int(index.ntotal),
                "k_factor": float(concrete.k_factor), "codec": _codec(base.sq),
            }
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
    """The ``IndexFlat`` holding ``index``'s float32 rows in id order, if it has one: the
    index itself, an HNSW graph's storage, or an ``IndexRefine``'s refine index."""
    concrete = faiss.downcast_index(index)
    if isinstance(concrete, faiss.IndexHNSW):
        concrete = faiss.downcast_index(concrete.storage)
    elif isinstance(concrete, faiss.IndexRefine):
        concrete = faiss.downcast_index(concrete.refine_index)
    return concrete if isinstance(concrete, faiss.IndexFlat) else None


def all_vectors(index: faiss.Index) -> np.ndarray:
    """Every stored vector, row i for item i (for per-sentence dot products).

    A read-only zero-copy view when the index keeps plain float32 rows (flat, HNSW, and
    the refine index of the IVF and scan kinds); a copy otherwise.
    """
    if index.ntotal == 0:
        return np.zeros((0, index.d), dtype=np.float32)
    storage = _flat_storage(index)
    if storage is None or storage.ntotal != index.ntotal:
        return np.asarray(index.reconstruct_n(0, index.ntotal), dtype=np.float32)
    raw = faiss.rev_swig_ptr(storage.get_xb(), storage.ntotal * storage.d)
    rows = np.asarray(raw, dtype=np.float32).reshape(storage.ntotal, storage.d)
    return np.asarray(_FaissVectors(index, rows))


def search(index: faiss.Index, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` items for one normalised query vector: (scores, ids), ids -1 padded.

    The same call for every kind: an IVF index searches its stored ``nprobe`` lists (the
    refine step re-ranks ``k * k_factor`` of their candidates exactly), the scan kind
    every row's fp16 code (re-ranked the same way), HNSW its stored ``efSearch`` beam.

    One OpenMP thread, for this call only (the setting is per calling thread and restored):
    one question's search is too small to split, and on a 2-core machine FAISS's workers
    spin-wait against the model's and numpy's threads.  Measured with ``rank()`` on the
    build benchmark's 44k-sentence index, the same process having embedded the questions:
    7.0-7.2 ms per question with one thread against 13-27 ms with two.
    """
    k = max(1, min(k, index.ntotal))
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        scores, ids = index.search(np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32), k)
    finally:
        faiss.omp_set_num_threads(threads)
    return scores[0], ids[0]
