"""A served collection that follows its index directory: a new version on disk is served
within a second, whoever wrote it.

Why polling one ``stat``: the writers are this server's own routes, ``speech-qa add`` /
``remove`` in another process, or a fresh ``speech-qa index --replace``; all of them end
by renaming a new ``manifest.json`` into place (``index.collection``), so the manifest's
identity changes exactly when a new version is complete. A ``stat`` every
``DEFAULT_POLL_S`` costs microseconds, works on every file system (inotify misses network
mounts) and on every Ray Serve replica alike, with nothing to install.

Why in-flight questions never fail: the new version is read completely (under the update
lock, so no writer is half-way) and warmed (``QA.prepare``: what the ranking builds once
per index is built here, not in the first askers' batch) before the engine switches to it
in one reference
assignment (``QA.replace_index``). A batch of questions reads the index once, so it
finishes on the version it started with; the old version is freed when the last such
batch ends. A version that cannot be read (damaged, another model) is logged once and the
old one stays served.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from index import Encoder, default_encoder
from index.collection import IndexVersion, index_version, load_current
from ingest.errors import SpeechQAError
from qa.engine import QA
from qa.session import DEFAULT_NICENESS, _lower_priority

logger = logging.getLogger(__name__)

DEFAULT_POLL_S = 0.5
"""How often the manifest is looked at: a new version is served within this plus its load
time (well under the promised 5 s for collections of tens of thousands of sentences)."""


class LiveIndex:
    """Keeps ``engine`` answering from the newest complete version of its index directory.

    Use ``start()`` for the polling thread (servers), and ``refresh()`` right after a write
    to serve it at once (the write routes do, so their reply means "served").
    """

    def __init__(self, engine: QA, poll_s: float = DEFAULT_POLL_S, niceness: int = DEFAULT_NICENESS) -> None:
        """Cheap: nothing is read until ``check`` or ``start``.

        Raises:
            ValueError: ``engine`` has no index directory (nothing on disk to follow).
        """
        if engine.index_dir is None:
            raise ValueError("only an index directory can be followed for new versions")
        self.engine = engine
        self.folder: Path = engine.index_dir
        self.poll_s = poll_s
        self.version: IndexVersion | None = index_version(self.folder)
        """The version being served (as of the engine's first load)."""
        self.reloads = 0
        """New versions served since start (for health, tests and the benchmark)."""
        self._lock = threading.Lock()
        self._failed: IndexVersion | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._checked = threading.Condition()
        self._niceness = niceness
        self._thread: threading.Thread | None = None

    @classmethod
    def open(cls, folder: Path | str, encoder: Encoder | None = None,
             poll_s: float = DEFAULT_POLL_S) -> LiveIndex:
        """An engine over the index at ``folder``, read now under the update lock, followed.

        Why not ``QA.load`` then ``LiveIndex(engine)``: the version is read in the same
        locked step as the index, so an update landing in between is not missed.

        Raises:
            IndexLoadError: No index there, damaged, or built with another model.
        """
        path = Path(folder).absolute()
        used = encoder or default_encoder()
        version, index = load_current(path, used.name)
        engine = QA(lambda: index, encoder, index_dir=path, name=path.name or None)
        engine.replace_index(index)  # in memory now: its documents are the served ones from the start
        live = cls(engine, poll_s)
        live.version = version
        return live

    def check(self) -> bool:
        """Serve the version on disk now if it is new. Returns whether it switched.

        Never raises for a bad version on disk: that is logged (once per version) and the
        current one stays served.
        """
        seen = index_version(self.folder)
        if seen is None or seen == self.version or seen == self._failed:
            return False
        with self._lock:  # one reload at a time (the poller and a write route may race)
            if index_version(self.folder) == self.version:
                return False
            try:
                version, index = load_current(self.folder, self.engine.encoder.name)
            except SpeechQAError as exc:
                if seen != self._failed:
                    logger.warning("a new version of %s cannot be served; still serving the "
                                   "previous one: %s", self.folder, exc)
                self._failed = seen
                return False
            self.engine.prepare(index)  # off the askers' path: the first batch on it is not slower
            self.engine.replace_index(index)
            self.version = version
            self.reloads += 1
            logger.info("serving a new version of %s: %d document(s)", self.folder, len(index.documents))
            return True

    def refresh(self, timeout_s: float = 60.0) -> bool:
        """Serve the version on disk now, waiting (at most ``timeout_s``) until it is served.

        Why not ``check`` in the caller's thread: the polling thread reloads at a lower CPU
        priority, so a reload never takes the cores from the questions being answered; a
        write route wakes it and waits. Without a polling thread, checks here.

        Returns:
            Whether the version on disk when called (or a newer one) is being served.
        """
        wanted = index_version(self.folder)
        if wanted is None:  # no complete index there right now: nothing to serve
            return False
        if self._thread is None:
            self.check()
            return self.version == wanted
        deadline = time.monotonic() + timeout_s
        with self._checked:
            while self.version != wanted and wanted != self._failed:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stop.is_set():
                    return False
                self._wake.set()
                self._checked.wait(min(remaining, self.poll_s))
                if index_version(self.folder) != wanted:  # a newer one landed meanwhile: fine
                    return True
        return self.version == wanted

    def start(self) -> LiveIndex:
        """Poll in a daemon thread until ``close``; returns itself."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="speech-qa-reload", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop polling (idempotent)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        _lower_priority(self._niceness)  # reloads yield the cores to the questions
        while not self._stop.is_set():
            self._wake.wait(self.poll_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.check()
            except Exception:  # a real fault; keep serving and keep watching
                logger.exception("checking %s for a new version failed", self.folder)
                time.sleep(self.poll_s)
            with self._checked:
                self._checked.notify_all()


__all__ = ["DEFAULT_POLL_S", "LiveIndex"]
