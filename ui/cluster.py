"""``speech-qa serve --replicas N``: the same app on Ray Serve, past one process or one machine.

Two deployments:

- ``Engine`` (N replicas): each loads the read-only index and the model once, and answers
  with ``@serve.batch``, so concurrent questions that reach a replica share one model call
  (``QA.ask_many``). A bad question is refused alone, never failing its batch.
- ``Ingress`` (one replica): the JSON API and the Gradio page (``ui.server``'s very same
  app), sending every question to ``Engine``. Ray Serve's proxy listens on ``--host``/``--port``.

Uploads stay what they are on one machine: a session's own small index, built where the
page runs (the ingress), which loads the shared index lazily for that, only if someone uploads.

Only ``ui/`` imports Ray; the engine is the public ``qa`` API.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from ray import serve

from qa import QA, Answer, QuestionError, check_question, default_engine
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
        self.engine = _load_engine(index)
        self.engine.warm_up()

    def pid(self) -> int:
        """This replica's process id (the fault-tolerance test kills it)."""
        return os.getpid()

    def ready(self) -> bool:
        """Whether the model and the index are in memory."""
        return self.engine.ready

    async def ask(self, question: str, top_k: int) -> dict[str, Any]:
        """``Answer.to_dict()``, or ``{"error": message}`` for a question the caller must fix."""
        try:
            cleaned, checked_k = check_question(question, top_k)
        except QuestionError as exc:
            return {"error": str(exc)}
        result: dict[str, Any] = await self._ask_batch((cleaned, checked_k))
        return result

    @serve.batch(max_batch_size=MAX_BATCH, batch_wait_timeout_s=BATCH_WAIT_S)
    async def _ask_batch(self, requests: list[tuple[str, int]]) -> list[dict[str, Any]]:
        """The batch: one ``ask_many`` (one model call) per distinct ``top_k``."""
        by_k: dict[int, list[int]] = {}
        for position, (_, top_k) in enumerate(requests):
            by_k.setdefault(top_k, []).append(position)
        results: list[dict[str, Any]] = [{} for _ in requests]
        for top_k, positions in by_k.items():
            answers = self.engine.ask_many([requests[i][0] for i in positions], top_k)
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

    def ask(self, question: str, top_k: int = 3) -> Answer:
        """Answer through a replica (blocking: the page runs this in its worker threads)."""
        result: dict[str, Any] = self._handle.ask.remote(question, top_k).result()
        if "error" in result:
            raise QuestionError(result["error"])
        return Answer.from_dict(result)


@serve.deployment(name=INGRESS_NAME, ray_actor_options={"num_cpus": 0})
@serve.ingress()
class IngressDeployment:
    """The JSON API and the page, over the ``Engine`` deployment."""

    def __init__(self, engine: Any, index: str | None) -> None:
        self.handle = engine
        self.index = index

    def __serve_build_asgi_app__(self) -> Any:
        """Built in the replica, after ``__init__``: Gradio objects are not sent over Ray."""
        from ui.app import build_app
        from ui.server import create_api, mount_page
        from ui.uploads import private_upload_folder

        private_upload_folder()
        handle = self.handle

        async def ask(question: str, top_k: int) -> dict[str, Any]:
            result: dict[str, Any] = await handle.ask.remote(question, top_k)
            if "error" in result:
                raise QuestionError(result["error"])
            return result

        async def ready() -> bool:
            return bool(await handle.ready.remote())

        api = create_api(ask, ready)
        blocks = build_app(RemoteQA(handle, self.index))
        return mount_page(api, blocks, concurrency=16, max_file_size="20mb")


def build(replicas: int, index: Path | str | None) -> Any:
    """The Serve application: ``Ingress`` over ``Engine`` with ``replicas`` replicas."""
    where = str(Path(index).absolute()) if index is not None else None
    engine = EngineDeployment.options(  # type: ignore[attr-defined]
        num_replicas=replicas, ray_actor_options={"num_cpus": 1, "runtime_env": {"env_vars": REPLICA_ENV}},
    ).bind(where)
    return IngressDeployment.options(  # type: ignore[attr-defined]
        ray_actor_options={"num_cpus": 0, "runtime_env": {"env_vars": REPLICA_ENV}},
    ).bind(engine, where)


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
                 address: str | None = None, block: bool = True) -> RayServer:
    """Run the app on Ray Serve with ``replicas`` engine replicas.

    Args:
        replicas: Engine replicas (each one CPU; one per core is the measured sweet spot).
        host: Interface Serve's HTTP proxy binds; loopback unless deliberately opened.
        port: TCP port of the proxy.
        index: Index directory every node can read (default: the bundled speech).
        address: An existing cluster to join; None starts a local Ray.
        block: Serve until SIGINT/SIGTERM; False returns once the app is running.
    """
    started = start_ray(address, workers=max(2, replicas))
    serve.start(http_options={"host": host, "port": port}, logging_config={"log_level": "WARNING"})
    serve.run(build(replicas, index), name=APP_NAME, route_prefix="/")
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
