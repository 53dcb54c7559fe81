"""The default corpus' index, built on first use and cached in the user's cache dir.

Why cache: embedding the speech takes a second or two plus the model load; a cached index
makes every later start cheap.  The cache key covers everything that changes the index
(corpus text, model, chunking, format version), so a changed key simply means another
directory, built by itself; a corrupt cache entry is rebuilt, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict
from pathlib import Path

import platformdirs

from index.encoder import Encoder
from index.errors import IndexLoadError
from index.layout import FORMAT_VERSION, LATE_INTERACTION_MAX_SENTENCES
from index.store import CorpusIndex, build_and_save
from ingest import ChunkingParams, Document, corpus_hash

logger = logging.getLogger(__name__)

CACHE_ENV = "SPEECH_QA_CACHE_DIR"


def cache_root() -> Path:
    """Where cached indexes live (``$SPEECH_QA_CACHE_DIR`` or the platform cache dir)."""
    override = os.environ.get(CACHE_ENV)
    return Path(override) if override else Path(platformdirs.user_cache_dir("speech-qa"))


def cache_key(documents: list[Document], model_name: str, params: ChunkingParams) -> str:
    """Short hash of corpus + model + chunking + format: equal keys mean equal indexes."""
    material = json.dumps(
        {"corpus": corpus_hash(documents), "model": model_name,
         "chunking": asdict(params), "format": FORMAT_VERSION,
         # Indexes cached before sentence token vectors existed lack them: a new key
         # rebuilds them once instead of silently ranking without late interaction.
         "late_interaction": LATE_INTERACTION_MAX_SENTENCES},
        sort_keys=True,
    )
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def cached_index(documents: list[Document], encoder: Encoder,
                 params: ChunkingParams | None = None, name: str = "default") -> CorpusIndex:
    """Load the cached index of ``documents``, building and caching it when needed.

    Args:
        documents: The corpus (usually the bundled speech).
        encoder: Used only when the index must be (re)built.
        params: Chunking parameters (part of the key).
        name: Prefix of the cache directory name.
    """
    params = params or ChunkingParams()
    folder = cache_root() / f"{name}-{cache_key(documents, encoder.name, params)}"
    if folder.exists():
        try:
            return CorpusIndex.load(folder, expected_model=encoder.name)
        except IndexLoadError as exc:
            logger.warning("cached index unusable, rebuilding: %s", exc)
    logger.info("building the index of the default corpus in %s", folder)
    return build_and_save(documents, encoder, folder, params)
