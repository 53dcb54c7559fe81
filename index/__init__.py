"""Index: the bundled embedding model, and the on-disk FAISS + BM25 corpus index.

Only this package imports faiss, onnxruntime and sentence-transformers (the last two lazily;
questions are encoded by onnxruntime, and torch loads only to export the graph or as fallback).
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
from index.encoder import MODEL_DIMENSION, MODEL_NAME, BundledEncoder, Encoder
from index.errors import IndexBuildError, IndexError_, IndexLoadError, ModelLoadError
from index.lexical import tokenize
from index.onnx_cache import cached_onnx_session, onnx_threads
from index.onnx_encoder import OnnxEncoder, default_encoder
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
    "OnnxEncoder",
    "PassageRecord",
    "SentenceRecord",
    "UpdateOutcome",
    "add_in_memory",
    "add_to_index",
    "build_and_save",
    "cache_root",
    "cached_index",
    "cached_onnx_session",
    "check_index",
    "collection_hash",
    "default_encoder",
    "list_documents",
    "onnx_threads",
    "remove_from_index",
    "tokenize",
]
