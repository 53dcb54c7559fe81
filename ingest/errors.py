"""Errors raised while reading and preparing documents.

One small hierarchy so callers (CLI, UI) can turn any ingest failure into a one-line
message that names the file at fault, without catching unrelated bugs.
"""

from __future__ import annotations


class IngestError(Exception):
    """A document could not be read or prepared; the message names the file."""


class UnsupportedFileError(IngestError):
    """The file's extension is not one we can read."""


class EmptyDocumentError(IngestError):
    """The file was read but holds no text (empty, blank, or a PDF with no text layer)."""
