"""The manifest of an index: what it records, the file hashes it signs, and its checks.

Why a module of its own: the manifest is read before anything else (cheaply, to refuse a
missing, foreign, other-version or other-model index before slow work), by loading, by
``add``/``remove``/``list`` and by the cache; its shape is checked here once, so the rest
can trust the fields it uses.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from index.atomic import recover
from index.errors import IndexLoadError
from index.layout import FORMAT_NAME, FORMAT_VERSION, MANIFEST, READABLE_VERSIONS, SEGMENT_PATTERN
from index.records import DocumentEntry, collection_hash, now


def sha256(path: Path) -> str:
    """SHA-256 of a file's bytes (read in 1 MB blocks)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_hashes(folder: Path) -> dict[str, str]:
    """The SHA-256 of every file under ``folder``, by path relative to it, in sorted order."""
    return {
        str(path.relative_to(folder)): sha256(path)
        for path in sorted(folder.rglob("*")) if path.is_file()
    }


def make_manifest(model_name: str, dimension: int, chunking: dict[str, Any], entries: Sequence[DocumentEntry],
                  vector_indexes: dict[str, Any], counts: dict[str, int], late: bool, created_at: str,
                  segments: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The manifest of an index (without ``files``, added by whoever writes them).

    ``segments`` lists the table sets the index is made of, in order: the first is the
    top level of the directory (``path`` ""), later ones ``segments/<name>/`` written by
    ``add``.  A fresh build or a full save has one.
    """
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "model": {"name": model_name, "dimension": dimension},
        "normalized": True,
        "vector_index": vector_indexes["sentences"]["kind"],  # the larger table's; both below
        "vector_indexes": vector_indexes,
        "chunking": dict(chunking),
        "corpus_hash": collection_hash(entries),
        "counts": dict(counts),
        "late_interaction": late,
        "created_at": created_at,
        "updated_at": now(),
        "documents": [asdict(entry) for entry in entries],
        "segments": segments if segments is not None else [
            {"path": "", "counts": dict(counts), "late_interaction": late,
             "vector_indexes": vector_indexes}],
    }


def write_signed(folder: Path, manifest: dict[str, Any]) -> None:
    """Write ``manifest`` into ``folder`` with the SHA-256 of every file already there."""
    signed = dict(manifest, files=file_hashes(folder))
    (folder / MANIFEST).write_text(json.dumps(signed, indent=2, ensure_ascii=False),
                                   encoding="utf-8")


def checked_manifest(folder: Path, expected_model: str | None = None) -> dict[str, Any]:
    """The manifest of the index at ``folder`` after finishing any interrupted save, refusing a
    missing, foreign or other-model index. Cheap (only the manifest is read), so callers run
    it before slow work; ``CorpusIndex.load`` and ``check_index`` share it.

    Raises:
        IndexLoadError: No index there, not ours, or built with another model.
    """
    recover(folder)
    manifest = read_manifest(folder)
    if expected_model is not None and manifest["model"]["name"] != expected_model:
        raise IndexLoadError(
            f"{folder / MANIFEST}: index was built with model '{manifest['model']['name']}', "
            f"this program uses '{expected_model}'; rebuild it with 'speech-qa index --replace'")
    return manifest


def read_manifest(folder: Path) -> dict[str, Any]:
    """Read and check the manifest's shape and format version.

    Raises:
        IndexLoadError: No manifest, not JSON, not ours, or another format version.
    """
    path = folder / MANIFEST
    if not folder.is_dir():
        raise IndexLoadError(f"{folder}: no index directory here")
    if not path.is_file():
        raise IndexLoadError(f"{path}: missing; {folder} is not a speech-qa index")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise IndexLoadError(f"{path}: not valid JSON") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise IndexLoadError(f"{path}: not a speech-qa index manifest")
    version = manifest.get("format_version")
    if type(version) is not int or version not in READABLE_VERSIONS:
        raise IndexLoadError(
            f"{path}: index format version {manifest.get('format_version')!r}, this program reads "
            f"versions {', '.join(map(str, READABLE_VERSIONS))}; rebuild it with "
            "'speech-qa index --replace'"
        )
    model = manifest.get("model")
    counts = manifest.get("counts")
    files = manifest.get("files")
    if not (isinstance(model, dict) and isinstance(model.get("name"), str)
            and isinstance(model.get("dimension"), int) and isinstance(counts, dict)
            and isinstance(files, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in files.items())):
        raise IndexLoadError(f"{path}: manifest is missing model, counts or file list")
    for name in files:
        if name.startswith(("/", "\\")) or ".." in Path(name).parts:
            raise IndexLoadError(f"{path}: manifest names a file outside the index: {name}")
    if version >= 2:
        _check_segments(path, manifest)
    return manifest


def _check_segments(path: Path, manifest: dict[str, Any]) -> None:
    """The segment list: the top level first, then ``segments/<name>`` folders, with counts."""
    segments = manifest.get("segments")
    if not isinstance(segments, list) or not segments:
        raise IndexLoadError(f"{path}: manifest has no segment list")
    seen = set()
    for number, segment in enumerate(segments):
        if not isinstance(segment, dict):
            raise IndexLoadError(f"{path}: segment {number + 1} is not an object")
        where, counts = segment.get("path"), segment.get("counts")
        if not (isinstance(where, str) and (where == "" if number == 0 else SEGMENT_PATTERN.fullmatch(where))
                and where not in seen):
            raise IndexLoadError(f"{path}: segment {number + 1} has a bad path {where!r}")
        seen.add(where)
        if not (isinstance(counts, dict) and all(type(counts.get(k)) is int and counts[k] >= 0
                                                 for k in ("documents", "sentences", "passages"))):
            raise IndexLoadError(f"{path}: segment {number + 1} has bad counts")
        if not isinstance(segment.get("late_interaction"), bool):
            raise IndexLoadError(f"{path}: segment {number + 1} has no late_interaction flag")
    if not isinstance(manifest.get("vector_indexes"), dict) or not all(
            isinstance(manifest["vector_indexes"].get(k), dict) for k in ("sentences", "passages")):
        raise IndexLoadError(f"{path}: manifest is missing its vector index descriptions")
    if not isinstance(manifest.get("chunking"), dict):
        raise IndexLoadError(f"{path}: manifest is missing its chunking parameters")


_ENTRY_FIELDS = [field.name for field in dataclasses.fields(DocumentEntry)]


def read_entries(folder: Path, manifest: dict[str, Any]) -> list[DocumentEntry]:
    """The manifest's document list, each entry exactly the fields of ``DocumentEntry``."""
    rows = manifest.get("documents")
    if not isinstance(rows, list):
        raise IndexLoadError(f"{folder / MANIFEST}: has no document list")
    entries = []
    for number, row in enumerate(rows, 1):
        if not (isinstance(row, dict) and sorted(row) == sorted(_ENTRY_FIELDS)
                and all(isinstance(row[name], str) for name in ("source", "sha256", "added_at"))
                and all(type(row[name]) is int for name in ("size", "passages", "sentences"))):
            raise IndexLoadError(f"{folder / MANIFEST}: document {number} is not "
                                 f"({', '.join(_ENTRY_FIELDS)})")
        entries.append(DocumentEntry(**row))
    return entries
