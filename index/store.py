"""The on-disk corpus index: build, atomic save, validated load.

The directory layout is described in ``index.layout``; the records in ``index.records``.

Saving writes a sibling temporary directory and renames it into place, so a crash leaves
either the old index or the new one, never a mix.  Loading checks hashes before FAISS
parses anything, so a truncated or tampered file is refused with its name.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Generic, TypeVar

import faiss
import numpy as np

from index.atomic import parent_lock, refuse_foreign, replace_directory
from index.encoder import Encoder, token_encoder
from index.errors import IndexBuildError
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
from index.records import DocumentEntry, PassageRecord, SentenceRecord, collection_hash, text_hash
from index.records import document_counts as _document_counts
from index.records import now as _now
from index.tables import write_tables
from index.terms import TermStats, bm25_of
from index.vectors import APPROXIMATE_THRESHOLD, FLAT, all_vectors, build_vector_index
from ingest import ChunkingParams, Document, make_passages, split_sentences

__all__ = [  # what callers import from ``index.store`` (some now live in the modules named above)
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

logger = logging.getLogger(__name__)


T = TypeVar("T")

class _Background(Generic[T]):
    """Run one function in a daemon thread; ``result()`` joins and re-raises its error."""

    def __init__(self, work: Callable[[], T]) -> None:
        self._value: T | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(work,), daemon=True,
                                        name="speech-qa-bm25")
        self._thread.start()

    def _run(self, work: Callable[[], T]) -> None:
        try:
            self._value = work()
        except BaseException as exc:  # handed to the caller by result()
            self._error = exc

    def result(self) -> T:
        """Wait for the work and return its value (or raise its exception)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._value is not None
        return self._value


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
            DocumentEntry.of(document, str(manifest.get("created_at", _now())), *counts)
            for document, counts in zip(documents, _document_counts(documents, sentences, passages),
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
    @classmethod
    def build(
        cls,
        documents: Sequence[Document],
        encoder: Encoder,
        params: ChunkingParams | None = None,
        show_progress: bool = False,
        batch_size: int = 64,
        progress: BuildProgress | None = None,
        *,
        vector_threshold: int = APPROXIMATE_THRESHOLD,
        token_budget: int | None = None,
        added_at: str | None = None,
    ) -> CorpusIndex:
        """Split, embed (passages and sentences, once) and index a corpus.

        Args:
            documents: Repaired documents (see ``ingest.load_documents``).
            encoder: Embeds texts into normalised vectors.
            params: Passage chunking; defaults to ``ChunkingParams()``.
            show_progress: Show progress bars (build stages, and the model's batches).
            batch_size: Texts per model call.
            progress: A stage bar already started by the caller (e.g. over reading files);
                it is continued here, and the caller closes it.
            vector_threshold: Tables this large get an approximate vector index (a
                segment appended to a collection passes a huge value: its rows join the
                first segment's index when loaded, so they are stored flat).
            token_budget: Store sentence token vectors (late interaction) only when the
                corpus has at most this many sentences (default
                ``LATE_INTERACTION_MAX_SENTENCES``) (an appended segment gets what is
                left of the collection's budget, or -1 when the collection has none).
            added_at: When the documents joined the collection (default: now).

        Raises:
            IndexBuildError: No sentences at all in the corpus.
        """
        if progress is None:  # our own bar: close it however the build ends
            own = BuildProgress(show_progress)
            with own:
                return cls.build(documents, encoder, params, show_progress, batch_size, own,
                                 vector_threshold=vector_threshold, token_budget=token_budget,
                                 added_at=added_at)
        params = params or ChunkingParams()
        documents = list(documents)
        progress.stage("split")
        sentences: list[SentenceRecord] = []
        passages: list[PassageRecord] = []
        for doc_number, document in enumerate(documents):
            spans = split_sentences(document.text)
            offset = len(sentences)
            sentences.extend(SentenceRecord(doc_number, s.start, s.end, s.paragraph) for s in spans)
            passages.extend(
                PassageRecord(doc_number, p.start, p.end, p.paragraph,
                              offset + p.first_sentence, offset + p.last_sentence)
                for p in make_passages(spans, params)
            )
        if not sentences:
            raise IndexBuildError("the corpus has no sentences to index")
        sentence_texts = [documents[s.doc].text[s.start:s.end] for s in sentences]
        passage_texts = [documents[p.doc].text[p.start:p.end] for p in passages]
        # One encode call over both tables: single-sentence passages are embedded once.
        unique: dict[str, int] = {}
        for text in sentence_texts + passage_texts:
            unique.setdefault(text, len(unique))
        # BM25 (tokenising, stemming: Python work) runs beside the model, whose matrix
        # products release the GIL, so it rides on the embedding time instead of adding to it.
        lexical = _Background(lambda: (bm25_of(sentence_texts), bm25_of(passage_texts)))
        progress.stage("embed")
        if token_budget is None:
            token_budget = LATE_INTERACTION_MAX_SENTENCES
        tokens_from = token_encoder(encoder) if len(sentences) <= token_budget else None
        # The stage bar is the one bar a person sees: no nested per-batch bar of the model.
        show_progress = False
        token_rows: list[np.ndarray] = []
        try:
            if tokens_from is None:
                vectors = encoder.encode(list(unique), batch_size=batch_size, show_progress=show_progress)
            else:
                # Still one forward pass per distinct text: sentences (the first entries of
                # ``unique``) with their token vectors, then passage-only texts without.
                texts = list(unique)
                n_sentence_texts = len(set(sentence_texts))
                head, token_rows = tokens_from.encode_with_tokens(
                    texts[:n_sentence_texts], batch_size=batch_size, show_progress=show_progress)
                tail = encoder.encode(texts[n_sentence_texts:], batch_size=batch_size,
                                      show_progress=show_progress)
                vectors = np.concatenate([head, tail.reshape(-1, head.shape[1])])
        finally:
            progress.stage("bm25")
            (sentence_terms, sentence_bm25), (passage_terms, passage_bm25) = lexical.result()
        if vectors.ndim != 2 or vectors.shape[1] != encoder.dimension:
            raise IndexBuildError(
                f"encoder returned vectors of shape {vectors.shape}, expected (*, {encoder.dimension})"
            )
        progress.stage("vectors")
        sentence_index, sentence_info = build_vector_index(vectors[[unique[t] for t in sentence_texts]],
                                                           threshold=vector_threshold)
        passage_index, passage_info = build_vector_index(vectors[[unique[t] for t in passage_texts]],
                                                         threshold=vector_threshold)
        del vectors
        sentence_tokens: np.ndarray | None = None
        offsets: np.ndarray | None = None
        if tokens_from is not None:
            per_sentence = [token_rows[unique[t]] for t in sentence_texts]
            offsets = np.zeros(len(per_sentence) + 1, dtype=np.int64)
            np.cumsum([len(rows) for rows in per_sentence], out=offsets[1:])
            sentence_tokens = np.concatenate(per_sentence).astype(np.float16)
            del token_rows, per_sentence
        stamp = added_at or _now()
        entries = [DocumentEntry.of(document, stamp, *counts) for document, counts
                   in zip(documents, _document_counts(documents, sentences, passages), strict=True)]
        manifest = make_manifest(encoder.name, encoder.dimension, asdict(params), entries,
                                 {"sentences": sentence_info, "passages": passage_info},
                                 {"documents": len(documents), "sentences": len(sentences),
                                  "passages": len(passages)}, sentence_tokens is not None, stamp)
        return cls(
            documents, sentences, passages, sentence_index, passage_index,
            sentence_bm25, passage_bm25, manifest, sentence_tokens, offsets,
            sentence_terms, passage_terms, entries,
        )

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
                             str(self.manifest.get("created_at", _now())))

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
    @classmethod
    def merge(cls, parts: Sequence[CorpusIndex], copy: bool = False) -> CorpusIndex:
        """One index holding the documents of ``parts`` in order (no embedding).

        The first part's vector index takes the others' rows (``add``: a flat index
        appends them, an IVF index files them into its trained lists, no retraining).
        When the first is flat and the total reaches the size that calls for an
        approximate index, the merged rows get one (built as a fresh build would).

        Args:
            parts: Indexes built with the same model and chunking.
            copy: Leave the first part's vector indexes untouched (they may be serving).
        """
        first = parts[0]
        documents: list[Document] = []
        sentences: list[SentenceRecord] = []
        passages: list[PassageRecord] = []
        for part in parts:
            doc_shift, sentence_shift = len(documents), len(sentences)
            documents.extend(part.documents)
            sentences.extend(dataclasses.replace(r, doc=r.doc + doc_shift) for r in part.sentences)
            passages.extend(dataclasses.replace(p, doc=p.doc + doc_shift, first=p.first + sentence_shift,
                                                last=p.last + sentence_shift) for p in part.passages)
        tables: dict[str, tuple[faiss.Index, dict[str, Any]]] = {}
        for name, attribute in (("sentences", "sentence_index"), ("passages", "passage_index")):
            info = dict(first.manifest["vector_indexes"][name])
            rows = [np.ascontiguousarray(getattr(part, attribute[:-5] + "vectors")) for part in parts]
            total = sum(len(r) for r in rows)
            if info.get("kind") == FLAT and "scan_rejected_recall_at_10" not in info \
                    and total >= APPROXIMATE_THRESHOLD:
                tables[name] = build_vector_index(np.concatenate(rows), threshold=APPROXIMATE_THRESHOLD)
                continue
            table = getattr(first, attribute)
            if copy:
                table = faiss.clone_index(table)
            for more in rows[1:]:
                if len(more):
                    table.add(more)
            tables[name] = (table, {**info, "count": int(table.ntotal)})
        tokens: np.ndarray | None = None
        offsets: np.ndarray | None = None
        if all(part.sentence_tokens is not None for part in parts) \
                and len(sentences) <= LATE_INTERACTION_MAX_SENTENCES:
            tokens = np.concatenate([part.sentence_tokens for part in parts])  # type: ignore[misc]
            lengths = np.concatenate([np.diff(part.sentence_token_offsets) for part in parts])  # type: ignore[arg-type,type-var]
            offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
            np.cumsum(lengths, out=offsets[1:])
        sentence_terms = TermStats.concat([part.sentence_terms for part in parts])
        passage_terms = TermStats.concat([part.passage_terms for part in parts])
        entries = [entry for part in parts for entry in part.entries]
        vector_indexes = {name: info for name, (_, info) in tables.items()}
        counts = {"documents": len(documents), "sentences": len(sentences), "passages": len(passages)}
        model = first.manifest["model"]
        manifest = make_manifest(model["name"], model["dimension"], first.manifest["chunking"], entries,
                                 vector_indexes, counts, tokens is not None,
                                 str(first.manifest.get("created_at", _now())))
        return cls(documents, sentences, passages, tables["sentences"][0], tables["passages"][0],
                   sentence_terms.bm25(), passage_terms.bm25(), manifest, tokens, offsets,
                   sentence_terms, passage_terms, entries)

    def without(self, sources: Collection[str]) -> CorpusIndex:
        """This index minus the documents named ``sources`` (nothing is embedded again).

        Raises:
            IndexBuildError: No document would be left.
        """
        keep = [i for i, document in enumerate(self.documents) if document.source not in sources]
        if not keep:
            raise IndexBuildError("removing every document would leave an empty index; "
                                  "delete the index folder instead")
        doc_map = np.full(len(self.documents), -1, dtype=np.int64)
        doc_map[keep] = np.arange(len(keep))
        sentence_rows = np.asarray([i for i, r in enumerate(self.sentences) if doc_map[r.doc] >= 0],
                                   dtype=np.int64)
        passage_rows = np.asarray([i for i, p in enumerate(self.passages) if doc_map[p.doc] >= 0],
                                  dtype=np.int64)
        sentence_map = np.full(len(self.sentences), -1, dtype=np.int64)
        sentence_map[sentence_rows] = np.arange(len(sentence_rows))
        sentences = [dataclasses.replace(self.sentences[i], doc=int(doc_map[self.sentences[i].doc]))
                     for i in sentence_rows.tolist()]
        passages = [dataclasses.replace(p, doc=int(doc_map[p.doc]), first=int(sentence_map[p.first]),
                                        last=int(sentence_map[p.last]))
                    for p in (self.passages[i] for i in passage_rows.tolist())]
        sentence_index, sentence_info = build_vector_index(
            np.ascontiguousarray(self.sentence_vectors[sentence_rows]), threshold=APPROXIMATE_THRESHOLD)
        passage_index, passage_info = build_vector_index(
            np.ascontiguousarray(self.passage_vectors[passage_rows]), threshold=APPROXIMATE_THRESHOLD)
        tokens: np.ndarray | None = None
        offsets: np.ndarray | None = None
        if self.sentence_tokens is not None and self.sentence_token_offsets is not None:
            starts = self.sentence_token_offsets[sentence_rows]
            ends = self.sentence_token_offsets[sentence_rows + 1]
            tokens = np.concatenate([self.sentence_tokens[a:b] for a, b in zip(starts, ends, strict=True)])
            offsets = np.zeros(len(sentence_rows) + 1, dtype=np.int64)
            np.cumsum(ends - starts, out=offsets[1:])
        sentence_terms = self.sentence_terms.subset(sentence_rows)
        passage_terms = self.passage_terms.subset(passage_rows)
        documents = [self.documents[i] for i in keep]
        entries = [self.entries[i] for i in keep]
        counts = {"documents": len(documents), "sentences": len(sentences), "passages": len(passages)}
        model = self.manifest["model"]
        manifest = make_manifest(model["name"], model["dimension"], self.manifest["chunking"], entries,
                                 {"sentences": sentence_info, "passages": passage_info}, counts,
                                 tokens is not None, str(self.manifest.get("created_at", _now())))
        return CorpusIndex(documents, sentences, passages, sentence_index, passage_index,
                           sentence_terms.bm25(), passage_terms.bm25(), manifest, tokens, offsets,
                           sentence_terms, passage_terms, entries)


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
