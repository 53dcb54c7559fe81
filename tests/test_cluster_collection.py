"""``serve --replicas 2 --index DIR``: an upload through the ingress reaches the shared
directory once, and both engine replicas then answer from the new version.

Lean on purpose (a local Ray, two replicas and the ingress each load the model): one test.
Everything is on loopback; every wait is bounded.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

# A plain import, not importorskip: `make test` installs the [cluster] extra.
import ray
from ray import serve

from ingest import Document
from qa import QA
from ui.access import Access

pytestmark = pytest.mark.server

TOKEN = "cluster-collection-token-" + uuid.uuid4().hex
HARBOUR = ("The harbour of Dalian was rebuilt in 1999 by the city council. "
           "Trees were planted along the coast to protect the beaches.")
BRIDGE = ("The Xinghai Bay Bridge opened to traffic in 2015. "
          "The bridge is six kilometres long and crosses the bay.")
TRAMS = ("Dalian's first tram line opened in 1909. "
         "The old trams are still painted green and cream.")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def call(port: int, method: str, path: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        connection.request(method, path, body=body, headers=headers or {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


def upload(port: int, name: str, data: bytes) -> tuple[int, Any]:
    boundary = "----speechqa" + uuid.uuid4().hex
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
            "Content-Type: text/plain\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}",
               "Authorization": f"Bearer {TOKEN}"}
    return call(port, "POST", "/api/documents", body, headers)


def test_an_upload_through_the_ingress_is_served_by_both_replicas(tmp_path: Path, real_encoder: Any) -> None:
    from ui.cluster import serve_on_ray

    folder = tmp_path / "collection"
    QA.from_documents([Document("h", "harbour.txt", HARBOUR), Document("b", "bridge.txt", BRIDGE)],
                      index_dir=folder, encoder=real_encoder)
    port = free_port()
    server = serve_on_ray(2, host="127.0.0.1", port=port, index=folder, block=False,
                          access=Access(admin=TOKEN))
    try:
        handle = serve.get_deployment_handle("Engine", app_name="speech-qa")
        status, refused = call(port, "POST", "/api/documents", b"", {"Content-Type": "multipart/form-data"})
        assert status == 401 and "token" in refused["error"]
        status, report = upload(port, "trams.txt", TRAMS.encode())
        assert status == 200, report
        assert report["added"] == ["trams.txt"]
        # Once on disk: the collection holds one new segment's worth of documents, not two.
        assert QA.load(folder, encoder=real_encoder, lazy=True).sources == \
            ("harbour.txt", "bridge.txt", "trams.txt")

        served: dict[int, dict[str, Any]] = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for _ in range(8):
                state = handle.served.remote().result(timeout_s=30)
                served[state["pid"]] = state
            if len(served) == 2 and all("trams.txt" in s["sources"] for s in served.values()):
                break
            time.sleep(0.2)
        assert len(served) == 2, f"only {len(served)} replica(s) answered"
        assert all("trams.txt" in s["sources"] and s["reloads"] == 1 for s in served.values()), served

        for _ in range(6):  # requests spread over both replicas
            status, answer = call(port, "POST", "/api/ask",
                                  json.dumps({"question": "When did the first tram line open?"}).encode())
            assert status == 200 and "1909" in answer["answer"]
            assert answer["passages"][0]["source"] == "trams.txt"
        status, within = call(port, "POST", "/api/ask", json.dumps(
            {"question": "When did the first tram line open?", "sources": ["bridge.txt"]}).encode())
        assert status == 200 and {p["source"] for p in within["passages"]} == {"bridge.txt"}
        status, listed = call(port, "GET", "/api/documents")
        assert status == 200 and [d["source"] for d in listed["documents"]][-1] == "trams.txt"
    finally:
        server.close()
    assert not ray.is_initialized()
