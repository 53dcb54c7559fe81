"""The one progress bar a person sees while an index is built or updated, stage by stage.

Why a module of its own: one bar spans work done in several places (the files read by
``qa`` through ``ingest``, the build, the write, ``add`` and ``remove`` in
``index.collection``), and the caller starts it before any of them runs; it depends on
none of them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from tqdm.auto import tqdm

BUILD_STAGES = ("read", "split", "embed", "bm25", "vectors", "write")


class BuildProgress:
    """One progress bar over the stages of an index build, from reading files to writing.

    Why: the model's own batch bar covers only the embedding; on a large collection reading,
    splitting, BM25, the vector index and writing take seconds each, and a person waiting
    should see which stage is running the whole way.
    """

    def __init__(self, enabled: bool, stages: Sequence[str] = BUILD_STAGES, name: str = "index") -> None:
        self._stages = list(stages)
        self._name = name
        self._current: str | None = None
        self._started = time.perf_counter()
        self._since = self._started
        self.seconds: dict[str, float] = {}
        """Wall seconds spent in each stage so far (shown when the bar closes)."""
        self._closed = False
        self._bar = tqdm(total=len(self._stages), unit="stage", desc=name, leave=True,
                         disable=not enabled, bar_format="{desc}: {n_fmt}/{total_fmt} stages {bar}"
                         " [{elapsed}]")

    def _lap(self) -> None:
        now = time.perf_counter()
        if self._current is not None:
            self.seconds[self._current] = self.seconds.get(self._current, 0.0) + now - self._since
        self._since = now

    def stage(self, name: str) -> None:
        """Mark the stages up to ``name`` done and show ``name`` as running."""
        self._lap()
        if name in self._stages:
            done = self._stages.index(name)
            self._bar.update(max(0, done - self._bar.n))
        self._current = name
        self._bar.set_description(f"{self._name}: {name}")

    def __enter__(self) -> BuildProgress:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is None:
            self.close()
        else:
            self.fail()

    def fail(self) -> None:
        """Remove the bar without filling it: after an error or an interrupt, a bar saying
        "done 6/6" would tell the person the index was written when it was not."""
        if self._closed:
            return
        self._closed = True
        self._bar.leave = False
        self._bar.close()

    def close(self) -> None:
        """Fill the bar (every stage done), show where the time went, release the line."""
        if self._closed:
            return
        self._closed = True
        self._lap()
        self._current = None
        self._bar.update(self._bar.total - self._bar.n)
        spent = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in self.seconds.items())
        elapsed = time.perf_counter() - self._started
        self._bar.set_description(f"{self._name}: done in {elapsed:.1f}s ({spent})")
        self._bar.close()
