"""The dense vector index: which FAISS index to use, and reading vectors back.

Inner product over L2-normalised vectors is cosine similarity.  Exact search
(``IndexFlatIP``) is the right choice at the sizes of a speech or a report collection.
"""

from __future__ import annotations

import faiss
import numpy as np

FLAT = "flat"


def build_vector_index(vectors: np.ndarray) -> tuple[faiss.Index, str]:
    """Build the index for ``vectors`` (rows L2-normalised).

    Returns:
        The index and its kind (recorded in the manifest).
    """
    index = faiss.IndexFlatIP(vectors.shape[1])
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index, FLAT


def all_vectors(index: faiss.Index) -> np.ndarray:
    """Every stored vector, row i for item i (for per-sentence dot products)."""
    if index.ntotal == 0:
        return np.zeros((0, index.d), dtype=np.float32)
    return np.asarray(index.reconstruct_n(0, index.ntotal), dtype=np.float32)


def search(index: faiss.Index, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` items for one normalised query vector: (scores, ids), ids -1 padded."""
    k = max(1, min(k, index.ntotal))
    scores, ids = index.search(np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32), k)
    return scores[0], ids[0]
