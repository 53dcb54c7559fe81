"""Cost of ``speech-qa add``: one small file added to a 20,000-passage index, against
``speech-qa index`` of that file alone, side by side in one run.

    PYTHONPATH=$PWD .venv/bin/python bench/perf_update.py --passages 20000 --rounds 5

The large index is the build benchmark's corpus (``bench/perf_corpus.py``), built once
with the real model's vectors (through ``bench/embedcache.py``, so a re-run does not
re-embed 20k texts), or with ``--stand-in-vectors`` from a hashing bag-of-words encoder
that carries the real model's name and dimension (seconds instead of ~8 minutes of
model time; ``add`` never reads the vectors already indexed, so its cost does not depend
on them), and then copied for each round (the copy is not timed).  The small file is
embedded by the real model on both sides.  Each round
runs both commands as whole processes (import, model load, reading, embedding, writing),
alternating which goes first; the ratio of the medians is reported, with the bytes each
``add`` wrote against the size of the index it added to.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

SMALL = ("The Xinghai Bay tram depot opened in March 2026 beside the old ferry pier. "
         "It houses forty trams, two repair halls and a small museum of the city's transport. "
         "Visitors can ride a restored 1909 tram on the first Sunday of every month. "
         "The depot roof carries 1,200 solar panels that supply most of its power. "
         "A bicycle path links it to the harbour promenade.\n")


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


class StandInEncoder:
    """Hashing bag-of-words vectors under the real model's name and dimension."""

    def __init__(self) -> None:
        from index import MODEL_DIMENSION, MODEL_NAME

        self.name = MODEL_NAME
        self.dimension = MODEL_DIMENSION

    def encode(self, texts: list[str], *, batch_size: int = 64, show_progress: bool = False) -> Any:
        import hashlib

        import numpy as np

        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                vectors[row, int.from_bytes(hashlib.md5(word.encode()).digest()[:4], "little")
                        % self.dimension] += 1.0
        vectors[:, 0] += 1e-3
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def build_big(workdir: Path, passages: int, stand_in: bool) -> Path:
    """The large index (built once per work folder and kind of vectors)."""
    from embedcache import CachingEncoder
    from perf_corpus import make_corpus

    from index import CorpusIndex, default_encoder
    from ingest import load_documents

    big = workdir / ("big-stand-in" if stand_in else "big")
    if (big / "manifest.json").is_file():
        return big
    corpus = workdir / "squad_shuffled.txt"
    corpus.write_text(make_corpus(passages), encoding="utf-8")
    started = time.perf_counter()
    encoder = StandInEncoder() if stand_in else CachingEncoder(default_encoder())
    index = CorpusIndex.build(load_documents([corpus]), encoder)
    index.save(big)
    print(f"  built the large index in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return big


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ))
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {result.stderr[-2000:]}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--stand-in-vectors", action="store_true",
                        help="build the large index from hashing vectors (see the module docstring)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/speech-qa-perf/update"))
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    big = build_big(args.workdir, args.passages, args.stand_in_vectors)
    import json

    manifest = json.loads((big / "manifest.json").read_text(encoding="utf-8"))
    small = args.workdir / "tram_depot.txt"
    small.write_text(SMALL, encoding="utf-8")
    cli = [sys.executable, "-m", "ui.cli"]
    times: dict[str, list[float]] = {"index": [], "add": []}
    written: list[int] = []
    for round_number in range(args.rounds):
        fresh = args.workdir / f"fresh-{round_number}"
        grown = args.workdir / f"grown-{round_number}"
        shutil.rmtree(fresh, ignore_errors=True)
        shutil.rmtree(grown, ignore_errors=True)
        shutil.copytree(big, grown)
        before = folder_bytes(grown)
        for side in (("index", "add") if round_number % 2 == 0 else ("add", "index")):
            if side == "index":
                times["index"].append(timed([*cli, "index", str(small), "--index", str(fresh)]))
            else:
                times["add"].append(timed([*cli, "add", str(small), "--index", str(grown)]))
        written.append(folder_bytes(grown) - before)
        print(f"  round {round_number + 1}: index {times['index'][-1]:.2f} s, add {times['add'][-1]:.2f} s",
              file=sys.stderr)
        shutil.rmtree(fresh, ignore_errors=True)
        shutil.rmtree(grown, ignore_errors=True)
    # The same two operations in one process with the model already loaded (the work each
    # does beyond starting Python and loading the model, which dominates the CLI times).
    from index import add_to_index, build_and_save, default_encoder
    from ingest import read_collection

    encoder = default_encoder()
    documents = list(read_collection([small]).documents)
    encoder.encode(["warm up"])
    inner: dict[str, list[float]] = {"index": [], "add": []}
    for round_number in range(args.rounds * 2):
        fresh = args.workdir / f"inner-fresh-{round_number}"
        grown = args.workdir / f"inner-grown-{round_number}"
        shutil.copytree(big, grown)
        for side in (("index", "add") if round_number % 2 == 0 else ("add", "index")):
            started = time.perf_counter()
            if side == "index":
                build_and_save(documents, encoder, fresh)
            else:
                add_to_index(grown, documents, encoder)
            inner[side].append(time.perf_counter() - started)
        shutil.rmtree(fresh, ignore_errors=True)
        shutil.rmtree(grown, ignore_errors=True)
    index_median = statistics.median(times["index"])
    add_median = statistics.median(times["add"])
    counts = manifest["counts"]
    print(f"Large index: {counts['passages']} passages, {counts['sentences']} sentences, "
          f"{folder_bytes(big) / 2**20:.0f} MiB on disk, vector indexes "
          f"{ {k: v['kind'] for k, v in manifest['vector_indexes'].items()} } "
          f"({'stand-in' if args.stand_in_vectors else 'real-model'} vectors); small file "
          f"{len(SMALL.encode())} bytes ({args.rounds} rounds, sides alternating).\n")
    print("| side | median wall time | runs |\n|---|---|---|")
    print(f"| `speech-qa index tram_depot.txt --index NEW` (the file alone) | {index_median:.2f} s | "
          f"{', '.join(f'{t:.2f}' for t in times['index'])} |")
    print(f"| `speech-qa add tram_depot.txt --index BIG` | {add_median:.2f} s | "
          f"{', '.join(f'{t:.2f}' for t in times['add'])} |")
    print(f"\nRatio add / index alone: **{add_median / index_median:.3f}** (target <= 1.2). "
          f"Bytes written by each add: {statistics.median(written) / 1024:.1f} KiB "
          f"(the index: {folder_bytes(big) / 2**20:.0f} MiB).")
    inner_index, inner_add = statistics.median(inner["index"]), statistics.median(inner["add"])
    print(f"\nIn one process, model loaded, {len(inner['add'])} interleaved rounds: "
          f"`build_and_save` of the file alone {inner_index * 1000:.0f} ms, `add_to_index` of it to the "
          f"large index {inner_add * 1000:.0f} ms (medians; ratio {inner_add / inner_index:.3f}).")


if __name__ == "__main__":
    main()
