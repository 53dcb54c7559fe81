"""Check a FAISS file's declared sizes against its real size before FAISS reads it.

Why: FAISS trusts the lengths written in a file.  A vector length is read, the vector is
resized (and zero-filled) to that length, and only then is the data read; so a 365-byte
file that claims a 4 GB vector makes the process allocate and touch 4 GB before failing,
and one that claims 20 GB takes the machine down.  Index directories are something users
hand us, checksums do not help (a crafted index carries matching ones), so the layout is
walked here, without allocating, and any length that runs past the end of the file is
refused with the file's name.

Only the index kinds speech-qa writes are accepted (exact ``IndexFlat`` and
``IndexHNSWFlat`` over it); anything else is refused rather than handed to FAISS.
"""

from __future__ import annotations

import struct
from pathlib import Path

from index.errors import IndexLoadError

_FLAT = {b"IxFI", b"IxF2"}
_HNSW_FLAT = {b"IHNf"}
_HEADER = struct.Struct("<iqqqBi")  # d, ntotal, dummy, dummy, is_trained, metric_type
_HNSW_VECTORS = (8, 4, 4, 8, 4)  # assign_probas, cum_nneighbor_per_level, levels, offsets, neighbors
_HNSW_SCALARS = 5 * 4  # entry_point, max_level, efConstruction, efSearch, (deprecated) upper_beam


class _Walker:
    """Reads lengths from an in-memory FAISS file, refusing any that overruns it."""

    def __init__(self, path: Path, data: bytes) -> None:
        self.path = path
        self.data = data
        self.pos = 0

    def fail(self, why: str) -> IndexLoadError:
        return IndexLoadError(f"{self.path}: not a readable FAISS index ({why})")

    def take(self, size: int, what: str) -> bytes:
        if size < 0 or self.pos + size > len(self.data):
            raise self.fail(f"{what} runs past the end of the file")
        chunk = self.data[self.pos:self.pos + size]
        self.pos += size
        return chunk

    def vector(self, item_size: int, what: str) -> int:
        (count,) = struct.unpack("<Q", self.take(8, what))
        self.take(count * item_size, f"{what} ({count} items)")
        return count

    def header(self) -> tuple[int, int]:
        dimension, ntotal, _, _, _, metric = _HEADER.unpack(self.take(_HEADER.size, "header"))
        if metric > 1:
            self.take(4, "metric argument")
        if not 0 < dimension <= 65536 or ntotal < 0:
            raise self.fail(f"dimension {dimension}, {ntotal} vectors")
        return dimension, ntotal

    def flat(self) -> tuple[int, int]:
        dimension, ntotal = self.header()
        codes = self.vector(4, "vector data")  # stored in units of 4 bytes
        if codes * 4 != ntotal * dimension * 4:
            raise self.fail(f"{codes * 4} bytes of vectors for {ntotal} x {dimension} floats")
        return dimension, ntotal

    def index(self) -> tuple[int, int]:
        kind = self.take(4, "index kind")
        if kind in _FLAT:
            return self.flat()
        if kind in _HNSW_FLAT:
            dimension, ntotal = self.header()
            for number, item_size in enumerate(_HNSW_VECTORS):
                self.vector(item_size, f"HNSW table {number}")
            self.take(_HNSW_SCALARS, "HNSW parameters")
            storage = self.take(4, "storage kind")
            if storage not in _FLAT:
                raise self.fail(f"HNSW storage of kind {storage!r}")
            if self.flat() != (dimension, ntotal):
                raise self.fail("HNSW graph and storage disagree")
            return dimension, ntotal
        raise self.fail(f"index kind {kind!r} is not one speech-qa writes")


def check_faiss_file(path: Path) -> tuple[int, int]:
    """Walk ``path``'s layout and return its (dimension, vector count).

    Raises:
        IndexLoadError: A length runs past the end of the file, trailing bytes follow the
            index, or the index kind is not one speech-qa writes.
    """
    walker = _Walker(path, path.read_bytes())
    shape = walker.index()
    if walker.pos != len(walker.data):
        raise walker.fail(f"{len(walker.data) - walker.pos} unexpected bytes after the index")
    return shape
