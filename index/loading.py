"""Loading an index directory: every file checked against the manifest, every segment joined.

Why a module of its own: an index on disk may be damaged, hand-made or hostile; loading is
the one place that decides it is whole (hashes before any parser runs, counts, spans, the
manifest's document list against the tables) and turns its segments into one
``CorpusIndex``.  The per-file readers are ``index.tables``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import faiss

from index.corpus_index import CorpusIndexData
from index.errors import IndexLoadError
from index.faiss_guard import check_faiss_file
from index.layout import MANIFEST
from index.manifest import checked_manifest, read_entries, sha256
from index.records import PassageRecord, SentenceRecord, document_counts
from index.segments import merge_indexes
from index.tables import check_spans, load_bm25, load_tokens, read_documents, read_records
from index.terms import FILES as TERM_FILES
from index.terms import TermStats

C = TypeVar("C", bound=CorpusIndexData)
"""Any corpus index class (``index.store.CorpusIndex``): the operations make instances of it."""



def load_index(cls: type[C], folder: Path | str,
               expected_model: str | None = None) -> C:
    """Read and validate an index directory.

    Args:
        folder: The index directory.
        expected_model: Refuse an index built with another model.

    Raises:
        IndexLoadError: Missing, foreign, corrupt, or mismatched index; the message
            names the file at fault.
    """
    folder = Path(folder).absolute()
    manifest = checked_manifest(folder, expected_model)
    for name, digest in manifest["files"].items():
        path = folder / name
        if not path.is_file():
            raise IndexLoadError(f"{path}: missing from the index")
        if sha256(path) != digest:
            raise IndexLoadError(f"{path}: corrupt (checksum does not match the manifest)")
    if manifest["format_version"] == 1:
        return load_segment(cls, folder, manifest, manifest["counts"], legacy=True)
    parts = [load_segment(cls, folder / segment["path"], manifest, segment["counts"],
                          late=segment["late_interaction"], prefix=segment["path"])
             for segment in manifest["segments"]]
    merged = parts[0] if len(parts) == 1 else merge_indexes(cls, parts)
    counts = manifest["counts"]
    for name, rows in (("documents", merged.documents), ("sentences", merged.sentences),
                       ("passages", merged.passages)):
        if len(rows) != counts.get(name):
            raise IndexLoadError(f"{folder / (name + '.jsonl')}: the index has {len(rows)} "
                                 f"rows, manifest says {counts.get(name)}")
    entries = read_entries(folder, manifest)
    actual = [(d.source, *counts) for d, counts in zip(
        merged.documents, document_counts(merged.documents, merged.sentences, merged.passages),
        strict=True)]
    if [(e.source, e.passages, e.sentences) for e in entries] != actual:
        raise IndexLoadError(f"{folder / MANIFEST}: its document list does not match the tables")
    merged.entries = entries
    merged.manifest = manifest
    return merged


def load_segment(cls: type[C], folder: Path, manifest: dict[str, Any], counts: dict[str, Any],
                 late: bool = False, prefix: str = "", legacy: bool = False) -> C:
    """Read and validate one segment's tables (a format-1 index is one segment whose
    BM25 tables are bm25s' own files)."""
    listed = {name[len(prefix) + 1:] if prefix else name for name in manifest["files"]
              if not prefix or name.startswith(prefix + "/")}
    for name in ("documents.jsonl", "sentences.jsonl", "passages.jsonl", "sentences.faiss",
                 "passages.faiss"):
        if name not in listed:
            raise IndexLoadError(f"{folder / name}: missing from the manifest's file list")
    documents = read_documents(folder / "documents.jsonl")
    sentences = read_records(folder / "sentences.jsonl", SentenceRecord)
    passages = read_records(folder / "passages.jsonl", PassageRecord)
    for name, rows in (("documents", documents), ("sentences", sentences), ("passages", passages)):
        if len(rows) != counts.get(name):
            raise IndexLoadError(
                f"{folder / (name + '.jsonl')}: has {len(rows)} rows, manifest says {counts.get(name)}"
            )
    indexes = []
    for name, expected in (("sentences.faiss", len(sentences)), ("passages.faiss", len(passages))):
        try:
            check_faiss_file(folder / name)  # lengths vs file size, before FAISS allocates
            vector_index = faiss.read_index(str(folder / name))
        except (RuntimeError, MemoryError) as exc:
            raise IndexLoadError(f"{folder / name}: not a readable FAISS index") from exc
        if vector_index.ntotal != expected or vector_index.d != manifest["model"]["dimension"]:
            raise IndexLoadError(
                f"{folder / name}: holds {vector_index.ntotal} vectors of dimension "
                f"{vector_index.d}, expected {expected} of {manifest['model']['dimension']}"
            )
        indexes.append(vector_index)
    check_spans(folder, documents, sentences, passages)
    sentence_terms: TermStats | None = None
    passage_terms: TermStats | None = None
    if legacy:
        sentence_bm25 = load_bm25(folder / "bm25_sentences", len(sentences))
        passage_bm25 = load_bm25(folder / "bm25_passages", len(passages))
        tokens, offsets = load_tokens(folder, manifest, len(sentences))
    else:
        for table in ("bm25_sentences", "bm25_passages"):
            for name in TERM_FILES:
                if f"{table}/{name}" not in listed:
                    raise IndexLoadError(
                        f"{folder / table / name}: missing from the manifest's file list")
        sentence_terms = TermStats.load(folder / "bm25_sentences", len(sentences))
        passage_terms = TermStats.load(folder / "bm25_passages", len(passages))
        sentence_bm25 = sentence_terms.bm25()
        passage_bm25 = passage_terms.bm25()
        tokens, offsets = load_tokens(
            folder, {"late_interaction": late and manifest["late_interaction"] is True,
                     "files": dict.fromkeys(listed, ""), "model": manifest["model"]}, len(sentences))
    return cls(documents, sentences, passages, indexes[0], indexes[1],
               sentence_bm25, passage_bm25, manifest, tokens, offsets,
               sentence_terms, passage_terms)
