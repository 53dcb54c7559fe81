"""A visitor's own documents beside a shared engine: read, budgeted, indexed off the request path.

Why here and not in the page: reading files, the per-session budget, the indexing queue and
the layered engine are the product's behaviour for any surface (the Gradio page today, an
API tomorrow); the page only shows progress and results. ``ui/`` reaches all of it through
``UploadSessions`` without importing ``ingest`` or ``index``.

How an upload flows:

1. ``UploadSession.add_files`` reads each file (a bad one becomes an ``UploadProblem``,
   never an exception), charges its text against the session's budget, and deletes the
   uploaded copy from disk once read when asked to.
2. The documents join one ``IndexingQueue``: a bounded queue (``max_size`` jobs; beyond it
   the visitor gets a clear "busy" problem instead of an unbounded wait) served by one
   worker thread at a lower CPU priority, so questions stay fast while uploads embed.
3. The worker embeds each document alone (``qa.layered.index_document``) and publishes a
   new layered engine after each one, so questions go to the shared corpus plus whatever
   of the session is indexed so far.
4. ``close`` (session ended) or ``clear`` cancels queued and running work between model
   calls and drops every reference to the session's engine, then hands freed heap back to
   the operating system.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import gc
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from index import CorpusIndex
from ingest import Document, IngestError, document_from_bytes
from qa.engine import QA
from qa.layered import (
    IndexedDocument,
    IndexingCancelled,
    SplitDocument,
    base_words,
    chunking_of,
    index_document,
    late_interaction_fits,
    layer,
    share_rows,
    split_document,
)

logger = logging.getLogger(__name__)

DEFAULT_BUDGET_CHARS = 8_000_000
"""Characters of text one session may upload (about 8 MB of plain text, a few minutes of
embedding on 2 cores). Why a budget: embedding is the expensive request, and memory grows
with the session's text (about 3 KB per sentence)."""

DEFAULT_QUEUE_SIZE = 8
"""Upload jobs waiting at once; beyond this a new upload is refused as busy."""

DEFAULT_NICENESS = 10
"""How much lower the indexing thread's CPU priority is than the server's (Linux ``nice``
per thread; the model's worker threads it starts inherit it)."""


def _megabytes(chars: int) -> str:
    return f"{chars / 1_000_000:.1f} MB"


UNREADABLE = "unreadable"
OVER_BUDGET = "over_budget"
BUSY = "busy"


@dataclass(frozen=True)
class UploadProblem:
    """A file that was not added, and why (one line, naming the file).

    Attributes:
        file: The file's name.
        message: One line for a person, naming the file.
        kind: ``"unreadable"`` (unsupported, corrupt, empty...), ``"over_budget"`` or
            ``"busy"`` (the indexing queue is full: try again later).
    """

    file: str
    message: str
    kind: str = UNREADABLE

    def to_dict(self) -> dict[str, str]:
        """JSON-ready form."""
        return {"file": self.file, "message": self.message, "kind": self.kind}


@dataclass(frozen=True)
class UploadResult:
    """What an upload did: the structured answer of the page's ``/upload`` API.

    Attributes:
        added: Names of the documents added to the session by this upload (as cited).
        sources: Every document of the session, in upload order.
        problems: Files not added (unreadable, unsupported, over budget, server busy).
        pending: Documents still being indexed (empty once the upload is searchable).
    """

    added: tuple[str, ...]
    sources: tuple[str, ...]
    problems: tuple[UploadProblem, ...] = ()
    pending: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"added": list(self.added), "sources": list(self.sources),
                "problems": [p.to_dict() for p in self.problems], "pending": list(self.pending)}


@dataclass(frozen=True)
class IndexingProgress:
    """How far a session's indexing has come.

    Attributes:
        fraction: 0..1 of the texts to embed (1 when nothing is pending).
        pending: Documents not yet searchable.
        message: One line for a person ("Indexing notes.pdf: 1,200 of 3,400 texts").
    """

    fraction: float
    pending: tuple[str, ...]
    message: str


@dataclass
class _Job:
    session: UploadSession
    splits: list[SplitDocument]
    total: int
    done: int = 0
    current: str = ""
    finished: threading.Event = field(default_factory=threading.Event)


def _lower_priority(niceness: int) -> None:
    """Lower this thread's CPU priority (Linux: ``nice`` applies per thread)."""
    if niceness <= 0 or not hasattr(os, "setpriority"):
        return
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)


class IndexingQueue:
    """One worker thread embedding uploads, fed by a bounded queue.

    Why one worker: the model already uses every core; two uploads at once would only
    slow each other and the questions. Why bounded: overload must get a "busy" answer.
    """

    def __init__(self, max_size: int = DEFAULT_QUEUE_SIZE, niceness: int = DEFAULT_NICENESS) -> None:
        self._queue: queue.Queue[_Job | None] = queue.Queue(maxsize=max_size)
        self.max_size = max_size
        self._niceness = niceness
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, job: _Job) -> bool:
        """Queue ``job``; False when the queue is full (the caller says "busy")."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="speech-qa-uploads",
                                                daemon=True)
                self._thread.start()
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            return False
        return True

    def _work(self) -> None:
        _lower_priority(self._niceness)
        while True:
            job = self._queue.get()
            if job is None:
                return
            finished = job.finished
            try:
                job.session._run(job)
            except Exception:  # a real fault: logged with its traceback, the worker lives on
                logger.exception("indexing an upload failed")
            finally:
                del job  # before waking waiters: a closed session must be collectable then
                finished.set()

    def close(self) -> None:
        """Stop the worker after the current job (queued jobs are dropped)."""
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)


def release_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc ``malloc_trim``).

    Why: a session's tables are many mid-sized allocations (BM25 token lists, records)
    that glibc keeps in its arenas after they are freed; without trimming, resident memory
    stays at its peak after a 5 MB session closes (measured in ``bench/RESULTS.md``).
    """
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _unique(name: str, taken: set[str]) -> str:
    """A display name not yet used in the corpus (the same file name can be uploaded twice)."""
    label, counter = name, 2
    while label in taken:
        label = f"{Path(name).stem} ({counter}){Path(name).suffix}"
        counter += 1
    taken.add(label)
    return label


class UploadSession:
    """One visitor's uploads, layered over the shared engine; never modifies it.

    Thread-safe: the page's events and the indexing worker call it concurrently.
    """

    def __init__(self, base: QA, work: IndexingQueue,
                 budget_chars: int = DEFAULT_BUDGET_CHARS) -> None:
        self.base = base
        self.budget_chars = budget_chars
        self._work = work
        self._pieces: list[IndexedDocument] = []
        self._engine: QA | None = None
        self._jobs: list[_Job] = []
        self._reserved: dict[str, int] = {}  # name -> characters, accepted (pending or indexed)
        self._generation = 0  # bumped by clear/close: running work for an older one is dropped
        self._closed = False
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ reading
    @property
    def engine(self) -> QA:
        """Answers over the shared corpus plus the documents indexed so far."""
        return self._engine or self.base

    @property
    def sources(self) -> tuple[str, ...]:
        """Searchable documents of this session, in upload order."""
        return tuple(piece.document.source for piece in self._pieces)

    @property
    def used_chars(self) -> int:
        """Characters charged to the budget (indexed and pending)."""
        return sum(self._reserved.values())

    def progress(self) -> IndexingProgress:
        """Where indexing stands, for a progress bar."""
        with self._lock:
            jobs = self._jobs = [job for job in self._jobs if not job.finished.is_set()]
            pending = tuple(split.document.source for job in jobs for split in job.splits
                            if split.document.source not in self.sources)
        if not jobs:
            return IndexingProgress(1.0, (), "")
        total = sum(job.total for job in jobs)
        done = sum(job.done for job in jobs)
        current = next((job.current for job in jobs if job.current), "")
        if current:
            message = f"Indexing {current}: {done:,} of {total:,} passages and sentences"
        else:
            message = f"Waiting for the indexer ({len(pending)} document(s) queued)"
        return IndexingProgress(done / total if total else 0.0, pending, message)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every queued upload is indexed (or cancelled); False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                jobs = self._jobs = [job for job in self._jobs if not job.finished.is_set()]
            if not jobs:
                return True
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            jobs[0].finished.wait(left)

    # ------------------------------------------------------------------ adding
    def add_files(self, paths: Sequence[str | Path], *, delete_after_read: bool = False) -> UploadResult:
        """Read files and queue them for indexing; bad files are reported, not raised.

        Args:
            paths: Uploaded files (their names are what answers cite).
            delete_after_read: Remove each file from disk once read (uploads in a server:
                the text lives on in memory only, as long as the session).

        Returns:
            Which documents were queued and which files were not, with why. Indexing goes
            on in the background: ``wait``/``progress`` follow it.
        """
        documents: list[Document] = []
        problems: list[UploadProblem] = []
        for file in paths:
            path = Path(file)
            try:
                documents.append(document_from_bytes(path.name, path.read_bytes()))
            except IngestError as exc:
                problems.append(UploadProblem(path.name, str(exc)))
            except OSError as exc:
                problems.append(UploadProblem(path.name, f"{path.name}: the upload could not be "
                                                         f"opened ({exc.strerror})"))
            finally:
                if delete_after_read:
                    _remove_upload(path)
        return self.add_documents(documents, problems)

    def add_documents(self, documents: Sequence[Document],
                      problems: Sequence[UploadProblem] = ()) -> UploadResult:
        """Queue already-read documents (budget-checked, names made unique)."""
        found = list(problems)
        accepted: list[Document] = []
        with self._lock:
            if self._closed:
                raise IndexingCancelled("this session has ended")
            taken = {d.doc_id for d in self.base.index.documents} | set(self._reserved)
            used = sum(self._reserved.values())
            for document in documents:
                size = len(document.text)
                if used + size > self.budget_chars:
                    found.append(UploadProblem(document.source, (
                        f"{document.source}: over this session's budget of "
                        f"{_megabytes(self.budget_chars)} of text ({_megabytes(size)} more after "
                        f"{_megabytes(used)} already uploaded); start over with fewer or smaller "
                        "files"), OVER_BUDGET))
                    continue
                label = _unique(document.source, taken)
                # Renamed, not rebuilt: a PDF keeps its page starts (answers cite "p. 2").
                accepted.append(dataclasses.replace(document, doc_id=label, source=label))
                used += size
            if accepted:
                params = chunking_of(self.base.index)
                splits = [split_document(d, params) for d in accepted]
                job = _Job(self, splits, total=sum(s.texts_to_embed for s in splits))
                if self._work.submit(job):
                    self._jobs.append(job)
                    for document in accepted:
                        self._reserved[document.source] = len(document.text)
                else:
                    found.extend(UploadProblem(d.source, (
                        f"{d.source}: the server is busy indexing other uploads "
                        f"({self._work.max_size} waiting); try again in a minute"), BUSY)
                        for d in accepted)
                    accepted = []
            return UploadResult(tuple(d.source for d in accepted), self.sources, tuple(found),
                                tuple(d.source for d in accepted))

    # ------------------------------------------------------------------ the worker's side
    def _run(self, job: _Job) -> None:
        """Index the job's documents one by one, publishing a new engine after each."""
        generation = self._generation

        def cancelled() -> bool:
            return self._closed or self._generation != generation

        def advanced(count: int) -> None:
            job.done += count

        base_index: CorpusIndex = self.base.index
        base_words(base_index)  # shared by all sessions; normally ready since start-up
        try:
            for split in job.splits:
                if cancelled():
                    return
                job.current = split.document.source
                added = sum(len(p.sentences) for p in self._pieces) + len(split.sentences)
                piece = index_document(split, self.base.encoder, with_tokens=late_interaction_fits(
                    base_index, added), on_texts=advanced, cancelled=cancelled)
                with self._lock:
                    if cancelled():
                        return
                    pieces = [*self._pieces, piece]
                # Layer outside the lock: questions keep reading the previous engine.
                merged = layer(base_index, pieces)
                pieces = share_rows(base_index, pieces, merged)
                del piece
                with self._lock:
                    if cancelled():
                        return
                    self._pieces = pieces
                    self._engine = QA(_constant(merged), self.base.encoder, self.base.weights)
                logger.info("session corpus: + %s (%d sentences)", split.document.source,
                            len(split.sentences))
        except IndexingCancelled:
            logger.info("indexing cancelled: the session ended")
        finally:
            job.current = ""
            job.splits = []  # the texts live on in the pieces; drop the job's copy
            if cancelled():
                release_memory()

    # ------------------------------------------------------------------ ending
    def clear(self) -> None:
        """Forget every upload (running indexing stops): back to the shared corpus alone."""
        with self._lock:
            self._generation += 1
            self._pieces = []
            self._engine = None
            self._reserved = {}
            self._jobs = []
        release_memory()

    def close(self) -> None:
        """The session ended: cancel its indexing and free its engine and texts."""
        with self._lock:
            self._closed = True
        self.clear()


def _constant(index: CorpusIndex) -> Callable[[], CorpusIndex]:
    """An index loader returning an index already in memory."""
    return lambda: index


def _remove_upload(path: Path) -> None:
    """Delete an uploaded copy, and its folder when that held only it (Gradio's layout)."""
    with contextlib.suppress(OSError):
        path.unlink()
    with contextlib.suppress(OSError):
        path.parent.rmdir()  # only succeeds when empty


class UploadSessions:
    """Every visitor's ``UploadSession`` over one shared engine, with one indexing queue.

    The page keys sessions by its own session id; ``close`` is called when the visitor
    leaves (and by the page state's delete callback as a fallback).
    """

    def __init__(self, base: QA, budget_chars: int = DEFAULT_BUDGET_CHARS,
                 queue_size: int = DEFAULT_QUEUE_SIZE, niceness: int = DEFAULT_NICENESS) -> None:
        self.base = base
        self.budget_chars = budget_chars
        self.queue = IndexingQueue(queue_size, niceness)
        self._sessions: dict[str, UploadSession] = {}
        self._lock = threading.Lock()

    def prepare(self) -> None:
        """Compute what every session shares (the base corpus' BM25 tokens) now.

        Why: so the first upload is searchable within a second (it would otherwise pay for
        tokenizing the whole shared corpus). Servers call it in a background thread.
        """
        base_words(self.base.index)

    def get(self, key: str | None) -> UploadSession | None:
        """The session under ``key``, if it has uploaded anything."""
        if key is None:
            return None
        with self._lock:
            return self._sessions.get(key)

    def open(self, key: str | None = None) -> UploadSession:
        """The session under ``key``, created on first use (a fresh key when None)."""
        key = key or uuid.uuid4().hex
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                session = UploadSession(self.base, self.queue, self.budget_chars)
                self._sessions[key] = session
            return session

    def close(self, key: str | None) -> None:
        """End the session under ``key``: cancel its indexing, free its engine."""
        if key is None:
            return
        with self._lock:
            session = self._sessions.pop(key, None)
        if session is not None:
            session.close()

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)
