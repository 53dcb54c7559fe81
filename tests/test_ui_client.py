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
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import wait
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


def files_holding(content: bytes) -> list[Path]:
    """Files under this process's upload folder whose bytes contain ``content``."""
    uploads = Path(os.environ["GRADIO_TEMP_DIR"])
    return [p for p in uploads.rglob("*") if p.is_file() and content in p.read_bytes()]


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
    assert set(result) == {"question", "answer", "confidence", "phrase", "phrase_span", "notice", "passages"}
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


@pytest.mark.parametrize("top_k", [2.5, 0, 51])
def test_top_k_is_a_whole_number_in_the_one_range(client: Client, top_k: float) -> None:
    # 2.5 reaches the engine (our message); Gradio's slider bounds refuse 0 and 51 first.
    with pytest.raises(AppError, match=r"top_k must be a whole number from 1 to 50|minimum value 1"
                                       r"|maximum value 50"):
        client.predict(GLOBAL_500, top_k, api_name="/ask")


def test_top_k_reaches_fifty_as_in_python(client: Client) -> None:
    result = client.predict(GLOBAL_500, 50, api_name="/ask")
    assert 10 < len(result["passages"]) <= 50  # the page's old cap of 10 is gone


def test_empty_question_is_a_clear_error(client: Client) -> None:
    with pytest.raises(AppError, match="question is empty"):
        client.predict("   ", api_name="/ask")
    # The session keeps working after the error.
    assert "2001" in client.predict(GLOBAL_500, api_name="/ask")["answer"]


def test_upload_then_ask_cites_the_upload(served: Served, client: Client, tmp_path: Path) -> None:
    notes = tmp_path / "lighthouse.txt"
    marker = f"Catalogue reference {uuid.uuid4().hex}."  # finds this test's bytes on disk
    notes.write_text(f"{LIGHTHOUSE}\n\n{marker}\n", encoding="utf-8")

    status = client.predict([handle_file(str(notes))], api_name="/upload")
    result = client.predict("What colour was the Zorbland lighthouse painted?", 3, api_name="/ask")

    assert status == {"added": ["lighthouse.txt"], "sources": ["lighthouse.txt"], "problems": [],
                      "pending": []}
    # The uploaded bytes left the server's disk once read (they live on in the session only).
    assert not files_holding(marker.encode())
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

    assert status["added"] == ["garden.md", "museum.html"] and not status["problems"]
    assert garden["passages"][0]["source"] == "garden.md" and "1932" in garden["answer"]
    assert trams["passages"][0]["source"] == "museum.html" and "eleven" in trams["answer"]


def test_unreadable_upload_is_reported_and_the_page_keeps_working(client: Client, tmp_path: Path) -> None:
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4 this is not really a pdf \x00\x01\x02")
    good = tmp_path / "lighthouse.txt"
    good.write_text(LIGHTHOUSE, encoding="utf-8")

    status = client.predict([handle_file(str(broken))], api_name="/upload")
    assert status["added"] == [] and status["sources"] == []
    [problem] = status["problems"]
    assert problem["file"] == "broken.pdf" and problem["kind"] == "unreadable"
    assert problem["message"].startswith("broken.pdf:") and "\n" not in problem["message"]
    assert "2001" in client.predict(GLOBAL_500, api_name="/ask")["answer"]

    # With a good file alongside, the good one is used and the bad one still reported.
    status = client.predict([handle_file(str(broken)), handle_file(str(good))], api_name="/upload")
    assert status["added"] == ["lighthouse.txt"]
    assert [p["file"] for p in status["problems"]] == ["broken.pdf"]
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


def test_page_emphasises_the_phrase_in_the_card_and_the_passage() -> None:
    from ui.render import ANSWER_LABEL, PHRASE_LABEL, _answer_html, _highlight_value

    result = QA.default().ask("When did Dalian win the Global 500 award?", 1).to_dict()
    assert result["phrase"] == "2001"
    card = _answer_html(result, "the speech", False)
    assert '<p class="answer-phrase" id="answer-phrase">2001</p>' in card
    assert "In <mark>2001</mark>, through a recommendation" in card
    value = _highlight_value(result["passages"][0], result["answer"], result["phrase_span"])
    labels = [(e["entity"], value["text"][e["start"]:e["end"]]) for e in value["entities"]]
    assert labels[:3] == [(ANSWER_LABEL, "In "), (PHRASE_LABEL, "2001"),
                          (ANSWER_LABEL, result["answer"][len("In 2001"):])]


def test_page_shows_the_english_notice_for_other_languages() -> None:
    from ui.render import _answer_html

    result = QA.default().ask("大连什么时候获得全球500佳奖？", 3).to_dict()
    card = _answer_html(result, "the speech", False)
    assert "Questions in English work best" in card and "does not seem to answer" not in card
    assert result["passages"]


def serve_app(engine: QA, sessions: Any = None) -> tuple[str, Any]:
    """``build_app`` served on a free loopback port (``launch`` takes no sessions argument)."""
    from ui.app import build_app
    from ui.uploads import private_upload_folder

    private_upload_folder()
    app = build_app(engine, sessions=sessions)
    app.queue(default_concurrency_limit=4)
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
               ssr_mode=False)
    return f"http://127.0.0.1:{port}/", app


@dataclass
class Budgeted:
    """A page over the speech whose sessions may upload only a few hundred characters."""

    url: str
    sessions: Any


@pytest.fixture(scope="module")
def budgeted(served: Served) -> Iterator[Budgeted]:
    from qa import UploadSessions

    sessions = UploadSessions(served.engine, budget_chars=len(LIGHTHOUSE) + 50)
    url, app = serve_app(served.engine, sessions)
    try:
        yield Budgeted(url, sessions)
    finally:
        app.close()


def test_session_budget_is_a_clear_problem(budgeted: Budgeted, tmp_path: Path) -> None:
    client = Client(budgeted.url, verbose=False)
    notes = tmp_path / "lighthouse.txt"
    notes.write_text(LIGHTHOUSE, encoding="utf-8")
    more = tmp_path / "more.txt"
    more.write_text(LIGHTHOUSE.replace("Zorbland", "Quillon"), encoding="utf-8")

    first = client.predict([handle_file(str(notes))], api_name="/upload")
    second = client.predict([handle_file(str(more))], api_name="/upload")

    assert first["added"] == ["lighthouse.txt"]
    assert second["added"] == [] and second["sources"] == ["lighthouse.txt"]
    [problem] = second["problems"]
    assert problem["kind"] == "over_budget" and problem["file"] == "more.txt"
    assert problem["message"].startswith("more.txt: over this session's budget")
    result = client.predict("What colour was the Zorbland lighthouse painted?", 1, api_name="/ask")
    assert result["passages"][0]["source"] == "lighthouse.txt"


def test_a_closed_client_session_is_freed(budgeted: Budgeted, tmp_path: Path) -> None:
    """Gradio's unload event (the tab closed) releases the visitor's engine right away."""
    client = Client(budgeted.url, verbose=False)
    notes = tmp_path / "lighthouse.txt"
    notes.write_text(LIGHTHOUSE, encoding="utf-8")
    before = len(budgeted.sessions)
    assert client.predict([handle_file(str(notes))], api_name="/upload")["added"] == ["lighthouse.txt"]
    assert len(budgeted.sessions) == before + 1

    client.close()

    deadline = time.monotonic() + 30
    while len(budgeted.sessions) > before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(budgeted.sessions) == before


def test_a_custom_index_page_names_its_collection(tmp_path: Path) -> None:
    """Over ``serve --index DIR`` nothing on the page speaks of the speech."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "lighthouse.txt").write_text(LIGHTHOUSE, encoding="utf-8")
    (docs / "trams.md").write_text("# Trams\n\nThe Varnel tram museum keeps eleven restored trams.\n",
                                   encoding="utf-8")
    QA.from_paths([docs], index_dir=tmp_path / "harbour-notes")
    engine = QA.load(tmp_path / "harbour-notes")
    assert not engine.is_default_corpus and engine.examples == ()
    url, app = serve_app(engine)
    try:
        client = Client(url, verbose=False)
        config = client.config
        props = [component.get("props", {}) for component in config["components"]]
        texts = " ".join(str(p.get(key, "")) for p in props for key in ("value", "label", "placeholder"))
        assert config["title"] == "Ask your documents"
        assert "Ask your documents" in texts and "harbour-notes" in texts and "lighthouse.txt" in texts
        assert "Back to the collection alone" in texts
        assert "Dalian" not in texts and "speech" not in texts.lower()
        assert not any(p.get("elem_id") == "examples" for p in props), "examples invented for a collection"
        upload = next(p for p in props if p.get("elem_id") == "upload")
        assert {".htm", ".markdown", ".pdf", ".docx"} <= set(upload["file_types"])

        result = client.predict("How many trams does the Varnel museum keep?", 1, api_name="/ask")
        assert result["passages"][0]["source"].endswith("trams.md")
        assert client.predict(api_name="/use_speech") == {"added": [], "sources": [], "problems": [],
                                                          "pending": []}
    finally:
        app.close()


def test_the_speech_page_keeps_its_title_and_examples(served: Served) -> None:
    config = Client(served.url, verbose=False).config
    props = [component.get("props", {}) for component in config["components"]]
    assert config["title"] == "Ask the Dalian speech"
    [examples] = [p for p in props if p.get("elem_id") == "examples"]
    assert [sample[0] for sample in examples["samples"]] == list(served.engine.examples)
    for question in served.engine.examples:  # every example is answered by the speech
        assert served.engine.ask(question).answer is not None, question


def test_ui_uses_only_the_qa_api() -> None:
    """``ui/`` imports neither ``ingest`` nor ``index`` (nor what only ``index`` may use)."""
    import ast

    forbidden = {"ingest", "index", "faiss", "sentence_transformers", "bm25s"}
    found = []
    for path in sorted((Path(__file__).parent.parent / "ui").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            found += [f"{path.name}: {name}" for name in names if name.split(".")[0] in forbidden]
    assert found == []


def test_an_upload_no_handler_read_is_swept(served: Served, tmp_path: Path) -> None:
    """A file Gradio stored but no event ever read (the tab closed mid-upload) leaves the disk."""
    import httpx

    from ui.app import build_app
    from ui.uploads import private_upload_folder

    private_upload_folder()
    app = build_app(served.engine, unread_upload_seconds=2)
    app.queue(default_concurrency_limit=2)
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
               ssr_mode=False)
    try:
        marker = f"Never read {uuid.uuid4().hex}.".encode()
        response = httpx.post(f"http://127.0.0.1:{port}/gradio_api/upload",
                              files={"files": ("orphan.txt", marker, "text/plain")}, timeout=30)
        response.raise_for_status()
        assert files_holding(marker), "the upload should first land on disk"

        deadline = time.monotonic() + 30
        while files_holding(marker) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not files_holding(marker)
    finally:
        app.close()
