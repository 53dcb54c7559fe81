"""Uploads in the page (issue 10, item 4): time to searchable, cost against bare encode, memory.

Run by hand (the model is real; a 5 MB upload embeds for minutes on 2 cores):

    PYTHONPATH=$PWD HF_HUB_OFFLINE=1 .venv/bin/python bench/perf_uploads.py small
    PYTHONPATH=$PWD HF_HUB_OFFLINE=1 .venv/bin/python bench/perf_uploads.py big

``small``: a server over a 3,000-sentence index (generated from the SQuAD articles, see
``perf_corpus.py``); the first 400-byte upload, from ``add_files`` to the first answer
citing it, through ``qa.UploadSessions`` (what the page calls), side by side with the
previous page's path (a new index over the base corpus plus the file, ``MemoEncoder``).

``big``: a server over the bundled speech; a 5 MB text upload's indexing time against the
bare ``encode`` of its own distinct sentences and passages (same text, same thread
priority, one process; wall and CPU seconds), then resident memory over that session and 4
more of 5 MB each, each closed before the next (their vectors come from the bare encode: see
``Remembered``). The memory start point is taken after the benchmark's own data exists.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from perf_corpus import make_corpus

from ingest import Document, document_from_bytes
from qa import QA, UploadSessions
from qa.layered import chunking_of, split_document
from qa.session import DEFAULT_NICENESS, _lower_priority, release_memory

T = TypeVar("T")

LIGHTHOUSE = (
    "Harbour notes\n\nThe Zorbland lighthouse was painted teal in 1887 by its keeper, Ana Vell. "
    "It stands on the northern cliffs above the old fishing harbour. The harbour itself silted "
    "up in 1920 and was dredged again in 1954, when the town of Zorbland paid for a new quay "
    "and a small museum. Today the lighthouse is a listed building and opens on Sundays, from "
    "ten in the morning until the last boat leaves the quay.\n"
)
QUESTION = "What colour was the Zorbland lighthouse painted?"


def rss_mb(field: str = "VmRSS") -> float:
    """Resident memory of this process, in MB (from /proc): all of it (``VmRSS``), or its
    heaps (``RssAnon``) or its file pages (``RssFile``: shared libraries' code paged in)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds() -> float:
    """CPU time of this whole process (every thread, torch's included), user + system.

    Why beside wall time: on a machine shared with other jobs, wall time of two phases run
    one after the other measures the neighbours' load as much as our code; the CPU seconds
    this process spends do not depend on how long it waited for a core.
    """
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_parts() -> dict[str, float]:
    """Heaps and file pages, MB: a step in the second is code paged in, not memory kept."""
    return {"anon": round(rss_mb("RssAnon"), 1), "file": round(rss_mb("RssFile"), 1)}


def in_low_thread(work: Callable[[], T], niceness: int) -> T:
    """Run ``work`` in a fresh thread at the indexing queue's priority (a fair baseline)."""
    box: list[T] = []

    def run() -> None:
        _lower_priority(niceness)
        box.append(work())

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return box[0]


def five_mb(seed: int, size: int = 5_000_000) -> str:
    """About ``size`` bytes of generated text (SQuAD sentences regrouped per seed)."""
    text = make_corpus(max(50, size // 210), seed)
    cut = text.encode("utf-8")[:size].decode("utf-8", "ignore")
    return cut[: cut.rfind("\n\n")] + "\n"


def upload(sessions: UploadSessions, name: str, text: str) -> tuple[float, float, dict[str, object]]:
    """(seconds to indexed, seconds to the first answer, answer) for one upload session."""
    folder = Path(tempfile.mkdtemp())
    path = folder / name
    path.write_text(text, encoding="utf-8")
    started = time.perf_counter()
    session = sessions.open(name + str(started))
    result = session.add_files([path], delete_after_read=True)
    assert result.added, result
    session.wait()
    indexed = time.perf_counter() - started
    answer = session.engine.ask(QUESTION)
    answered = time.perf_counter() - started
    sessions.close(name + str(started))
    assert not path.exists(), "the upload stayed on disk"
    return indexed, answered, {"source": answer.passages[0].source, "answer": answer.answer}


def small(args: argparse.Namespace) -> dict[str, object]:
    corpus = make_corpus(1_500, 0)
    document = Document("collection.txt", "collection.txt", corpus)
    build_started = time.perf_counter()
    base = QA.from_documents([document])
    base.warm_up()
    build = time.perf_counter() - build_started
    sentences = len(base.index.sentences)
    sessions = UploadSessions(base, niceness=args.niceness)
    prepare_started = time.perf_counter()
    sessions.prepare()
    prepare = time.perf_counter() - prepare_started
    text = LIGHTHOUSE.encode("utf-8")[:400].decode("utf-8", "ignore")
    runs = [upload(sessions, f"notes{i}.txt", text) for i in range(args.repeat)]
    # The previous page: a new index over the base documents plus the file. On a server's
    # first upload its MemoEncoder had seen nothing, so every text reached the model.
    old_started = time.perf_counter()
    upload_doc = document_from_bytes("notes.txt", text.encode())
    old = QA.from_documents([document, upload_doc], encoder=base.encoder)
    old_answer = old.ask(QUESTION)
    old_seconds = time.perf_counter() - old_started
    return {
        "base_sentences": sentences, "base_passages": len(base.index.passages),
        "base_build_s": round(build, 2), "prepare_s": round(prepare, 3),
        "upload_bytes": len(text.encode()),
        "first_upload_searchable_s": round(runs[0][1], 3),
        "median_upload_searchable_s": round(statistics.median(r[1] for r in runs), 3),
        "first_answer_source": runs[0][2]["source"],
        "previous_path_s": round(old_seconds, 2), "previous_answer_source": old_answer.passages[0].source,
    }


class Remembered:
    """Hands back vectors the bare encode already computed (the memory rounds' encoder).

    Why: on a shared 2-core machine one 5 MB encode takes 15-20 minutes; the memory rounds
    measure what a session keeps and frees (texts, tables, vectors, indexes), which does not
    depend on where the vectors came from. Every round still runs the whole session path.
    """

    def __init__(self, inner: Any, memo: dict[str, np.ndarray]) -> None:
        self.inner, self.memo = inner, memo
        self.name, self.dimension = inner.name, inner.dimension

    def encode(self, texts: list[str], **kwargs: Any) -> np.ndarray:
        missing = [t for t in texts if t not in self.memo]
        if missing:
            self.memo.update(zip(missing, self.inner.encode(missing, **kwargs), strict=True))
        return np.stack([self.memo[t] for t in texts]) if texts else self.inner.encode([])


def big(args: argparse.Namespace) -> dict[str, object]:
    base = QA.default()
    base.warm_up()
    sessions = UploadSessions(base, niceness=args.niceness)
    sessions.prepare()
    upload(sessions, "warm.txt", LIGHTHOUSE)  # every lazy table and code path touched once
    release_memory()
    warm_rss = rss_mb()
    text = five_mb(0, int(args.megabytes * 1_000_000))
    split = split_document(Document("big.txt", "big.txt", text), chunking_of(base.index))
    sentence_texts = list(dict.fromkeys(text[s.start:s.end] for s in split.sentences))
    known = set(sentence_texts)
    passage_texts = [t for t in dict.fromkeys(text[p.start:p.end] for p in split.passages) if t not in known]
    bare_started, bare_cpu_started = time.perf_counter(), cpu_seconds()
    vectors = in_low_thread(lambda: (base.encoder.encode(sentence_texts), base.encoder.encode(passage_texts)),
                            args.niceness)
    bare, bare_cpu = time.perf_counter() - bare_started, cpu_seconds() - bare_cpu_started
    bare_load = os.getloadavg()[0]
    print(f"bare encode of {len(sentence_texts) + len(passage_texts)} texts: {bare:.1f}s, "
          f"{bare_cpu:.1f} CPU s, load {bare_load:.1f}", file=sys.stderr)
    # Everything the benchmark itself keeps (the text, its splits, the baseline vectors as the
    # memo of the memory rounds) is allocated before the start point, so the RSS figures
    # below move only with what sessions keep or free.
    memo = dict(zip(sentence_texts + passage_texts, np.concatenate(vectors), strict=True))
    del vectors
    remembered = QA(lambda: base.index, Remembered(base.encoder, memo), base.weights)
    memory_sessions = UploadSessions(remembered, niceness=args.niceness)
    memory_sessions.prepare()
    release_memory()
    start_rss = rss_mb()
    start_parts = rss_parts()
    session_cpu_started = cpu_seconds()
    indexed, answered, answer = upload(sessions, "big.txt", text)
    session_cpu = cpu_seconds() - session_cpu_started
    session_load = os.getloadavg()[0]
    print(f"session with the model: indexed {indexed:.1f}s, {session_cpu:.1f} CPU s (to the first "
          f"answer), load {session_load:.1f}", file=sys.stderr)
    release_memory()
    after_model_session = rss_mb()
    after_model_parts = rss_parts()
    before_rounds = after_model_session
    memory = []
    for number in range(args.sessions):
        round_indexed, _, _ = upload(memory_sessions, f"big{number}.txt", text)
        release_memory()
        memory.append(round(rss_mb(), 1))
        print(f"memory round {number + 1}: indexed {round_indexed:.1f}s, rss {memory[-1]} MB",
              file=sys.stderr)
    return {
        "bytes": len(text.encode()), "sentences": len(split.sentences), "passages": len(split.passages),
        "distinct_texts_embedded": len(sentence_texts) + len(passage_texts),
        "bare_encode_s": round(bare, 1), "session_indexing_s": round(indexed, 1),
        "session_first_answer_s": round(answered, 1), "answer_source": answer["source"],
        "ratio": round(indexed / bare, 3),
        "bare_encode_cpu_s": round(bare_cpu, 1), "session_cpu_s": round(session_cpu, 1),
        "cpu_ratio": round(session_cpu / bare_cpu, 3),
        "load_after_bare": round(bare_load, 1), "load_after_session": round(session_load, 1),
        "rss_warm_short_texts_only_mb": round(warm_rss, 1),
        "rss_start_mb": round(start_rss, 1),
        "rss_after_model_session_closed_mb": round(after_model_session, 1),
        "rss_before_memory_rounds_mb": round(before_rounds, 1),
        "rss_after_each_round_closed_mb": memory,
        "rss_parts_start_mb": start_parts, "rss_parts_after_model_session_mb": after_model_parts,
        "rss_parts_end_mb": rss_parts(),
        "rss_growth_vs_start": round(memory[-1] / start_rss - 1, 3),
        "rss_growth_vs_warm_short_texts_only": round(memory[-1] / warm_rss - 1, 3),
        "rss_growth_over_rounds": round(memory[-1] / before_rounds - 1, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    one = sub.add_parser("small")
    one.add_argument("--repeat", type=int, default=5)
    two = sub.add_parser("big")
    two.add_argument("--sessions", type=int, default=4)
    two.add_argument("--megabytes", type=float, default=5.0, help="upload size (5: the issue's)")
    for command in (one, two):
        command.add_argument("--niceness", type=int, default=DEFAULT_NICENESS,
                             help="indexing thread priority (0 on a machine busy with other work, "
                                  "where a niced thread waits for idle cores)")
    args = parser.parse_args()
    figures = small(args) if args.mode == "small" else big(args)
    figures.update({"niceness": args.niceness, "date": time.strftime("%Y-%m-%d %H:%M"),
                    "cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average": os.getloadavg()})
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
