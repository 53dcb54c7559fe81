"""``serve --replicas``: the app on Ray Serve (a local Ray), with 2 engine replicas.

One Ray session for the whole module (starting Ray and loading the model in each replica is
the slow part). Everything is on loopback; every wait is bounded.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

# A plain import, not importorskip: `make test` installs the [cluster] extra, so these tests
# must run (a missing Ray is an error, never a silent skip).
import ray
from gradio_client import Client
from ray import serve

from qa import QA

pytestmark = pytest.mark.server

ROOT = Path(__file__).resolve().parents[1]
GLOBAL_500 = "When did Dalian receive the Global 500 award?"
HASHIMOTO = "When did Ryutaro Hashimoto visit China?"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def post(port: int, payload: Any, timeout: float = 60) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("POST", "/api/ask", body=json.dumps(payload).encode(),
                           headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def replica_states() -> dict[str, int]:
    status = serve.status().applications["speech-qa"].deployments["Engine"]
    return {str(state): count for state, count in status.replica_states.items()}


def replica_pids(handle: Any, want: int, timeout: float = 60) -> set[int]:
    """Pids of the Engine replicas, by asking until ``want`` distinct ones answered."""
    pids: set[int] = set()
    deadline = time.monotonic() + timeout
    while len(pids) < want and time.monotonic() < deadline:
        pids |= {handle.pid.remote().result(timeout_s=30) for _ in range(8)}
    return pids


@pytest.fixture(scope="module")
def cluster() -> Iterator[int]:
    from ui.cluster import serve_on_ray

    port = free_port()
    server = serve_on_ray(2, host="127.0.0.1", port=port, block=False)
    try:
        yield port
    finally:
        server.close()
    assert not ray.is_initialized()


def test_two_replicas_answer_the_json_api(cluster: int) -> None:
    assert replica_states().get("RUNNING") == 2
    status, result = post(cluster, {"question": GLOBAL_500, "top_k": 2})
    assert status == 200
    assert "2001" in result["answer"] and len(result["passages"]) == 2
    local = QA.default().ask(GLOBAL_500, 2).to_dict()
    assert result["answer"] == local["answer"]
    assert [p["start"] for p in result["passages"]] == [p["start"] for p in local["passages"]]
    status, error = post(cluster, {"question": "", "top_k": 2})
    assert (status, error) == (400, {"error": "question is empty; type a question about the document"})
    status, error = post(cluster, {"question": GLOBAL_500, "top_k": "two"})
    assert status == 422 and "top_k" in error["error"]


def test_health_and_the_page(cluster: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", cluster, timeout=30)
    connection.request("GET", "/api/health")
    response = connection.getresponse()
    assert (response.status, json.loads(response.read())) == (200, {"status": "ok"})
    connection.close()
    client = Client(f"http://127.0.0.1:{cluster}/", verbose=False)
    assert "1997" in client.predict(HASHIMOTO, 3, api_name="/ask")["answer"]
    client.close()


def test_both_replicas_serve_concurrent_questions(cluster: int) -> None:
    handle = serve.get_deployment_handle("Engine", app_name="speech-qa")
    assert len(replica_pids(handle, 2)) == 2
    questions = [f"{GLOBAL_500} (copy {i})" for i in range(16)]
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda q: post(cluster, {"question": q, "top_k": 1}), questions))
    assert all(status == 200 and "2001" in result["answer"] for status, result in results)


def test_a_killed_replica_is_replaced_and_requests_keep_succeeding(cluster: int) -> None:
    handle = serve.get_deployment_handle("Engine", app_name="speech-qa")
    before = replica_pids(handle, 2)
    assert len(before) == 2
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    failures = []
    answered = 0
    deadline = time.monotonic() + 180
    replaced: set[int] = set()
    while time.monotonic() < deadline:
        status, result = post(cluster, {"question": f"{HASHIMOTO} ({answered})", "top_k": 1}, timeout=90)
        if status == 200 and "1997" in (result.get("answer") or ""):
            answered += 1
        else:
            failures.append((status, result))
        if answered >= 10 and replica_states().get("RUNNING") == 2:
            replaced = replica_pids(handle, 2)
            if len(replaced) == 2 and victim not in replaced:
                break
        time.sleep(0.2)
    assert failures == []
    assert answered >= 10
    assert len(replaced) == 2 and victim not in replaced, "the killed replica was not replaced"
    assert (before - {victim}) <= replaced  # the survivor kept serving


def test_replicas_without_ray_say_how_to_install(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from ui.cli import main

    monkeypatch.setitem(sys.modules, "ray.serve", None)
    assert main(["serve", "--replicas", "2", "--port", str(free_port())]) == 2
    err = capsys.readouterr().err
    assert "pip install 'speech-qa[cluster]'" in err and "--replicas" in err
    # The earlier tests' local Ray forwards its workers' log lines to this process' stderr
    # late ("(ServeReplica:...) INFO ...", "(raylet) ..."): they are not this command's output.
    ray_line = re.compile(r"^(\x1b\[[0-9;]*m)?\((ServeReplica|ServeController|ProxyActor|raylet|pid=)")
    ours = [line for line in err.strip().splitlines() if not ray_line.match(line)]
    assert len(ours) == 1, ours


def test_replicas_on_a_busy_port_fail_fast() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        command = [sys.executable, "-m", "ui.cli", "serve", "--replicas", "2", "--port", str(port)]
        result = subprocess.run(command, cwd=ROOT, capture_output=True, timeout=120)
    assert result.returncode == 2
    assert result.stdout == b""
    err = result.stderr.decode().strip()
    assert len(err.splitlines()) == 1 and "--port" in err and f"port {port}" in err, err
