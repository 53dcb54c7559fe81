"""``speech-qa index --workers 2``: embedding on a local Ray writes the index a local build writes.

The real model runs in both builds (the point is that the vectors agree); one Ray session.
"""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

# A plain import: `make test` installs the [cluster] extra, so this must run, never skip.
import ray

from qa import QA

EXTRA = {
    "harbour.md": "# Harbour notes\n\nThe Zorbland lighthouse was painted teal in 1887 by its keeper, "
                  "Ana Vell. It stands on the northern cliffs.\n\nThe harbour silted up in 1920.",
    "trees.txt": "Planting began in 1999. Forty thousand trees were planted along the river. "
                 "The survey of 2004 counted the survivors.",
}

VECTOR_FILES = {"passages.faiss", "sentences.faiss", "sentence_tokens.npy"}


def stable_manifest(folder: Path) -> dict[str, object]:
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    for stamp in ("created_at", "updated_at"):  # when, not what: differ between two builds
        manifest.pop(stamp, None)
    for entry in manifest.get("documents", []):
        entry.pop("added_at", None)
    manifest["files"] = {name: digest for name, digest in manifest["files"].items()
                         if name not in VECTOR_FILES}
    return manifest


def test_ray_build_writes_the_same_index_as_a_local_build(tmp_path: Path, speech_path: Path) -> None:
    from ui.cli import main

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in EXTRA.items():
        (corpus / name).write_text(text, encoding="utf-8")
    paths = [str(speech_path), str(corpus)]
    local_dir, ray_dir = tmp_path / "local", tmp_path / "ray"

    assert main(["index", *paths, "--index", str(local_dir)], out=io.StringIO()) == 0
    out = io.StringIO()
    assert main(["index", *paths, "--index", str(ray_dir), "--workers", "2"], out=out) == 0
    assert "Indexed 3 document(s)" in out.getvalue()
    assert not ray.is_initialized(), "the local Ray was left running"

    assert stable_manifest(ray_dir) == stable_manifest(local_dir)
    for name in ("documents.jsonl", "passages.jsonl", "sentences.jsonl", "sentence_token_offsets.npy"):
        assert (ray_dir / name).read_bytes() == (local_dir / name).read_bytes(), name
    local, remote = QA.load(local_dir), QA.load(ray_dir)
    np.testing.assert_allclose(remote.index.sentence_vectors, local.index.sentence_vectors, atol=1e-5)
    np.testing.assert_allclose(remote.index.passage_vectors, local.index.passage_vectors, atol=1e-5)
    assert remote.index.sentence_tokens is not None and local.index.sentence_tokens is not None
    # Token vectors are stored as float16: equal within a couple of its steps (~3e-5 here).
    np.testing.assert_allclose(remote.index.sentence_tokens, local.index.sentence_tokens, atol=2e-4)
    question = "When was the Zorbland lighthouse painted teal?"
    assert remote.ask(question).answer == local.ask(question).answer
    assert "1887" in (remote.ask(question).answer or "")


def test_workers_without_ray_say_how_to_install(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, speech_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    from ui.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)
    assert main(["index", str(speech_path), "--index", str(tmp_path / "x"), "--workers", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert "pip install 'speech-qa[cluster]'" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x").exists()
