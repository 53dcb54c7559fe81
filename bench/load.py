"""Load test: a real ``speech-qa serve`` on loopback, 20 concurrent gradio_client users, 60 s.

Why this shape: the web page is the product most people meet, and Gradio's queue, the
engine's lock and the model's threads only show their limits under concurrency.  Each
simulated user is its own ``gradio_client.Client`` (its own session) asking questions back
to back through ``/ask``, exactly as an API caller would.  Every question is made unique
(a numbered variant of the benchmark's speech questions), so the engine's answer cache never
helps: this is the worst case, the model embeds every question.

Measured: errors (any exception or a malformed result), latency p50/p90/p99/max, questions
per second, and the server's resident memory (its process tree, from /proc) after warm-up,
at its peak and at the end, with growth after warm-up checked against the 10% promise.

Bounded: loopback only; the run stops at ``--duration`` seconds, each client also stops
after ``--max-requests``; the server is stopped at the end whatever happens.

Usage:
    .venv/bin/python bench/load.py                  # 20 clients, 60 s, print the figures
    .venv/bin/python bench/load.py --write          # also rewrite the load section of RESULTS.md
    .venv/bin/python bench/load.py --clients 5 --duration 10   # a quick smoke run
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "RESULTS.md"
START, END = "<!-- load:start -->", "<!-- load:end -->"
MEMORY_GROWTH_LIMIT = 0.10


def free_port() -> int:
    """A TCP port free on loopback now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of a process and its descendants (from /proc; 0 once it is gone)."""
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += next(int(line.split()[1]) * 1024 for line in status.splitlines()
                          if line.startswith("VmRSS:"))
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except (OSError, StopIteration):
            continue
        pending += [int(child) for child in children]
    return total


def questions() -> list[str]:
    """The speech benchmark's questions (the same ones the quality benchmark uses)."""
    data = json.loads((ROOT / "bench" / "data" / "speech_questions.json").read_text(encoding="utf-8"))
    return [str(item["question"]) for item in data]


@dataclass
class Tally:
    """What all clients measured, under one lock."""

    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def client_loop(url: str, number: int, pool: list[str], stop_at: float, max_requests: int,
                tally: Tally, warm_until: float) -> None:
    """One user: its own session, questions back to back until the time or count is up."""
    from gradio_client import Client

    try:
        client = Client(url, verbose=False)
    except Exception as exc:  # counted, not raised: the run must report every failure
        with tally.lock:
            tally.errors.append(f"client {number}: connect: {type(exc).__name__}: {exc}")
        return
    for request in range(max_requests):
        if time.monotonic() >= stop_at:
            break
        question = f"{pool[(number * 7 + request) % len(pool)]} (user {number}, try {request})"
        started = time.monotonic()
        try:
            result = client.predict(question, 3, api_name="/ask")
            if not (isinstance(result, dict) and result.get("passages")
                    and set(result) == {"question", "answer", "confidence", "passages"}):
                raise ValueError(f"malformed result: {str(result)[:200]}")
        except Exception as exc:
            with tally.lock:
                tally.errors.append(f"client {number}: {type(exc).__name__}: {str(exc)[:200]}")
            continue
        finished = time.monotonic()
        if started >= warm_until:
            with tally.lock:
                tally.latencies.append(finished - started)
    client.close()


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (no interpolation: p99 is a latency someone really waited)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))]


def run(clients: int, duration: float, warm_up: float, max_requests: int) -> dict[str, Any]:
    """Start the server, drive it, stop it; return the figures."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    load_average = os.getloadavg()[0]
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1")
    server = subprocess.Popen([sys.executable, "-m", "ui.cli", "serve", "--port", str(port)],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    memory: list[tuple[float, int]] = []
    try:
        deadline = time.monotonic() + 300
        while True:
            if server.poll() is not None:
                details = server.stderr.read().decode()[-2000:] if server.stderr else ""
                raise RuntimeError(f"server exited: {details}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("server did not start within 300 s") from None
                time.sleep(0.5)
        idle_rss = tree_rss_bytes(server.pid)
        pool = questions()
        tally = Tally()
        begin = time.monotonic()
        warm_until = begin + warm_up
        stop_at = warm_until + duration
        threads = [threading.Thread(target=client_loop, daemon=True,
                                    args=(url, n, pool, stop_at, max_requests, tally, warm_until))
                   for n in range(clients)]
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads) and time.monotonic() < stop_at + 120:
            memory.append((time.monotonic() - begin, tree_rss_bytes(server.pid)))
            time.sleep(1.0)
        for thread in threads:
            thread.join(timeout=5)
        measured = time.monotonic() - warm_until
        alive = server.poll() is None
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
    after_warm = [rss for t, rss in memory if t >= warm_up]
    baseline = after_warm[0] if after_warm else idle_rss
    end_rss = statistics.median(after_warm[-5:]) if after_warm else idle_rss
    latencies = tally.latencies
    return {
        "clients": clients,
        "duration_s": duration,
        "warm_up_s": warm_up,
        "measured_s": round(measured, 1),
        "questions": len(latencies),
        "errors": len(tally.errors),
        "error_samples": tally.errors[:5],
        "questions_per_s": round(len(latencies) / measured, 2) if measured else 0.0,
        "latency_ms": {
            "p50": round(1000 * percentile(latencies, 0.50), 1) if latencies else None,
            "p90": round(1000 * percentile(latencies, 0.90), 1) if latencies else None,
            "p99": round(1000 * percentile(latencies, 0.99), 1) if latencies else None,
            "max": round(1000 * max(latencies), 1) if latencies else None,
            "mean": round(1000 * statistics.fmean(latencies), 1) if latencies else None,
        },
        "rss_mb": {
            "idle": round(idle_rss / 2**20, 1),
            "after_warm_up": round(baseline / 2**20, 1),
            "peak": round(max(rss for _, rss in memory) / 2**20, 1) if memory else None,
            "end": round(end_rss / 2**20, 1),
        },
        "rss_growth_after_warm_up": round((end_rss - baseline) / baseline, 4) if baseline else None,
        "server_alive_at_end": alive,
        "load_average_at_start": round(load_average, 2),
    }


def markdown(result: dict[str, Any], command: str) -> str:
    """The load section of RESULTS.md."""
    latency, rss = result["latency_ms"], result["rss_mb"]
    growth = result["rss_growth_after_warm_up"]
    ok = result["errors"] == 0 and growth is not None and growth < MEMORY_GROWTH_LIMIT
    return "\n".join([
        START,
        "# Load (issue 6)",
        "",
        f"- Date: {datetime.date.today().isoformat()}; machine: {os.cpu_count()} CPU cores, "
        f"{round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30)} GiB RAM, no GPU "
        f"({platform.machine()}, Python {platform.python_version()}); shared with other jobs "
        f"(1-minute load average {result['load_average_at_start']} when the run started).",
        f"- Command: `{command}`",
        f"- Set-up: `speech-qa serve` on 127.0.0.1 (default queue concurrency), {result['clients']} "
        f"concurrent `gradio_client` users, each its own session, asking `/ask` back to back for "
        f"{result['duration_s']:.0f} s after a {result['warm_up_s']:.0f} s warm-up; every question unique "
        "(numbered variants of `bench/data/speech_questions.json`), so the answer cache never helps.",
        "",
        "| figure | value |",
        "|---|---:|",
        f"| questions answered (measured window) | {result['questions']} |",
        f"| errors | {result['errors']} |",
        f"| questions per second | {result['questions_per_s']} |",
        f"| latency p50 / p90 / p99 / max (ms) | {latency['p50']} / {latency['p90']} / {latency['p99']} / "
        f"{latency['max']} |",
        f"| server RSS idle / after warm-up / peak / end (MB) | {rss['idle']} / {rss['after_warm_up']} / "
        f"{rss['peak']} / {rss['end']} |",
        f"| RSS growth after warm-up (limit 10%) | {100 * growth:.1f}% |" if growth is not None
        else "| RSS growth after warm-up | n/a |",
        f"| server alive at the end | {'yes' if result['server_alive_at_end'] else 'NO'} |",
        "",
        f"Verdict: {'meets' if ok else 'FAILS'} the issue's targets (0 errors, RSS growth < 10%). "
        "Latency is mostly queueing: 20 users share 2 cores and a queue that runs a few questions "
        "at once, so p50 is about (users / throughput).",
        END,
        "",
    ])


def write_section(section: str) -> None:
    """Replace (or append) only the load section; other benchmarks own the rest of the file."""
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n\n"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        text = head + section + ("\n" + tail if tail else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    RESULTS.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--duration", type=float, default=60.0, help="measured seconds")
    parser.add_argument("--warm-up", type=float, default=10.0, help="seconds of load before measuring")
    parser.add_argument("--max-requests", type=int, default=5000, help="per client, a hard bound")
    parser.add_argument("--write", action="store_true", help="rewrite the load section of RESULTS.md")
    args = parser.parse_args(argv)
    if not (1 <= args.clients <= 64 and 0 < args.duration <= 600):
        parser.error("clients must be 1-64 and duration at most 600 s")
    result = run(args.clients, args.duration, args.warm_up, args.max_requests)
    print(json.dumps(result, indent=2))
    if args.write:
        command = ".venv/bin/python bench/load.py" + "".join(
            f" {arg}" for arg in (argv if argv is not None else sys.argv[1:]))
        write_section(markdown(result, command))
    growth = result["rss_growth_after_warm_up"]
    return 0 if result["errors"] == 0 and growth is not None and growth < MEMORY_GROWTH_LIMIT else 1


if __name__ == "__main__":
    sys.exit(main())
