"""Errors raised while reading and preparing documents.

One small hierarchy so callers (CLI, UI) can turn any ingest failure into a one-line
message that names the file at fault, without catching unrelated bugs.
"""

from __future__ import annotations


class SpeechQAError(Exception):
    """Base of every error speech-qa raises on purpose (bad input, unreadable file, bad index).

    Why one base: a caller (the CLI, the page, a script) can catch everything the product
    refuses deliberately with one ``except`` and still let real bugs surface as tracebacks.
    It lives in ``ingest`` because imports go one way (ingest <- index <- qa <- ui); ``qa``
    re-exports it.
    """


class IngestError(SpeechQAError):
    """A document could not be read or prepared; the message names the file."""


class UnsupportedFileError(IngestError):
    """The file's extension is not one we can read."""


class EmptyDocumentError(IngestError):
    """The file was read but holds no text (empty, blank, or a PDF with no text layer)."""
