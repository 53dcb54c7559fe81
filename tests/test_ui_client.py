"""The web page end to end through ``gradio_client``: a launched app, the real bundled model.

These tests talk HTTP to a real server on a free loopback port, exactly as an API user
would (``Client(url).predict(..., api_name="/ask")``), so they cover the event wiring,
the per-session uploads and the JSON shape, not just the Python functions behind them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("SPEECH_QA_CACHE_DIR", tempfile.mkdtemp(prefix="speech-qa-ui-cache-"))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from qa import QA  # noqa: E402

pytestmark = pytest.mark.server

GLOBAL_500 = "When did Dalian receive the Global 500 award?"
LIGHTHOUSE = (
    "Harbour notes\n\n"
    "The Zorbland lighthouse was painted teal in 1887 by its keeper, Ana Vell. "
    "It stands on the northern cliffs above the old fishing harbour.\n\n"
    "The harbour itself silted up in 1920 and was dredged again in 1954."
)


def free_port() -> int:
    """A TCP port that is free on loopback right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Served:
    """A running page: its URL and the shared engine behind it."""

    url: str
    engine: QA
    app: Any


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    """Launch the page over the bundled speech on a free loopback port; close it after."""
    from ui.app import launch

    engine = QA.default()
    port = free_port()
    app = launch(engine, host="127.0.0.1", port=port, block=False, quiet=True)
    try:
        yield Served(url=f"http://127.0.0.1:{port}/", engine=engine, app=app)
    finally:
        app.close()


@pytest.fixture
def client(served: Served) -> Client:
    """A fresh client: a new browser session with no uploads."""
    return Client(served.url, verbose=False)


def assert_offsets(result: dict[str, Any]) -> None:
    """Every highlight is a span of its passage's text, and the answer is one of them."""
    for passage in result["passages"]:
        for span in passage["highlights"]:
            assert 0 <= span["start"] < span["end"] <= len(passage["text"])
    if result["answer"] is not None:
        first = result["passages"][0]
        best = first["highlights"][0]
        assert first["text"][best["start"]:best["end"]].strip() == result["answer"].strip()


def test_ask_returns_the_answer_dict(served: Served, client: Client) -> None:
    result = client.predict(GLOBAL_500, 3, api_name="/ask")

    assert isinstance(result, dict)
    assert set(result) == {"question", "answer", "confidence", "passages"}
    assert "Global 500" in result["answer"] and "2001" in result["answer"]
    assert len(result["passages"]) == 3
    assert all(p["source"] == "dalian_speech.txt" and p["paragraph"] >= 1 for p in result["passages"])
    assert_offsets(result)
    # The API returns exactly what the Python API returns for the same question.
    assert result == served.engine.ask(GLOBAL_500, 3).to_dict()


def test_ask_takes_the_question_alone_and_top_k(client: Client) -> None:
    default = client.predict("Who proposed the Dalian Environmental Model Zone?", api_name="/ask")
    one = client.predict("Who proposed the Dalian Environmental Model Zone?", 1, api_name="/ask")

    assert "Sueyoshi" in default["answer"] and "Mizuno" in default["answer"]
    assert len(default["passages"]) == 3
    assert len(one["passages"]) == 1
    assert one["answer"] == default["answer"]


def test_empty_question_is_a_clear_error(client: Client) -> None:
    with pytest.raises(AppError, match="question is empty"):
        client.predict("   ", api_name="/ask")
    # The session keeps working after the error.
    assert "2001" in client.predict(GLOBAL_500, api_name="/ask")["answer"]


def test_upload_then_ask_cites_the_upload(served: Served, client: Client, tmp_path: Path) -> None:
    notes = tmp_path / "lighthouse.txt"
    notes.write_text(LIGHTHOUSE, encoding="utf-8")

    status = client.predict([handle_file(str(notes))], api_name="/upload")
    result = client.predict("What colour was the Zorbland lighthouse painted?", 3, api_name="/ask")

    assert "lighthouse.txt" in status
    assert result["passages"][0]["source"] == "lighthouse.txt"
    assert "teal" in result["answer"]
    assert_offsets(result)
    # The speech is still searched alongside the upload.
    speech = client.predict(GLOBAL_500, 3, api_name="/ask")
    assert "2001" in speech["answer"]
    assert speech["passages"][0]["source"] == "dalian_speech.txt"

    # Another browser session never sees this one's uploads, and the shared index is untouched.
    other = Client(served.url, verbose=False).predict(
        "What colour was the Zorbland lighthouse painted?", 3, api_name="/ask")
    assert {p["source"] for p in other["passages"]} == {"dalian_speech.txt"}
    assert [d.source for d in served.engine.documents] == ["dalian_speech.txt"]

    # One click back to the speech alone.
    client.predict(api_name="/use_speech")
    back = client.predict("What colour was the Zorbland lighthouse painted?", 3, api_name="/ask")
    assert {p["source"] for p in back["passages"]} == {"dalian_speech.txt"}


def test_several_formats_upload_together(client: Client, tmp_path: Path) -> None:
    markdown = tmp_path / "garden.md"
    markdown.write_text("# Garden\n\nThe Quillon rose garden opened in 1932 with 400 bushes.\n",
                        encoding="utf-8")
    page = tmp_path / "museum.html"
    page.write_text("<html><head><title>x</title><script>var a=1;</script></head><body>"
                    "<p>The Varnel tram museum keeps eleven restored trams.</p></body></html>",
                    encoding="utf-8")

    status = client.predict([handle_file(str(markdown)), handle_file(str(page))], api_name="/upload")
    garden = client.predict("When did the Quillon rose garden open?", 1, api_name="/ask")
    trams = client.predict("How many trams does the Varnel museum keep?", 1, api_name="/ask")

    assert "garden.md" in status and "museum.html" in status
    assert garden["passages"][0]["source"] == "garden.md" and "1932" in garden["answer"]
    assert trams["passages"][0]["source"] == "museum.html" and "eleven" in trams["answer"]


def test_unreadable_upload_is_reported_and_the_page_keeps_working(client: Client, tmp_path: Path) -> None:
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4 this is not really a pdf \x00\x01\x02")
    good = tmp_path / "lighthouse.txt"
    good.write_text(LIGHTHOUSE, encoding="utf-8")

    status = client.predict([handle_file(str(broken))], api_name="/upload")
    assert "Could not read broken.pdf" in status
    assert "still go to the speech" in status
    assert "2001" in client.predict(GLOBAL_500, api_name="/ask")["answer"]

    # With a good file alongside, the good one is used and the bad one still reported.
    status = client.predict([handle_file(str(broken)), handle_file(str(good))], api_name="/upload")
    assert "broken.pdf" in status and "lighthouse.txt" in status
    result = client.predict("What colour was the Zorbland lighthouse painted?", 1, api_name="/ask")
    assert result["passages"][0]["source"] == "lighthouse.txt"


def test_several_people_can_ask_at_once(served: Served) -> None:
    questions = [GLOBAL_500, "When did Ryutaro Hashimoto visit China?",
                 "How many projects did the investment include?",
                 "Who proposed the Dalian Environmental Model Zone?"]
    clients = [Client(served.url, verbose=False) for _ in questions]
    jobs = [c.submit(q, 3, api_name="/ask") for c, q in zip(clients, questions, strict=True)]
    done, _ = wait(jobs, timeout=60)  # type: ignore[arg-type]

    assert len(done) == len(questions)
    results = [job.result() for job in jobs]
    assert [r["question"] for r in results] == questions
    assert "1997" in results[1]["answer"]
    assert served.app.blocks._queue.default_concurrency_limit > 1


def test_serve_command_serves_the_speech_on_loopback() -> None:
    """``speech-qa serve`` warms up, binds 127.0.0.1 by default, and answers over HTTP."""
    port = free_port()
    command = [sys.executable, "-c", "from ui.cli import main; raise SystemExit(main())",
               "serve", "--port", str(port)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        output = []
        deadline = time.monotonic() + 120
        assert process.stdout is not None
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            output.append(line)
            if "Running on" in line:
                break
        text = "".join(output)
        assert f"http://127.0.0.1:{port}" in text, text
        # Warm-up happened before the port opened: the first question needs no model load.
        started = time.monotonic()
        result = Client(f"http://127.0.0.1:{port}/", verbose=False).predict(GLOBAL_500, api_name="/ask")
        assert "2001" in result["answer"]
        assert time.monotonic() - started < 10
    finally:
        process.terminate()  # SIGTERM: SIGINT may be ignored when the suite runs in the background
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_uploads_over_20_mb_are_refused(client: Client, tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    with big.open("wb") as handle:
        handle.truncate(20 * 1024 * 1024 + 1)
    with pytest.raises(ValueError, match="maximum file size"):
        client.predict([handle_file(str(big))], api_name="/upload")
    assert "2001" in client.predict(GLOBAL_500, api_name="/ask")["answer"]


def test_serve_arguments_default_to_loopback() -> None:
    from ui.cli import build_parser

    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port, args.index) == ("127.0.0.1", 7860, None)
    args = build_parser().parse_args(["serve", "--host", "0.0.0.0", "--port", "8080", "--index", "idx"])
    assert (args.host, args.port, args.index) == ("0.0.0.0", 8080, Path("idx"))


def test_the_cli_does_not_import_gradio_until_serve() -> None:
    """``speech-qa ask`` stays fast: registering ``serve`` must not import gradio."""
    code = "import sys; from ui.cli import build_parser; build_parser(); print('gradio' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
