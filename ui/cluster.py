"""``speech-qa serve --replicas N``: the same app on Ray Serve, past one process or one machine.

Two deployments:

- ``Engine`` (N replicas): each loads the read-only index and the model once, and answers
  with ``@serve.batch``, so concurrent questions that reach a replica share one model call
  (``QA.ask_many``). A bad question is refused alone, never failing its batch.
- ``Ingress`` (one replica): the JSON API and the Gradio page (``ui.server``'s very same
  app), sending every question to ``Engine``. Ray Serve's proxy listens on ``--host``/``--port``.

With ``--index DIR`` every engine replica follows the directory (``qa.live.LiveIndex``):
a new version on disk, whoever wrote it, is served by each replica within a second. The
ingress alone writes (``/api/documents``, behind the admin token), so a write reaches the
shared directory once, not once per replica; the replicas then reload it on their own.

Uploads stay what they are on one machine: a session's own small index, built where the
page runs (the ingress), which loads the shared index lazily for that, only if someone uploads.

Only ``ui/`` imports Ray; the engine is the public ``qa`` API.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from ray import serve

from qa import QA, Answer, QuestionError, check_question, default_engine
from qa.live import LiveIndex
from ui.access import Access
from ui.process_setup import MALLOC_ARENAS

logger = logging.getLogger(__name__)

APP_NAME = "speech-qa"
ENGINE_NAME = "Engine"
INGRESS_NAME = "Ingress"
MAX_BATCH = 32
BATCH_WAIT_S = 0.004
LOCAL_OBJECT_STORE_BYTES = 256 * 2**20
"""A local Ray's shared-memory store: questions and answers are a few KB, so a small store
keeps a 2-core laptop's memory for the model instead of Ray's default 30% of RAM."""

REPLICA_ENV = {
    # One compute thread per replica: replicas are the unit of parallelism (one per core),
    # and two replicas each running 2 threads (onnxruntime's or torch's) on 2 cores only contend.
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "SPEECH_QA_THREADS": "1",  # onnxruntime's intra-op threads (index.onnx_cache.onnx_threads)
    "MALLOC_ARENA_MAX": str(MALLOC_ARENAS),
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "GRADIO_ANALYTICS_ENABLED": "False",
}


def _load_engine(index: str | None) -> QA:
    engine = QA.load(index) if index else default_engine()
    return engine


@serve.deployment(name=ENGINE_NAME, ray_actor_options={"num_cpus": 1},
                  health_check_period_s=2, health_check_timeout_s=30)
class EngineDeployment:
    """One replica of the engine: the index and the model, loaded once, batched calls."""

    def __init__(self, index: str | None) -> None:
        self.live = LiveIndex.open(index).start() if index else None
        self.engine = self.live.engine if self.live is not None else _load_engine(index)
        self.engine.warm_up()

    def documents(self) -> list[dict[str, Any]]:
        """The documents this replica serves (``DocumentInfo.to_dict()``)."""
        return [document.to_dict() for document in self.engine.documents]

    def served(self) -> dict[str, Any]:
        """Which version this replica serves: its pid, its documents' names, reloads so far."""
        return {"pid": os.getpid(), "sources": list(self.engine.sources),
                "reloads": self.live.reloads if self.live is not None else 0}

    def pid(self) -> int:
        """This replica's process id (the fault-tolerance test kills it)."""
        return os.getpid()

    def ready(self) -> bool:
        """Whether the model and the index are in memory."""
        return self.engine.ready

    async def ask(self, question: str, top_k: int, sources: list[str] | None = None) -> dict[str, Any]:
        """``Answer.to_dict()``, or ``{"error": message}`` for a question the caller must fix."""
        try:
            cleaned, checked_k = check_question(question, top_k)
            chosen = self.engine.check_sources(sources)
        except QuestionError as exc:
            return {"error": str(exc)}
        result: dict[str, Any] = await self._ask_batch((cleaned, checked_k, chosen))
        return result

    @serve.batch(max_batch_size=MAX_BATCH, batch_wait_timeout_s=BATCH_WAIT_S)
    async def _ask_batch(self, requests: list[tuple[str, int, tuple[str, ...] | None]]
                         ) -> list[dict[str, Any]]:
        """The batch: one ``ask_many`` (one model call) per distinct ``top_k`` and ``sources``."""
        groups: dict[tuple[int, tuple[str, ...] | None], list[int]] = {}
        for position, (_, top_k, sources) in enumerate(requests):
            groups.setdefault((top_k, sources), []).append(position)
        results: list[dict[str, Any]] = [{} for _ in requests]
        for (top_k, sources), positions in groups.items():
            try:
                answers = self.engine.ask_many([requests[i][0] for i in positions], top_k, sources)
            except QuestionError as exc:  # a name gone with a reload since it was checked
                for position in positions:
                    results[position] = {"error": str(exc)}
                continue
            for position, answer in zip(positions, answers, strict=True):
                results[position] = answer.to_dict()
        return results


class RemoteQA(QA):
    """A ``QA`` for the page in the ingress: questions go to the ``Engine`` replicas.

    The page also builds session corpora from uploads over the shared index; for that the
    index loads here lazily (only when someone uploads), as on one machine.
    """

    def __init__(self, handle: Any, index: str | None) -> None:
        local = QA.default() if index is None else QA.load(index, lazy=True)
        # Named like the engine it fronts: the page describes that collection (the speech's
        # title and examples, or the index's name), never a generic one.
        super().__init__(lambda: _load_engine(index).index, name=local.name,
                         is_default_corpus=local.is_default_corpus)
        self._handle = handle

    def ask(self, question: str, top_k: int = 3, sources: Sequence[str] | None = None) -> Answer:
        """Answer through a replica (blocking: the page runs this in its worker threads)."""
        chosen = None if sources is None else list(sources)
        result: dict[str, Any] = self._handle.ask.remote(question, top_k, chosen).result()
        if "error" in result:
            raise QuestionError(result["error"])
        return Answer.from_dict(result)


@serve.deployment(name=INGRESS_NAME, ray_actor_options={"num_cpus": 0})
@serve.ingress()
class IngressDeployment:
    """The JSON API and the page, over the ``Engine`` deployment."""

    def __init__(self, engine: Any, index: str | None, access: Access | None = None) -> None:
        self.handle = engine
        self.index = index
        self.access = access or Access()

    def __serve_build_asgi_app__(self) -> Any:
        """Built in the replica, after ``__init__``: Gradio objects are not sent over Ray."""
        from ui.app import build_app
        from ui.server import create_api, mount_page
        from ui.uploads import private_upload_folder

        private_upload_folder()
        handle = self.handle

        async def ask(question: str, top_k: int, sources: list[str] | None = None) -> dict[str, Any]:
            result: dict[str, Any] = await handle.ask.remote(question, top_k, sources)
            if "error" in result:
                raise QuestionError(result["error"])
            return result

        async def ready() -> bool:
            return bool(await handle.ready.remote())

        api = create_api(ask, ready, _ingress_store(handle, self.index), self.access)
        blocks = build_app(RemoteQA(handle, self.index))
        return mount_page(api, blocks, concurrency=16, max_file_size="20mb")


def _ingress_store(handle: Any, index: str | None) -> Any:
    """``/api/documents`` in the ingress: lists what a replica serves; writes the shared
    directory here, once (the model loads in the ingress on the first upload only)."""
    from ui.documents_api import FolderStore

    folder = Path(index) if index else None
    encoder: list[Any] = []

    def writer() -> QA:
        assert folder is not None
        if not encoder:
            from qa import default_encoder

            encoder.append(default_encoder())
        return QA.load(folder, encoder=encoder[0], lazy=True)

    async def served() -> list[dict[str, Any]]:
        documents: list[dict[str, Any]] = await handle.documents.remote()
        return documents

    async def nothing() -> None:
        return None  # each replica's LiveIndex picks the new version up within a second

    return FolderStore(served, folder, writer, nothing)


def build(replicas: int, index: Path | str | None, access: Access | None = None) -> Any:
    """The Serve application: ``Ingress`` over ``Engine`` with ``replicas`` replicas."""
    where = str(Path(index).absolute()) if index is not None else None
    engine = EngineDeployment.options(  # type: ignore[attr-defined]
        num_replicas=replicas, ray_actor_options={"num_cpus": 1, "runtime_env": {"env_vars": REPLICA_ENV}},
    ).bind(where)
    return IngressDeployment.options(  # type: ignore[attr-defined]
        ray_actor_options={"num_cpus": 0, "runtime_env": {"env_vars": REPLICA_ENV}},
    ).bind(engine, where, access)


@dataclass
class RayServer:
    """A Serve application started by ``serve_on_ray``: stop it with ``close()``."""

    url: str
    started_ray: bool

    def close(self) -> None:
        """Delete the application; shut Serve and Ray down only if this process started Ray."""
        try:
            serve.delete(APP_NAME)  # replicas stop gracefully (the page's streams end first)
            if self.started_ray:
                serve.shutdown()
                ray.shutdown()
        except Exception:  # stopping anyway: report, do not hide a real fault
            logger.warning("stopping Ray Serve failed", exc_info=True)


def start_ray(address: str | None, workers: int = 2) -> bool:
    """Join ``address``, or start a local Ray with ``workers`` CPUs. Returns whether it started one."""
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address:
        ray.init(address=address, logging_level=logging.WARNING)
        return False
    ray.init(num_cpus=workers, include_dashboard=False, logging_level=logging.WARNING,
             object_store_memory=LOCAL_OBJECT_STORE_BYTES)
    return True


def serve_on_ray(replicas: int, host: str = "127.0.0.1", port: int = 7860, *, index: Path | str | None = None,
                 address: str | None = None, block: bool = True, access: Access | None = None) -> RayServer:
    """Run the app on Ray Serve with ``replicas`` engine replicas.

    Args:
        replicas: Engine replicas (each one CPU; one per core is the measured sweet spot).
        host: Interface Serve's HTTP proxy binds; loopback unless deliberately opened.
        port: TCP port of the proxy.
        index: Index directory every node can read (default: the bundled speech).
        address: An existing cluster to join; None starts a local Ray.
        block: Serve until SIGINT/SIGTERM; False returns once the app is running.
        access: The admin and read tokens the ingress checks (sent to it through Ray's
            control plane, as every deployment argument is).
    """
    started = start_ray(address, workers=max(2, replicas))
    serve.start(http_options={"host": host, "port": port}, logging_config={"log_level": "WARNING"})
    serve.run(build(replicas, index, access), name=APP_NAME, route_prefix="/")
    server = RayServer(f"http://{host}:{port}/", started)
    logger.info("Running on %s with %d engine replica(s) (JSON API at %sapi/ask)",
                server.url, replicas, server.url)
    if block:
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
        finally:
            server.close()
    return server


__all__ = ["APP_NAME", "ENGINE_NAME", "RayServer", "build", "serve_on_ray", "start_ray"]
