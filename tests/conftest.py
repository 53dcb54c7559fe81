"""Shared test set-up: a private index cache, offline model loading, and a fake encoder.

The real bundled model runs in the default suite (it is the product); the fake encoder
is for tests about plumbing (offsets, save/load, errors) where the model adds nothing.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

# Before anything imports the engine: the default index cache must not be the user's, and
# the one made here leaves with the test run (every test module and server shares it).
if "SPEECH_QA_CACHE_DIR" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="speech-qa-test-cache-")
    os.environ["SPEECH_QA_CACHE_DIR"] = _cache
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


class FakeEncoder:
    """Deterministic bag-of-words hashing encoder: same words, similar vectors."""

    name = "fake-hashing-encoder"
    dimension = 64

    def encode(self, texts: list[str], *, batch_size: int = 64,
               show_progress: bool = False) -> np.ndarray:
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                digest = hashlib.md5(word.strip(".,;:!?\"'").encode()).digest()
                vectors[row, digest[0] % self.dimension] += 1.0
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return vectors / norms


@pytest.fixture
def fake_encoder() -> FakeEncoder:
    """A fast stand-in encoder for plumbing tests."""
    return FakeEncoder()


@pytest.fixture(scope="session")
def real_encoder():  # type: ignore[no-untyped-def]
    """The bundled all-MiniLM-L6-v2 (loaded once per test session)."""
    from index import default_encoder

    return default_encoder()


@pytest.fixture(scope="session")
def torch_encoder():  # type: ignore[no-untyped-def]
    """The same model through sentence-transformers on torch: the reference, and the fallback."""
    from index import BundledEncoder

    return BundledEncoder()


@pytest.fixture(scope="session")
def speech_path() -> Path:
    """The bundled speech inside the package."""
    from ingest import default_corpus_path

    return default_corpus_path()


def write_pdf(path: Path, pages: list[str]) -> Path:
    """Lay out a real multi-page PDF: one page per entry, the text wrapped into lines.

    fpdf2 wraps long text the way word processors do, so the reader sees hard-wrapped lines
    and page breaks inside sentences, as in real PDFs.  The built-in Helvetica covers
    Latin-1 only (so "m³" works, "€" does not).
    """
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(False)  # one entry, one page: page numbers in tests stay exact
    pdf.set_font("Helvetica", size=11)
    for text in pages:
        pdf.add_page()
        for paragraph in text.split("\n\n"):
            pdf.multi_cell(0, 6, paragraph, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(4)
    pdf.output(str(path))
    return path


@pytest.fixture
def make_pdf():  # type: ignore[no-untyped-def]
    """Factory ``make_pdf(tmp_path, pages, name="document.pdf") -> Path`` of multi-page PDFs."""

    def make(folder: Path, pages: list[str], name: str = "document.pdf") -> Path:
        return write_pdf(folder / name, pages)

    return make
