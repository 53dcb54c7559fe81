"""What the reranker costs a warm ``ask()``: with and without it, alternating, in one process.

Run from the repository root::

    .venv/bin/python bench/perf_rerank.py            # prints the medians (ms) and the ratio

Each round asks every question of ``bench/data/speech_paraphrases.json`` once of two engines
over the same speech index (the answer cache is off: every ask is computed), one with the
shipped reranker and one without; rounds alternate which goes first, so the machine's noise
falls on both alike.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from index.reranker import default_reranker
from qa import QA

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    questions = [item["question"] for item in
                 json.loads((HERE / "data" / "speech_paraphrases.json").read_text(encoding="utf-8"))]
    with_model = QA.default()
    with_model._cache_size = 0  # every ask computed
    without = QA(lambda: with_model.index, reranker=False, cache_size=0)
    with_model.warm_up()
    without.warm_up()
    reranker = default_reranker()
    assert reranker is not None and with_model.reranker is reranker
    times: dict[str, list[float]] = {"with": [], "without": []}
    for number in range(args.rounds):
        order = [("with", with_model), ("without", without)]
        for name, engine in order if number % 2 == 0 else order[::-1]:
            for question in questions:
                started = time.perf_counter()
                engine.ask(question)
                times[name].append((time.perf_counter() - started) * 1000)
    with_ms, without_ms = statistics.median(times["with"]), statistics.median(times["without"])
    print(f"warm ask() p50 over {len(times['with'])} asks: with the reranker {with_ms:.1f} ms, "
          f"without {without_ms:.1f} ms: +{with_ms - without_ms:.1f} ms ({with_ms / without_ms:.2f}x); "
          f"{with_model.rerank_weights.candidates} sentences reranked per question")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
