"""The JSON API (``POST /api/ask``, ``GET /api/health``, ``/docs``) beside the page, and the server's logs.

A real server over the bundled speech and the real model, on a free loopback port, spoken
to with plain HTTP (``http.client``), exactly as ``curl`` would.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from qa import QA  # noqa: E402

pytestmark = pytest.mark.server

ROOT = Path(__file__).resolve().parents[1]
GLOBAL_500 = "When did Dalian receive the Global 500 award?"
QUESTIONS = [
    GLOBAL_500,
    "Who proposed the Dalian Environmental Model Zone?",
    "When did Ryutaro Hashimoto visit China?",
    "How many projects did the investment include?",
    "What is Dalian's urban development idea?",
    "Which city worked with Dalian on the environment?",
]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def request(port: int, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request(method, path, body=body, headers=headers or {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def ask(port: int, payload: Any) -> tuple[int, Any]:
    status, _, body = request(port, "POST", "/api/ask", json.dumps(payload).encode())
    return status, json.loads(body)


@dataclass
class Served:
    port: int
    engine: QA
    running: Any


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    from ui.app import launch

    engine = QA.default()
    port = free_port()
    running = launch(engine, host="127.0.0.1", port=port, block=False, quiet=True)
    try:
        yield Served(port, engine, running)
    finally:
        running.close()


def same(result: dict[str, Any], expected: dict[str, Any]) -> None:
    """Equal answers (confidence and scores within the float noise of batched embedding)."""
    assert set(result) == {"question", "answer", "confidence", "passages", "phrase", "phrase_span", "notice"}
    assert result["question"] == expected["question"]
    assert result["answer"] == expected["answer"]
    assert result["confidence"] == pytest.approx(expected["confidence"], abs=2e-3)
    strip = [{k: v for k, v in p.items() if k != "score"} for p in expected["passages"]]
    assert [{k: v for k, v in p.items() if k != "score"} for p in result["passages"]] == strip


# ---------------------------------------------------------------------------- answers
def test_ask_returns_the_answer_dict(served: Served) -> None:
    status, result = ask(served.port, {"question": GLOBAL_500, "top_k": 2})
    assert status == 200
    assert "2001" in result["answer"]
    assert len(result["passages"]) == 2
    same(result, served.engine.ask(GLOBAL_500, 2).to_dict())
    for passage in result["passages"]:
        for span in passage["highlights"]:
            assert 0 <= span["start"] < span["end"] <= len(passage["text"])


def test_top_k_defaults_to_three(served: Served) -> None:
    status, result = ask(served.port, {"question": QUESTIONS[2]})
    assert status == 200 and len(result["passages"]) == 3
    assert "1997" in result["answer"]


def test_concurrent_api_questions_are_batched_and_match_sequential(served: Served) -> None:
    questions = [f"{q} (batch {i})" for i, q in enumerate(QUESTIONS * 2)]
    sequential = {q: served.engine.ask(q, 3).to_dict() for q in questions}
    before = (served.running.batching.stats.batches, served.running.batching.stats.questions)
    with ThreadPoolExecutor(len(questions)) as pool:
        results = list(pool.map(lambda q: ask(served.port, {"question": q, "top_k": 3}), questions))
    for question, (status, result) in zip(questions, results, strict=True):
        assert status == 200
        same(result, sequential[question])
    batches = served.running.batching.stats.batches - before[0]
    answered = served.running.batching.stats.questions - before[1]
    assert answered == len(questions)
    assert batches < len(questions), "12 concurrent questions took 12 model calls"


def test_the_page_shares_the_batcher(served: Served) -> None:
    before = served.running.batching.stats.questions
    result = Client(f"http://127.0.0.1:{served.port}/", verbose=False).predict(
        f"{GLOBAL_500} (page)", 1, api_name="/ask")
    assert "2001" in result["answer"]
    assert served.running.batching.stats.questions == before + 1


def test_health_and_docs(served: Served) -> None:
    status, _, body = request(served.port, "GET", "/api/health")
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    status, _, body = request(served.port, "GET", "/docs")
    assert status == 200 and b"swagger" in body.lower()
    status, _, body = request(served.port, "GET", "/openapi.json")
    spec = json.loads(body)
    assert {"/api/ask", "/api/health"} <= set(spec["paths"])
    assert {"200", "400", "413", "422"} <= set(spec["paths"]["/api/ask"]["post"]["responses"])
    status, _, body = request(served.port, "GET", "/")
    assert status == 200 and b"<html" in body.lower()  # the page is still at /


# ---------------------------------------------------------------------------- refusals
BAD = [
    (b'{"question": "", "top_k": 3}', 400, "question is empty"),
    (b'{"question": "\\u200b \\u0000"}', 400, "question is empty"),
    (json.dumps({"question": "y" * 2001}).encode(), 400, "the limit is 2000"),
    (b'{"question": "When?", "top_k": 0}', 400, "top_k must be a whole number from 1 to 50"),
    (b'{"question": "When?", "top_k": 51}', 400, "top_k must be a whole number from 1 to 50"),
    (b'{"question": "When?", "top_k": "3"}', 422, "top_k"),
    (b'{"question": "When?", "top_k": 2.5}', 422, "top_k"),
    (b'{"question": 7}', 422, "question"),
    (b'{"top_k": 3}', 422, "question: Field required"),
    (b'{"question": "When?", "extra": 1}', 422, "extra"),
    (b'["When?"]', 422, "body"),
    (b'{"question": "When?"', 400, "not valid JSON"),
    (b"", 422, "body"),
    (json.dumps({"question": "x" * 70_000}).encode(), 413, "larger than 65536 bytes"),
]


@pytest.mark.parametrize(("body", "status", "phrase"), BAD)
def test_bad_input_gets_a_clear_json_error(served: Served, body: bytes, status: int, phrase: str) -> None:
    got, headers, raw = request(served.port, "POST", "/api/ask", body)
    assert got == status, raw[:300]
    assert headers["content-type"].startswith("application/json")
    error = json.loads(raw)
    assert set(error) == {"error"}
    assert phrase in error["error"]
    assert "\n" not in error["error"] and "Traceback" not in error["error"]


def test_a_lying_content_length_is_refused_before_reading(served: Served) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
    try:
        connection.putrequest("POST", "/api/ask")
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(50 * 2**20))
        connection.endheaders()
        connection.send(b'{"question": "')
        response = connection.getresponse()
        assert response.status == 413
        assert "larger than" in json.loads(response.read())["error"]
    finally:
        connection.close()
    status, result = ask(served.port, {"question": GLOBAL_500, "top_k": 1})
    assert status == 200 and "2001" in result["answer"]


# ---------------------------------------------------------------------------- the command and its logs
def start_serve(port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "GRADIO_TEMP_DIR"}
    return subprocess.Popen([sys.executable, "-m", "ui.cli", "serve", "--port", str(port)], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_listening(process: subprocess.Popen[bytes], port: int, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, (process.stderr.read() if process.stderr else b"")[-2000:]
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.3)


def test_logs_one_line_per_user_error_and_per_request(tmp_path: Path) -> None:
    port = free_port()
    process = start_serve(port)
    try:
        wait_listening(process, port)
        # Ready as soon as the port answers: the model and the index loaded before it opened.
        assert request(port, "GET", "/api/health")[0] == 200
        assert ask(port, {"question": " "})[0] == 400
        assert ask(port, {"question": GLOBAL_500, "top_k": 99})[0] == 400
        assert request(port, "POST", "/api/ask", b"{not json")[0] == 400
        assert ask(port, {"question": GLOBAL_500})[0] == 200
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        with pytest.raises(AppError, match="question is empty"):
            client.predict("", 3, api_name="/ask")
        wrong = tmp_path / "picture.png"
        wrong.write_bytes(b"\x89PNG not a document")
        with pytest.raises(AppError, match="Invalid file type"):
            client.predict([handle_file(str(wrong))], api_name="/upload")
        client.close()
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0
    log = err.decode()
    assert "Traceback" not in log, log[-3000:]
    lines = log.splitlines()
    refusals = [line for line in lines if "refused" in line]
    assert len(refusals) == 5, refusals
    assert sum("refused /api/ask: question is empty" in line for line in lines) == 1
    assert sum("refused /api/ask: top_k must be" in line for line in lines) == 1
    assert sum("not valid JSON" in line for line in lines) == 1
    assert sum("refused a page request: question is empty" in line for line in lines) == 1
    assert sum("refused a page request: Invalid file type" in line for line in lines) == 1
    api_access = [line for line in lines if '"POST /api/ask HTTP/1.1"' in line]
    assert [line.rsplit(" ", 1)[-1] for line in api_access] == ["400", "400", "400", "200"]
    assert sum('"GET /api/health HTTP/1.1" 200' in line for line in lines) == 1


def test_busy_port_fails_fast_before_loading_the_model() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        started = time.monotonic()
        result = subprocess.run([sys.executable, "-m", "ui.cli", "serve", "--port", str(port)], cwd=ROOT,
                                capture_output=True, timeout=120)
        elapsed = time.monotonic() - started
    assert result.returncode == 2
    assert result.stdout == b""  # "loading the model" is never printed: it failed first
    err = result.stderr.decode().strip()
    assert len(err.splitlines()) == 1, err
    assert f"port {port}" in err and "--port" in err and "in use" in err
    assert "GRADIO_SERVER_PORT" not in err and "Traceback" not in err
    assert elapsed < 30


def test_answer_survives_a_process_boundary_whole() -> None:
    """``Answer.from_dict`` (how answers cross Ray) keeps the phrase, notice and pages."""
    from qa import QA, Answer, Passage, Span

    answer = QA.default().ask("When did Dalian win the Global 500 award?", 3)
    assert answer.phrase is not None
    assert Answer.from_dict(answer.to_dict()).to_dict() == answer.to_dict()
    paged = Answer("Q?", "It rained.", 0.9, (Passage("It rained.", "a.pdf", 0, 10, 0.9, (Span(0, 10),),
                                                     paragraph=2, page=3),),
                   phrase="rained", phrase_span=Span(3, 9), notice=None)
    assert Answer.from_dict(paged.to_dict()) == paged
