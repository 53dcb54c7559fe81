"""Where the public benchmark and training data live: ``../shared`` beside the checkout.

Why not in the repository: SQuAD 2.0 and XQuAD are public data under CC BY-SA 4.0; the
project keeps only the question sets it wrote itself. Benchmarks and the training script
take the paths as arguments and default to these; when the files are missing they say
where the public files come from.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SQUAD_3_ARTICLES = SHARED / "bench" / "squad2_dev_3articles.json"
XQUAD_EN = SHARED / "train" / "xquad.en.json"
WHERE_FROM = {
    "squad": "three articles (Normans, Computational_complexity_theory, Southern_California) of the "
             "SQuAD 2.0 dev set (dev-v2.0.json from rajpurkar.github.io/SQuAD-explorer, CC BY-SA 4.0)",
    "xquad": "XQuAD's English file xquad.en.json (github.com/google-deepmind/xquad, CC BY-SA 4.0)",
}


def require(path: Path, kind: str) -> Path:
    """``path`` if it exists; otherwise exit with a message saying what it is and where it comes from."""
    if not path.is_file():
        sys.exit(f"missing {path}: expected {WHERE_FROM[kind]}; pass its path as an argument")
    return path
