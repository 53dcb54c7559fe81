"""A real ``speech-qa serve --index DIR`` with the real model: the documents API, the tokens,
asking within sources, and live reload under 20 concurrent askers.

One server for the module (loading the model is the slow part), with an admin token from
``--admin-token-file``; a second, token-less one only for the 403. Every request is plain
HTTP on loopback (``http.client``, as ``curl`` would send it); every wait is bounded.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ingest import Document
from qa import QA

pytestmark = pytest.mark.server

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "served-collection-token-" + uuid.uuid4().hex
START_TIMEOUT_S = 240
HARBOUR = ("The harbour of Dalian was rebuilt in 1999 by the city council. "
           "Trees were planted along the coast to protect the beaches.")
BRIDGE = ("The Xinghai Bay Bridge opened to traffic in 2015. "
          "The bridge is six kilometres long and crosses the bay.")
TRAMS = ("Dalian's first tram line opened in 1909. "
         "The old trams are still painted green and cream.")
FERRY = ("The night ferry to Yantai leaves at nine in the evening. "
         "The crossing takes about seven hours.")


def free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    folder: Path
    log: Path

    def call(self, method: str, path: str, body: bytes | None = None, token: str | None = None,
             content_type: str = "application/json") -> tuple[int, Any]:
        headers = {"Content-Type": content_type}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, json.loads(response.read() or b"null")
        finally:
            connection.close()

    def ask(self, question: str, sources: list[str] | None = None, top_k: int = 3) -> tuple[int, Any]:
        payload: dict[str, Any] = {"question": question, "top_k": top_k}
        if sources is not None:
            payload["sources"] = sources
        return self.call("POST", "/api/ask", json.dumps(payload).encode())

    def upload(self, files: list[tuple[str, bytes]], token: str | None = TOKEN) -> tuple[int, Any]:
        boundary = "----speechqa" + uuid.uuid4().hex
        parts = [(f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
                  "Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n"
                 for name, data in files]
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        return self.call("POST", "/api/documents", body, token, f"multipart/form-data; boundary={boundary}")

    def sources(self) -> list[str]:
        status, body = self.call("GET", "/api/documents")
        assert status == 200, body
        return [document["source"] for document in body["documents"]]


def start(folder: Path, log: Path, *args: str, env: dict[str, str] | None = None) -> Server:
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if k not in ("SPEECH_QA_ADMIN_TOKEN",
                                                                     "SPEECH_QA_READ_TOKEN")}
    environment.update(env or {})
    environment["PYTHONPATH"] = os.pathsep.join([str(ROOT), environment.get("PYTHONPATH", "")])
    handle = log.open("wb")
    process = subprocess.Popen([sys.executable, "-m", "ui.cli", "serve", "--index", str(folder),
                                "--port", str(port), *args], cwd=ROOT, env=environment,
                               stdout=handle, stderr=subprocess.STDOUT)
    server = Server(process, port, folder, log)
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            pytest.fail(f"server exited: {log.read_text(errors='replace')[-3000:]}")
        try:
            if server.call("GET", "/api/health")[0] == 200:
                return server
        except OSError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("server did not start in time")
        time.sleep(0.5)


def stop(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.process.kill()


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory, real_encoder: Any) -> Path:
    folder = tmp_path_factory.mktemp("served") / "collection"
    QA.from_documents([Document("h", "harbour.txt", HARBOUR), Document("b", "bridge.txt", BRIDGE)],
                      index_dir=folder, encoder=real_encoder)
    return folder


@pytest.fixture(scope="module")
def server(collection: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    token_file = tmp_path_factory.mktemp("secret") / "admin-token"
    token_file.write_text(TOKEN + "\n", encoding="utf-8")
    running = start(collection, collection.parent / "server.log", "--admin-token-file", str(token_file))
    yield running
    stop(running)


def test_list_upload_ask_within_sources_and_delete(server: Server) -> None:
    status, listed = server.call("GET", "/api/documents")
    assert status == 200
    assert [(d["source"], d["sentences"], d["pages"]) for d in listed["documents"]] == \
        [("harbour.txt", 2, None), ("bridge.txt", 2, None)]

    status, report = server.upload([("trams.txt", TRAMS.encode()), ("notes.exe", b"MZ")])
    assert status == 200, report
    assert report["added"] == ["trams.txt"] and report["partial"] is True
    assert [item["file"] for item in report["skipped"]] == ["notes.exe"]
    status, answer = server.ask("When did the first tram line open?")
    assert status == 200 and "1909" in answer["answer"] and answer["passages"][0]["source"] == "trams.txt"

    status, within = server.ask("When did the first tram line open?", sources=["bridge.txt", "harbour.txt"])
    assert status == 200 and "1909" not in (within["answer"] or "")
    assert {p["source"] for p in within["passages"]} <= {"bridge.txt", "harbour.txt"}
    status, bridge = server.ask("How long is the bridge?", sources=["bridge.txt"])
    assert status == 200 and "six kilometres" in bridge["answer"]
    status, error = server.ask("How long is the bridge?", sources=["nowhere.txt"])
    assert status == 400 and "'nowhere.txt'" in error["error"]

    status, missing = server.call("DELETE", "/api/documents?source=trams.txt&source=nowhere.txt", token=TOKEN)
    assert status == 404 and "'nowhere.txt'" in missing["error"]
    assert "trams.txt" in server.sources()
    status, removed = server.call("DELETE", "/api/documents?source=trams.txt", token=TOKEN)
    assert (status, removed["removed"]) == (200, ["trams.txt"])
    assert server.sources() == ["harbour.txt", "bridge.txt"]
    status, answer = server.ask("When did the first tram line open?")
    assert all(p["source"] != "trams.txt" for p in answer["passages"])


def test_writes_without_the_right_token_are_401_and_change_nothing(server: Server) -> None:
    for token in (None, "not-the-token-0123456789"):
        status, body = server.upload([("trams.txt", TRAMS.encode())], token=token)
        assert status == 401 and "token" in body["error"]
        status, body = server.call("DELETE", "/api/documents?source=bridge.txt", token=token)
        assert status == 401
    assert server.sources() == ["harbour.txt", "bridge.txt"]
    log = server.log.read_text(errors="replace")
    assert TOKEN not in log and "not-the-token" not in log
    assert "refused POST /api/documents" in log


def test_a_reload_under_20_concurrent_askers_fails_no_request(server: Server, tmp_path: Path) -> None:
    """An add by the CLI in another process, then an upload and a removal over HTTP, while 20
    clients ask without pause: every request answers 200, and the CLI's file is cited within
    5 s of its ``add`` returning."""
    failures: list[str] = []
    answered = [0]
    stop_asking = threading.Event()

    def asker(number: int) -> None:
        while not stop_asking.is_set():
            try:
                status, body = server.ask(f"How long is the night ferry crossing? ({number})")
                if status != 200:
                    failures.append(f"{status}: {body}")
                answered[0] += 1
            except Exception as exc:  # every failure is the finding
                failures.append(repr(exc))

    askers = [threading.Thread(target=asker, args=(n,), daemon=True) for n in range(20)]
    for thread in askers:
        thread.start()
    try:
        (tmp_path / "ferry.txt").write_text(FERRY, encoding="utf-8")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        subprocess.run([sys.executable, "-m", "ui.cli", "add", str(tmp_path / "ferry.txt"),
                        "--index", str(server.folder)], cwd=ROOT, env=env, check=True, timeout=300,
                       capture_output=True)
        added = time.monotonic()
        while True:
            status, answer = server.ask("How long does the ferry crossing to Yantai take?")
            if status == 200 and answer["passages"][0]["source"] == "ferry.txt":
                break
            assert time.monotonic() - added < 5, "the CLI's add was not served within 5 s"
            time.sleep(0.1)
        assert "seven hours" in answer["answer"]
        status, _ = server.upload([("trams.txt", TRAMS.encode())])
        assert status == 200
        status, _ = server.call("DELETE", "/api/documents?source=trams.txt&source=ferry.txt", token=TOKEN)
        assert status == 200
    finally:
        stop_asking.set()
        for thread in askers:
            thread.join(timeout=120)
    assert not failures, failures[:5]
    assert answered[0] >= 20
    assert server.sources() == ["harbour.txt", "bridge.txt"]


def test_no_admin_token_means_writes_are_403(collection: Path, tmp_path: Path) -> None:
    token_less = start(collection, tmp_path / "token-less.log")
    try:
        status, body = token_less.upload([("trams.txt", TRAMS.encode())], token=TOKEN)
        assert status == 403 and "SPEECH_QA_ADMIN_TOKEN" in body["error"]
        assert token_less.sources() == ["harbour.txt", "bridge.txt"]
    finally:
        stop(token_less)
