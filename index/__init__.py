"""Index: the bundled embedding model, and the on-disk FAISS + BM25 corpus index.

Only this package imports faiss and sentence-transformers (the latter lazily).
"""

from index.cache import cache_root, cached_index
from index.encoder import MODEL_DIMENSION, MODEL_NAME, BundledEncoder, Encoder, default_encoder
from index.errors import IndexBuildError, IndexError_, IndexLoadError, ModelLoadError
from index.lexical import tokenize
from index.store import CorpusIndex, PassageRecord, SentenceRecord, build_and_save

__all__ = [
    "MODEL_DIMENSION",
    "MODEL_NAME",
    "BundledEncoder",
    "CorpusIndex",
    "Encoder",
    "IndexBuildError",
    "IndexError_",
    "IndexLoadError",
    "ModelLoadError",
    "PassageRecord",
    "SentenceRecord",
    "build_and_save",
    "cache_root",
    "cached_index",
    "default_encoder",
    "tokenize",
]
