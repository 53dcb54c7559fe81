"""Generate the large build-benchmark corpus from the bundled SQuAD articles.

Why generated: the issue asks for a >= 20k-passage build, and the repository ships only
three SQuAD articles (licence in ``bench/data/LICENSE.md``).  Repeating them verbatim
would make every passage a duplicate that ``CorpusIndex.build`` embeds once, hiding the
model's real cost; so each repetition shuffles every article's sentences and regroups
them into new paragraphs.  Passages (windows of consecutive sentences) are then almost
all distinct texts, while sentences repeat (as they do across revisions of real
documents) and are embedded once each.  Deterministic for a given seed.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from ingest import ChunkingParams, make_passages, split_sentences

SQUAD = Path(__file__).resolve().parents[2] / "shared" / "bench" / "squad2_dev_3articles.json"  # public


def article_sentences(path: Path = SQUAD) -> list[list[str]]:
    """Sentences of each SQuAD article (blingfire, as the index splits them)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    articles = []
    for article in data["data"]:
        sentences: list[str] = []
        for paragraph in article["paragraphs"]:
            text = paragraph["context"]
            sentences.extend(text[s.start:s.end] for s in split_sentences(text))
        articles.append(sentences)
    return articles


def make_corpus(min_passages: int, seed: int = 0) -> str:
    """Text with at least ``min_passages`` passages under the default chunking.

    Args:
        min_passages: Stop once the text splits into this many passages.
        seed: Random seed (the same seed gives the same text).

    Returns:
        Paragraphs separated by blank lines, as a ``.txt`` document.
    """
    rng = random.Random(seed)
    articles = article_sentences()
    params = ChunkingParams()
    paragraphs: list[str] = []
    passages = 0
    while passages < min_passages:
        for sentences in rng.sample(articles, len(articles)):
            pool = sentences[:]
            rng.shuffle(pool)
            cursor = 0
            while cursor < len(pool):
                size = rng.randint(3, 8)
                paragraph = " ".join(pool[cursor: cursor + size])
                cursor += size
                paragraphs.append(paragraph)
                passages += len(make_passages(split_sentences(paragraph), params))
    return "\n\n".join(paragraphs) + "\n"


def main() -> None:
    """Write the corpus to a file: ``python bench/perf_corpus.py OUT.txt --passages 20000``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--passages", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.write_text(make_corpus(args.passages, args.seed), encoding="utf-8")


if __name__ == "__main__":
    main()
