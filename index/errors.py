"""Errors of the index layer: building, saving and (validated) loading."""

from __future__ import annotations

from ingest.errors import SpeechQAError


class IndexError_(SpeechQAError):
    """Base of index errors (named with a trailing underscore to avoid the builtin)."""


class IndexLoadError(IndexError_):
    """An index directory is missing, corrupt, foreign, or built with another model."""


class IndexBuildError(IndexError_):
    """An index could not be built or saved; any previous index is left untouched."""


class ModelLoadError(IndexError_):
    """The bundled embedding model is not installed or cannot be loaded."""
