"""The corpus index in memory (``CorpusIndex``), and the names callers import from here.

Why this module: it is the index's public face.  ``CorpusIndex`` holds the tables a
question is answered from (documents, sentence and passage spans, FAISS and BM25 indexes,
token vectors, the manifest) and names the operations on them; each operation lives in a
module of its own, so each stays small and is read on its own:

- ``index.corpus_index``: the data class (``CorpusIndexData``) the operations below take and make.
- ``index.layout``: format version and file names (the directory layout is described there).
- ``index.records``: sentence, passage and document-entry records, content hashes.
- ``index.progress``: the stage bar of a build or an update.
- ``index.build``: split, embed once and index documents (``CorpusIndex.build``).
- ``index.tables``: each table file, written and read back validated.
- ``index.manifest``: the manifest, the hashes it signs, and its checks.
- ``index.atomic``: crash-safe replacement of the directory (``CorpusIndex.save``).
- ``index.loading``: a whole directory validated and joined (``CorpusIndex.load``).
- ``index.segments``: ``CorpusIndex.merge`` and ``CorpusIndex.without``, in memory.

Saving writes a sibling temporary directory and renames it into place, so a crash leaves
either the old index or the new one, never a mix.  Loading checks hashes before FAISS
parses anything, so a truncated or tampered file is refused with its name.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path

from index.atomic import parent_lock, refuse_foreign, replace_directory
from index.build import build_index
from index.corpus_index import CorpusIndexData
from index.encoder import Encoder
from index.layout import (
    FORMAT_NAME,
    FORMAT_VERSION,
    LATE_INTERACTION_MAX_SENTENCES,
    MANIFEST,
    READABLE_VERSIONS,
    SEGMENT_PATTERN,
    SEGMENTS_DIR,
    TOKEN_OFFSETS_FILE,
    TOKENS_FILE,
)
from index.loading import load_index
from index.manifest import checked_manifest, read_manifest, write_signed
from index.progress import BUILD_STAGES, BuildProgress
from index.records import (
    DocumentEntry,
    PassageRecord,
    SentenceRecord,
    collection_hash,
    text_hash,
)
from index.segments import drop_documents, merge_indexes
from index.tables import write_tables
from index.vectors import APPROXIMATE_THRESHOLD
from ingest import ChunkingParams, Document

__all__ = [  # what callers import from ``index.store`` (most live in the modules above)
    "BUILD_STAGES",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "LATE_INTERACTION_MAX_SENTENCES",
    "MANIFEST",
    "READABLE_VERSIONS",
    "SEGMENTS_DIR",
    "SEGMENT_PATTERN",
    "TOKENS_FILE",
    "TOKEN_OFFSETS_FILE",
    "BuildProgress",
    "CorpusIndex",
    "DocumentEntry",
    "PassageRecord",
    "SentenceRecord",
    "build_and_save",
    "checked_manifest",
    "collection_hash",
    "read_manifest",
    "text_hash",
]


class CorpusIndex(CorpusIndexData):
    """Documents, their sentence and passage tables, FAISS and BM25 indexes, in memory.

    Built with ``build`` (embeds every passage and sentence once) or read with ``load``.
    Query-time code reads the public attributes (``index.corpus_index.CorpusIndexData``);
    nothing here embeds a question.
    """

    # ------------------------------------------------------------------ building
    @classmethod
    def build(cls, documents: Sequence[Document], encoder: Encoder, params: ChunkingParams | None = None,
              show_progress: bool = False, batch_size: int = 64, progress: BuildProgress | None = None,
              *, vector_threshold: int = APPROXIMATE_THRESHOLD, token_budget: int | None = None,
              added_at: str | None = None) -> CorpusIndex:
        """Split, embed (passages and sentences, once) and index a corpus: ``index.build.build_index``."""
        return build_index(cls, documents, encoder, params, show_progress, batch_size, progress,
                           vector_threshold=vector_threshold, token_budget=token_budget, added_at=added_at)

    # ------------------------------------------------------------------ saving
    def write_tables(self, folder: Path) -> None:
        """Write this index's tables (one segment: no manifest) into ``folder``."""
        write_tables(self, folder)

    def _write_files(self, folder: Path) -> None:
        self.write_tables(folder)
        write_signed(folder, self.single_manifest())

    def save(self, target: Path | str) -> Path:
        """Write the index to ``target`` atomically (temp dir + rename).

        An existing index at ``target`` is replaced only once the new one is complete; a
        directory that is not a speech-qa index is never overwritten.

        Raises:
            IndexBuildError: ``target`` is a file or a foreign non-empty directory, or
                writing failed (the previous index, if any, is intact).
        """
        target = Path(target).absolute()
        refuse_foreign(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        with parent_lock(target.parent) as parent_fd:
            self.save_locked(target, parent_fd)
        return target

    def save_locked(self, target: Path, parent_fd: int | None) -> None:
        """``save`` for a caller that already holds the lock of ``target``'s parent."""
        replace_directory(target, parent_fd, self._write_files)

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, folder: Path | str, expected_model: str | None = None) -> CorpusIndex:
        """Read and validate an index directory: ``index.loading.load_index``."""
        return load_index(cls, folder, expected_model)

    # ------------------------------------------------------------------ collections
    @classmethod
    def merge(cls, parts: Sequence[CorpusIndex], copy: bool = False) -> CorpusIndex:
        """One index holding the documents of several, in order: ``index.segments.merge_indexes``."""
        return merge_indexes(cls, parts, copy)

    def without(self, sources: Collection[str]) -> CorpusIndex:
        """This index minus the documents named ``sources`` (nothing is embedded again):
        ``index.segments.drop_documents``.

        Raises:
            IndexBuildError: No document would be left.
        """
        return drop_documents(self, sources)


def build_and_save(documents: Sequence[Document], encoder: Encoder, target: Path,
                   params: ChunkingParams | None = None,
                   show_progress: bool = False,
                   progress: BuildProgress | None = None) -> CorpusIndex:
    """Build an index and save it atomically (shared by the CLI and the default cache).

    ``progress`` continues a stage bar the caller started (e.g. over reading the files);
    without one, a bar is made here when ``show_progress`` is set.  Either way the bar is
    closed (filled) here, once the index is written.
    """
    bar = progress or BuildProgress(show_progress)
    with bar:
        built = CorpusIndex.build(documents, encoder, params, show_progress=show_progress,
                                  progress=bar)
        bar.stage("write")
        built.save(target)
    return built
