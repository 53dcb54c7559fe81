"""Ingest: read files into repaired documents, split sentences, group passages.

Imports go one way (ingest <- index <- qa <- ui); this package imports none of the others.
"""

from ingest.corpus import (
    DEFAULT_CORPUS_NAME,
    DEFAULT_CORPUS_TITLE,
    SKIP_DUPLICATE,
    SKIP_UNREADABLE,
    SKIP_UNSUPPORTED,
    IngestReport,
    SkippedFile,
    corpus_hash,
    default_corpus_path,
    default_documents,
    document_from_bytes,
    load_document,
    load_documents,
    read_collection,
)
from ingest.document import Document, PassageSpan, SentenceSpan
from ingest.errors import EmptyDocumentError, IngestError, SpeechQAError, UnsupportedFileError
from ingest.readers import SUPPORTED_SUFFIXES, read_file
from ingest.repair import repair_pages, repair_text
from ingest.segment import ChunkingParams, make_passages, split_sentences

__all__ = [
    "DEFAULT_CORPUS_NAME",
    "DEFAULT_CORPUS_TITLE",
    "SKIP_DUPLICATE",
    "SKIP_UNREADABLE",
    "SKIP_UNSUPPORTED",
    "SUPPORTED_SUFFIXES",
    "ChunkingParams",
    "Document",
    "EmptyDocumentError",
    "IngestError",
    "IngestReport",
    "PassageSpan",
    "SentenceSpan",
    "SkippedFile",
    "SpeechQAError",
    "UnsupportedFileError",
    "corpus_hash",
    "default_corpus_path",
    "default_documents",
    "document_from_bytes",
    "load_document",
    "load_documents",
    "make_passages",
    "read_collection",
    "read_file",
    "repair_pages",
    "repair_text",
    "split_sentences",
]
