"""Concurrent questions, one model call: a small batcher in front of ``QA.ask_many``.

Why: a server's cost is the model's forward pass, and ``ask_many`` embeds 32 questions in
about the time of three single ones (``bench/RESULTS.md``, batch 3.2x). Visitors arrive one
at a time, though, each on its own request. ``BatchingQA`` lets each caller keep the plain
``ask(question, top_k)`` call while a single worker thread gathers whatever arrived within a
few milliseconds and answers it with one ``ask_many`` call.

Why one worker thread: the model and the ranking then run on one thread whatever the number
of callers, so the server's threads only wait. That bounds CPU contention, and it keeps the
model's working memory on one thread. (What made memory creep under 20 clients was found
elsewhere and fixed there: the page config cloning the engine, batch shapes fragmenting the
heap, weights paged in row by row; ``bench/RESULTS.md``, Load.)

Semantics are those of ``QA.ask``: bad questions are refused in the caller's thread with the
same ``QuestionError`` (never poisoning a batch), answers are cached, and the result for a
question does not depend on what else was in its batch.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from index import CorpusIndex
from qa.engine import QA, check_question
from qa.errors import QuestionError
from qa.types import Answer, DocumentInfo

logger = logging.getLogger(__name__)

DEFAULT_MAX_WAIT_S = 0.004
"""How long the first question of a batch waits for company: short next to the ~14 ms a
question takes, long enough that requests arriving together share a model call."""

DEFAULT_MAX_BATCH = 32
"""Questions per model call (``QUESTION_BATCH`` in the engine measured 32 best here)."""


@dataclass(frozen=True)
class _Pending:
    question: str
    top_k: int
    sources: tuple[str, ...] | None
    future: Future[Answer]


@dataclass
class BatchStats:
    """What the batcher did (for tests and the benchmark): model batches and questions."""

    batches: int = 0
    questions: int = 0


class BatchingQA(QA):
    """A ``QA`` whose ``ask`` joins concurrent callers into one ``ask_many``.

    It shares the wrapped engine's index and encoder (nothing is loaded twice) and keeps its
    own answer cache. Everything else (``index``, ``documents``, ``encoder``, ``warm_up``,
    ``ask_many``) behaves as on any ``QA``.
    """

    def __init__(self, base: QA, max_wait_s: float = DEFAULT_MAX_WAIT_S,
                 max_batch: int = DEFAULT_MAX_BATCH, cache_size: int = 512) -> None:
        """Cheap: the worker thread starts on the first question.

        Args:
            base: The engine whose index and encoder answer the questions.
            max_wait_s: Longest wait for more questions once one has arrived.
            max_batch: Most questions in one model call.
            cache_size: Answers kept for repeated questions.
        """
        # The same collection under the same name: the page and the API describe the
        # wrapped engine's collection (the speech's title and examples, or the index's).
        super().__init__(lambda: base.index, base.encoder, base.weights, cache_size, base.index_dir,
                         name=base.name, is_default_corpus=base.is_default_corpus)
        self._base = base
        if max_wait_s < 0 or max_batch < 1:
            raise ValueError("max_wait_s must be >= 0 and max_batch >= 1")
        self.max_wait_s = max_wait_s
        self.max_batch = max_batch
        self.stats = BatchStats()
        self._inbox: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self._worker_lock = threading.Lock()
        self._closed = False

    @property
    def ready(self) -> bool:
        """Whether the index and the model are in memory (here or in the wrapped engine)."""
        return super().ready or self._base.ready

    @property
    def index(self) -> CorpusIndex:
        """The wrapped engine's index, read on every batch: when a live server replaces it
        (``QA.replace_index`` on the wrapped engine), the next batch answers from the new
        one and this batcher's cache, which belongs to the old one, is dropped."""
        return self._base.index

    @property
    def documents(self) -> tuple[DocumentInfo, ...]:
        """The documents being served (the wrapped engine's)."""
        return self._base.documents

    def _swap(self, index: CorpusIndex) -> None:
        """An update through the batcher changes the wrapped engine (the one index served)."""
        self._base._swap(index)

    # ------------------------------------------------------------------ asking
    def ask(self, question: str, top_k: int = 3, sources: Sequence[str] | None = None) -> Answer:
        """Answer one question; concurrent callers share one model call.

        Raises:
            QuestionError: Empty or over-long question, a bad ``top_k`` or an unknown
                name in ``sources`` (raised here, before the question joins a batch).
        """
        return self.submit(question, top_k, sources).result()

    async def ask_async(self, question: str, top_k: int = 3,
                        sources: Sequence[str] | None = None) -> Answer:
        """``ask`` for asyncio callers: the event loop waits, no thread is blocked."""
        return await asyncio.wrap_future(self.submit(question, top_k, sources))

    def submit(self, question: str, top_k: int = 3, sources: Sequence[str] | None = None) -> Future[Answer]:
        """Queue a question; its ``Future`` resolves with the ``Answer``.

        Raises:
            QuestionError: The question, ``top_k`` or ``sources`` is unusable (nothing is queued).
            RuntimeError: The batcher was closed.
        """
        cleaned, checked_k = check_question(question, top_k)
        chosen = self.check_sources(sources)
        future: Future[Answer] = Future()
        if self._closed:
            raise RuntimeError("the question batcher is closed")
        self._start_worker()
        self._inbox.put(_Pending(cleaned, checked_k, chosen, future))
        return future

    def close(self) -> None:
        """Stop the worker after the questions already queued (idempotent)."""
        self._closed = True
        with self._worker_lock:
            if self._worker is not None:
                self._inbox.put(None)
                self._worker.join(timeout=30)
                self._worker = None

    # ------------------------------------------------------------------ the worker
    def _start_worker(self) -> None:
        if self._worker is None:
            with self._worker_lock:
                if self._worker is None:
                    self._worker = threading.Thread(target=self._run, name="speech-qa-batcher", daemon=True)
                    self._worker.start()

    def _run(self) -> None:
        while True:
            first = self._inbox.get()
            if first is None:
                return
            batch = [first]
            deadline = time.monotonic() + self.max_wait_s
            stop = False
            while len(batch) < self.max_batch:
                remaining = deadline - time.monotonic()
                try:
                    item = self._inbox.get(timeout=remaining) if remaining > 0 else self._inbox.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            self._answer(batch)
            if stop:
                return

    def _answer(self, batch: Sequence[_Pending]) -> None:
        """One ``ask_many`` per ``top_k`` and ``sources`` in the batch (nearly always just one)."""
        groups: dict[tuple[int, tuple[str, ...] | None], list[_Pending]] = {}
        for item in batch:
            groups.setdefault((item.top_k, item.sources), []).append(item)
        for (top_k, sources), items in groups.items():
            live = [item for item in items if item.future.set_running_or_notify_cancel()]
            if not live:
                continue
            try:
                answers = self.ask_many([item.question for item in live], top_k, sources)
            except QuestionError as exc:  # a name gone with a reload since it was checked
                for item in live:
                    item.future.set_exception(exc)
                continue
            except BaseException as exc:  # a real fault: every waiting caller sees it
                logger.error("answering a batch of %d question(s) failed", len(live), exc_info=True)
                for item in live:
                    item.future.set_exception(exc)
                continue
            self.stats.batches += 1
            self.stats.questions += len(live)
            for item, answer in zip(live, answers, strict=True):
                item.future.set_result(answer)


__all__ = ["DEFAULT_MAX_BATCH", "DEFAULT_MAX_WAIT_S", "BatchStats", "BatchingQA"]
