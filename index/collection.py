"""Updating an index on disk: add documents, remove documents, list them.

Why segments: re-writing a 20,000-passage index to add one page costs seconds of hashing
and writing that have nothing to do with the page.  ``add`` writes the new documents'
tables (embedded, tokenized and counted once) as a new folder ``segments/<name>/`` and
then replaces ``manifest.json``; nothing already on disk is read, re-embedded or
re-written, so the work grows with what was added.  Loading joins the segments (the
first one's FAISS index takes the others' rows: flat tables append, IVF tables file
them into their trained lists) and computes BM25 from the merged word counts.

When that is not possible the whole index is rewritten instead, still without embedding
anything already indexed: a flat first table that the additions make large enough for an
approximate index (the rows get the index a fresh build would give them), a document
replaced by a new version of itself, every ``remove``, and an index of format 1.

Crash safety (a SIGKILL at any moment leaves the old index or the new one, never a mix):

- ``add``: the segment is written into ``segments/.tmp-*``, flushed, renamed to its name,
  and only then does a flushed ``manifest.json.tmp-*`` replace ``manifest.json``
  (``os.replace`` is atomic).  Before that the old manifest, which does not name the new
  segment, is in force; after it, the new one.  Unreferenced segments and temporary files
  are deleted by the next update.
- rewrites go through ``CorpusIndex.save`` (a temporary directory renamed into place).

Every update holds the same lock as ``save`` (``flock`` on the parent folder), so two
updates of one index run one after the other and neither loses the other's documents.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import tempfile
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from index.atomic import fsync_dir, fsync_tree, parent_lock
from index.encoder import Encoder
from index.errors import IndexBuildError
from index.layout import FORMAT_VERSION, LATE_INTERACTION_MAX_SENTENCES, MANIFEST, SEGMENTS_DIR
from index.manifest import checked_manifest, file_hashes, read_entries
from index.progress import BuildProgress
from index.records import DocumentEntry, collection_hash, now, text_hash
from index.store import CorpusIndex
from index.vectors import APPROXIMATE_THRESHOLD, FLAT
from ingest import ChunkingParams, Document

logger = logging.getLogger(__name__)

ADD_STAGES = ("read", "split", "embed", "bm25", "vectors", "write")
REMOVE_STAGES = ("load", "select", "write")
_NEVER_APPROXIMATE = 1 << 62  # an appended segment is stored flat (see the module docstring)


@dataclass(frozen=True)
class UpdateOutcome:
    """What an ``add`` or a ``remove`` changed.

    Attributes:
        added: Sources added (including new versions of replaced ones).
        replaced: Sources whose previous version was replaced by new content.
        removed: Sources removed.
        duplicates: (given source, source already holding the same text) for each
            document not added because its content is already indexed.
    """

    added: tuple[str, ...] = ()
    replaced: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    duplicates: tuple[tuple[str, str], ...] = ()


def check_index(target: Path | str, model_name: str | None = None) -> dict[str, Any]:
    """The manifest of the index at ``target``, refusing a missing, foreign or
    other-model index (cheap: only the manifest is read; call it before slow work).

    Raises:
        IndexLoadError: No index there, not ours, or built with another model.
    """
    return checked_manifest(Path(target).absolute(), model_name)


IndexVersion = tuple[int, int, int, int]
"""What identifies one version of an index on disk: its manifest's device, inode, size and
modification time. Every update replaces ``manifest.json`` by a new file (a rename), so a
new version always has a new identity, and reading it costs one ``stat``."""


def index_version(target: Path | str) -> IndexVersion | None:
    """The version of the index at ``target`` now, or None while there is none (a rewrite
    between its two renames, or no index). Cheap enough to poll several times a second."""
    try:
        info = (Path(target) / MANIFEST).stat()
    except OSError:
        return None
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


def load_current(target: Path | str, model_name: str | None = None
                 ) -> tuple[IndexVersion | None, CorpusIndex]:
    """Read the index at ``target`` under the update lock, with the version read.

    Why under the lock: an update of another process (``speech-qa add``) or thread may be
    replacing files meanwhile; holding the same lock the updates hold, the whole load sees
    one version, and the version returned is the one loaded.

    Raises:
        IndexLoadError: No index there, damaged, or built with another model.
    """
    target = Path(target).absolute()
    with parent_lock(target.parent):
        return index_version(target), CorpusIndex.load(target, expected_model=model_name)


def list_documents(target: Path | str) -> list[DocumentEntry]:
    """The documents of the index at ``target`` (from the manifest alone for format 2).

    Raises:
        IndexLoadError: No index there, or a damaged manifest.
    """
    target = Path(target).absolute()
    manifest = check_index(target)
    if manifest["format_version"] == 1:
        return CorpusIndex.load(target).entries
    return read_entries(target, manifest)


def add_to_index(target: Path | str, documents: Sequence[Document], encoder: Encoder,
                 progress: BuildProgress | None = None, batch_size: int = 64) -> UpdateOutcome:
    """Add ``documents`` to the index at ``target``, embedding only them.

    A document whose text is already indexed (under any name) is skipped as a duplicate;
    one whose name is indexed with other text replaces that version.

    Args:
        target: An existing index directory.
        documents: Repaired documents (``ingest.read_collection``).
        encoder: The model the index was built with.
        progress: A stage bar to continue (``ADD_STAGES``).
        batch_size: Texts per model call.

    Raises:
        IndexLoadError: No index at ``target``, or built with another model.
        IndexBuildError: The update could not be written (the index is unchanged).
    """
    target = Path(target).absolute()
    bar = progress or BuildProgress(False, ADD_STAGES, name="add")
    check_index(target, encoder.name)
    with parent_lock(target.parent) as parent_fd:
        manifest = check_index(target, encoder.name)  # again, under the lock
        _collect_garbage(target, manifest)
        current: CorpusIndex | None = None
        if manifest["format_version"] == 1:
            current = CorpusIndex.load(target, expected_model=encoder.name)
            entries = current.entries
        else:
            entries = read_entries(target, manifest)
        fresh, outcome = classify(entries, documents)
        if not fresh:
            return outcome
        params = ChunkingParams(**manifest["chunking"])
        sentences_now = sum(entry.sentences for entry in entries)
        late = manifest["late_interaction"] is True
        replaced = outcome.replaced
        part: CorpusIndex | None = None
        if current is None and not replaced:
            budget = LATE_INTERACTION_MAX_SENTENCES - sentences_now if late else -1
            part = CorpusIndex.build(fresh, encoder, params, batch_size=batch_size, progress=bar,
                                     vector_threshold=_NEVER_APPROXIMATE, token_budget=budget)
            if not _outgrows_flat(manifest, part):
                bar.stage("write")
                _append_segment(target, manifest, part, parent_fd)
                return outcome
        # Rewrite the whole index (still embedding only the new documents).
        if current is None:
            current = CorpusIndex.load(target, expected_model=encoder.name)
        kept: CorpusIndex | None = current
        if replaced:
            kept = current.without(set(replaced)) if set(replaced) < set(current_sources(current)) else None
        if kept is None:  # every document replaced: a fresh build of the new versions
            part = CorpusIndex.build(fresh, encoder, params, batch_size=batch_size, progress=bar)
        elif part is None:
            part = CorpusIndex.build(fresh, encoder, params, batch_size=batch_size, progress=bar,
                                     vector_threshold=_NEVER_APPROXIMATE,
                                     token_budget=LATE_INTERACTION_MAX_SENTENCES - len(kept.sentences)
                                     if kept.sentence_tokens is not None else -1)
        merged = part if kept is None else CorpusIndex.merge([kept, part])
        bar.stage("write")
        merged.save_locked(target, parent_fd)
        return outcome


def current_sources(index: CorpusIndex) -> list[str]:
    """The document names of ``index``."""
    return [document.source for document in index.documents]


def classify(entries: Sequence[DocumentEntry], documents: Sequence[Document]
             ) -> tuple[list[Document], UpdateOutcome]:
    """Which of ``documents`` to index: not those whose text is already in ``entries``
    (or earlier in ``documents``); a known name with new text replaces its old version."""
    by_source = {entry.source for entry in entries}
    by_hash = {entry.sha256: entry.source for entry in entries}
    fresh: list[Document] = []
    replaced: list[str] = []
    duplicates: list[tuple[str, str]] = []
    for document in documents:
        digest = text_hash(document.text)
        if digest in by_hash:
            duplicates.append((document.source, by_hash[digest]))
            continue
        if document.source in by_source:
            replaced.append(document.source)
        by_hash[digest] = document.source
        fresh.append(document)
    return fresh, UpdateOutcome(tuple(d.source for d in fresh), tuple(replaced), (), tuple(duplicates))


def add_in_memory(index: CorpusIndex, documents: Sequence[Document], encoder: Encoder,
                  progress: BuildProgress | None = None) -> tuple[CorpusIndex, UpdateOutcome]:
    """``add_to_index`` for an index that lives only in memory: a new ``CorpusIndex``
    (``index`` itself is left untouched: it may be answering questions meanwhile)."""
    bar = progress or BuildProgress(False, ADD_STAGES, name="add")
    fresh, outcome = classify(index.entries, documents)
    if not fresh:
        return index, outcome
    params = ChunkingParams(**index.manifest["chunking"])
    kept: CorpusIndex | None = index
    if outcome.replaced:
        replaced = set(outcome.replaced)
        kept = index.without(replaced) if replaced < set(current_sources(index)) else None
    if kept is None:
        return CorpusIndex.build(fresh, encoder, params, progress=bar), outcome
    budget = LATE_INTERACTION_MAX_SENTENCES - len(kept.sentences) if kept.sentence_tokens is not None else -1
    part = CorpusIndex.build(fresh, encoder, params, progress=bar, vector_threshold=_NEVER_APPROXIMATE,
                             token_budget=budget)
    bar.stage("write")
    return CorpusIndex.merge([kept, part], copy=kept is index), outcome


def remove_from_index(target: Path | str, sources: Collection[str],
                      progress: BuildProgress | None = None) -> UpdateOutcome:
    """Remove the documents named ``sources`` from the index at ``target`` (nothing is embedded).

    Raises:
        IndexLoadError: No index at ``target``.
        IndexBuildError: A source is not in the index (named; nothing is changed), every
            document would go, or the update could not be written.
    """
    target = Path(target).absolute()
    bar = progress or BuildProgress(False, REMOVE_STAGES, name="remove")
    wanted = list(dict.fromkeys(sources))
    with parent_lock(target.parent) as parent_fd:
        manifest = check_index(target)
        _collect_garbage(target, manifest)
        known = {entry.source for entry in list_documents(target)}
        unknown = [source for source in wanted if source not in known]
        if unknown:
            raise IndexBuildError(f"{target}: no document named {', '.join(map(repr, unknown))} "
                                  f"(see 'speech-qa list --index {target}'); nothing was removed")
        bar.stage("load")
        current = CorpusIndex.load(target)
        bar.stage("select")
        kept = current.without(set(wanted))
        bar.stage("write")
        kept.save_locked(target, parent_fd)
    return UpdateOutcome(removed=tuple(wanted))


def _outgrows_flat(manifest: dict[str, Any], part: CorpusIndex) -> bool:
    """Would ``part`` take a flat first table to the size that calls for an approximate one?
    (Then the rows are re-indexed together, as a fresh build would index them.)"""
    first = manifest["segments"][0]["vector_indexes"]
    for name in ("sentences", "passages"):
        info = first.get(name, {})
        if info.get("kind") == FLAT and "scan_rejected_recall_at_10" not in info \
                and manifest["counts"][name] + len(getattr(part, name)) >= APPROXIMATE_THRESHOLD:
            return True
    return False


def _append_segment(target: Path, manifest: dict[str, Any], part: CorpusIndex,
                    parent_fd: int | None) -> None:
    """Write ``part`` as a new segment of ``target``, then switch the manifest to it."""
    folder = target / SEGMENTS_DIR
    folder.mkdir(exist_ok=True)
    name = f"{len(manifest['segments']):06d}-{secrets.token_hex(4)}"
    temporary = Path(tempfile.mkdtemp(prefix=".tmp-", dir=folder))
    manifest_temporary = target / f".{MANIFEST}.tmp-{secrets.token_hex(4)}"
    try:
        part.write_tables(temporary)
        fsync_tree(temporary)
        os.rename(temporary, folder / name)
        fsync_dir(folder)
        prefix = f"{SEGMENTS_DIR}/{name}"
        files = dict(manifest["files"])
        files.update((f"{prefix}/{path}", digest) for path, digest in file_hashes(folder / name).items())
        entries = [*read_entries(target, manifest), *part.entries]
        counts = {key: manifest["counts"][key] + len(getattr(part, key))
                  for key in ("documents", "sentences", "passages")}
        late = manifest["late_interaction"] is True and part.sentence_tokens is not None
        vector_indexes = {table: {**info, "count": counts[table]}
                          for table, info in manifest["segments"][0]["vector_indexes"].items()}
        # The new segment may hold format 3 token blocks: an older program must refuse it.
        updated = dict(manifest, format_version=FORMAT_VERSION, counts=counts,
                       late_interaction=late, updated_at=now(),
                       corpus_hash=collection_hash(entries), vector_indexes=vector_indexes,
                       documents=[asdict(entry) for entry in entries],
                       segments=[*manifest["segments"], {
                           "path": prefix, "late_interaction": part.sentence_tokens is not None,
                           "counts": {"documents": len(part.documents), "sentences": len(part.sentences),
                                      "passages": len(part.passages)},
                           "vector_indexes": part.manifest["vector_indexes"]}],
                       files=files)
        with manifest_temporary.open("w", encoding="utf-8") as handle:
            handle.write(json.dumps(updated, indent=2, ensure_ascii=False))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(manifest_temporary, target / MANIFEST)
        fsync_dir(target)
        if parent_fd is not None:
            os.fsync(parent_fd)
    except Exception as exc:
        shutil.rmtree(temporary, ignore_errors=True)
        manifest_temporary.unlink(missing_ok=True)
        raise IndexBuildError(f"{target}: could not add to the index ({exc})") from exc
    _collect_garbage(target, updated)


def _collect_garbage(target: Path, manifest: dict[str, Any]) -> None:
    """Delete what an interrupted update left: segments the manifest does not name,
    temporary segment folders and manifests.  Never touches a named file."""
    named = {segment["path"] for segment in manifest.get("segments", [])}
    folder = target / SEGMENTS_DIR
    if folder.is_dir():
        for path in folder.iterdir():
            if f"{SEGMENTS_DIR}/{path.name}" not in named:
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    for path in target.glob(f".{MANIFEST}.tmp-*"):
        path.unlink(missing_ok=True)
