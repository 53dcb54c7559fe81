"""No code path deserialises pickle: an index or upload someone hands us can never run code.

Three proofs, because each alone has a gap:

1. static: the project's packages (and bench scripts) never import pickle, joblib, dill,
   cloudpickle, shelve or marshal, never call ``torch.load``, ``pandas.read_pickle`` or
   ``numpy.load`` without ``allow_pickle=False``-by-default, and never pass
   ``allow_pickle=True``;
2. runtime: a fresh process where every unpickler (pickle, _pickle, torch.load) raises
   loads the real model, builds, saves, loads and queries an index, and reads uploads;
3. planted payloads: an index directory holding a pickle that would create a marker
   directory when unpickled (as a stray ``.pkl`` and as a re-signed ``.npy`` object array)
   loads or is refused, and the marker never appears.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import io
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from index import CorpusIndex, IndexLoadError
from ingest import Document

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["ingest", "index", "qa", "ui", "bench"]
FORBIDDEN_MODULES = {"pickle", "cPickle", "_pickle", "joblib", "dill", "cloudpickle", "shelve", "marshal"}
FORBIDDEN_CALLS = {"torch.load", "pd.read_pickle", "pandas.read_pickle", "read_pickle"}


def project_files() -> list[Path]:
    files = [path for package in PACKAGES if (ROOT / package).is_dir()
             for path in sorted((ROOT / package).rglob("*.py"))]
    assert len(files) > 15, "the scan must see the project's modules"
    return files


def dotted(node: ast.AST) -> str:
    """``a.b.c`` for a Name/Attribute chain, '' otherwise."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted(node.value)
        return f"{base}.{node.attr}" if base else ""
    return ""


def pickle_uses(path: Path) -> list[str]:
    """Every pickle-capable import or call in one source file, as 'file:line: what'."""
    found = []
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        where = f"{shown}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            found += [f"{where}: import {a.name}" for a in node.names
                      if a.name.split(".")[0] in FORBIDDEN_MODULES]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in FORBIDDEN_MODULES:
            found.append(f"{where}: from {node.module} import ...")
        elif isinstance(node, ast.Call):
            name = dotted(node.func)
            if name in FORBIDDEN_CALLS or name.endswith((".torch.load", "read_pickle")):
                found.append(f"{where}: {name}()")
            for keyword in node.keywords:
                if keyword.arg == "allow_pickle" and not (
                        isinstance(keyword.value, ast.Constant) and keyword.value.value is False):
                    found.append(f"{where}: {name}(allow_pickle={ast.unparse(keyword.value)})")
            if name in {"np.load", "numpy.load"} and not any(k.arg == "allow_pickle" for k in node.keywords):
                found.append(f"{where}: {name}() without an explicit allow_pickle=False")
    return found


def test_scanner_catches_what_it_should(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import pickle\nfrom joblib import load\nimport numpy as np\nimport torch\n"
                      "np.load('x')\nnp.load('y', allow_pickle=True)\ntorch.load('z')\n", encoding="utf-8")
    hits = pickle_uses(sample)
    assert len(hits) == 5, hits


def test_project_never_uses_pickle() -> None:
    hits = [hit for path in project_files() for hit in pickle_uses(path)]
    assert hits == [], "pickle-capable code in the project:\n" + "\n".join(hits)


# ---------------------------------------------------------------------------- runtime
_NO_UNPICKLING = r"""
import os, sys, tempfile
import pickle, _pickle

def refuse(*args, **kwargs):
    raise AssertionError("something tried to unpickle")

class Refused:
    def __init__(self, *args, **kwargs):
        refuse()

for module in (pickle, _pickle):
    module.load = module.loads = refuse
    module.Unpickler = Refused
import torch
torch.load = refuse

from pathlib import Path
from index import CorpusIndex, default_encoder
from ingest import default_documents, document_from_bytes, load_documents
from qa import QA

work = Path(tempfile.mkdtemp())
(work / "notes.html").write_text("<p>The lighthouse was painted teal in 1887.</p>", encoding="utf-8")
encoder = default_encoder()
documents = default_documents() + load_documents([work / "notes.html"])
documents.append(document_from_bytes("upload.txt", b"Uploads are read without pickle."))
CorpusIndex.build(documents, encoder).save(work / "idx")
engine = QA.load(work / "idx")
answer = engine.ask("When was the lighthouse painted?")
assert "1887" in (answer.answer or ""), answer
print("ok", answer.answer)
"""


def test_whole_product_runs_with_every_unpickler_disabled() -> None:
    """Model load, ingest, build, save, load and ask: none of it touches an unpickler."""
    completed = subprocess.run([sys.executable, "-c", _NO_UNPICKLING], capture_output=True, text=True,
                               timeout=300, cwd=ROOT, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.startswith("ok ")


# ---------------------------------------------------------------------------- planted payloads
class Payload:
    """Unpickling this creates the directory ``marker``: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.mkdir, (str(self.marker),)


@pytest.fixture
def index_dir(tmp_path: Path) -> Path:
    from conftest import FakeEncoder

    folder = tmp_path / "idx"
    CorpusIndex.build([Document("a.txt", "a.txt", "Owls hunt at night. Bees make honey.")],
                      FakeEncoder()).save(folder)
    return folder


def test_payload_is_really_malicious(tmp_path: Path) -> None:
    """The control: unpickling the payload does run code (so its absence below means something)."""
    marker = tmp_path / "pwned"
    pickle.loads(pickle.dumps(Payload(marker)))  # the one deliberate unpickle, of our own bytes
    assert marker.is_dir()


def test_stray_pickle_files_in_an_index_are_ignored(index_dir: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    for name in ("index.pkl", "passages.pkl", "model.joblib", "bm25_sentences/params.pkl"):
        (index_dir / name).write_bytes(pickle.dumps(Payload(marker)))
    torch_like = io.BytesIO()
    np.save(torch_like, np.array([Payload(marker)], dtype=object), allow_pickle=True)
    (index_dir / "vectors.npy").write_bytes(torch_like.getvalue())
    CorpusIndex.load(index_dir)
    assert not marker.exists()


def test_object_array_payload_in_bm25_is_refused(index_dir: Path, tmp_path: Path) -> None:
    """A re-signed index whose BM25 array is a pickled object array: refused, nothing runs."""
    marker = tmp_path / "pwned"
    folder = index_dir / "bm25_sentences"
    arrays = sorted(p for p in folder.iterdir() if p.suffix == ".npy")
    assert arrays
    for path in arrays:
        buffer = io.BytesIO()
        np.save(buffer, np.array([Payload(marker), 1], dtype=object), allow_pickle=True)
        path.write_bytes(buffer.getvalue())
    manifest = json.loads((index_dir / "manifest.json").read_text(encoding="utf-8"))
    manifest["files"] = {name: hashlib.sha256((index_dir / name).read_bytes()).hexdigest()
                         for name in manifest["files"]}
    (index_dir / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(IndexLoadError, match="bm25_sentences"):
        CorpusIndex.load(index_dir)
    assert not marker.exists()


def test_pickle_named_as_an_upload_is_just_refused(tmp_path: Path) -> None:
    from ingest import IngestError, document_from_bytes

    marker = tmp_path / "pwned"
    payload = pickle.dumps(Payload(marker))
    for name in ("evil.txt", "evil.pdf", "evil.docx", "evil.pkl"):
        with contextlib.suppress(IngestError):
            document_from_bytes(name, payload)
    assert not marker.exists()
