"""Ranking cost against corpus size: every sentence scored, or the candidate set (issue 5).

Why: a question's cost was one model call plus numpy work over every sentence; the second
part grows linearly with the collection.  ``qa.candidates`` restricts the ranking to
candidates above ``FULL_RANKING_MAX_SENTENCES`` sentences.  This benchmark measures, in one
run and interleaved question by question, both rankings of the same question vectors:

- ``real``: the build benchmark's index (``bench/perf.py build``: 44k sentences / 20k
  passages embedded by the real model) and the 473 SQuAD questions, embedded by the
  model: time per question, and whether the answers change (sent@1 / hit@3 against the
  SQuAD answers, and agreement of the first highlighted sentence);
- ``squad``: each small SQuAD article with the candidate ranking forced on, answers only;
- ``synthetic``: larger corpora (``--sizes`` passages, from ``bench/perf_corpus.py``)
  embedded by a bag-of-words hashing encoder (fast, and text-like: sentences sharing words
  are near each other), timing only.

Run by hand:

    .venv/bin/python bench/perf_ranking.py real --index /tmp/speech-qa-perf/build/index
    .venv/bin/python bench/perf_ranking.py synthetic --sizes 100000,500000
    .venv/bin/python bench/perf_ranking.py squad   # answers only, candidates forced
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from perf import OFFLINE_ENV, SQUAD, machine, ms, p95  # noqa: E402

EVERY_SENTENCE = 10**12
"""``full_ranking_max`` that makes the ranking score every sentence of any corpus."""


def time_both(index: Any, texts: Sequence[str], vectors: np.ndarray,
              tokens: Sequence[np.ndarray | None]) -> dict[str, Any]:
    """Rank each question both ways, alternating which goes first; answers and times."""
    from qa.ranking import RankingWeights, rank

    modes = {"every sentence": EVERY_SENTENCE, "candidates": 0}
    out: dict[str, Any] = {name: {"times": [], "answers": []} for name in modes}
    for limit in modes.values():  # warm-up: tables and lazily computed sentence facts
        rank(index, texts[0], vectors[0], 3, RankingWeights(), tokens[0], limit)
    for number, (text, vector, token) in enumerate(zip(texts, vectors, tokens, strict=True)):
        order = list(modes.items()) if number % 2 == 0 else list(modes.items())[::-1]
        for name, limit in order:
            start = time.perf_counter()
            answer = rank(index, text, vector, 3, RankingWeights(), token, limit)
            out[name]["times"].append(time.perf_counter() - start)
            out[name]["answers"].append(answer)
    return out


def bench_real(folder: Path) -> list[str]:
    """Both rankings on the build benchmark's real index with the SQuAD questions."""
    from index import CorpusIndex, default_encoder
    from qa.evaluation import evaluate, first_sentence, load_eval_file, summarise
    from qa.question import clean_question

    index = CorpusIndex.load(folder)
    questions = [q for s in load_eval_file(SQUAD) for q in s.questions]
    texts = [clean_question(q.question) for q in questions]
    vectors, tokens = default_encoder().encode_with_tokens(texts)
    runs = time_both(index, texts, vectors, tokens)
    lines = [f"Index: `{folder}` ({len(index.sentences):,} sentences, {len(index.passages):,} passages, "
             f"the real model's vectors; vector indexes `{index.manifest.get('vector_indexes')}`). "
             f"{len(texts)} SQuAD questions, embedded once; each ranked both ways, alternating which "
             "goes first. Times are the ranking only (the question's model call is the same for both).",
             "", "| ranking | median | p95 | sent@1 | hit@3 |", "|---|---|---|---|---|"]
    for name, run in runs.items():
        metrics = summarise(evaluate(run["answers"], questions))
        lines.append(f"| {name} | {ms(statistics.median(run['times']))} | {ms(p95(run['times']))} | "
                     f"{metrics.sent_at_1:.3f} | {metrics.hit_at_3:.3f} |")
    same = sum(first_sentence(a) == first_sentence(b)
               for a, b in zip(runs["every sentence"]["answers"], runs["candidates"]["answers"], strict=True))
    full, candidates = runs["every sentence"]["times"], runs["candidates"]["times"]
    ratio = statistics.median(full) / statistics.median(candidates)
    lines += ["", f"Same first highlighted sentence: {same} of {len(texts)}. "
              f"Candidate ranking is {ratio:.1f}x faster at this size."]
    return lines


def bench_squad() -> list[str]:
    """Both rankings on each small SQuAD article, the candidate ranking forced (answers only)."""
    from index import CorpusIndex, default_encoder
    from ingest import ChunkingParams
    from qa.evaluation import evaluate, first_sentence, load_eval_file, summarise
    from qa.question import clean_question
    from qa.ranking import RankingWeights, rank

    encoder = default_encoder()
    runs: dict[str, list[Any]] = {"every sentence": [], "candidates (forced)": []}
    questions: list[Any] = []
    for article in load_eval_file(SQUAD):
        index = CorpusIndex.build(list(article.documents or ()), encoder, ChunkingParams())
        texts = [clean_question(q.question) for q in article.questions]
        vectors, tokens = encoder.encode_with_tokens(texts)
        questions += article.questions
        for text, vector, token in zip(texts, vectors, tokens, strict=True):
            for name, limit in (("every sentence", EVERY_SENTENCE), ("candidates (forced)", 0)):
                runs[name].append(rank(index, text, vector, 3, RankingWeights(), token, limit,
                                            keep_highlights=True))
    lines = ["Each SQuAD article indexed alone (116-208 sentences, late interaction on), the shipped "
             "weights, the same question vectors; the candidate ranking forced (`full_ranking_max=0`).",
             "",
             "| ranking | sent@1 | hit@3 |", "|---|---|---|"]
    for name, answers in runs.items():
        metrics = summarise(evaluate(answers, questions))
        lines.append(f"| {name} | {metrics.sent_at_1:.3f} | {metrics.hit_at_3:.3f} |")
    same = sum(first_sentence(a) == first_sentence(b) for a, b in zip(*runs.values(), strict=True))
    return [*lines, "", f"Same first highlighted sentence: {same} of {len(questions)}."]


class HashingEncoder:
    """Bag-of-words vectors: each word a fixed random direction (timing stand-in for the model).

    Why: embedding a million sentences with the real model takes hours on 2 cores; the
    ranking's cost does not depend on what the vectors mean, only that neighbourhoods
    exist (sentences sharing words are near each other, as with the model).
    """

    name = "bench-hashing-encoder"
    dimension = 384

    def __init__(self) -> None:
        self._words: dict[str, np.ndarray] = {}

    def _word(self, word: str) -> np.ndarray:
        vector = self._words.get(word)
        if vector is None:
            seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
            vector = np.random.default_rng(seed).standard_normal(self.dimension).astype(np.float32)
            self._words[word] = vector
        return vector

    def encode(self, texts: list[str], *, batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                out[row] += self._word(word.strip(".,;:!?\"'()"))
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-6)


def bench_synthetic(sizes: Sequence[int], count: int) -> list[str]:
    """Both rankings on generated corpora of ``sizes`` passages (hashing vectors)."""
    from perf import squad_questions
    from perf_corpus import make_corpus

    from index import CorpusIndex
    from ingest import Document
    from qa.question import clean_question

    encoder = HashingEncoder()
    texts = [clean_question(q) for q in squad_questions(count)]
    vectors = encoder.encode(texts)
    lines = [f"Generated corpora (`bench/perf_corpus.py`), embedded by a 384-d bag-of-words hashing "
             f"encoder; {count} SQuAD questions embedded the same way; ranking time only.", "",
             "| passages | sentences | build | vector indexes | every sentence: median | p95 "
             "| candidates: median | p95 | speed-up |", "|---|---|---|---|---|---|---|---|---|"]
    for size in sizes:
        document = Document("synthetic", f"synthetic-{size}.txt", make_corpus(size))
        start = time.perf_counter()
        index = CorpusIndex.build([document], encoder)  # type: ignore[arg-type]
        build = time.perf_counter() - start
        runs = time_both(index, texts, vectors, [None] * len(texts))
        full, candidates = runs["every sentence"]["times"], runs["candidates"]["times"]
        kinds = {name: info.get("kind") for name, info in index.manifest.get("vector_indexes", {}).items()}
        lines.append(f"| {len(index.passages):,} | {len(index.sentences):,} | {build:.0f} s | {kinds} | "
                     f"{ms(statistics.median(full))} | {ms(p95(full))} | {ms(statistics.median(candidates))} "
                     f"| {ms(p95(candidates))} "
                     f"| {statistics.median(full) / statistics.median(candidates):.1f}x |")
        print(lines[-1], file=sys.stderr, flush=True)
        del index
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    """Print a Markdown section for ``bench/RESULTS.md``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", choices=["real", "synthetic", "squad"])
    parser.add_argument("--index", type=Path, default=Path("/tmp/speech-qa-perf/build/index"),
                        help="index built by `bench/perf.py build`")
    parser.add_argument("--sizes", default="100000,500000", help="passages per generated corpus")
    parser.add_argument("--questions", type=int, default=200)
    args = parser.parse_args(argv)
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    header = [f"Machine: {machine()}", ""]
    if args.which == "real":
        if not (args.index / "manifest.json").is_file():
            sys.exit(f"{args.index}: no index; run `bench/perf.py build` first (it leaves one there)")
        body = bench_real(args.index)
        command = f"bench/perf_ranking.py real --index {args.index}"
    elif args.which == "squad":
        body = bench_squad()
        command = "bench/perf_ranking.py squad"
    else:
        body = bench_synthetic([int(s) for s in args.sizes.split(",")], args.questions)
        command = f"bench/perf_ranking.py synthetic --sizes {args.sizes} --questions {args.questions}"
    print("\n".join(["### 5b. Ranking at scale", "", *header, f"Command: `{command}`", "", *body, ""]))


if __name__ == "__main__":
    main()
