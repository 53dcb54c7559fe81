"""``/api/documents`` and ``sources`` in ``/api/ask``, in process, with the fake encoder.

The JSON API alone (``ui.server.create_api``, no page), over an index directory followed by
``qa.live.LiveIndex``, spoken to through HTTP with ``httpx``'s ASGI transport. The same
routes against a real ``speech-qa serve --index`` and the real model are in
``test_served_collection.py``; here are the rules, the refusals and the logs.
"""

from __future__ import annotations

import asyncio
import io
import logging
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import FakeEncoder

from ingest import Document
from qa import QA, BatchingQA
from qa.live import LiveIndex
from ui.access import ADMIN_TOKEN_ENV, Access, TokenError
from ui.documents_api import UploadRefused, local_store, upload_name
from ui.server import create_api

ADMIN = "admin-token-0123456789abcdef"
READER = "reader-token-0123456789abcdef"
HARBOUR = "The harbour of Dalian was rebuilt in 1999. Trees were planted along the coast."
BRIDGE = "The Xinghai Bay Bridge opened in 2015. The bridge is six kilometres long."
PARK = "Labour Park was opened in 1899. The park has a lake and old trees."


class Api:
    """A client of one in-process API, with the engine it serves."""

    def __init__(self, folder: Path | None, access: Access, engine: QA | None = None) -> None:
        self.live = LiveIndex.open(folder, FakeEncoder()) if folder is not None else None
        self.engine = self.live.engine if self.live is not None else engine
        assert self.engine is not None
        self.batching = BatchingQA(self.engine)

        async def ask(question: str, top_k: int, sources: list[str] | None = None) -> dict[str, Any]:
            return (await self.batching.ask_async(question, top_k, sources)).to_dict()

        async def ready() -> bool:
            return True

        self.app = create_api(ask, ready, local_store(self.engine, self.live), access)

    def call(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app, client=("203.0.113.7", 5555))
            headers = dict(kwargs.pop("headers", {}))
            if token:
                headers["Authorization"] = f"Bearer {token}"
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                return await client.request(method, path, headers=headers, **kwargs)
        return asyncio.run(go())

    def upload(self, files: list[tuple[str, bytes]], token: str | None = ADMIN) -> httpx.Response:
        return self.call("POST", "/api/documents", token,
                         files=[("files", (name, data, "application/octet-stream")) for name, data in files])

    def sources(self) -> list[str]:
        response = self.call("GET", "/api/documents")
        assert response.status_code == 200, response.text
        return [d["source"] for d in response.json()["documents"]]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    target = tmp_path / "collection"
    QA.from_documents([Document("a", "harbour.txt", HARBOUR), Document("b", "bridge.txt", BRIDGE)],
                      index_dir=target, encoder=FakeEncoder())
    return target


@pytest.fixture
def api(folder: Path) -> Iterator[Api]:
    client = Api(folder, Access(admin=ADMIN))
    yield client
    client.batching.close()


def test_list_upload_replace_duplicate_and_delete(api: Api, folder: Path) -> None:
    listed = api.call("GET", "/api/documents").json()["documents"]
    assert [(d["source"], d["sentences"], d["pages"]) for d in listed] == \
        [("harbour.txt", 2, None), ("bridge.txt", 2, None)]
    assert all(d["size"] > 0 and d["added_at"].endswith("Z") and d["passages"] >= 1 for d in listed)

    response = api.upload([("park.txt", PARK.encode())])
    assert response.status_code == 200, response.text
    assert response.json() == {"added": ["park.txt"], "replaced": [], "removed": [], "skipped": [],
                               "partial": False}
    assert api.sources() == ["harbour.txt", "bridge.txt", "park.txt"]  # served already
    answer = api.call("POST", "/api/ask", json={"question": "When was the park opened?"}).json()
    assert answer["passages"][0]["source"] == "park.txt"

    again = api.upload([("copy.txt", PARK.encode()), ("park.txt", b"Labour Park closed in 2020.")]).json()
    assert again["added"] == ["park.txt"] and again["replaced"] == ["park.txt"]
    assert again["skipped"] == [{"file": "copy.txt", "reason": "duplicate",
                                 "detail": "same text as park.txt, already indexed"}]
    assert again["partial"] is False

    removed = api.call("DELETE", "/api/documents?source=park.txt&source=bridge.txt", ADMIN)
    assert removed.status_code == 200 and removed.json()["removed"] == ["park.txt", "bridge.txt"]
    assert api.sources() == ["harbour.txt"]
    assert QA.load(folder, encoder=FakeEncoder()).sources == ("harbour.txt",)  # on disk too


def test_unknown_names_to_remove_are_a_404_and_nothing_is_removed(api: Api) -> None:
    response = api.call("DELETE", "/api/documents?source=bridge.txt&source=nowhere.txt", ADMIN)
    assert response.status_code == 404
    assert "'nowhere.txt'" in response.json()["error"] and "nothing was removed" in response.json()["error"]
    assert api.sources() == ["harbour.txt", "bridge.txt"]
    last = api.call("DELETE", "/api/documents?source=bridge.txt&source=harbour.txt", ADMIN)
    assert last.status_code == 409 and "empty" in last.json()["error"]
    assert api.sources() == ["harbour.txt", "bridge.txt"]


def test_a_partial_upload_names_each_refused_file(api: Api) -> None:
    response = api.upload([("park.txt", PARK.encode()), ("tool.exe", b"MZ\x90\x00"),
                           ("broken.pdf", b"%PDF-1.4 not really"), ("empty.txt", b"")])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["added"] == ["park.txt"] and body["partial"] is True
    skipped = {item["file"]: item for item in body["skipped"]}
    assert set(skipped) == {"tool.exe", "broken.pdf", "empty.txt"}
    assert "unsupported file type '.exe'" in skipped["tool.exe"]["detail"]  # the CLI's line
    assert skipped["broken.pdf"]["reason"] == "unreadable" and skipped["empty.txt"]["reason"] == "unreadable"
    assert "speech-qa-api-upload" not in response.text  # no server path leaks


def test_bad_uploads_get_one_line_json_refusals(api: Api) -> None:
    only_bad = api.upload([("tool.exe", b"MZ")])
    assert only_bad.status_code == 400 and "tool.exe" in only_bad.json()["error"]
    assert "speech-qa-api-upload" not in only_bad.text
    climbed = api.upload([("../../etc/notes.txt", b"The notes were written in 2003.")])
    assert climbed.json()["added"] == ["notes.txt"]  # the name only, saved in the private folder
    for raw in ("a\x01b.txt", "a\u202eb.txt", "x" * 300 + ".txt", "", "/"):
        with pytest.raises(UploadRefused, match="file name"):
            upload_name(raw)
    for name in ("..", ".hidden.txt"):
        response = api.upload([(name, b"Some text that is fine.")])
        assert response.status_code == 400, (name, response.text)
        assert "file name" in response.json()["error"]
    nothing = api.call("POST", "/api/documents", ADMIN, files=[])
    assert nothing.status_code in (400, 422) and "error" in nothing.json()
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", b"<" + b"a" * (300 * 2**20) + b">")
    refused = api.upload([("bomb.docx", bomb.getvalue())])
    assert refused.status_code == 400 and "bomb.docx" in refused.json()["error"]
    too_big = api.call("POST", "/api/documents", ADMIN, content=b"x" * (65 * 2**20),
                       headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert too_big.status_code == 413 and "larger than" in too_big.json()["error"]
    assert api.sources() == ["harbour.txt", "bridge.txt", "notes.txt"]


def test_writes_need_the_admin_token(api: Api, folder: Path) -> None:
    for token in (None, "wrong-token-0123456789", READER):
        for response in (api.upload([("park.txt", PARK.encode())], token=token),
                         api.call("DELETE", "/api/documents?source=bridge.txt", token)):
            assert response.status_code == 401, response.text
            assert response.headers["www-authenticate"] == "Bearer"
            assert "token" in response.json()["error"]
    assert api.sources() == ["harbour.txt", "bridge.txt"]
    assert api.call("POST", "/api/ask", json={"question": "bridge?"}).status_code == 200  # reads open


def test_no_admin_token_configured_means_writes_are_off(folder: Path) -> None:
    api = Api(folder, Access())
    for token in (None, ADMIN):
        response = api.upload([("park.txt", PARK.encode())], token=token)
        assert response.status_code == 403
        message = response.json()["error"]
        assert ADMIN_TOKEN_ENV in message and "--admin-token-file" in message
    api.batching.close()


def test_a_read_token_guards_reads_and_the_admin_token_also_reads(folder: Path) -> None:
    api = Api(folder, Access(admin=ADMIN, read=READER))
    question = {"question": "When was the harbour rebuilt?"}
    assert api.call("POST", "/api/ask", json=question).status_code == 401
    assert api.call("GET", "/api/documents", "wrong-token-0123456789").status_code == 401
    for token in (READER, ADMIN):
        assert api.call("POST", "/api/ask", token, json=question).status_code == 200
        assert api.call("GET", "/api/documents", token).status_code == 200
    assert api.upload([("park.txt", PARK.encode())], token=READER).status_code == 401
    assert api.call("GET", "/api/health").status_code == 200  # probes stay open
    api.batching.close()


def test_the_bundled_speech_is_read_only(fake_encoder: FakeEncoder) -> None:
    index_engine = QA.from_documents([Document("s", "speech.txt", HARBOUR)], encoder=fake_encoder)
    api = Api(None, Access(admin=ADMIN), engine=index_engine)
    response = api.upload([("park.txt", PARK.encode())])
    assert response.status_code == 409 and "read-only" in response.json()["error"]
    assert api.call("DELETE", "/api/documents?source=speech.txt", ADMIN).status_code == 409
    assert [d["source"] for d in api.call("GET", "/api/documents").json()["documents"]] == ["speech.txt"]
    api.batching.close()


def test_ask_within_sources(api: Api) -> None:
    question = "When was the harbour rebuilt?"
    within = api.call("POST", "/api/ask", json={"question": question, "sources": ["bridge.txt"]}).json()
    assert {p["source"] for p in within["passages"]} == {"bridge.txt"}
    whole = api.call("POST", "/api/ask", json={"question": question}).json()
    assert whole["passages"][0]["source"] == "harbour.txt"
    unknown = api.call("POST", "/api/ask", json={"question": question, "sources": ["bridge.txt", "x.pdf"]})
    assert unknown.status_code == 400 and "'x.pdf'" in unknown.json()["error"]
    one_name = api.call("POST", "/api/ask", json={"question": question, "sources": "bridge.txt"})
    assert one_name.status_code == 422
    schema = api.call("GET", "/openapi.json").json()
    assert "sources" in schema["components"]["schemas"]["AskRequest"]["properties"]
    assert {"get", "post", "delete"} <= set(schema["paths"]["/api/documents"])


def test_writes_are_logged_with_who_and_what_never_the_token(api: Api,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="ui"):
        api.upload([("park.txt", PARK.encode())])
        api.call("DELETE", "/api/documents?source=park.txt", ADMIN)
        api.upload([("park.txt", PARK.encode())], token="wrong-token-0123456789")
    lines = [record.getMessage() for record in caplog.records]
    assert any("203.0.113.7" in line and "park.txt" in line and "added" in line for line in lines), lines
    assert any("203.0.113.7" in line and "removed ['park.txt']" in line for line in lines), lines
    assert any("refused" in line and "/api/documents" in line for line in lines), lines
    assert not any(ADMIN in line or "wrong-token" in line for line in lines)


def test_tokens_are_configured_from_the_environment_or_a_file(tmp_path: Path) -> None:
    assert Access.configured(environ={}).writes_enabled is False
    assert Access.configured(environ={ADMIN_TOKEN_ENV: ADMIN}).admin == ADMIN
    token_file = tmp_path / "token"
    token_file.write_text(f"  {READER}\n", encoding="utf-8")
    assert Access.configured(token_file, environ={ADMIN_TOKEN_ENV: ADMIN}).admin == READER
    assert ADMIN not in repr(Access(admin=ADMIN))
    with pytest.raises(TokenError, match="shorter than 16"):
        Access.configured(environ={ADMIN_TOKEN_ENV: "short"})
    with pytest.raises(TokenError, match="cannot read"):
        Access.configured(tmp_path / "missing", environ={})
    (tmp_path / "empty").write_text("\n", encoding="utf-8")
    with pytest.raises(TokenError, match="empty"):
        Access.configured(tmp_path / "empty", environ={})
