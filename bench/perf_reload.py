"""Live reload of a served collection: how soon a CLI ``add`` is answered, and what 20
reloads under load cost the askers, in one run against a real ``speech-qa serve --index``.

    PYTHONPATH=$PWD .venv/bin/python bench/perf_reload.py --clients 8 --reloads 20

What is measured (the real model everywhere; the collection is the bundled speech):

1. **add to answer**: ``speech-qa add FILE --index DIR`` as a whole process, then the time
   from that process' exit to the first answer that cites FILE, asking every 50 ms; and
   the time from the new ``manifest.json``'s rename (its mtime: the moment the version is
   complete on disk, a little before the process exits) to that answer. Repeated
   ``--adds`` times (add, then remove it again). Target: at most 5 s.
2. **p99 during reloads**: ``--clients`` askers in closed loops (each question distinct, so
   no answer comes from a cache) for a steady window, then while this process writes 20
   new versions (an add and a remove of a small file, alternately, through the same
   ``QA.add``/``remove`` the CLI runs), then a second steady window. The p99 latency during
   the reloads against the p99 of both steady windows. Target: at most 2x. Every failed
   request is counted (target: none), and the server's resident memory is read before and
   after the reloads.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = [
    "When did Dalian receive the Global 500 award?",
    "Who proposed the Dalian Environmental Model Zone?",
    "When did Ryutaro Hashimoto visit China?",
    "How many projects did the investment include?",
    "What is Dalian's urban development idea?",
]
NEW_FILE = ("The Xinghai Bay tram depot opened in March 2026 beside the old ferry pier. "
            "It houses forty trams, two repair halls and a small museum of the city's transport.\n")
NEW_QUESTION = "How many trams does the Xinghai Bay tram depot house?"
TOKEN = "bench-admin-token-" + uuid.uuid4().hex


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ask(port: int, question: str) -> tuple[int, dict[str, Any]]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("POST", "/api/ask", body=json.dumps({"question": question}).encode(),
                           headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


class Load:
    """Closed-loop askers; each latency is filed under the phase it started in."""

    def __init__(self, port: int, clients: int) -> None:
        self.port = port
        self.phase = "warm"
        self.latencies: dict[str, list[float]] = {}
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._count = 0
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                self._count += 1
                number = self._count
            question = f"{QUESTIONS[number % len(QUESTIONS)]} ({number})"
            phase = self.phase
            started = time.perf_counter()
            try:
                status, body = ask(self.port, question)
                if status != 200:
                    self.failures.append(f"{status} {body}")
            except Exception as exc:  # counted, never hidden
                self.failures.append(repr(exc))
                continue
            self.latencies.setdefault(phase, []).append(time.perf_counter() - started)

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self.threads:
            thread.join(timeout=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--reloads", type=int, default=20)
    parser.add_argument("--steady-s", type=float, default=20.0, help="each of the two steady windows")
    parser.add_argument("--gap-s", type=float, default=1.0, help="pause between two reloads")
    parser.add_argument("--adds", type=int, default=3, help="CLI add-to-answer rounds")
    parser.add_argument("--writer-nice", type=int, default=0,
                        help="run this process' 20 writes at this niceness (as 'nice speech-qa add' "
                             "would), to tell the writes' own CPU from the reloads'")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(ROOT))
    from index.collection import index_version
    from qa import QA, default_encoder

    work = Path(tempfile.mkdtemp(prefix="speech-qa-perf-reload-"))
    folder = work / "collection"
    encoder = default_encoder()
    QA.default(encoder).index.save(folder)
    new_file = work / "tram_depot.txt"
    new_file.write_text(NEW_FILE, encoding="utf-8")
    port = free_port()
    env = dict(os.environ, SPEECH_QA_ADMIN_TOKEN=TOKEN,
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    log = (work / "server.log").open("wb")
    server = subprocess.Popen([sys.executable, "-m", "ui.cli", "serve", "--index", str(folder), "--port",
                               str(port)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if ask(port, QUESTIONS[0])[0] == 200:
                    break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server did not start: see {work / 'server.log'}")
            time.sleep(0.5)

        # 1. CLI add -> first answer citing the new file.
        to_answer: list[float] = []
        from_rename: list[float] = []  # from the new manifest's rename (its mtime): the version on disk
        for _ in range(args.adds):
            subprocess.run([sys.executable, "-m", "ui.cli", "add", str(new_file), "--index", str(folder)],
                           cwd=ROOT, env=env, check=True, capture_output=True, timeout=600)
            on_disk = time.perf_counter()
            while True:
                status, body = ask(port, f"{NEW_QUESTION} ({uuid.uuid4().hex[:6]})")
                if status == 200 and body["passages"] and body["passages"][0]["source"] == new_file.name:
                    to_answer.append(time.perf_counter() - on_disk)
                    from_rename.append(time.time() - (folder / "manifest.json").stat().st_mtime)
                    break
                if time.perf_counter() - on_disk > 60:
                    raise SystemExit("the added file was not answered within 60 s")
                time.sleep(0.05)
            subprocess.run([sys.executable, "-m", "ui.cli", "remove", new_file.name, "--index", str(folder)],
                           cwd=ROOT, env=env, check=True, capture_output=True, timeout=600)
        time.sleep(2)  # let the last removal be served before the load phases

        # 2. p99 steady vs during reloads, one load run.
        load = Load(port, args.clients)
        load.start()
        time.sleep(3)  # warm-up (not counted)
        load.phase = "steady-1"
        time.sleep(args.steady_s)
        rss_before = rss_mb(server.pid)
        load.phase = "reloads"
        writer = QA.load(folder, encoder=encoder, lazy=True)
        if args.writer_nice:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), args.writer_nice)
        reload_started = time.perf_counter()
        waits: list[float] = []
        for number in range(args.reloads):
            writer.add([new_file]) if number % 2 == 0 else writer.remove([new_file.name])
            written, version = time.perf_counter(), index_version(folder)
            while True:  # served when an answer shows it (a question about the new file)
                status, body = ask(port, f"{NEW_QUESTION} ({uuid.uuid4().hex[:6]})")
                cites = bool(body.get("passages")) and body["passages"][0]["source"] == new_file.name
                if status == 200 and cites == (number % 2 == 0):
                    break
                time.sleep(0.02)
            waits.append(time.perf_counter() - written)
            assert index_version(folder) == version
            time.sleep(args.gap_s)
        reload_window = time.perf_counter() - reload_started
        rss_after = rss_mb(server.pid)
        load.phase = "steady-2"
        time.sleep(args.steady_s)
        load.stop()
        steady = load.latencies.get("steady-1", []) + load.latencies.get("steady-2", [])
        during = load.latencies.get("reloads", [])
        result = {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                       f"{platform.system()} {platform.release()}",
            "command": "python bench/perf_reload.py " + " ".join(sys.argv[1:]),
            "add_to_answer_s": [round(t, 2) for t in to_answer],
            "add_to_answer_max_s": round(max(to_answer), 2),
            "manifest_to_answer_s": [round(t, 2) for t in from_rename],
            "reloads": args.reloads,
            "writer_nice": args.writer_nice,
            "write_to_served_median_s": round(statistics.median(waits), 3),
            "write_to_served_max_s": round(max(waits), 3),
            "reload_window_s": round(reload_window, 1),
            "clients": args.clients,
            "steady_requests": len(steady),
            "steady_p50_ms": round(1000 * statistics.median(steady), 1),
            "steady_p99_ms": round(1000 * p99(steady), 1),
            "reload_requests": len(during),
            "reload_p50_ms": round(1000 * statistics.median(during), 1),
            "reload_p99_ms": round(1000 * p99(during), 1),
            "p99_ratio": round(p99(during) / p99(steady), 2),
            "failed_requests": len(load.failures),
            "server_rss_mb_before_reloads": round(rss_before, 1),
            "server_rss_mb_after_reloads": round(rss_after, 1),
        }
        print(json.dumps(result, indent=2))
        if load.failures:
            print("failures:", load.failures[:5], file=sys.stderr)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
