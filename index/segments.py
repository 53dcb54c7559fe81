"""Joining indexes and dropping documents in memory, without embedding anything again.

Why a module of its own: ``add`` and ``remove`` (``index.collection``), uploads layered over
the shared index and loading a segmented index all reduce to two operations on built
indexes: ``merge`` (append the rows of later parts to the first part's vector index, concat
word counts and token vectors) and ``without`` (keep the other documents' rows).  Neither
touches the disk or the model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from typing import Any, TypeVar

import faiss
import numpy as np

from index.corpus_index import CorpusIndexData
from index.errors import IndexBuildError
from index.layout import LATE_INTERACTION_MAX_SENTENCES
from index.manifest import make_manifest
from index.records import PassageRecord, SentenceRecord, now
from index.terms import TermStats
from index.vectors import APPROXIMATE_THRESHOLD, FLAT, build_vector_index
from ingest import Document

C = TypeVar("C", bound=CorpusIndexData)
"""Any corpus index class (``index.store.CorpusIndex``): the operations make instances of it."""



def merge_indexes(cls: type[C], parts: Sequence[C], copy: bool = False) -> C:
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
                             str(first.manifest.get("created_at", now())))
    return cls(documents, sentences, passages, tables["sentences"][0], tables["passages"][0],
               sentence_terms.bm25(), passage_terms.bm25(), manifest, tokens, offsets,
               sentence_terms, passage_terms, entries)


def drop_documents(index: C, sources: Collection[str]) -> C:
    """This index minus the documents named ``sources`` (nothing is embedded again).

    Raises:
        IndexBuildError: No document would be left.
    """
    keep = [i for i, document in enumerate(index.documents) if document.source not in sources]
    if not keep:
        raise IndexBuildError("removing every document would leave an empty index; "
                              "delete the index folder instead")
    doc_map = np.full(len(index.documents), -1, dtype=np.int64)
    doc_map[keep] = np.arange(len(keep))
    sentence_rows = np.asarray([i for i, r in enumerate(index.sentences) if doc_map[r.doc] >= 0],
                               dtype=np.int64)
    passage_rows = np.asarray([i for i, p in enumerate(index.passages) if doc_map[p.doc] >= 0],
                              dtype=np.int64)
    sentence_map = np.full(len(index.sentences), -1, dtype=np.int64)
    sentence_map[sentence_rows] = np.arange(len(sentence_rows))
    sentences = [dataclasses.replace(index.sentences[i], doc=int(doc_map[index.sentences[i].doc]))
                 for i in sentence_rows.tolist()]
    passages = [dataclasses.replace(p, doc=int(doc_map[p.doc]), first=int(sentence_map[p.first]),
                                    last=int(sentence_map[p.last]))
                for p in (index.passages[i] for i in passage_rows.tolist())]
    sentence_index, sentence_info = build_vector_index(
        np.ascontiguousarray(index.sentence_vectors[sentence_rows]), threshold=APPROXIMATE_THRESHOLD)
    passage_index, passage_info = build_vector_index(
        np.ascontiguousarray(index.passage_vectors[passage_rows]), threshold=APPROXIMATE_THRESHOLD)
    tokens: np.ndarray | None = None
    offsets: np.ndarray | None = None
    if index.sentence_tokens is not None and index.sentence_token_offsets is not None:
        starts = index.sentence_token_offsets[sentence_rows]
        ends = index.sentence_token_offsets[sentence_rows + 1]
        tokens = np.concatenate([index.sentence_tokens[a:b] for a, b in zip(starts, ends, strict=True)])
        offsets = np.zeros(len(sentence_rows) + 1, dtype=np.int64)
        np.cumsum(ends - starts, out=offsets[1:])
    sentence_terms = index.sentence_terms.subset(sentence_rows)
    passage_terms = index.passage_terms.subset(passage_rows)
    documents = [index.documents[i] for i in keep]
    entries = [index.entries[i] for i in keep]
    counts = {"documents": len(documents), "sentences": len(sentences), "passages": len(passages)}
    model = index.manifest["model"]
    manifest = make_manifest(model["name"], model["dimension"], index.manifest["chunking"], entries,
                             {"sentences": sentence_info, "passages": passage_info}, counts,
                             tokens is not None, str(index.manifest.get("created_at", now())))
    return type(index)(documents, sentences, passages, sentence_index, passage_index,
                       sentence_terms.bm25(), passage_terms.bm25(), manifest, tokens, offsets,
                       sentence_terms, passage_terms, entries)
