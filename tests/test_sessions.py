"""Visitors' upload sessions (``qa.UploadSessions``): budget, busy queue, progress, freeing.

The fake encoder keeps these about plumbing; ``tests/test_layered.py`` holds the ranking
to "the same as one index" with the real model, and ``tests/test_ui_client.py`` the page.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading
import weakref
from pathlib import Path

import numpy as np
import pytest

from ingest import default_documents
from qa import QA, UploadSessions
from ui.uploads import UPLOAD_PREFIX, private_upload_folder, remove_stale_upload_folders

LIGHTHOUSE = ("The Zorbland lighthouse was painted teal in 1887 by its keeper, Ana Vell. "
              "It stands on the northern cliffs above the old fishing harbour.\n")
QUESTION = "What colour was the Zorbland lighthouse painted?"


class GatedEncoder:
    """The fake encoder, but each ``encode`` waits for ``gate`` (to hold the worker busy)."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.name = inner.name  # type: ignore[attr-defined]
        self.dimension = inner.dimension  # type: ignore[attr-defined]
        self.gate = threading.Event()
        self.gate.set()
        self.calls = 0

    def encode(self, texts: list[str], **_: object) -> np.ndarray:
        if threading.current_thread().name == "speech-qa-uploads":  # only the indexing worker
            self.calls += 1
            assert self.gate.wait(30), "test gate never opened"
        return self.inner.encode(texts)  # type: ignore[attr-defined,no-any-return]


@pytest.fixture
def gated(fake_encoder: object) -> GatedEncoder:
    return GatedEncoder(fake_encoder)


@pytest.fixture
def base(gated: GatedEncoder) -> QA:
    engine = QA.from_documents(default_documents(), encoder=gated)  # type: ignore[arg-type]
    engine.warm_up()
    return engine


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_upload_is_searched_with_the_base_and_leaves_the_disk(base: QA, tmp_path: Path) -> None:
    sessions = UploadSessions(base)
    session = sessions.open("visitor")
    path = write(tmp_path, "lighthouse.txt", LIGHTHOUSE)

    result = session.add_files([path], delete_after_read=True)

    assert not path.exists(), "the uploaded copy stayed on disk after reading"
    assert result.added == ("lighthouse.txt",) and not result.problems
    assert session.wait(30)
    assert session.sources == ("lighthouse.txt",)
    assert session.engine.ask(QUESTION).passages[0].source == "lighthouse.txt"
    assert session.engine.sources == ("dalian_speech.txt", "lighthouse.txt")
    assert base.sources == ("dalian_speech.txt",), "the shared engine changed"
    assert session.progress().fraction == 1.0


def test_same_name_twice_gets_a_distinct_label(base: QA, tmp_path: Path) -> None:
    session = UploadSessions(base).open()
    session.add_files([write(tmp_path, "notes.txt", LIGHTHOUSE)])
    session.add_files([write(tmp_path, "notes.txt", "The tram museum keeps eleven trams.\n")])
    assert session.wait(30)
    assert session.sources == ("notes.txt", "notes (2).txt")


def test_bad_files_are_problems_not_errors(base: QA, tmp_path: Path) -> None:
    session = UploadSessions(base).open()
    bad = write(tmp_path, "table.csv", "a,b\n1,2\n")
    empty = write(tmp_path, "empty.txt", "")
    result = session.add_files([bad, empty, tmp_path / "missing.txt"])
    assert result.added == ()
    assert [(p.file, p.kind) for p in result.problems] == [
        ("table.csv", "unreadable"), ("empty.txt", "unreadable"), ("missing.txt", "unreadable")]
    assert all(p.message.startswith(p.file) and "\n" not in p.message for p in result.problems)
    assert session.engine is base


def test_budget_refuses_what_does_not_fit_with_a_clear_message(base: QA, tmp_path: Path) -> None:
    session = UploadSessions(base, budget_chars=len(LIGHTHOUSE) + 10).open()
    first = session.add_files([write(tmp_path, "lighthouse.txt", LIGHTHOUSE)])
    second = session.add_files([write(tmp_path, "more.txt", LIGHTHOUSE)])
    assert first.added == ("lighthouse.txt",)
    [problem] = second.problems
    assert second.added == () and problem.kind == "over_budget" and problem.file == "more.txt"
    assert "budget" in problem.message and problem.message.startswith("more.txt:")
    assert session.wait(30) and session.sources == ("lighthouse.txt",)


def test_full_queue_answers_busy_and_questions_keep_working(base: QA, gated: GatedEncoder,
                                                            tmp_path: Path) -> None:
    sessions = UploadSessions(base, queue_size=1)
    gated.gate.clear()  # the worker blocks inside the model
    try:
        first = sessions.open("a")
        first.add_files([write(tmp_path, "one.txt", LIGHTHOUSE)])
        deadline = threading.Event()
        while first.progress().message.startswith("Waiting") and not deadline.wait(0.01):
            pass  # until the worker took the job off the queue
        sessions.open("b").add_files([write(tmp_path, "two.txt", LIGHTHOUSE)])  # fills the queue
        busy = sessions.open("c").add_files([write(tmp_path, "three.txt", LIGHTHOUSE)])
        assert [p.kind for p in busy.problems] == ["busy"]
        assert "busy" in busy.problems[0].message and busy.added == ()
        # Meanwhile, questions are answered over the shared corpus (the worker is stuck in the model).
        assert not first.wait(0.05)
        meanwhile = first.engine.ask("When did Dalian receive the Global 500 award?")
        assert meanwhile.passages and {p.source for p in meanwhile.passages} == {"dalian_speech.txt"}
        assert any("2001" in p.text for p in meanwhile.passages)
        progress = first.progress()
        assert progress.pending == ("one.txt",) and 0 <= progress.fraction < 1
        assert "one.txt" in progress.message
    finally:
        gated.gate.set()
    assert first.wait(30) and first.sources == ("one.txt",)
    # The "busy" session is usable once the queue drains.
    retry = sessions.open("c").add_files([write(tmp_path, "three.txt", LIGHTHOUSE)])
    assert retry.added == ("three.txt",)


def test_closing_a_session_cancels_indexing_and_frees_its_engine(base: QA, gated: GatedEncoder,
                                                                 tmp_path: Path) -> None:
    sessions = UploadSessions(base)
    session = sessions.open("visitor")
    session.add_files([write(tmp_path, "lighthouse.txt", LIGHTHOUSE)])
    assert session.wait(30)
    assert session.engine.ask(QUESTION).passages  # the ranking's per-index tables exist now
    engine_ref = weakref.ref(session.engine)
    index_ref = weakref.ref(session.engine.index)
    session_ref = weakref.ref(session)

    gated.gate.clear()
    session.add_files([write(tmp_path, "second.txt", "The tram museum keeps eleven trams.\n")])
    sessions.close("visitor")  # the visitor left while the second file was being embedded
    calls = gated.calls
    gated.gate.set()
    del session
    for _ in range(100):
        gc.collect()
        if engine_ref() is None and index_ref() is None and session_ref() is None:
            break
        threading.Event().wait(0.05)
    assert engine_ref() is None and index_ref() is None, "the session's engine is still referenced"
    assert session_ref() is None
    assert len(sessions) == 0
    assert gated.calls <= calls + 1, "indexing went on after the session closed"


def test_page_state_delete_callback_frees_the_session(base: QA, tmp_path: Path) -> None:
    from ui.app import build_app

    sessions = UploadSessions(base)
    app = build_app(base, sessions=sessions)
    [state] = [block for block in app.blocks.values()
               if type(block).__name__ == "State" and getattr(block, "delete_callback", None)]
    session = sessions.open("browser-session")
    session.add_files([write(tmp_path, "lighthouse.txt", LIGHTHOUSE)])
    assert session.wait(30)
    assert session.engine.ask(QUESTION).passages
    engine_ref = weakref.ref(session.engine)
    index_ref = weakref.ref(session.engine.index)
    del session

    state.delete_callback("browser-session")  # what Gradio calls when it drops the state

    gc.collect()
    assert engine_ref() is None and index_ref() is None and sessions.get("browser-session") is None


def test_the_page_config_copy_never_clones_the_engine(base: QA) -> None:
    """Gradio's ``/config`` deep-copies the page's config on every page load and client;
    the state's delete callback is in it, and must not drag the engine into the copy."""
    from gradio.utils import safe_deepcopy

    from ui.app import build_app

    sessions = UploadSessions(base)
    app = build_app(base, sessions=sessions)
    callbacks = [props["delete_callback"] for props in
                 (component.get("props", {}) for component in app.config["components"])
                 if props.get("delete_callback") is not None]
    assert callbacks, "the page's state has no delete callback any more"

    copied = safe_deepcopy(app.config)  # what every GET /config does

    copies = [props["delete_callback"] for props in
              (component.get("props", {}) for component in copied["components"])
              if props.get("delete_callback") is not None]
    assert [id(c) for c in copies] == [id(c) for c in callbacks]
    assert all(c.sessions is sessions for c in copies)  # the shared engine, not a clone


def test_stale_upload_folders_of_dead_servers_are_removed(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f"{UPLOAD_PREFIX}{dead_pid}-abc"
    (stale / "sub").mkdir(parents=True)
    (stale / "sub" / "upload.txt").write_text("left behind")
    live = tmp_path / f"{UPLOAD_PREFIX}{os.getppid()}-def"
    live.mkdir()
    mine = tmp_path / f"{UPLOAD_PREFIX}{os.getpid()}-ghi"
    mine.mkdir()
    other = tmp_path / "something-else-1"
    other.mkdir()

    removed = remove_stale_upload_folders(tmp_path)

    assert removed == [stale] and not stale.exists()
    assert live.exists() and mine.exists() and other.exists()


def test_upload_folder_is_named_with_the_pid_and_cleans_up_at_start(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    monkeypatch.delenv("GRADIO_TEMP_DIR", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    stale = tmp_path / f"{UPLOAD_PREFIX}999999999-old"  # above any pid_max: never alive
    stale.mkdir()

    folder = private_upload_folder()

    assert folder.parent == tmp_path and folder.name.startswith(f"{UPLOAD_PREFIX}{os.getpid()}-")
    assert (folder.stat().st_mode & 0o777) == 0o700
    assert not stale.exists()
    assert os.environ["GRADIO_TEMP_DIR"] == str(folder)
