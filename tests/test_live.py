"""Asking within chosen sources, and a served engine following its index on disk.

The promises: an answer within ``sources`` is the answer (and confidence) of a collection
holding only those documents; a new version written by anyone (this process, another
``speech-qa add``) is served after ``LiveIndex.check``, the old version is freed, and
questions asked meanwhile all succeed. Plumbing: the fake encoder.
"""

from __future__ import annotations

import gc
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path

import pytest
from conftest import FakeEncoder

from index import CorpusIndex
from ingest import Document
from qa import QA, BatchingQA, QuestionError
from qa.live import LiveIndex

ROOT = Path(__file__).resolve().parents[1]
HARBOUR = "The harbour of Dalian was rebuilt in 1999. Trees were planted along the coast."
BRIDGE = "The Xinghai Bay Bridge opened in 2015. The bridge is six kilometres long."
PARK = "Labour Park was opened in 1899. The park has a lake and old trees."
QUESTIONS = ["When was the harbour rebuilt?", "When was the park opened?", "trees along the coast",
             "How long is the bridge?"]


def documents(*pairs: tuple[str, str]) -> list[Document]:
    return [Document(f"d{i}", source, text) for i, (source, text) in enumerate(pairs)]


def engine_over(docs: list[Document], encoder: FakeEncoder) -> QA:
    index = CorpusIndex.build(docs, encoder)
    return QA(lambda: index, encoder=encoder)


ALL = documents(("harbour.txt", HARBOUR), ("bridge.txt", BRIDGE), ("park.txt", PARK))


def test_sources_rank_as_if_they_were_the_whole_collection() -> None:
    encoder = FakeEncoder()
    whole = engine_over(ALL, encoder)
    chosen = ["park.txt", "harbour.txt"]
    alone = engine_over([d for d in ALL if d.source in chosen], encoder)
    for question in QUESTIONS:
        within = whole.ask(question, sources=chosen)
        assert within.to_dict() == alone.ask(question).to_dict()
        assert {p.source for p in within.passages} <= set(chosen)
    # The whole collection still answers from every document (the cache keeps them apart).
    assert "bridge.txt" in {p.source for p in whole.ask("How long is the bridge?").passages}
    assert {p.source for p in whole.ask("How long is the bridge?", sources=["park.txt"]).passages} \
        == {"park.txt"}


def test_every_source_is_the_whole_collection_and_bad_choices_are_named() -> None:
    encoder = FakeEncoder()
    engine = engine_over(ALL, encoder)
    names = [d.source for d in ALL]
    assert engine.ask(QUESTIONS[0], sources=names).to_dict() == engine.ask(QUESTIONS[0]).to_dict()
    with pytest.raises(QuestionError, match=r"'nowhere\.txt'"):
        engine.ask(QUESTIONS[0], sources=["park.txt", "nowhere.txt"])
    with pytest.raises(QuestionError, match="empty"):
        engine.ask(QUESTIONS[0], sources=[])
    with pytest.raises(QuestionError, match="list of document names"):
        engine.ask(QUESTIONS[0], sources="park.txt")


def test_batcher_groups_by_sources_and_refuses_unknown_names_alone() -> None:
    encoder = FakeEncoder()
    engine = engine_over(ALL, encoder)
    batching = BatchingQA(engine, max_wait_s=0.05)
    try:
        futures = [batching.submit(QUESTIONS[3], 3, None), batching.submit(QUESTIONS[3], 3, ["park.txt"])]
        with pytest.raises(QuestionError, match=r"'gone\.txt'"):
            batching.submit(QUESTIONS[3], 3, ["gone.txt"])
        whole, within = (future.result(timeout=30) for future in futures)
        assert {p.source for p in within.passages} == {"park.txt"}
        assert whole.to_dict() == engine.ask(QUESTIONS[3]).to_dict()
    finally:
        batching.close()


@pytest.fixture
def collection(tmp_path: Path) -> Path:
    folder = tmp_path / "index"
    QA.from_documents(ALL[:2], index_dir=folder, encoder=FakeEncoder())
    return folder


def test_a_new_version_is_served_and_the_old_one_freed(collection: Path, tmp_path: Path) -> None:
    live = LiveIndex.open(collection, FakeEncoder())
    engine = live.engine
    batching = BatchingQA(engine)
    assert not live.check()  # nothing new yet
    first = weakref.ref(engine.index)
    assert "park.txt" not in {d.source for d in batching.documents}
    before = batching.ask("When was the park opened?")
    (tmp_path / "park.txt").write_text(PARK, encoding="utf-8")
    writer = QA.load(collection, encoder=FakeEncoder(), lazy=True)  # another writer
    writer.add([tmp_path / "park.txt"])
    assert live.check()
    assert "park.txt" in {d.source for d in batching.documents}
    after = batching.ask("When was the park opened?")
    assert after.passages[0].source == "park.txt" and after != before
    gc.collect()
    assert first() is None, "the old version is still referenced after the reload"
    writer.remove(["park.txt"])
    assert live.check() and "park.txt" not in {d.source for d in engine.documents}
    batching.close()


def test_questions_during_reloads_all_succeed_on_one_version(collection: Path, tmp_path: Path) -> None:
    live = LiveIndex.open(collection, FakeEncoder(), poll_s=0.05).start()
    batching = BatchingQA(live.engine)
    failures: list[BaseException] = []
    seen: set[frozenset[str]] = set()
    stop = threading.Event()

    def asker() -> None:
        while not stop.is_set():
            try:
                answer = batching.ask("When was the park opened?", top_k=5)
                seen.add(frozenset(p.source for p in answer.passages))
            except BaseException as exc:  # every failure is the finding
                failures.append(exc)

    threads = [threading.Thread(target=asker) for _ in range(8)]
    for thread in threads:
        thread.start()
    writer = QA.load(collection, encoder=FakeEncoder(), lazy=True)
    (tmp_path / "park.txt").write_text(PARK, encoding="utf-8")
    try:
        for round_ in range(10):
            writer.add([tmp_path / "park.txt"]) if round_ % 2 == 0 else writer.remove(["park.txt"])
            deadline = time.monotonic() + 5
            while live.version != _version(collection) and time.monotonic() < deadline:
                time.sleep(0.02)
            assert live.version == _version(collection), "the new version was not served within 5 s"
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        live.close()
        batching.close()
    assert not failures, failures[:3]
    assert live.reloads >= 10
    assert any("park.txt" in sources for sources in seen) and any("park.txt" not in s for s in seen)


def _version(folder: Path) -> object:
    from index.collection import index_version

    return index_version(folder)


def test_a_damaged_new_version_keeps_the_old_one_served(collection: Path) -> None:
    live = LiveIndex.open(collection, FakeEncoder())
    answer = live.engine.ask("When was the harbour rebuilt?")
    manifest = collection / "manifest.json"
    damaged = manifest.read_text(encoding="utf-8").replace('"counts"', '"kounts"')
    manifest.write_text(damaged, encoding="utf-8")
    assert not live.check()
    assert live.engine.ask("When was the harbour rebuilt?") == answer


def test_an_add_from_another_process_is_seen(collection: Path, tmp_path: Path) -> None:
    """The CLI path in a child process (real lock, real rename), with the fake encoder."""
    live = LiveIndex.open(collection, FakeEncoder())
    (tmp_path / "park.txt").write_text(PARK, encoding="utf-8")
    park = str(tmp_path / "park.txt")
    script = ("import sys; sys.path.insert(0, 'tests'); from conftest import FakeEncoder; from qa import QA; "
              f"QA.load({str(collection)!r}, encoder=FakeEncoder(), lazy=True).add([{park!r}])")
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True, timeout=120)
    assert live.check()
    assert "park.txt" in live.engine.sources


def test_refresh_waits_for_the_polling_thread_to_serve_a_write(collection: Path, tmp_path: Path) -> None:
    live = LiveIndex.open(collection, FakeEncoder(), poll_s=30).start()  # it would not poll by itself
    try:
        (tmp_path / "park.txt").write_text(PARK, encoding="utf-8")
        QA.load(collection, encoder=FakeEncoder(), lazy=True).add([tmp_path / "park.txt"])
        started = time.monotonic()
        assert live.refresh(timeout_s=20)
        assert time.monotonic() - started < 10
        assert "park.txt" in live.engine.sources and live.reloads == 1
        assert live.refresh()  # nothing new: served already
    finally:
        live.close()
