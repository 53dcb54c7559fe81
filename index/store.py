"""The corpus index in memory (``CorpusIndex``), and the names callers import from here.

Why this module: it is the index's public face.  ``CorpusIndex`` holds the tables a
question is answered from (documents, sentence and passage spans, FAISS and BM25 indexes,
token vectors, the manifest) and names the operations on them; each operation lives in a
module of its own, so each stays small and is read on its own:

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
from typing import Any

import faiss
import numpy as np

from index.atomic import parent_lock, refuse_foreign, replace_directory
from index.build import build_index
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
from index.lexical import LexicalIndex
from index.loading import load_index
from index.manifest import checked_manifest, make_manifest, read_manifest, write_signed
from index.progress import BUILD_STAGES, BuildProgress
from index.records import (
    DocumentEntry,
    PassageRecord,
    SentenceRecord,
    collection_hash,
    document_counts,
    now,
    text_hash,
)
from index.segments import drop_documents, merge_indexes
from index.tables import write_tables
from index.terms import TermStats
from index.vectors import all_vectors
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


class CorpusIndex:
    """Documents, their sentence and passage tables, FAISS and BM25 indexes, in memory.

    Built with ``build`` (embeds every passage and sentence once) or read with ``load``.
    Query-time code reads the public attributes; nothing here embeds a question.
    """

    def __init__(
        self,
        documents: list[Document],
        sentences: list[SentenceRecord],
        passages: list[PassageRecord],
        sentence_index: faiss.Index,
        passage_index: faiss.Index,
        sentence_bm25: LexicalIndex,
        passage_bm25: LexicalIndex,
        manifest: dict[str, Any],
        sentence_tokens: np.ndarray | None = None,
        sentence_token_offsets: np.ndarray | None = None,
        sentence_terms: TermStats | None = None,
        passage_terms: TermStats | None = None,
        entries: Sequence[DocumentEntry] | None = None,
    ) -> None:
        self.documents = documents
        self._sentence_terms = sentence_terms
        self._passage_terms = passage_terms
        self.entries: list[DocumentEntry] = list(entries) if entries is not None else [
            DocumentEntry.of(document, str(manifest.get("created_at", now())), *counts)
            for document, counts in zip(documents, document_counts(documents, sentences, passages),
                                        strict=True)]
        """What the collection knows of each document (content hash, size, when added),
        row i for ``documents[i]``."""
        self.sentence_tokens = sentence_tokens
        """float16 ``(total_tokens, dim)`` token vectors of every sentence, or None (late
        interaction off: big corpus, old index, or an encoder without token vectors)."""
        self.sentence_token_offsets = sentence_token_offsets
        """int64 ``(n_sentences + 1,)``: sentence i owns token rows ``offsets[i]:offsets[i+1]``."""
        self.sentences = sentences
        self.passages = passages
        self.sentence_index = sentence_index
        self.passage_index = passage_index
        self.sentence_bm25 = sentence_bm25
        self.passage_bm25 = passage_bm25
        self.manifest = manifest
        self.sentence_vectors = all_vectors(sentence_index)
        self.passage_vectors = all_vectors(passage_index)
        self.sentence_passage = np.zeros(len(sentences), dtype=np.int64)
        """For each sentence, the first passage that contains it."""
        for number in range(len(passages) - 1, -1, -1):
            record = passages[number]
            self.sentence_passage[record.first: record.last + 1] = number

    # ------------------------------------------------------------------ text access
    def sentence_text(self, sentence_id: int) -> str:
        """Text of one sentence."""
        record = self.sentences[sentence_id]
        return self.documents[record.doc].text[record.start: record.end]

    def passage_text(self, passage_id: int) -> str:
        """Text of one passage."""
        record = self.passages[passage_id]
        return self.documents[record.doc].text[record.start: record.end]

    @property
    def sentence_terms(self) -> TermStats:
        """Word counts of every sentence (computed from the texts for a format-1 index)."""
        if self._sentence_terms is None:
            self._sentence_terms = TermStats.from_texts(
                [self.sentence_text(i) for i in range(len(self.sentences))])
        return self._sentence_terms

    @property
    def passage_terms(self) -> TermStats:
        """Word counts of every passage (computed from the texts for a format-1 index)."""
        if self._passage_terms is None:
            self._passage_terms = TermStats.from_texts(
                [self.passage_text(i) for i in range(len(self.passages))])
        return self._passage_terms

    @property
    def model_name(self) -> str:
        """Name of the embedding model the vectors came from."""
        return str(self.manifest["model"]["name"])

    # ------------------------------------------------------------------ building
    #: Split, embed (passages and sentences, once) and index a corpus: ``index.build.build_index``.
    build = classmethod(build_index)

    # ------------------------------------------------------------------ saving
    def write_tables(self, folder: Path) -> None:
        """Write this index's tables (one segment: no manifest) into ``folder``."""
        write_tables(self, folder)

    def single_manifest(self) -> dict[str, Any]:
        """This index's manifest as one segment (what a full save writes), without ``files``."""
        counts = {"documents": len(self.documents), "sentences": len(self.sentences),
                  "passages": len(self.passages)}
        model = self.manifest["model"]
        return make_manifest(model["name"], model["dimension"], self.manifest["chunking"], self.entries,
                             self.manifest["vector_indexes"], counts, self.sentence_tokens is not None,
                             str(self.manifest.get("created_at", now())))

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
    #: Read and validate an index directory: ``index.loading.load_index``.
    load = classmethod(load_index)

    # ------------------------------------------------------------------ collections
    #: One index holding the documents of several, in order: ``index.segments.merge_indexes``.
    merge = classmethod(merge_indexes)

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
