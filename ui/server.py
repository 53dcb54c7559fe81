"""One ASGI app: the plain JSON API (FastAPI) with the Gradio page mounted, run by uvicorn.

Why one app: programs get a one-call JSON route (``POST /api/ask``) and OpenAPI docs at
``/docs``; people get the page at ``/``; both share one engine, one question batcher (so
concurrent questions from either route share a model call) and one port.

Why the batcher and few threads: the model is the cost, and ``ask_many`` embeds a batch for
about the price of a few single questions. The JSON route never blocks a thread (it awaits
the batcher); the page's events wait on it in a small, bounded thread pool. The model and
the ranking run on the batcher's one thread. Memory stays flat under load for three reasons
measured in ``bench/RESULTS.md`` (Load): the page's session callback is never deep-copied with
the engine (``ui.app.SessionCloser``), batches are padded to a few shapes
(``index.encoder.PAD_TO_MULTIPLE``), and the weights are read in at load.

Over an index directory (``serve --index DIR``) the app also lists and changes the collection
(``/api/documents``: ``ui.documents_api``, behind the tokens of ``ui.access``) and follows the
directory, serving each new version on disk within a second (``qa.live``).

Errors a caller can fix get a status (400 bad question, 413 body too large, 422 malformed
request) and a JSON body ``{"error": "..."}`` with one sentence; each is logged as one line.
A traceback in the log means a real fault.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import threading
import traceback
import types
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import gradio as gr
import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt
from starlette.exceptions import HTTPException
from starlette.routing import Mount

from qa import QA, BatchingQA, QuestionError
from qa.live import LiveIndex
from ui.access import Access
from ui.documents_api import UPLOAD_BODY_LIMIT, DocumentStore, add_document_routes, local_store
from ui.process_setup import PortInUseError, bind_socket, limit_malloc_arenas
from ui.style import CSS

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

API_BODY_LIMIT = 64 * 1024
"""Largest JSON body on ``/api/*``: a 2,000-character question, even fully ``\\u``-escaped,
is about 12 KB; anything bigger is not a question."""

DEFAULT_PAGE_CONCURRENCY = 16
"""Page events answered at once. Each waits on the batcher (the model runs on one thread),
so more concurrent events mean bigger batches, not more CPU contention."""

# ---------------------------------------------------------------------------- page errors
def log_page_errors_as_lines() -> None:
    """Make Gradio log a user's error (``gr.Error``) as one line, not a traceback.

    Why: Gradio's queue prints the full traceback of every ``gr.Error`` (an empty question,
    a wrong file type) to stderr, burying real faults. Its queue calls
    ``traceback.print_exc()`` for these; the module-level ``traceback`` it uses is replaced by
    one whose ``print_exc`` logs a ``gr.Error`` as one line and anything else (a real fault)
    with its traceback. Idempotent.
    """
    import gradio.queueing
    import gradio.routes

    def print_exc(*args: Any, **kwargs: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, gr.Error):
            logger.info("refused a page request: %s", " ".join(str(error.message).split()))
        else:
            logger.error("fault while answering a page request", exc_info=error)

    shim = types.SimpleNamespace(**{name: getattr(traceback, name) for name in dir(traceback)
                                    if not name.startswith("__")})
    shim.print_exc = print_exc
    for module in (gradio.queueing, gradio.routes):
        if getattr(module, "traceback", None) is traceback:
            module.traceback = shim  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------- the JSON API
class AskRequest(BaseModel):
    """Body of ``POST /api/ask``."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(description="The question, 1 to 2,000 characters.",
                          examples=["When did Dalian receive the Global 500 award?"])
    top_k: StrictInt = Field(default=3, description="Passages to return, 1 to 50.")
    sources: list[str] | None = Field(
        default=None, description="Ask only these documents (names as GET /api/documents lists "
        "them): the answer and its confidence are those of a collection holding only them. "
        "Leave it out to ask every document.", examples=[["dalian_speech.txt"]])


class ErrorBody(BaseModel):
    """Every refused request's body: one sentence saying what is wrong."""

    error: str


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _validation_message(exc: RequestValidationError) -> tuple[int, str]:
    """One readable sentence (and the status) for a malformed request."""
    errors = exc.errors()
    if any(error.get("type") == "json_invalid" for error in errors):
        return 400, "the request body is not valid JSON"
    parts = []
    for error in errors[:3]:
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body") or "body"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return 422, "; ".join(parts)


EarlyRefusal = Callable[[Scope], "tuple[int, str] | None"]


class ApiBodyLimit:
    """ASGI middleware: a body over ``API_BODY_LIMIT`` on ``/api/*`` gets 413 and a JSON error.

    Why our own (a few lines) rather than FastAPI's ``max_body_size``: that one answers
    ``text/plain`` in some paths, and this API promises ``{"error": ...}`` for every refusal.
    The page's routes are left alone (Gradio limits uploads with ``max_file_size``).
    An upload (``POST /api/documents``) may be up to ``UPLOAD_BODY_LIMIT``, and a request
    that ``early`` refuses (a write without the admin token) is answered before its body
    is read: an anonymous client cannot make the server buffer 64 MB.
    """

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]],
                 early: EarlyRefusal | None = None, upload_limit: int = API_BODY_LIMIT) -> None:
        self.app = app
        self.early = early
        self.upload_limit = upload_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith("/api/"):
            await self.app(scope, receive, send)
            return
        if self.early is not None:
            refusal = self.early(scope)
            if refusal is not None:
                code, reason = refusal
                client = scope.get("client") or ("unknown", 0)
                logger.info("refused %s %s from %s:%s: %s", scope.get("method"), scope.get("path"),
                            client[0], client[1], reason)
                headers = {"WWW-Authenticate": "Bearer"} if code == 401 else None
                await JSONResponse({"error": reason}, status_code=code, headers=headers)(
                    scope, _disconnected, send)
                return
        upload = scope.get("method") == "POST" and scope.get("path") == "/api/documents"
        limit = self.upload_limit if upload else API_BODY_LIMIT
        declared = dict(scope.get("headers", ())).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, send, limit)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._refuse(scope, send, limit)
                return
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)

    @staticmethod
    async def _refuse(scope: Scope, send: Send, limit: int) -> None:
        message = f"the request body is larger than {limit} bytes"
        logger.info("refused %s: %s", scope.get("path"), message)
        await _error(413, message)(scope, _disconnected, send)


async def _disconnected() -> Message:
    return {"type": "http.disconnect"}


Ask = Callable[[str, int, "list[str] | None"], Awaitable[dict[str, Any]]]


def create_api(ask: Ask, ready: Callable[[], Awaitable[bool]], store: DocumentStore | None = None,
               access: Access | None = None) -> FastAPI:
    """The JSON API alone (the page is mounted onto it by ``create_app``).

    Args:
        ask: Answers ``(question, top_k, sources)`` with ``Answer.to_dict()``; raises
            ``QuestionError`` for a question the caller must fix (an unknown source too).
            The local server passes the batcher; Ray Serve passes a call to its engine
            deployment.
        ready: Whether the model and the index are loaded (for ``/api/health``).
        store: The collection behind ``/api/documents`` (None: those routes are absent).
        access: The tokens writes (and, when set, reads) need; none configured by default,
            so writes are refused.
    """
    access = access or Access()
    api = FastAPI(
        title="speech-qa",
        summary="Ask the Dalian speech (or your own documents) a question; get the answering sentence.",
        version="0.1.0",
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    refusals: dict[int | str, dict[str, Any]] = {
        400: {"model": ErrorBody,
              "description": "The question is empty or too long, or top_k is out of range."},
        413: {"model": ErrorBody, "description": "The request body is too large."},
        422: {"model": ErrorBody, "description": "The body is not {\"question\": str, \"top_k\": int}."},
    }
    if access.read is not None:
        refusals[401] = {"model": ErrorBody, "description": "No read token, or a wrong one."}

    @api.exception_handler(RequestValidationError)
    async def malformed(request: Request, exc: RequestValidationError) -> JSONResponse:
        status, message = _validation_message(exc)
        logger.info("refused %s: %s", request.url.path, message)
        return _error(status, message)

    @api.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        message = str(exc.detail)
        logger.info("refused %s: %s", request.url.path, message)
        return _error(exc.status_code, message)

    @api.exception_handler(QuestionError)
    async def bad_question(request: Request, exc: QuestionError) -> JSONResponse:
        logger.info("refused %s: %s", request.url.path, exc)
        return _error(400, str(exc))

    @api.post("/api/ask", responses=refusals, tags=["questions"])
    async def ask_route(body: AskRequest) -> dict[str, Any]:
        """Answer a question. Returns ``Answer.to_dict()``: the answering sentence (or null
        when the documents do not answer), its confidence, and the passages, best first,
        with the answering sentence's character span in each. With ``sources``, only those
        documents are searched (an unknown name is a 400 naming it)."""
        return await ask(body.question, body.top_k, body.sources)

    if store is not None:
        add_document_routes(api, store, access, _error, refusals)

    @api.get("/api/health", tags=["health"],
             responses={503: {"model": ErrorBody, "description": "Still loading."}})
    async def health() -> Any:
        """200 once the model and the index are loaded (503 before)."""
        if not await ready():
            return _error(503, "the model and the index are still loading")
        return {"status": "ok"}

    def early(scope: Scope) -> tuple[int, str] | None:
        """Refusals made before a body is read: writes to a read-only collection, writes
        without the admin token, reads without the read token (when one is set)."""
        headers = dict(scope.get("headers", ()))
        authorization = headers.get(b"authorization", b"").decode("latin-1") or None
        path, method = scope.get("path"), scope.get("method")
        writing = path == "/api/documents" and method in ("POST", "DELETE")
        if writing and store is not None and store.read_only is not None:
            return 409, store.read_only
        if writing and store is not None:
            refusal = access.check_write(authorization)
        elif path in ("/api/ask", "/api/documents") and not writing:
            refusal = access.check_read(authorization)
        else:
            refusal = None
        return None if refusal is None else (refusal.status, refusal.message)

    api.add_middleware(ApiBodyLimit, early=early,
                       upload_limit=UPLOAD_BODY_LIMIT if store is not None else API_BODY_LIMIT)
    return api


def mount_page(api: FastAPI, blocks: gr.Blocks, concurrency: int, max_file_size: str | int) -> FastAPI:
    """Mount the Gradio page at ``/`` (the JSON routes, declared first, keep precedence)."""
    log_page_errors_as_lines()
    blocks.queue(default_concurrency_limit=concurrency)
    blocks.max_threads = concurrency + 4  # bounds the page's thread pool (Gradio's default: 40)
    theme = gr.themes.Soft(
        primary_hue="amber", neutral_hue="slate",
        font=["system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"],
        font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"],
    )
    app = gr.mount_gradio_app(
        api, blocks, path="/", max_file_size=max_file_size, show_error=True, theme=theme, css=CSS,
        footer_links=["api"], ssr_mode=False, run_history=False,
    )
    # ``Blocks.close`` ends the page's open streams (heartbeats) through ``blocks.app``, which
    # only ``Blocks.launch`` sets; point it at the mounted Gradio app so stopping is prompt.
    mounted = [route.app for route in app.routes if isinstance(route, Mount) and route.path in ("", "/")]
    if mounted:
        blocks.app = mounted[-1]  # type: ignore[assignment]  # the mounted object is that App
    return app


def create_app(engine: QA, *, concurrency: int = DEFAULT_PAGE_CONCURRENCY,
               max_file_size: str | int = "20mb", live: LiveIndex | None = None,
               access: Access | None = None) -> tuple[FastAPI, gr.Blocks, BatchingQA]:
    """The whole app over ``engine``: JSON API, page, one batcher for both.

    Call after ``engine.warm_up()`` (``serve`` does): ``/api/health`` reports the engine's
    readiness, not the app's.

    Args:
        engine: The engine answering (``live.engine`` when following an index directory).
        concurrency: Page events run at once.
        max_file_size: Largest page upload.
        live: Follows ``engine``'s index directory; with it, ``/api/documents`` can change
            the collection (given the admin token). Without it the documents are read-only.
        access: The tokens; none by default (writes refused, reads open).

    Returns:
        ``(asgi_app, blocks, batcher)``; close the batcher when the app stops.
    """
    from ui.app import build_app  # the page module imports this one lazily, never at import

    batching = engine if isinstance(engine, BatchingQA) else BatchingQA(engine)

    async def ask(question: str, top_k: int, sources: list[str] | None = None) -> dict[str, Any]:
        return (await batching.ask_async(question, top_k, sources)).to_dict()

    async def ready() -> bool:
        return batching.ready

    api = create_api(ask, ready, local_store(engine, live), access)
    blocks = build_app(batching)
    return mount_page(api, blocks, concurrency, max_file_size), blocks, batching


# ---------------------------------------------------------------------------- running it
class _Server(uvicorn.Server):
    """uvicorn that first ends the page's open event streams when asked to stop.

    Why: a browser keeps a Gradio heartbeat stream open; without this, shutdown waits for
    it until the graceful timeout and then cancels it with a logged traceback.
    """

    def __init__(self, config: uvicorn.Config, blocks: gr.Blocks, url: str) -> None:
        super().__init__(config)
        self.blocks = blocks
        self.url = url

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start, then say where: the line appears once the port really answers."""
        await super().startup(sockets=sockets)
        if self.started:
            logger.info("Running on %s (JSON API at %sapi/ask, docs at %sdocs)", self.url, self.url, self.url)

    def handle_exit(self, sig: int, frame: Any) -> None:
        _end_page_streams(self.blocks)
        super().handle_exit(sig, frame)


def _end_page_streams(blocks: gr.Blocks) -> None:
    with contextlib.suppress(Exception):
        blocks.close(verbose=False)  # closes the queue and sets the app's stop event


@dataclass
class RunningServer:
    """A server started by ``serve(block=False)``: stop it with ``close()``."""

    server: uvicorn.Server
    thread: threading.Thread | None
    blocks: gr.Blocks
    batching: BatchingQA
    url: str
    live: LiveIndex | None = None

    def close(self) -> None:
        """Stop accepting, finish what is in flight, then free the port and the batcher."""
        _end_page_streams(self.blocks)
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=30)
        if self.live is not None:
            self.live.close()
        self.batching.close()


def uvicorn_config(app: Any, *, quiet: bool = False) -> uvicorn.Config:
    """Uvicorn with the project's logging: one access line per request through ``logging``."""
    return uvicorn.Config(app, log_config=None, access_log=not quiet, lifespan="on",
                          timeout_graceful_shutdown=5, server_header=False)


def serve(engine: QA, host: str, port: int, *, block: bool = True,
          sock: socket.socket | None = None, concurrency: int = DEFAULT_PAGE_CONCURRENCY,
          max_file_size: str | int = "20mb", quiet: bool = False, live: LiveIndex | None = None,
          access: Access | None = None) -> RunningServer:
    """Warm the engine, then serve the app until stopped (``block``) or in a thread.

    The model and the index load before the port accepts anything, so the first visitor's
    question is as fast as every later one.

    Args:
        engine: The engine to answer with (wrapped in a batcher here).
        host: Interface to bind; loopback unless the caller deliberately opens it up.
        port: TCP port.
        block: Serve in this thread until SIGINT/SIGTERM (the CLI); False returns at once.
        sock: An already-bound socket (``bind_socket``) to serve on instead of binding here.
        concurrency: Page events run at once.
        max_file_size: Largest upload Gradio accepts.
        quiet: No access log (tests).
        live: Follow ``engine``'s index directory (``LiveIndex.open``): new versions on disk
            are served within a second, and ``/api/documents`` may change it.
        access: The admin and read tokens (``Access.configured()``); none by default.

    Raises:
        PortInUseError: ``host:port`` cannot be bound.
    """
    from ui.uploads import private_upload_folder

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    private_upload_folder()
    listening = sock or bind_socket(host, port)
    engine.warm_up()
    app, blocks, batching = create_app(engine, concurrency=concurrency, max_file_size=max_file_size,
                                       live=live, access=access)
    if live is not None:
        live.start()
    url = f"http://{host}:{port}/"
    server = _Server(uvicorn_config(app, quiet=quiet), blocks, url)
    if block:
        try:
            server.run(sockets=[listening])
        except KeyboardInterrupt:
            pass  # uvicorn re-raises the SIGTERM/SIGINT it handled: the stop was clean
        finally:
            if live is not None:
                live.close()
            batching.close()
            listening.close()
        return RunningServer(server, None, blocks, batching, url, live)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]}, daemon=True,
                              name="speech-qa-uvicorn")
    thread.start()
    while not server.started and thread.is_alive():
        threading.Event().wait(0.05)
    if not server.started:
        raise RuntimeError(f"the server on {url} did not start")
    return RunningServer(server, thread, blocks, batching, url, live)


__all__ = [
    "API_BODY_LIMIT", "AskRequest", "PortInUseError", "RunningServer", "bind_socket", "create_api",
    "create_app", "limit_malloc_arenas", "log_page_errors_as_lines", "mount_page", "serve",
]
