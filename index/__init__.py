"""Index: the bundled embedding model, and the on-disk FAISS + BM25 corpus index.

Only this package imports faiss and sentence-transformers (the latter lazily).
"""

from index.cache import cache_root, cached_index
from index.collection import (
    ADD_STAGES,
    REMOVE_STAGES,
    UpdateOutcome,
    add_in_memory,
    add_to_index,
    check_index,
    list_documents,
    remove_from_index,
)
from index.encoder import MODEL_DIMENSION, MODEL_NAME, BundledEncoder, Encoder, default_encoder
from index.errors import IndexBuildError, IndexError_, IndexLoadError, ModelLoadError
from index.lexical import tokenize
from index.progress import BuildProgress
from index.records import DocumentEntry, PassageRecord, SentenceRecord, collection_hash
from index.store import CorpusIndex, build_and_save

__all__ = [
    "ADD_STAGES",
    "MODEL_DIMENSION",
    "MODEL_NAME",
    "REMOVE_STAGES",
    "BuildProgress",
    "BundledEncoder",
    "CorpusIndex",
    "DocumentEntry",
    "Encoder",
    "IndexBuildError",
    "IndexError_",
    "IndexLoadError",
    "ModelLoadError",
    "PassageRecord",
    "SentenceRecord",
    "UpdateOutcome",
    "add_in_memory",
    "add_to_index",
    "build_and_save",
    "cache_root",
    "cached_index",
    "check_index",
    "collection_hash",
    "default_encoder",
    "list_documents",
    "remove_from_index",
    "tokenize",
]
