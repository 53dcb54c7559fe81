"""torch vs onnxruntime for the bundled model, side by side in one run (issue 19).

Why one run, alternating: the CPU here is shared, so figures taken minutes apart differ by
more than the effect measured; each round runs both runtimes back to back and the table
quotes medians and their ratio.

Rows:
  * warm ``QA.ask`` p50 on the speech's questions (the answer cache off), and a bare
    sentence-transformers ``encode`` / ONNX ``encode`` of the same question;
  * cold ``speech-qa ask`` (index and graph cached) against ``python -c "import sentence_transformers"``;
  * resident memory of a process holding the speech index after 200 questions;
  * embedding throughput in batches of 64 (SQuAD sentences, an index build's work).

Run: ``python bench/perf_runtime.py`` (``--rounds``, ``--texts``); it prints a Markdown
section for ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SQUAD = ROOT / "bench" / "data" / "squad2_dev_3articles.json"
QUESTIONS = ROOT / "bench" / "data" / "speech_questions.json"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(ROOT)}

MEMORY_CHILD = """
import json, sys, resource
from pathlib import Path
from qa import QA
runtime = sys.argv[1]
if runtime == "torch":
    from index import BundledEncoder as E
else:
    from index import OnnxEncoder as E
questions = [q["question"] for q in json.loads(Path(sys.argv[2]).read_text())]
engine = QA.default(encoder=E())
engine.warm_up()
for i in range(200):
    engine.ask(questions[i % len(questions)] + ("" if i < len(questions) else f" ({i})"))
rss = [l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmRSS")][0]
print(json.dumps({"rss_mib": int(rss.split()[1]) / 1024,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def speech_questions() -> list[str]:
    return [item["question"] for item in json.loads(QUESTIONS.read_text(encoding="utf-8"))]


def squad_sentences(count: int) -> list[str]:
    from ingest import split_sentences

    data = json.loads(SQUAD.read_text(encoding="utf-8"))
    sentences = [c[s.start:s.end] for a in data["data"] for p in a["paragraphs"]
                 for c in [p["context"]] for s in split_sentences(c)]
    return random.Random(19).sample(sentences, min(count, len(sentences)))


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=ENV, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--texts", type=int, default=1000)
    args = parser.parse_args()

    import numpy as np

    from index import BundledEncoder, OnnxEncoder
    from qa import QA

    questions = speech_questions()
    encoders = {"torch": BundledEncoder(), "onnx": OnnxEncoder()}
    engines = {name: QA.default(encoder=encoder) for name, encoder in encoders.items()}
    for engine in engines.values():
        engine.warm_up()
        engine.ask(questions[0])
    assert encoders["onnx"].runtime == "onnxruntime"
    ask = {name: [] for name in encoders}
    bare = {name: [] for name in encoders}
    for round_ in range(args.rounds):
        for question in questions:
            for name in (("torch", "onnx") if round_ % 2 == 0 else ("onnx", "torch")):
                # A new wording every round: the engine's answer cache never answers.
                asked = f"{question} ({round_})"
                start = time.perf_counter()
                engines[name].ask(asked)
                ask[name].append(time.perf_counter() - start)
                start = time.perf_counter()
                encoders[name].encode([asked])
                bare[name].append(time.perf_counter() - start)

    texts = squad_sentences(args.texts)
    throughput = {name: [] for name in encoders}
    for _ in range(3):
        for name, encoder in encoders.items():
            start = time.perf_counter()
            encoder.encode(texts, batch_size=64)
            throughput[name].append(len(texts) / (time.perf_counter() - start))
    sample = texts[:200]
    products = encoders["onnx"].encode(sample) * encoders["torch"].encode(sample)
    agreement = float(np.min(np.sum(products, axis=1)))

    cli = [str(Path(sys.executable).with_name("speech-qa")), "ask",
           "When did Dalian receive the Global 500 award?", "--top-k", "1"]
    if not Path(cli[0]).exists():
        cli = [sys.executable, "-m", "ui.cli", *cli[1:]]
    baseline = [sys.executable, "-c", "import sentence_transformers"]
    cold = {"cli": [], "baseline": []}
    timed(cli)
    for _ in range(args.rounds):
        cold["cli"].append(timed(cli))
        cold["baseline"].append(timed(baseline))

    memory = {}
    for name in ("torch", "onnx"):
        out = subprocess.run([sys.executable, "-c", MEMORY_CHILD, name, str(QUESTIONS)], env=ENV,
                             check=True, capture_output=True, text=True)
        memory[name] = json.loads(out.stdout.strip().splitlines()[-1])

    def med(values: list[float]) -> float:
        return statistics.median(values)

    lines = [
        f"### Runtime: torch vs onnxruntime ({datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC)",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared), "
        f"Python {platform.python_version()}. Command: `python bench/perf_runtime.py --rounds {args.rounds} "
        f"--texts {args.texts}`. Same process, alternating, {len(ask['torch'])} questions each.",
        "",
        "| | sentence-transformers on torch | onnxruntime | ratio |",
        "|---|---:|---:|---:|",
        f"| warm `QA.ask` p50 | {med(ask['torch'])*1e3:.1f} ms | {med(ask['onnx'])*1e3:.1f} ms | "
        f"{med(ask['onnx'])/med(ask['torch']):.2f}× |",
        f"| warm `QA.ask` p90 | {np.percentile(ask['torch'], 90)*1e3:.1f} ms | "
        f"{np.percentile(ask['onnx'], 90)*1e3:.1f} ms | "
        f"{np.percentile(ask['onnx'], 90)/np.percentile(ask['torch'], 90):.2f}× |",
        f"| bare `encode([question])` p50 | {med(bare['torch'])*1e3:.1f} ms | "
        f"{med(bare['onnx'])*1e3:.1f} ms | "
        f"{med(bare['onnx'])/med(bare['torch']):.2f}× |",
        f"| ONNX `QA.ask` p50 / bare sentence-transformers encode p50 | | | "
        f"{med(ask['onnx'])/med(bare['torch']):.2f}× |",
        f"| embedding {len(texts)} SQuAD sentences, batches of 64 | "
        f"{med(throughput['torch']):.0f} /s | "
        f"{med(throughput['onnx']):.0f} /s | {med(throughput['onnx'])/med(throughput['torch']):.2f}× |",
        f"| resident memory, speech index + model, after 200 questions | "
        f"{memory['torch']['rss_mib']:.0f} MiB | "
        f"{memory['onnx']['rss_mib']:.0f} MiB | "
        f"{memory['onnx']['rss_mib'] / memory['torch']['rss_mib']:.2f}× |",
        f"| cold `speech-qa ask` (index and graph cached) vs `python -c \"import sentence_transformers\"` | "
        f"{med(cold['baseline']):.2f} s (the import alone) | {med(cold['cli']):.2f} s (the whole answer) | "
        f"{med(cold['cli'])/med(cold['baseline']):.2f}× |",
        "",
        f"Lowest cosine, ONNX vs torch vectors, over 200 of those sentences: {agreement:.6f}.",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
