"""Crash safety: ``kill -9`` while an index is being written never loses the previous index.

The promise (README, Reliability): after a crash at any moment of ``speech-qa index`` or
``CorpusIndex.save``, the index directory still loads and answers exactly as before (or,
if the crash came after the new index was complete, exactly as the new one), and whatever
the crash left behind (a temporary folder, a backup) does not break the next run.

How it is tested, with real processes and real SIGKILLs:

- random moments: a child process saves two indexes alternately in a loop and is killed
  after a random delay, at least 12 times (fake encoder: each trial takes about a second);
- every step of ``save``: a child kills itself right before its N-th rename, fsync,
  FAISS write or file deletion, so each window (including the one between the two
  renames) is hit for certain, not only by luck;
- the real CLI with the real model: ``python -m ui.cli index`` killed at random, and
  killed while it writes.
"""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from index import CorpusIndex, Encoder
from ingest import Document, corpus_hash, default_documents, load_documents
from qa import QA

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = [
    "When did Dalian receive the Global 500 award?",
    "Which city helped Dalian?",
    "What happened to harbour number 17?",
    "trees",
]
RANDOM_TRIALS = 12
RANDOM_TRIALS_MAX = 60

# The child process.  It saves prepared indexes (loaded from disk, so start-up is quick)
# and either loops until killed (``random``) or kills itself at a chosen step of ``save``.
_CHILD = r"""
import os, signal, sys, time
import faiss
from index import CorpusIndex

old, new = CorpusIndex.load(sys.argv[1]), CorpusIndex.load(sys.argv[2])
target, point = sys.argv[3], sys.argv[4]

def die_at(module, name, nth, armed=lambda: True):
    real = getattr(module, name)
    calls = [0]
    def wrapper(*args, **kwargs):
        if armed():
            calls[0] += 1
            if calls[0] == nth:
                os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)
    setattr(module, name, wrapper)

renames = [0]
if point == "random":
    print("ready", flush=True)
    deadline = time.monotonic() + 30  # bounded even if nobody kills us
    for i in range(100000):
        (new if i % 2 == 0 else old).save(target)
        print("saved", i, flush=True)
        if time.monotonic() > deadline:
            break
    sys.exit(0)
kind, _, nth = point.partition(":")
if kind.endswith("after-renames"):
    real_rename = os.rename
    def counting_rename(*args, **kwargs):
        real_rename(*args, **kwargs)
        renames[0] += 1
    os.rename = counting_rename
    die_at(os, kind.split("-")[0], int(nth), armed=lambda: renames[0] >= 2)
elif kind == "write_index":
    die_at(faiss, "write_index", int(nth))
else:
    die_at(os, kind, int(nth))
print("ready", flush=True)
new.save(target)
print("finished", flush=True)
sys.exit(3)
"""


class WordEncoder:
    """Deterministic bag-of-words encoder: fast, and answers differ between corpora."""

    name = "test-word-encoder"
    dimension = 32

    def encode(self, texts: list[str], *, batch_size: int = 64,
               show_progress: bool = False) -> Any:
        import numpy as np

        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                vectors[row, sum(word.encode()) % self.dimension] += 1.0
        vectors[:, 0] += 1e-3
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@dataclass(frozen=True)
class Corpora:
    """Two saved indexes (the 'previous' one and the one being written) and their answers."""

    old_dir: Path
    new_dir: Path
    old_hash: str
    new_hash: str
    answers: dict[str, list[dict[str, Any]]]  # corpus hash -> answers to QUESTIONS
    encoder: Encoder


def answers_of(index: CorpusIndex, encoder: Encoder) -> list[dict[str, Any]]:
    """What an index answers to the fixed questions (the comparison key)."""
    engine = QA(lambda: index, encoder=encoder)
    return [engine.ask(question, top_k=3).to_dict() for question in QUESTIONS]


def harbour_document(offset: int, paragraphs: int = 600) -> Document:
    """A generated document large enough that a save takes a noticeable time."""
    text = "\n\n".join(
        f"Paragraph {i} talks about harbour number {i + offset} and the city of Dalian in "
        f"{1900 + i}. It has a second sentence about {i % 7} trees." for i in range(paragraphs))
    return Document("harbours.txt", "harbours.txt", text)


@pytest.fixture(scope="module")
def corpora(tmp_path_factory: pytest.TempPathFactory) -> Corpora:
    encoder = WordEncoder()
    base = tmp_path_factory.mktemp("corpora")
    speech = default_documents()
    built = {
        "old": CorpusIndex.build([*speech, harbour_document(0)], encoder),
        "new": CorpusIndex.build([*speech, harbour_document(1000)], encoder),
    }
    for name, index in built.items():
        index.save(base / name)
    hashes = {name: corpus_hash(index.documents) for name, index in built.items()}
    assert hashes["old"] != hashes["new"]
    answers = {hashes[name]: answers_of(index, encoder) for name, index in built.items()}
    assert answers[hashes["old"]] != answers[hashes["new"]]
    return Corpora(base / "old", base / "new", hashes["old"], hashes["new"], answers, encoder)


@pytest.fixture
def target(tmp_path: Path, corpora: Corpora) -> Path:
    """A fresh index directory holding the 'old' index (the one a crash must not lose)."""
    path = tmp_path / "workspace" / "idx"
    CorpusIndex.load(corpora.old_dir).save(path)
    return path


def await_ready(child: subprocess.Popen[str]) -> subprocess.Popen[str]:
    """Wait (bounded) until the child says it is about to do the work we will kill it in."""
    assert child.stdout is not None
    ready, _, _ = select.select([child.stdout], [], [], 60)
    line = child.stdout.readline() if ready else ""
    if line.strip() != "ready":
        child.kill()
        pytest.fail(f"child did not start: {line!r} {child.communicate(timeout=10)[1][-2000:]}")
    return child


def start_child(corpora: Corpora, target: Path, point: str) -> subprocess.Popen[str]:
    """Start the saving child and wait (bounded) until it is about to save."""
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(corpora.old_dir), str(corpora.new_dir), str(target), point],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )
    return await_ready(child)


def check_survivor(target: Path, corpora: Corpora, allowed: set[str]) -> str:
    """The directory loads, is one of the allowed corpora, answers exactly as that corpus
    did, and a next save over whatever was left behind succeeds and leaves nothing else."""
    survivor = CorpusIndex.load(target, expected_model=corpora.encoder.name)
    found = corpus_hash(survivor.documents)
    assert found in allowed, "the index after the crash is neither the old nor the new one"
    assert answers_of(survivor, corpora.encoder) == corpora.answers[found]
    # The next run: save over the leftovers, then only the index itself remains.
    CorpusIndex.load(corpora.old_dir).save(target)
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]
    assert corpus_hash(CorpusIndex.load(target).documents) == corpora.old_hash
    return found


def test_kill_at_random_moments(target: Path, corpora: Corpora) -> None:
    """At least 12 SIGKILLs at random times while a child saves over the index in a loop."""
    rng = random.Random(20240611)
    outcomes = []
    started = time.monotonic()
    for _ in range(RANDOM_TRIALS):
        child = start_child(corpora, target, "random")
        time.sleep(rng.uniform(0.0, 0.6))
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        assert child.returncode == -signal.SIGKILL, "the child ended before it was killed"
        leftovers = sorted(p.name for p in target.parent.iterdir())
        found = check_survivor(target, corpora, {corpora.old_hash, corpora.new_hash})
        outcomes.append((found == corpora.new_hash, leftovers))
    assert time.monotonic() - started < 120
    # The kills landed in different states (sanity check that the trials are not all alike).
    assert len({str(leftovers) for _, leftovers in outcomes}) >= 2, outcomes


# Each step of save, the state it must leave, and what must then load.
CRASH_POINTS = {
    "write_index:2": "old",          # half-way through writing the temporary directory
    "fsync:4": "old",                # while flushing the temporary directory to disk
    "rename:1": "old",               # complete new index, old one not yet moved aside
    "rename:2": "old",               # old index moved to the backup, new one not in place
    "unlink-after-renames:3": "new",  # new index in place, backup half deleted
    "rmdir-after-renames:1": "new",   # backup emptied, its folder not yet removed
}


@pytest.mark.parametrize("point", list(CRASH_POINTS))
def test_kill_at_every_step_of_save(target: Path, corpora: Corpora, point: str) -> None:
    child = start_child(corpora, target, point)
    _, stderr = child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL, f"crash point {point} never reached: {stderr[-2000:]}"
    if point == "rename:2":  # the window between the renames: only the backup holds an index
        assert not target.exists() and target.with_name(target.name + ".previous").is_dir()
    expected = corpora.old_hash if CRASH_POINTS[point] == "old" else corpora.new_hash
    check_survivor(target, corpora, {expected})


def test_crash_leftovers_do_not_break_a_fresh_target(tmp_path: Path, corpora: Corpora) -> None:
    """Killed during the very first save: no index yet, a clear error, and the next save works."""
    target = tmp_path / "first"
    child = start_child(corpora, target, "rename:1")
    child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL
    from index import IndexLoadError

    with pytest.raises(IndexLoadError, match="no index directory here"):
        CorpusIndex.load(target)
    CorpusIndex.load(corpora.new_dir).save(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]
    assert corpus_hash(CorpusIndex.load(target).documents) == corpora.new_hash


# ---------------------------------------------------------------------------- the real CLI
@dataclass(frozen=True)
class CliCorpora:
    """Two folders of files, their indexes built with the real model, and its answers."""

    old_folder: Path
    new_folder: Path
    indexes: dict[str, CorpusIndex]  # "old" / "new"
    answers: dict[str, list[dict[str, Any]]]  # corpus hash -> answers to QUESTIONS


@pytest.fixture(scope="module")
def cli_corpora(tmp_path_factory: pytest.TempPathFactory, real_encoder: Encoder) -> CliCorpora:
    base = tmp_path_factory.mktemp("cli")
    (base / "old").mkdir()
    (base / "new").mkdir()
    speech = default_documents()[0].text
    (base / "old" / "speech.txt").write_text(speech, encoding="utf-8")
    (base / "new" / "speech.txt").write_text(speech, encoding="utf-8")
    (base / "new" / "harbours.txt").write_text(harbour_document(0, 30).text, encoding="utf-8")
    indexes = {name: CorpusIndex.build(load_documents([base / name]), real_encoder)
               for name in ("old", "new")}
    answers = {corpus_hash(index.documents): answers_of(index, real_encoder) for index in indexes.values()}
    assert len(answers) == 2
    return CliCorpora(base / "old", base / "new", indexes, answers)


@pytest.mark.parametrize("moment", ["random", "while-writing"])
def test_kill_the_real_cli(tmp_path: Path, cli_corpora: CliCorpora, real_encoder: Encoder,
                           moment: str) -> None:
    """``python -m ui.cli index`` with the real model, killed at a random moment or mid-write."""
    target = tmp_path / "idx"
    cli_corpora.indexes["old"].save(target)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    child = subprocess.Popen([sys.executable, "-m", "ui.cli", "index", str(cli_corpora.new_folder),
                              "--index", str(target), "--replace"], cwd=ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rng = random.Random()
    try:
        if moment == "random":
            time.sleep(rng.uniform(0.5, 6.0))
        else:  # wait (bounded) for the temporary directory, then kill a moment later
            deadline = time.monotonic() + 180
            while not any(p.name.startswith(".idx.tmp-") for p in tmp_path.iterdir()):
                assert time.monotonic() < deadline and child.poll() is None, "no save seen"
                time.sleep(0.002)
            time.sleep(rng.uniform(0.0, 0.05))
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    survivor = CorpusIndex.load(target, expected_model=real_encoder.name)
    found = corpus_hash(survivor.documents)
    assert found in cli_corpora.answers
    assert answers_of(survivor, real_encoder) == cli_corpora.answers[found]
    cli_corpora.indexes["new"].save(target)  # the next run's save works over the leftovers
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]


# ---------------------------------------------------------------------------- add and remove
# The child adds ``extra.txt`` to the index (a new segment + manifest switch) or removes
# it (a full rewrite), in a loop until killed, or dies right before a chosen step.
_UPDATE_CHILD = r"""
import os, signal, sys, time
import numpy as np
from index import add_to_index, remove_from_index
from ingest import Document

class WordEncoder:
    name = "test-word-encoder"
    dimension = 32
    def encode(self, texts, *, batch_size=64, show_progress=False):
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                vectors[row, sum(word.encode()) % self.dimension] += 1.0
        vectors[:, 0] += 1e-3
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

target, point, text_path = sys.argv[1], sys.argv[2], sys.argv[3]
extra = Document("extra.txt", "extra.txt", open(text_path, encoding="utf-8").read())
encoder = WordEncoder()
add = lambda: add_to_index(target, [extra], encoder)
remove = lambda: remove_from_index(target, ["extra.txt"])

def die_at(name, nth, armed_after=None):
    real = getattr(os, name)
    calls = [0]
    def wrapper(*args, **kwargs):
        if armed_after is None or armed_after[0]:
            calls[0] += 1
            if calls[0] == nth:
                os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)
    setattr(os, name, wrapper)

if point == "random":
    print("ready", flush=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        add()
        remove()
    sys.exit(0)
operation, kind, nth = point.split(":")
if operation == "remove":
    add()
if kind.endswith("-after-replace"):
    replaced = [False]
    real_replace = os.replace
    def counting_replace(*args, **kwargs):
        real_replace(*args, **kwargs)
        replaced[0] = True
    os.replace = counting_replace
    die_at(kind.split("-")[0], int(nth), replaced)
else:
    die_at(kind, int(nth))
print("ready", flush=True)
add() if operation == "add" else remove()
print("finished", flush=True)
sys.exit(3)
"""

EXTRA = ("The Lushun tram museum opened in 2031 beside harbour number 5. "
         "It keeps forty old trams and a ferry.")


@dataclass(frozen=True)
class UpdateCorpora:
    """The index before (``old``) and after (``new``) adding extra.txt, and their answers."""

    old_dir: Path
    extra: Path
    answers: dict[str, list[dict[str, Any]]]  # "old" / "new" -> answers to QUESTIONS


@pytest.fixture(scope="module")
def update_corpora(tmp_path_factory: pytest.TempPathFactory) -> UpdateCorpora:
    encoder = WordEncoder()
    base = tmp_path_factory.mktemp("updates")
    old = [*default_documents(), harbour_document(0)]
    extra = base / "extra.txt"
    extra.write_text(EXTRA, encoding="utf-8")
    CorpusIndex.build(old, encoder).save(base / "old")
    answers = {"old": answers_of(CorpusIndex.build(old, encoder), encoder),
               "new": answers_of(CorpusIndex.build([*old, Document("extra.txt", "extra.txt", EXTRA)],
                                                   encoder), encoder)}
    assert answers["old"] != answers["new"]
    return UpdateCorpora(base / "old", extra, answers)


def start_update_child(corpora: UpdateCorpora, target: Path, point: str) -> subprocess.Popen[str]:
    child = subprocess.Popen([sys.executable, "-c", _UPDATE_CHILD, str(target), point, str(corpora.extra)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    return await_ready(child)


def check_update_survivor(target: Path, corpora: UpdateCorpora, allowed: set[str]) -> str:
    """The index loads, holds the old or the new collection and answers exactly as it;
    the next add and remove work over whatever the kill left behind."""
    survivor = CorpusIndex.load(target, expected_model=WordEncoder.name)
    state = "new" if any(d.source == "extra.txt" for d in survivor.documents) else "old"
    assert state in allowed, f"found the {state} index"
    assert len(survivor.documents) == (3 if state == "new" else 2)
    assert answers_of(survivor, WordEncoder()) == corpora.answers[state]
    from index import add_to_index, remove_from_index

    extra = Document("extra.txt", "extra.txt", EXTRA)
    if state == "old":
        add_to_index(target, [extra], WordEncoder())
    remove_from_index(target, ["extra.txt"])
    assert answers_of(CorpusIndex.load(target), WordEncoder()) == corpora.answers["old"]
    leftovers = [p for p in target.rglob("*") if "tmp" in p.name]
    assert not leftovers and sorted(p.name for p in target.parent.iterdir()) == [target.name]
    return state


@pytest.fixture
def update_target(tmp_path: Path, update_corpora: UpdateCorpora) -> Path:
    path = tmp_path / "workspace" / "idx"
    CorpusIndex.load(update_corpora.old_dir).save(path)
    return path


def test_kill_add_and_remove_at_random_moments(update_target: Path, update_corpora: UpdateCorpora) -> None:
    """At least 12 SIGKILLs while a child adds and removes a document in a loop.

    Kills go on past 12 (up to ``RANDOM_TRIALS_MAX``, waiting up to 3 s instead of 0.8 s)
    until some have landed on each side of a switch: where a kill lands depends on how long an
    add and a remove take on the machine, and 12 alone once all landed on one side (CI,
    2026-12-01).
    """
    rng = random.Random(20240612)
    states: list[str] = []
    while len(states) < RANDOM_TRIALS or (len(set(states)) < 2 and len(states) < RANDOM_TRIALS_MAX):
        child = start_update_child(update_corpora, update_target, "random")
        # later kills wait longer: on a slow machine an add plus a remove can outlast 0.8 s,
        # and only a kill after the remove's switch finds the old collection
        time.sleep(rng.uniform(0.0, 0.8 if len(states) < RANDOM_TRIALS else 3.0))
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        assert child.returncode == -signal.SIGKILL, "the child ended before it was killed"
        states.append(check_update_survivor(update_target, update_corpora, {"old", "new"}))
    assert len(set(states)) == 2, states  # the kills landed both before and after a switch


# Each step of an add or a remove, and the collection it must leave ("new" holds extra.txt;
# a remove starts from "new", so its steps before the switch leave "new").
UPDATE_CRASH_POINTS = {
    "add:fsync:2": "old",                # flushing the new segment's files
    "add:rename:1": "old",               # segment complete, not yet in place
    "add:replace:1": "old",              # segment in place, manifest not yet switched
    "add:fsync-after-replace:1": "new",  # manifest switched, folder not yet flushed
    "remove:rename:1": "new",            # rewritten index complete, the old one still in place
    "remove:rename:2": "new",            # the old index moved to the backup, the new one not in place
    "remove:rmdir:1": "old",             # new index in place, the backup being deleted
}


@pytest.mark.parametrize("point", list(UPDATE_CRASH_POINTS))
def test_kill_at_every_step_of_add_and_remove(update_target: Path, update_corpora: UpdateCorpora,
                                              point: str) -> None:
    child = start_update_child(update_corpora, update_target, point)
    _, stderr = child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL, f"crash point {point} never reached: {stderr[-2000:]}"
    check_update_survivor(update_target, update_corpora, {UPDATE_CRASH_POINTS[point]})


@pytest.mark.parametrize("moment", ["add-random", "add-while-writing", "remove-random"])
def test_kill_the_real_cli_during_add_and_remove(tmp_path: Path, real_encoder: Encoder, moment: str) -> None:
    """``python -m ui.cli add`` / ``remove`` with the real model, killed at a random moment
    or while the new segment is being written."""
    speech = Document("speech.txt", "speech.txt", default_documents()[0].text)
    harbours = harbour_document(0, 30)
    old, new = [speech], [speech, harbours]
    expected = {len(docs): answers_of(CorpusIndex.build(docs, real_encoder), real_encoder)
                for docs in (old, new)}
    target = tmp_path / "idx"
    operation = moment.split("-")[0]
    CorpusIndex.build(old if operation == "add" else new, real_encoder).save(target)
    source = tmp_path / "harbours.txt"
    source.write_text(harbours.text, encoding="utf-8")
    command = ["add", str(source)] if operation == "add" else ["remove", "harbours.txt"]
    child = subprocess.Popen([sys.executable, "-m", "ui.cli", *command, "--index", str(target)], cwd=ROOT,
                             env=dict(os.environ, PYTHONUNBUFFERED="1"),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rng = random.Random()
    try:
        if moment.endswith("random"):
            time.sleep(rng.uniform(0.5, 6.0))
        else:
            deadline = time.monotonic() + 180
            segments = target / "segments"
            while not (segments.is_dir() and any(segments.iterdir())):
                assert time.monotonic() < deadline and child.poll() is None, "no segment seen"
                time.sleep(0.002)
            time.sleep(rng.uniform(0.0, 0.02))
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    survivor = CorpusIndex.load(target, expected_model=real_encoder.name)
    assert len(survivor.documents) in expected
    assert answers_of(survivor, real_encoder) == expected[len(survivor.documents)]
    CorpusIndex.build(old, real_encoder).save(target)  # the next run's save works over the leftovers
    assert sorted(p.name for p in tmp_path.iterdir()) == ["harbours.txt", "idx"]


# ---------------------------------------------------------------------------- the HTTP write path
# A real server (``ui.server.serve``: the JSON API with the page) following an index with the
# word encoder, killed while ``POST /api/documents`` adds a large upload (or ``DELETE``
# removes it): the directory afterwards is the old collection or the new one, never a mix.
_SERVER_CHILD = r"""
import sys
sys.path.insert(0, "tests")
from test_crash_safety import WordEncoder
from qa.live import LiveIndex
from ui.access import Access
from ui.server import serve
live = LiveIndex.open(sys.argv[1], WordEncoder())
serve(live.engine, "127.0.0.1", int(sys.argv[2]), live=live, access=Access(admin=sys.argv[3]), quiet=True)
"""
HTTP_TOKEN = "crash-test-admin-token-0123456789"


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _http(port: int, method: str, path: str, body: bytes = b"", content_type: str = "application/json",
          timeout: float = 5) -> int:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers={"Content-Type": content_type,
                                                             "Authorization": f"Bearer {HTTP_TOKEN}"})
        return connection.getresponse().status
    finally:
        connection.close()


@pytest.mark.parametrize("moment", ["add-random", "add-random", "add-segment", "remove-random"])
def test_kill_the_server_during_an_http_write(tmp_path: Path, moment: str) -> None:
    import threading
    import uuid

    encoder = WordEncoder()
    speech = Document("speech.txt", "speech.txt", default_documents()[0].text)
    harbours = harbour_document(0, 600)
    old, new = [speech], [speech, harbours]
    expected = {len(docs): answers_of(CorpusIndex.build(docs, encoder), encoder) for docs in (old, new)}
    operation = moment.split("-")[0]
    target = tmp_path / "idx"
    CorpusIndex.build(old if operation == "add" else new, encoder).save(target)
    port = _free_port()
    child = subprocess.Popen([sys.executable, "-c", _SERVER_CHILD, str(target), str(port), HTTP_TOKEN],
                             cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert child.poll() is None and time.monotonic() < deadline, "the server did not start"
            try:
                if _http(port, "GET", "/api/health") == 200:
                    break
            except OSError:
                time.sleep(0.2)
        boundary = uuid.uuid4().hex
        upload = (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="harbours.txt"'
                  "\r\nContent-Type: text/plain\r\n\r\n").encode() + harbours.text.encode() + \
            f"\r\n--{boundary}--\r\n".encode()

        def write() -> None:
            try:
                if operation == "add":
                    _http(port, "POST", "/api/documents", upload, f"multipart/form-data; boundary={boundary}",
                          timeout=120)
                else:
                    _http(port, "DELETE", "/api/documents?source=harbours.txt", timeout=120)
            except OSError:
                pass  # the server was killed under it: that is the test

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        if moment.endswith("random"):
            time.sleep(random.uniform(0.0, 1.5))
        else:
            segments = target / "segments"
            while not (segments.is_dir() and any(segments.iterdir())):
                assert time.monotonic() < deadline + 60 and writer.is_alive(), "no segment seen"
                time.sleep(0.002)
            time.sleep(random.uniform(0.0, 0.02))
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    survivor = CorpusIndex.load(target, expected_model=encoder.name)
    assert len(survivor.documents) in expected, "neither the old collection nor the new one"
    assert answers_of(survivor, encoder) == expected[len(survivor.documents)]
    CorpusIndex.build(old, encoder).save(target)  # the next write works over the leftovers
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]
