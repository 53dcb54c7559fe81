"""Hostile index directories: refused with one clear message naming the file at fault.

Users hand ``speech-qa ask --index`` and ``serve --index`` directories from anywhere, so a
crafted one must not crash the process, exhaust memory or run code.  Most tampering below
re-signs the manifest (``resign``): checksums only catch accidents, and an attacker writes
matching ones, so every deeper check must hold on its own.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from index import CorpusIndex, IndexLoadError
from index.store import FORMAT_VERSION, MANIFEST
from ingest import Document
from ui.cli import main

ROOT = Path(__file__).resolve().parents[1]
TEXT = ("Dalian won the Global 500 award in 2001. Kitakyushu helped with the harbour. "
        "The model zone was proposed later.\n\nA second paragraph mentions trees. And birds.")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory, ) -> Path:
    from conftest import FakeEncoder

    folder = tmp_path_factory.mktemp("pristine") / "idx"
    CorpusIndex.build([Document("a.txt", "a.txt", TEXT), Document("ü.txt", "ü.txt", TEXT[::-1])],
                      FakeEncoder()).save(folder)
    return folder


@pytest.fixture
def index_dir(tmp_path: Path, pristine: Path) -> Path:
    """A private copy of a valid index, to be tampered with."""
    folder = tmp_path / "idx"
    shutil.copytree(pristine, folder)
    return folder


def manifest_of(folder: Path) -> dict[str, Any]:
    return dict(json.loads((folder / MANIFEST).read_text(encoding="utf-8")))


def write_manifest(folder: Path, manifest: Any) -> None:
    (folder / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")


def resign(folder: Path) -> None:
    """Recompute the manifest's checksums, as a deliberate forger would."""
    manifest = manifest_of(folder)
    manifest["files"] = {
        name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
        for name in manifest["files"] if (folder / name).is_file()
    }
    write_manifest(folder, manifest)


def refused(folder: Path, culprit: str, *phrases: str, expected_model: str | None = None) -> str:
    """Loading fails with an ``IndexLoadError`` whose one-line message names ``culprit``."""
    with pytest.raises(IndexLoadError) as caught:
        CorpusIndex.load(folder, expected_model=expected_model)
    message = str(caught.value)
    assert str(folder / culprit) in message or (culprit == "" and str(folder) in message), message
    assert "\n" not in message
    for phrase in phrases:
        assert phrase in message, message
    return message


def forbid_faiss_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``faiss.read_index`` fail the test: a hostile file must be refused before it."""
    import faiss

    def no_faiss(*args: object, **kwargs: object) -> None:
        raise AssertionError("faiss.read_index was reached with a hostile file")

    monkeypatch.setattr(faiss, "read_index", no_faiss)


def rebuild_sentence_table(folder: Path, **options: Any) -> dict[str, Any]:
    """Rebuild ``folder``'s sentence table with ``build_vector_index(**options)``, re-signed."""
    import faiss

    from index.vectors import all_vectors, build_vector_index

    path = folder / "sentences.faiss"
    vectors = np.array(all_vectors(faiss.read_index(str(path))))
    table, info = build_vector_index(vectors, **options)
    faiss.write_index(table, str(path))
    resign(folder)
    return info


def test_pristine_copy_loads(index_dir: Path) -> None:
    assert len(CorpusIndex.load(index_dir).documents) == 2


# ---------------------------------------------------------------------------- manifest
def test_manifest_from_another_model(index_dir: Path) -> None:
    manifest = manifest_of(index_dir)
    manifest["model"]["name"] = "someone/else-mpnet"
    write_manifest(index_dir, manifest)
    refused(index_dir, MANIFEST, "someone/else-mpnet", "sentence-transformers/all-MiniLM-L6-v2",
            "rebuild", expected_model="sentence-transformers/all-MiniLM-L6-v2")


def test_manifest_with_another_dimension(index_dir: Path) -> None:
    manifest = manifest_of(index_dir)
    manifest["model"]["dimension"] = 384
    write_manifest(index_dir, manifest)
    refused(index_dir, "sentences.faiss", "dimension")


@pytest.mark.parametrize("version", [FORMAT_VERSION + 1, 0, "1", None])
def test_manifest_from_another_format_version(index_dir: Path, version: Any) -> None:
    manifest = manifest_of(index_dir)
    manifest["format_version"] = version
    write_manifest(index_dir, manifest)
    refused(index_dir, MANIFEST, "format version")


@pytest.mark.parametrize("content", [
    b'{"hello": "world"}', b"[1, 2, 3]", b'"speech-qa-index"', b"null", b"{", b"\xff\xfe\x00garbage",
    b"", b'{"format": "speech-qa-index", "format_version": 1}',
    b"[" * 100_000 + b"]" * 100_000,
])
def test_manifest_that_is_not_ours(index_dir: Path, content: bytes) -> None:
    (index_dir / MANIFEST).write_bytes(content)
    refused(index_dir, MANIFEST)


def test_manifest_naming_files_outside_the_index(index_dir: Path) -> None:
    manifest = manifest_of(index_dir)
    manifest["files"]["../../etc/passwd"] = "0" * 64
    write_manifest(index_dir, manifest)
    refused(index_dir, MANIFEST, "outside the index")


def test_manifest_missing(index_dir: Path) -> None:
    (index_dir / MANIFEST).unlink()
    refused(index_dir, MANIFEST, "not a speech-qa index")


def test_not_a_directory(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    refused(tmp_path / "file", "", "no index directory")


# ---------------------------------------------------------------------------- FAISS files
def test_truncated_faiss_file_fails_its_checksum(index_dir: Path) -> None:
    path = index_dir / "passages.faiss"
    path.write_bytes(path.read_bytes()[:-100])
    refused(index_dir, "passages.faiss", "checksum")


@pytest.mark.parametrize("keep", [0, 3, 20, 44, 60, -1])
def test_truncated_faiss_file_with_forged_checksum(index_dir: Path, keep: int) -> None:
    path = index_dir / "sentences.faiss"
    data = path.read_bytes()
    path.write_bytes(data[:keep] if keep >= 0 else data[:-1])
    resign(index_dir)
    refused(index_dir, "sentences.faiss", "FAISS")


def test_faiss_files_swapped(index_dir: Path) -> None:
    sentences, passages = index_dir / "sentences.faiss", index_dir / "passages.faiss"
    data = sentences.read_bytes()
    sentences.write_bytes(passages.read_bytes())
    passages.write_bytes(data)
    resign(index_dir)
    refused(index_dir, "sentences.faiss", "vectors")


@pytest.mark.parametrize("claim", [2**30, 2**38, 2**62])
def test_faiss_file_claiming_a_huge_vector_is_refused_before_allocating(
        index_dir: Path, claim: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """365 bytes that claim gigabytes: FAISS would zero-fill the claim before failing."""
    path = index_dir / "sentences.faiss"
    data = bytearray(path.read_bytes())
    struct.pack_into("<Q", data, 37, claim)  # the vector-length field after the flat header
    path.write_bytes(bytes(data))
    resign(index_dir)

    forbid_faiss_read(monkeypatch)
    refused(index_dir, "sentences.faiss", "past the end of the file")


def test_faiss_file_of_another_kind_is_refused(index_dir: Path) -> None:
    import faiss

    other = faiss.IndexLSH(64, 16)
    other.add(np.zeros((3, 64), dtype=np.float32))
    faiss.write_index(other, str(index_dir / "passages.faiss"))
    resign(index_dir)
    refused(index_dir, "passages.faiss", "not one speech-qa writes")


@pytest.fixture
def ivf_dir(index_dir: Path) -> Path:
    """The sentence table rebuilt as the ``ivf`` kind (what a table above the threshold gets)."""
    assert rebuild_sentence_table(index_dir, threshold=1)["kind"] == "ivf"
    return index_dir


def test_ivf_table_loads(ivf_dir: Path) -> None:
    import faiss

    loaded = CorpusIndex.load(ivf_dir)
    assert isinstance(faiss.downcast_index(loaded.sentence_index), faiss.IndexRefineFlat)
    assert not loaded.sentence_vectors.flags.owndata  # still a view of the refine rows


@pytest.mark.parametrize("tamper", ["inflate-list", "truncate", "foreign-base"])
def test_ivf_table_tampered_is_refused_before_faiss_reads_it(
        ivf_dir: Path, tamper: str, monkeypatch: pytest.MonkeyPatch) -> None:

    path = ivf_dir / "sentences.faiss"
    data = bytearray(path.read_bytes())
    if tamper == "inflate-list":
        struct.pack_into("<Q", data, data.index(b"ilar") + 32, 2**40)  # the first list's size
    elif tamper == "truncate":
        del data[len(data) // 2:]
    else:
        data[41:45] = b"IwPQ"  # the refined index claims to be IVF-PQ
    path.write_bytes(bytes(data))
    resign(ivf_dir)

    forbid_faiss_read(monkeypatch)
    refused(ivf_dir, "sentences.faiss", "FAISS")


@pytest.fixture
def scan_dir(index_dir: Path) -> Path:
    """The sentence table rebuilt as the ``scan`` kind (what a table above the threshold gets
    when IVF misses its target recall: here forced by an unreachable IVF target)."""
    from index.vectors import IVFParams

    info = rebuild_sentence_table(index_dir, threshold=1, ivf=IVFParams(target_recall=1.01))
    assert info["kind"] == "scan" and info["codec"] == "fp16"
    return index_dir


def test_scan_table_loads(scan_dir: Path) -> None:
    import faiss

    loaded = CorpusIndex.load(scan_dir)
    concrete = faiss.downcast_index(loaded.sentence_index)
    assert isinstance(concrete, faiss.IndexRefineFlat)
    assert isinstance(faiss.downcast_index(concrete.base_index), faiss.IndexScalarQuantizer)
    assert not loaded.sentence_vectors.flags.owndata  # still a view of the refine rows


@pytest.mark.parametrize(("tamper", "phrase"), [
    ("inflate-codes", "scanned codes (1099511627776 items) runs past the end"),
    ("truncate", "past the end"), ("sq8-qtype", "speech-qa writes fp16 codes"),
])
def test_scan_table_tampered_is_refused_before_faiss_reads_it(
        scan_dir: Path, tamper: str, phrase: str, monkeypatch: pytest.MonkeyPatch) -> None:

    path = scan_dir / "sentences.faiss"
    data = bytearray(path.read_bytes())
    sq_at = data.index(b"IxSQ") + 4 + 33  # the quantizer: qtype, rangestat, its argument, d, code size
    if tamper == "inflate-codes":
        struct.pack_into("<Q", data, sq_at + 28 + 8, 2**40)  # after the (empty) trained values
    elif tamper == "truncate":
        del data[len(data) // 2:]
    else:
        struct.pack_into("<i", data, sq_at, 0)  # the fp16 codes relabelled as 8-bit ones
    path.write_bytes(bytes(data))
    resign(scan_dir)

    forbid_faiss_read(monkeypatch)
    refused(scan_dir, "sentences.faiss", "FAISS", phrase)


# ---------------------------------------------------------------------------- tables
def drop_last_line(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[:-1]), encoding="utf-8")


@pytest.mark.parametrize("table", ["documents.jsonl", "sentences.jsonl", "passages.jsonl"])
def test_table_with_the_wrong_row_count(index_dir: Path, table: str) -> None:
    drop_last_line(index_dir / table)
    resign(index_dir)
    refused(index_dir, table, "rows, manifest says")


def test_manifest_counts_disagree_with_the_tables(index_dir: Path) -> None:
    manifest = manifest_of(index_dir)
    manifest["counts"]["sentences"] += 1
    write_manifest(index_dir, manifest)
    refused(index_dir, "sentences.jsonl", "rows, manifest says")


BAD_ROWS: list[tuple[str, Callable[[dict[str, Any]], Any]]] = [
    ("sentences.jsonl", lambda row: dict(row, doc="0")),
    ("sentences.jsonl", lambda row: dict(row, start=1.5)),
    ("sentences.jsonl", lambda row: dict(row, end=True)),
    ("sentences.jsonl", lambda row: dict(row, start=None)),
    ("sentences.jsonl", lambda row: {k: v for k, v in row.items() if k != "end"}),
    ("sentences.jsonl", lambda row: dict(row, extra=1)),
    ("sentences.jsonl", lambda row: [1, 2, 3]),
    ("sentences.jsonl", lambda row: dict(row, end=10**9)),
    ("sentences.jsonl", lambda row: dict(row, doc=-1)),
    ("passages.jsonl", lambda row: dict(row, first="x")),
    ("passages.jsonl", lambda row: dict(row, last=10**6)),
    ("documents.jsonl", lambda row: {k: v for k, v in row.items() if k != "text"}),
    ("documents.jsonl", lambda row: dict(row, text=["not", "text"])),
    ("documents.jsonl", lambda row: dict(row, doc_id={"a": 1})),
]


@pytest.mark.parametrize(("table", "mangle"), BAD_ROWS)
def test_table_rows_of_the_wrong_shape(index_dir: Path, table: str,
                                       mangle: Callable[[dict[str, Any]], Any]) -> None:
    path = index_dir / table
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    rows[0] = mangle(rows[0])
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    resign(index_dir)
    refused(index_dir, table)


@pytest.mark.parametrize("line", [b"{not json", b"\xff\xfe", b"[" * 50_000])
def test_table_line_that_is_not_json(index_dir: Path, line: bytes) -> None:
    path = index_dir / "passages.jsonl"
    path.write_bytes(line + b"\n" + path.read_bytes())
    resign(index_dir)
    refused(index_dir, "passages.jsonl")


# ---------------------------------------------------------------------------- BM25 files
def bm25_files(folder: Path) -> list[Path]:
    return sorted(p for p in (folder / "bm25_sentences").iterdir() if p.is_file())


def test_bm25_json_that_is_not_ours(index_dir: Path) -> None:
    for path in bm25_files(index_dir):
        if path.suffix == ".json":
            path.write_text('{"totally": ["different"]}', encoding="utf-8")
    resign(index_dir)
    refused(index_dir, "bm25_sentences")


def test_bm25_array_replaced_by_an_object_array(index_dir: Path) -> None:
    """An .npy holding pickled objects is refused (allow_pickle=False), never unpickled."""
    target = next(p for p in bm25_files(index_dir) if p.suffix == ".npy")
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    target.write_bytes(buffer.getvalue())
    resign(index_dir)
    refused(index_dir, "bm25_sentences")


@pytest.mark.parametrize("mangle", ["truncate", "huge-shape", "wrong-dtype"])
def test_bm25_array_corrupted(index_dir: Path, mangle: str) -> None:
    target = next(p for p in bm25_files(index_dir) if p.suffix == ".npy")
    if mangle == "truncate":
        target.write_bytes(target.read_bytes()[:-7])
    elif mangle == "huge-shape":
        buffer = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            buffer, {"descr": "<f4", "fortran_order": False, "shape": (2**40,)})
        target.write_bytes(buffer.getvalue() + b"\0" * 64)
    else:
        buffer = io.BytesIO()
        np.save(buffer, np.array(["a", "b"]))
        target.write_bytes(buffer.getvalue())
    resign(index_dir)
    refused(index_dir, "bm25_sentences")


# ---------------------------------------------------------------------------- through the CLI
def test_cli_names_the_file_in_one_line(index_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The fake-encoder index is 'another model' for the real CLI: exit 2, one clear line."""
    code = main(["ask", "When was the award?", "--index", str(index_dir)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("speech-qa: error: ")
    assert str(index_dir / MANIFEST) in err and "rebuild" in err


def test_hostile_index_does_not_crash_a_separate_process(index_dir: Path) -> None:
    """A forged truncated FAISS file in a real ``speech-qa ask`` process: exit 2, no traceback."""
    manifest = manifest_of(index_dir)
    manifest["model"]["name"] = "sentence-transformers/all-MiniLM-L6-v2"
    write_manifest(index_dir, manifest)
    path = index_dir / "passages.faiss"
    path.write_bytes(path.read_bytes()[:50])
    resign(index_dir)
    completed = subprocess.run([sys.executable, "-m", "ui.cli", "ask", "What?", "--index", str(index_dir)],
                               capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert completed.returncode == 2, completed.stderr
    assert "Traceback" not in completed.stderr
    assert str(path) in completed.stderr


# ---------------------------------------------------------------------------- format 2: word counts, segments
def save_array(path: Path, array: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    path.write_bytes(buffer.getvalue())


@pytest.mark.parametrize(("name", "make", "phrase"), [
    ("vocab.json", lambda v, t, c, o: json.dumps(["same", "same"]), "lists a word twice"),
    ("vocab.json", lambda v, t, c, o: json.dumps({"a": 1}), "not a JSON list of words"),
    ("terms.npy", lambda v, t, c, o: t + len(v), "outside the"),
    ("terms.npy", lambda v, t, c, o: t.astype(np.int64), "expected a 1-d int32 array"),
    ("counts.npy", lambda v, t, c, o: c * 0, "counts must be at least 1"),
    ("counts.npy", lambda v, t, c, o: c[:-1], "counts for"),
    ("offsets.npy", lambda v, t, c, o: o[::-1].copy(), "offsets do not cover"),
    ("offsets.npy", lambda v, t, c, o: o[:-1], "offsets, found"),
])
def test_word_counts_tampered(index_dir: Path, name: str, make: Callable[..., Any], phrase: str) -> None:
    folder = index_dir / "bm25_sentences"
    vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    arrays = [np.load(folder / f, allow_pickle=False) for f in ("terms.npy", "counts.npy", "offsets.npy")]
    value = make(vocab, *arrays)
    if isinstance(value, str):
        (folder / name).write_text(value, encoding="utf-8")
    else:
        save_array(folder / name, value)
    resign(index_dir)
    refused(index_dir, f"bm25_sentences/{name}", phrase)


def test_a_word_listed_twice_for_one_item_is_refused(index_dir: Path) -> None:
    folder = index_dir / "bm25_sentences"
    terms = np.load(folder / "terms.npy", allow_pickle=False)
    terms[1] = terms[0]  # item 0 holds at least two words (entries 0 and 1)
    save_array(folder / "terms.npy", terms)
    resign(index_dir)
    refused(index_dir, "bm25_sentences/terms.npy", "lists a word twice")


def grown(index_dir: Path) -> Path:
    """``index_dir`` with a second segment (one document added)."""
    from conftest import FakeEncoder

    from index import add_to_index

    add_to_index(index_dir, [Document("c.txt", "c.txt", "Trams run to Lushun. They are green.")],
                 FakeEncoder())
    assert len(manifest_of(index_dir)["segments"]) == 2
    return index_dir


def test_grown_index_loads(index_dir: Path) -> None:
    assert [d.source for d in CorpusIndex.load(grown(index_dir)).documents] == ["a.txt", "ü.txt", "c.txt"]


@pytest.mark.parametrize("path", ["../elsewhere", "segments/../../x", "/tmp/x", "segments/abc", ""])
def test_segment_path_that_is_not_ours(index_dir: Path, path: str) -> None:
    manifest = manifest_of(grown(index_dir))
    manifest["segments"][1]["path"] = path
    write_manifest(index_dir, manifest)
    refused(index_dir, MANIFEST, "bad path")


def test_segment_whose_files_the_manifest_does_not_list(index_dir: Path) -> None:
    manifest = manifest_of(grown(index_dir))
    segment = manifest["segments"][1]["path"]
    manifest["files"] = {k: v for k, v in manifest["files"].items() if k != f"{segment}/sentences.faiss"}
    write_manifest(index_dir, manifest)
    refused(index_dir, f"{segment}/sentences.faiss", "missing from the manifest")


def test_segment_table_of_the_wrong_size(index_dir: Path) -> None:
    manifest = manifest_of(grown(index_dir))
    segment = manifest["segments"][1]["path"]
    path = index_dir / segment / "sentences.jsonl"
    path.write_text(path.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    resign(index_dir)
    refused(index_dir, f"{segment}/sentences.jsonl", "rows, manifest says")


def test_segment_faiss_file_truncated_with_forged_checksum(index_dir: Path) -> None:
    segment = manifest_of(grown(index_dir))["segments"][1]["path"]
    path = index_dir / segment / "passages.faiss"
    path.write_bytes(path.read_bytes()[:60])
    resign(index_dir)
    refused(index_dir, f"{segment}/passages.faiss")


@pytest.mark.parametrize("edit", ["rename", "counts", "drop"])
def test_document_list_that_disagrees_with_the_tables(index_dir: Path, edit: str) -> None:
    manifest = manifest_of(grown(index_dir))
    if edit == "rename":
        manifest["documents"][2]["source"] = "other.txt"
    elif edit == "counts":
        manifest["documents"][0]["sentences"] += 1
    else:
        manifest["documents"].pop()
    write_manifest(index_dir, manifest)
    refused(index_dir, MANIFEST, "document list")
