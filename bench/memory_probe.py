"""Where a served process's memory goes under load (issue 11): a diagnosis tool, run by hand.

Why: "resident memory grows" has several unrelated causes, and each has a different fix.
This starts a real ``speech-qa serve`` in a process that samples itself every few seconds,
drives it with ``bench/load.py``'s clients, and prints, from minute 1 to the end:

- RSS split into anonymous memory (the heaps) and file pages (shared libraries paged in);
- glibc's own books (``mallinfo2``): bytes in use, bytes free but kept, mmapped bytes;
- with ``--trace``, the Python heap (``tracemalloc``) and its biggest growers by line, so
  live Python objects can be told apart from native memory (RSS minus the traced heap);
- a census of live objects by type, diffed, to catch a container that keeps growing.

Usage (quiet machine; each route its own run):
    PYTHONPATH=$PWD HF_HUB_OFFLINE=1 .venv/bin/python bench/memory_probe.py json --seconds 240
    PYTHONPATH=$PWD HF_HUB_OFFLINE=1 .venv/bin/python bench/memory_probe.py gradio --seconds 240 --trace

Nothing here is imported by the product; ``--serve`` is the child process's entry point.
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import ctypes.util
import gc
import json
import os
import signal
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

MALLINFO_FIELDS = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                   "uordblks", "fordblks", "keepcost")


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in MALLINFO_FIELDS]


def mallinfo() -> dict[str, int]:
    """glibc's allocator totals over all arenas (empty where there is no ``mallinfo2``)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        function = libc.mallinfo2
    except (OSError, AttributeError):
        return {}
    function.restype = _MallInfo2
    info = function()
    return {name: int(getattr(info, name)) for name in MALLINFO_FIELDS}


def status() -> dict[str, int]:
    """VmRSS, RssAnon, RssFile and Threads of this process (kB, as /proc gives them)."""
    wanted = {"VmRSS", "RssAnon", "RssFile", "RssShmem", "Threads"}
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in wanted:
            out[key] = int(value.split()[0])
    return out


def mapped_files() -> dict[str, int]:
    """Resident kB per mapped file (from /proc/self/smaps): which library's pages grew."""
    out: dict[str, int] = collections.Counter()
    name = ""
    for line in Path("/proc/self/smaps").read_text().splitlines():
        first = line.split(maxsplit=5)
        if len(first) >= 5 and "-" in first[0] and ":" in first[3]:
            name = first[5] if len(first) == 6 else "[anon]"
        elif line.startswith("Rss:"):
            out[name] += int(line.split()[1])
    return dict(out)


def census() -> collections.Counter[str]:
    """Live objects tracked by the garbage collector, by type name."""
    return collections.Counter(type(o).__qualname__ for o in gc.get_objects())


class Sampler:
    """Samples this process every ``every`` seconds; SIGUSR1 marks a snapshot point."""

    def __init__(self, out: Path, every: float, trace: bool) -> None:
        self.out, self.every, self.trace = out, every, trace
        self.marks: list[tuple[float, Any, collections.Counter[str], dict[str, int]]] = []
        self.wanted = threading.Event()
        self.started = time.monotonic()

    def run(self) -> None:
        with self.out.open("a", encoding="utf-8") as sink:
            while True:
                row: dict[str, Any] = {"t": round(time.monotonic() - self.started, 1), **status(),
                                       **{f"m_{k}": v for k, v in mallinfo().items()}}
                if self.trace:
                    row["traced"] = tracemalloc.get_traced_memory()[0]
                if self.wanted.is_set():
                    self.wanted.clear()
                    self.mark(row, sink)
                sink.write(json.dumps(row) + "\n")
                sink.flush()
                time.sleep(self.every)

    def mark(self, row: dict[str, Any], sink: Any) -> None:
        snapshot = tracemalloc.take_snapshot() if self.trace else None
        counts = census()
        files = mapped_files()
        row["mark"] = len(self.marks)
        if self.marks:
            _, first_snapshot, first_counts, first_files = self.marks[0]
            grown = {k: counts[k] - first_counts.get(k, 0) for k in counts}
            row["census_growth"] = dict(sorted(grown.items(), key=lambda kv: -kv[1])[:25])
            paged = {k: v - first_files.get(k, 0) for k, v in files.items()}
            row["mapped_growth_kb"] = dict(sorted(paged.items(), key=lambda kv: -kv[1])[:12])
            if snapshot is not None:
                filters = [tracemalloc.Filter(False, tracemalloc.__file__)]
                stats = snapshot.filter_traces(filters).compare_to(first_snapshot.filter_traces(filters),
                                                                   "lineno")
                row["traced_growth_top"] = [
                    {"where": str(s.traceback[0]), "size_diff": s.size_diff, "count_diff": s.count_diff}
                    for s in stats[:30]]
                by_trace = snapshot.filter_traces(filters).compare_to(
                    first_snapshot.filter_traces(filters), "traceback")
                row["traced_growth_tracebacks"] = [
                    {"size_diff": s.size_diff, "count_diff": s.count_diff,
                     "stack": [str(f) for f in s.traceback][-12:]} for s in by_trace[:8]]
        self.marks.append((row["t"], snapshot, counts, files))


def apply_variant(variant: str) -> None:
    """Set up a candidate fix in this (server) process before the server starts.

    ``base``: nothing. ``trim:N``: ``malloc_trim(0)`` every N seconds from a thread.
    ``mkl-no-fast-mm``: MKL's buffer cache off. ``mmap:N``: ``M_MMAP_THRESHOLD`` fixed at N.
    ``cache:N``: the batcher keeps N answers. ``pad:N``: questions padded to a multiple of N tokens.
    ``unpatched``: the encoder without ``PAD_TO_MULTIPLE`` and ``_page_in`` (before the fix).
    """
    name, _, value = variant.partition(":")
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    if name == "trim":
        def trim() -> None:
            while True:
                time.sleep(float(value))
                libc.malloc_trim(0)
        threading.Thread(target=trim, name="trim", daemon=True).start()
    elif name == "mkl-no-fast-mm":
        os.environ["MKL_DISABLE_FAST_MM"] = "1"
    elif name == "mmap":
        libc.mallopt(-3, int(value))  # M_MMAP_THRESHOLD
    elif name == "cache":
        import functools

        import qa.batching

        init = qa.batching.BatchingQA.__init__
        qa.batching.BatchingQA.__init__ = functools.partialmethod(init, cache_size=int(value))  # type: ignore[method-assign,assignment]
    elif name == "pad":
        import index.onnx_encoder

        index.onnx_encoder.PAD_TO_MULTIPLE = int(value)  # read by each batch's padding
    elif name == "unpatched":  # the encoder as before the fix: no length steps, weights paged lazily
        import index.encoder

        index.encoder._pad_batches = lambda model, multiple: None
        index.encoder._page_in = lambda model: None
    elif name != "base":
        raise SystemExit(f"unknown variant {variant}")


def serve_child(port: int, out: Path, every: float, trace: bool, variant: str) -> None:
    """The server process: a sampler thread, then the real ``speech-qa serve``."""
    apply_variant(variant)
    if trace:
        tracemalloc.start(16)
    sampler = Sampler(out, every, trace)
    signal.signal(signal.SIGUSR1, lambda *_: sampler.wanted.set())
    threading.Thread(target=sampler.run, name="memory-probe", daemon=True).start()
    from ui.cli import main

    sys.exit(main(["serve", "--port", str(port)]))


def summarise(rows: list[dict[str, Any]], first_t: float) -> dict[str, Any]:
    """Minute-1 and end values of each series, and their difference in MB."""
    def mb(value: float) -> float:
        return round(value / 2**20, 1)

    later = [r for r in rows if r["t"] >= first_t]
    if not later:
        return {}
    a, b = later[0], later[-1]
    series = {"VmRSS": 1024, "RssAnon": 1024, "RssFile": 1024, "m_uordblks": 1, "m_fordblks": 1,
              "m_hblkhd": 1, "m_arena": 1, "traced": 1}
    out: dict[str, Any] = {"from_t": a["t"], "to_t": b["t"], "threads": [a.get("Threads"), b.get("Threads")]}
    for key, scale in series.items():
        if key in a and key in b:
            out[key] = [mb(a[key] * scale), mb(b[key] * scale), mb((b[key] - a[key]) * scale)]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("route", nargs="?", choices=("json", "gradio"), default="json")
    parser.add_argument("--seconds", type=float, default=240.0, help="seconds of load after the warm-up")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--warm-up", type=float, default=15.0)
    parser.add_argument("--every", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--trace", action="store_true", help="tracemalloc in the server (slower)")
    parser.add_argument("--variants", nargs="+", default=["base"],
                        help="servers run side by side, each under its own clients (see apply_variant)")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_child(args.serve, args.out, args.every, args.trace, args.variants[0])
        return
    import load

    reports: dict[str, Any] = {}
    threads = [threading.Thread(target=lambda v=v: reports.update({v: probe(load, args, v)}))
               for v in args.variants]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps(reports, indent=1))


def probe(load: Any, args: argparse.Namespace, variant: str) -> dict[str, Any]:
    """One server under ``variant``, driven by its own clients; its memory report."""
    port = load.free_port()
    folder = Path(tempfile.mkdtemp(prefix="speech-qa-memprobe-"))
    samples = folder / "samples.jsonl"
    command = [sys.executable, str(Path(__file__).resolve()), "--serve", str(port), "--out", str(samples),
               "--every", str(args.every), "--variants", variant, *(["--trace"] if args.trace else [])]
    client = load.json_client if args.route == "json" else load.gradio_client
    with load.server(command, port, folder / "server.log") as process:
        def mark_at(seconds: float) -> None:
            time.sleep(seconds)
            if process.poll() is None:
                process.send_signal(signal.SIGUSR1)

        total = args.warm_up + args.seconds
        for at in (60.0, total - 5.0):
            threading.Thread(target=mark_at, args=(at,), daemon=True).start()
        result = load.drive(client, port, process.pid, args.clients, args.warm_up, args.seconds)
        time.sleep(args.every + 1)
    rows = [json.loads(line) for line in samples.read_text().splitlines()]
    load_start = next((r["t"] for r in rows if r.get("mark") == 0), rows[0]["t"]) - 60.0
    marks = [r for r in rows if "mark" in r]
    return {"route": args.route, "trace": args.trace, "folder": str(folder),
            "questions_per_s": result["questions_per_s"], "p50_ms": result["p50_ms"],
            "errors": result["errors"], "load_average": result["load_average"],
            "load_rss_minute1_mb": result["rss_minute1_mb"], "load_rss_end_mb": result["rss_end_mb"],
            "from_minute_1 (start, end, diff MB)": summarise(rows, load_start + 60.0),
            "from_warm_up (start, end, diff MB)": summarise(rows, load_start + args.warm_up),
            "last_mark": {k: v for k, v in marks[-1].items()
                          if k.startswith(("census", "traced_growth", "mapped"))} if marks else {}}


if __name__ == "__main__":
    main()
