"""ONNX graphs exported once from shipped weights, cached in the user's cache dir, run by onnxruntime.

Why: every model call at query time runs on one runtime, onnxruntime (DESIGN.md, "Models"):
importing it takes a tenth of a second where sentence-transformers on torch takes seconds,
and a question's forward pass is several times faster. The weights still ship as
safetensors, and torch stays the tool that turns them into a graph, but only once: the
first use exports the graph into the cache, and every later process loads it without
importing torch at all.

Why these checks: a cached graph is a file anyone (a full disk, a crash, another version of
this program, a person) may have left half-written or replaced. It is used only when
  * its sidecar names the same sources (the SHA-256 of every source file, so new weights
    mean a new graph),
  * the graph's own SHA-256 matches the sidecar's (a truncated or garbled file fails),
  * onnxruntime loads it, and
  * an optional probe (a fixed input run through it) gives what it gave right after export.
Anything else is rebuilt, never trusted. Writes go to a temporary file renamed into place,
so readers only ever see a complete graph and its sidecar, and two processes exporting at
once simply both write a correct one.

Only ``index/`` imports onnxruntime (lazily: importing ``qa`` loads no model runtime).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from index.errors import ModelLoadError

if TYPE_CHECKING:
    import onnxruntime

logger = logging.getLogger(__name__)

THREADS_ENV = "SPEECH_QA_THREADS"
"""Overrides onnxruntime's intra-op threads (``onnx_threads``); Ray replicas set it to 1."""

SIDECAR_FORMAT = 1
"""Version of the sidecar's layout; a sidecar of another version means a rebuild."""

PROBE_TOLERANCE = 1e-4
"""Largest difference allowed between a probe's outputs now and at export. Why not exact:
the same graph may be run with another thread count, which can change float rounding."""

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def onnx_threads() -> int:
    """onnxruntime's intra-op threads for this process: ``$SPEECH_QA_THREADS``, else its cores.

    Why one decision for every session: a single process answering questions should use
    every core it may run on (``sched_getaffinity``, so a container's or ``taskset``'s limit
    counts, not the machine's); Ray replicas are the unit of parallelism (one per core) and
    run with ``SPEECH_QA_THREADS=1``, since two replicas each spinning two threads on two
    cores only contend. A bad value in the variable is ignored with one log line.
    """
    value = os.environ.get(THREADS_ENV, "").strip()
    if value:
        if value.isdigit() and int(value) >= 1:
            return int(value)
        logger.warning("%s=%r is not a positive whole number; using every core", THREADS_ENV, value)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


def session_options(threads: int | None = None) -> onnxruntime.SessionOptions:
    """Options for every session: ``threads`` intra-op (``onnx_threads()`` by default),
    one inter-op thread and sequential execution (the graphs here are one chain of layers,
    so running independent nodes side by side gains nothing and costs a second pool)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads if threads is not None else onnx_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: a first answer prints nothing
    return options


def sources_hash(source_files: Sequence[Path]) -> str:
    """SHA-256 over the names and contents of ``source_files`` (in the order given)."""
    digest = hashlib.sha256()
    for path in source_files:
        path = Path(path)
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


def cache_folder() -> Path:
    """Where cached graphs live: ``onnx/`` in the index cache root (``$SPEECH_QA_CACHE_DIR``)."""
    from index.cache import cache_root

    return cache_root() / "onnx"


def _lock_for(key: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


@contextlib.contextmanager
def _temporary_path(folder: Path, suffix: str) -> Iterator[Path]:
    """A fresh file name in ``folder`` (same file system, so ``os.replace`` is atomic),
    removed afterwards unless it was renamed away."""
    handle, name = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=suffix)
    os.close(handle)
    path = Path(name)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)
        Path(str(path) + ".data").unlink(missing_ok=True)


def _write_json_atomically(path: Path, content: dict[str, Any]) -> None:
    with _temporary_path(path.parent, ".json") as temporary:
        temporary.write_text(json.dumps(content, indent=2, sort_keys=True), encoding="utf-8")
        os.replace(temporary, path)


def _probe_values(probe: Callable[[onnxruntime.InferenceSession], Sequence[float]] | None,
                  session: onnxruntime.InferenceSession) -> list[float] | None:
    return None if probe is None else [float(value) for value in probe(session)]


def _load(graph: Path, sidecar: Path, source: str, threads: int | None,
          probe: Callable[[onnxruntime.InferenceSession], Sequence[float]] | None,
          ) -> onnxruntime.InferenceSession:
    """The cached session, or ``ValueError`` naming why the cached graph is not trusted."""
    import onnxruntime as ort

    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"sidecar {sidecar.name} unreadable ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != SIDECAR_FORMAT:
        raise ValueError(f"sidecar {sidecar.name} has another format")
    if meta.get("sources_sha256") != source:
        raise ValueError(f"{graph.name} was exported from other weights")
    # One read: the bytes hashed are the bytes onnxruntime loads (no swap in between).
    data = graph.read_bytes()
    if hashlib.sha256(data).hexdigest() != meta.get("graph_sha256"):
        raise ValueError(f"{graph.name} does not match its checksum (truncated or altered)")
    try:
        session = ort.InferenceSession(data, session_options(threads), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ValueError(f"onnxruntime cannot load {graph.name} ({exc})") from exc
    del data
    expected = meta.get("probe")
    if probe is not None:
        values = _probe_values(probe, session)
        if (not isinstance(expected, list) or values is None or len(values) != len(expected)
                or any(not abs(a - b) <= PROBE_TOLERANCE for a, b in zip(values, expected, strict=True))):
            raise ValueError(f"{graph.name} gives other outputs than at export")
    return session


def _export(graph: Path, sidecar: Path, source: str, export: Callable[[Path], None],
            threads: int | None,
            probe: Callable[[onnxruntime.InferenceSession], Sequence[float]] | None,
            ) -> onnxruntime.InferenceSession:
    import onnxruntime as ort

    graph.parent.mkdir(parents=True, exist_ok=True)
    with _temporary_path(graph.parent, ".onnx") as temporary:
        export(temporary)
        if Path(str(temporary) + ".data").exists():
            raise ModelLoadError(f"the export of {graph.name} wrote external weights: "
                                 "export one self-contained file")
        data = temporary.read_bytes()
        session = ort.InferenceSession(data, session_options(threads), providers=["CPUExecutionProvider"])
        meta = {"format": SIDECAR_FORMAT, "sources_sha256": source,
                "graph_sha256": hashlib.sha256(data).hexdigest(), "graph_bytes": len(data),
                "onnxruntime": ort.__version__, "probe": _probe_values(probe, session)}
        del data
        # The graph first, then the sidecar naming it: a crash between the two leaves a
        # graph without a matching sidecar, which the next load rebuilds.
        os.replace(temporary, graph)
    _write_json_atomically(sidecar, meta)
    return session


def cached_onnx_session(
    name: str,
    source_files: Sequence[Path],
    export: Callable[[Path], None],
    *,
    threads: int | None = None,
    probe: Callable[[onnxruntime.InferenceSession], Sequence[float]] | None = None,
) -> onnxruntime.InferenceSession:
    """An onnxruntime session of the graph exported from ``source_files``, cached across processes.

    The first call exports the graph with ``export`` into the cache (``cache_folder()``,
    ``$SPEECH_QA_CACHE_DIR/onnx`` when set), as ``{name}-{hash}.onnx`` beside a JSON sidecar;
    later calls, in any process, load it after checking it (module docstring). A cached graph
    that fails any check is exported again, with one log line.

    Args:
        name: Short file-name-safe name of the model (``"minilm-l6-encoder"``); also a prefix
            of the cached files, so different models never collide.
        source_files: Every file the graph depends on (the weights, the config); their
            contents' SHA-256 keys the cache, so changed weights mean a new export.
        export: ``export(dest)`` writes one self-contained ``.onnx`` file at ``dest`` (a temporary
            path in the cache folder). Import torch inside it, not at module level: it runs
            only on a cache miss, and the query path must not import torch.
        threads: onnxruntime's intra-op threads; ``onnx_threads()`` when None.
        probe: Optional ``probe(session) -> floats``: run a fixed input, return a few output
            values. Recorded at export and compared on every load (within
            ``PROBE_TOLERANCE``), so a graph that loads but computes something else is
            rebuilt too.

    Returns:
        A ready ``onnxruntime.InferenceSession`` on the CPU, with ``session_options(threads)``.

    Raises:
        ModelLoadError: The graph could not be exported or loaded even after a fresh export
            (callers fall back to another runtime, or report it).
    """
    try:
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        raise ModelLoadError("onnxruntime is not installed (pip install onnxruntime)") from exc
    folder = cache_folder()
    try:
        source = sources_hash(source_files)
    except OSError as exc:
        raise ModelLoadError(f"cannot read the sources of {name}: {exc}") from exc
    graph = folder / f"{name}-{source[:16]}.onnx"
    sidecar = graph.with_suffix(".json")
    with _lock_for(str(graph)):
        if graph.exists() or sidecar.exists():
            try:
                return _load(graph, sidecar, source, threads, probe)
            except (OSError, ValueError) as exc:
                logger.warning("cached ONNX graph unusable, exporting it again: %s", exc)
        logger.info("exporting %s to ONNX in %s", name, folder)
        try:
            return _export(graph, sidecar, source, export, threads, probe)
        except ModelLoadError:
            raise
        except Exception as exc:  # any failure of the exporter or the runtime: one clear message
            raise ModelLoadError(f"cannot export {name} to ONNX in {folder}: {exc}") from exc


__all__ = ["THREADS_ENV", "cache_folder", "cached_onnx_session", "onnx_threads", "session_options",
           "sources_hash"]
