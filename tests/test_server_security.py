"""The web server as an attacker on the network sees it, through a real ``speech-qa serve``.

What is promised (README, Reliability): the server binds 127.0.0.1 unless ``--host`` says
otherwise; uploads are size-limited and land, whatever their claimed names, in a private
temporary folder; no route serves files from disk (tried with ``../`` paths sent raw, so no
client library normalises them away); hostile questions to ``/ask`` and hostile uploads
are answered or refused with a clear message, and the server keeps serving.

All traffic is on loopback; every wait is bounded.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from qa.question import MAX_QUESTION_CHARS  # noqa: E402

pytestmark = pytest.mark.server

ROOT = Path(__file__).resolve().parents[1]
GLOBAL_500 = "When did Dalian receive the Global 500 award?"
START_TIMEOUT_S = 240


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening_addresses(port: int) -> set[str]:
    """Local addresses of listening TCP sockets on ``port``, from /proc (IPv4 and IPv6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if int(port_hex, 16) == port and fields[3] == "0A":  # 0A: LISTEN
                if len(address) == 8:
                    found.add(socket.inet_ntop(socket.AF_INET, bytes.fromhex(address)[::-1]))
                else:
                    raw = bytes.fromhex(address)
                    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
                    found.add(socket.inet_ntop(socket.AF_INET6, words))
    return found


@dataclass
class Server:
    """A ``speech-qa serve`` child process and how to reach it."""

    process: subprocess.Popen[bytes]
    port: int
    url: str
    upload_folders: set[Path] = field(default_factory=set)

    def get(self, path: str) -> tuple[int, bytes]:
        """GET ``path`` exactly as written (http.client does not normalise ``../``)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def upload(self, name: str, content: bytes) -> tuple[int, bytes]:
        """POST one file to Gradio's upload route with a filename of our choosing."""
        boundary = "----speechqa" + uuid.uuid4().hex
        body = (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
                "Content-Type: text/plain\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request("POST", "/gradio_api/upload", body=body,
                               headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    """``python -m ui.cli serve --port P`` with no --host: the product's own defaults."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "GRADIO_TEMP_DIR"}
    process = subprocess.Popen([sys.executable, "-m", "ui.cli", "serve", "--port", str(port)],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            pytest.fail(f"server exited: {process.stderr.read().decode()[-3000:] if process.stderr else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                pytest.fail("server did not start in time")
            time.sleep(0.5)
    served = Server(process, port, f"http://127.0.0.1:{port}/")
    try:
        yield served
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    # SIGTERM stops it cleanly: exit code 0 and the private upload folder is gone.
    assert process.returncode == 0
    assert served.upload_folders and not any(folder.exists() for folder in served.upload_folders)


@pytest.fixture
def client(server: Server) -> Client:
    return Client(server.url, verbose=False)


def assert_still_serving(server: Server) -> None:
    assert server.process.poll() is None, "the server died"
    result = Client(server.url, verbose=False).predict(GLOBAL_500, 1, api_name="/ask")
    assert "2001" in result["answer"]


# ---------------------------------------------------------------------------- binding
def test_binds_loopback_by_default(server: Server) -> None:
    assert listening_addresses(server.port) == {"127.0.0.1"}


def test_host_flag_is_honoured(tmp_path: Path) -> None:
    """``--host`` reaches the bind (127.0.0.2: another address, still loopback only)."""
    from conftest import FakeEncoder

    from qa import QA
    from ui.app import launch
    from ui.cli import build_parser

    assert build_parser().parse_args(["serve"]).host == "127.0.0.1"
    assert build_parser().parse_args(["serve", "--host", "127.0.0.2"]).host == "127.0.0.2"
    port = free_port()
    app = launch(QA.default(encoder=FakeEncoder()), host="127.0.0.2", port=port, block=False, quiet=True)
    try:
        assert listening_addresses(port) == {"127.0.0.2"}
    finally:
        app.close()


# ---------------------------------------------------------------------------- files on disk
SECRET = "speech-qa-secret-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def secret_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("secret") / "secret.txt"
    path.write_text(SECRET, encoding="utf-8")
    return path


def traversal_paths(secret: Path) -> list[str]:
    up = "../" * 12
    encoded = "..%2f" * 12
    targets = ["etc/passwd", str(secret).lstrip("/"), str(ROOT / "pyproject.toml").lstrip("/")]
    paths = []
    for target in targets:
        for prefix in ("/file=", "/gradio_api/file=", "/static/", "/assets/", "/gradio_api/",
                       "/custom_component/x/", "/"):
            paths += [f"{prefix}{up}{target}", f"{prefix}{encoded}{target.replace('/', '%2f')}",
                      f"{prefix}/{target}", f"{prefix}%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/{target}"]
    return [*paths, "/gradio_api/file=pyproject.toml", "/file=pyproject.toml", "/gradio_api/file=ui/app.py",
            "/gradio_api/file=.", "/gradio_api/file=/proc/self/environ", "/gradio_api/file=~/.bashrc"]


def test_no_route_serves_files_from_disk(server: Server, secret_file: Path) -> None:
    leaks = []
    for path in traversal_paths(secret_file):
        status, body = server.get(path)
        if status == 200 and (b"root:x:0:0" in body or SECRET.encode() in body or b"[build-system]" in body
                              or b"private_upload_folder" in body or b"PATH=" in body):
            leaks.append(path)
        assert status != 500, f"{path}: server error"
    assert leaks == []


def test_upload_names_cannot_write_outside_a_private_folder(server: Server, tmp_path: Path) -> None:
    names = [
        "../" * 12 + str(tmp_path / "escape1.txt").lstrip("/"),
        str(tmp_path / "escape2.txt"),
        "..\\..\\..\\escape3.txt",
        "a/../../../../escape4.txt",
        "%2e%2e%2fescape5.txt",
        "ok.txt",
    ]
    stored = []
    for name in names:
        status, body = server.upload(name, b"Uploaded text, nothing more.")
        assert status == 200, body
        stored += [Path(p) for p in json.loads(body)]
    folder = Path(os.path.commonpath([p.parent.parent for p in stored]))
    server.upload_folders.add(folder)
    assert folder != Path("/tmp/gradio") and folder.name.startswith("speech-qa-uploads-")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700, "the upload folder is readable by others"
    for path in stored:
        assert path.resolve().is_relative_to(folder.resolve()), path
        assert ".." not in path.name.split("/")
        assert path.read_bytes() == b"Uploaded text, nothing more."
    assert not any(tmp_path.iterdir()), "an upload name wrote outside the upload folder"
    assert not any(p.name.startswith("escape") for p in (ROOT, ROOT.parent) for p in p.iterdir())


def test_upload_size_is_limited(server: Server) -> None:
    status, _ = server.upload("big.txt", b"a" * (21 * 2**20))
    assert status == 413
    assert_still_serving(server)


# ---------------------------------------------------------------------------- hostile input
ANSWERED = [
    "When\x01 did\x07 Dalian\x1b receive the Global 500 award?\x7f",
    "?!?...,;:",
    "大连什么时候获得全球500佳奖？",
    "متى فازت داليان بجائزة؟",
    "<script>alert(1)</script>",
]
REFUSED = [("x" * 2**20, "the limit is 2000"), ("y" * (MAX_QUESTION_CHARS + 1), "the limit is 2000"),
           ("\u200b \x00", "question is empty")]


@pytest.mark.parametrize("question", ANSWERED)
def test_ask_endpoint_answers_odd_questions(client: Client, question: str) -> None:
    result = client.predict(question, 3, api_name="/ask")
    assert set(result) == {"question", "answer", "confidence", "phrase", "phrase_span", "notice", "passages"}
    assert result["passages"]
    if "Global 500" in question:
        assert "2001" in result["answer"]


def test_ask_endpoint_lone_surrogate_in_raw_json(server: Server) -> None:
    """JSON may carry an unpaired surrogate (gradio_client cannot even send one): sent raw."""
    body = b'{"data": ["When \\ud800did Dalian receive the Global 500 \\udfffaward?", 3]}'
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        connection.request("POST", "/gradio_api/call/ask", body=body,
                           headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        assert response.status == 200
        event = json.loads(response.read())["event_id"]
        connection.request("GET", f"/gradio_api/call/ask/{event}")
        stream = connection.getresponse().read().decode()
    finally:
        connection.close()
    assert "event: complete" in stream, stream[-2000:]
    data = json.loads(stream.split("event: complete", 1)[1].split("data:", 1)[1].strip())
    assert "2001" in data[0]["answer"]
    assert data[0]["question"] == "When did Dalian receive the Global 500 award?"


@pytest.mark.parametrize(("question", "phrase"), REFUSED)
def test_ask_endpoint_refuses_clearly(server: Server, client: Client, question: str, phrase: str) -> None:
    with pytest.raises(AppError, match=phrase):
        client.predict(question, 3, api_name="/ask")
    assert_still_serving(server)


@pytest.mark.parametrize("top_k", [0, 51, -5])
def test_ask_endpoint_bad_top_k(server: Server, client: Client, top_k: int) -> None:
    """Out-of-range passage counts (the range is 1-50 on every surface) are refused."""
    with pytest.raises(AppError) as refused:
        client.predict(GLOBAL_500, top_k, api_name="/ask")
    assert "top_k" in str(refused.value) or "minimum" in str(refused.value) \
        or "maximum" in str(refused.value)


def test_hostile_uploads_are_reported_and_the_server_keeps_serving(server: Server, client: Client,
                                                                    tmp_path: Path) -> None:
    import sys as _sys

    _sys.path.insert(0, str(Path(__file__).parent))
    from test_hostile_files import docx_with_part, minimal_pdf

    files = {
        "bomb.docx": docx_with_part("word/document.xml", 100, b" " * 2**20),
        "nested.html": b"<div>" * 200_000 + b"Deep text." + b"</div>" * 200_000,
        "noise.pdf": os.urandom(2**20),
        "scan.pdf": minimal_pdf([None]),
        "empty.txt": b"",
        "quadratic.html": b"<!" * 2**20,
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    started = time.monotonic()
    status = client.predict([handle_file(str(tmp_path / n)) for n in files], api_name="/upload")
    assert time.monotonic() - started < 60
    refused = {problem["file"]: problem for problem in status["problems"]}
    for name in ("bomb.docx", "noise.pdf", "scan.pdf", "empty.txt"):
        assert refused[name]["kind"] == "unreadable", status
        assert refused[name]["message"].startswith(name) and "\n" not in refused[name]["message"]
    # The nested HTML was readable: its text is now searchable in this session.
    result = client.predict("Where is the deep text?", 3, api_name="/ask")
    assert any(p["source"] == "nested.html" for p in result["passages"])
    assert_still_serving(server)


def test_the_bundled_speech_is_listed_and_read_only_over_http(server: Server) -> None:
    """No ``--index``: the documents routes list the speech and refuse every write (409)."""
    status, body = server.get("/api/documents")
    assert status == 200
    assert [d["source"] for d in json.loads(body)["documents"]] == ["dalian_speech.txt"]
    for method, path in (("POST", "/api/documents"), ("DELETE", "/api/documents?source=dalian_speech.txt")):
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        try:
            connection.request(method, path, body=b"",
                               headers={"Authorization": "Bearer guess-0123456789abcdef"})
            response = connection.getresponse()
            status, refusal = response.status, json.loads(response.read())
        finally:
            connection.close()
        assert status == 409 and "read-only" in refusal["error"], (method, refusal)


def test_server_survived_everything(server: Server) -> None:
    assert_still_serving(server)
