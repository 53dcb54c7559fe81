"""Check a FAISS file's declared sizes against its real size before FAISS reads it.

Why: FAISS trusts the lengths written in a file.  A vector length is read, the vector is
resized (and zero-filled) to that length, and only then is the data read; so a 365-byte
file that claims a 4 GB vector makes the process allocate and touch 4 GB before failing,
and one that claims 20 GB takes the machine down.  Index directories are something users
hand us, checksums do not help (a crafted index carries matching ones), so the layout is
walked here, without allocating, and any length that runs past the end of the file is
refused with the file's name.

Only the index kinds speech-qa writes are accepted: exact ``IndexFlat``; ``IndexHNSWFlat``
over it (written by earlier versions); ``IndexRefineFlat`` over an 8-bit
``IndexIVFScalarQuantizer`` with a flat quantizer and array inverted lists (the ``ivf``
kind); and ``IndexRefineFlat`` over an fp16 ``IndexScalarQuantizer`` (the ``scan`` kind,
whose codes must be exactly one per vector, of the size fp16 gives the dimension).
Anything else, other scalar quantizer types included, is refused rather than handed to
FAISS.  Besides lengths, the values
a search would trust are checked: the IVF list ids must be row numbers of the refine index
(which the re-ranking reads by id), the list sizes must add up to the row count, and the
beams (``efSearch``, ``k_factor``) must be of a size a search can allocate.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np

from index.errors import IndexLoadError

_FLAT = {b"IxFI", b"IxF2"}
_HNSW_FLAT = {b"IHNf"}
_REFINE = b"IxRF"
_IVF_SQ = {b"IwSq": True, b"IwSQ": False}  # kind -> a by_residual byte follows the code size
_SQ = b"IxSQ"  # IndexScalarQuantizer: the scan kind's base
_HEADER = struct.Struct("<iqqqBi")  # d, ntotal, dummy, dummy, is_trained, metric_type
_HNSW_SCALARS = struct.Struct("<5i")  # entry_point, max_level, efConstruction, efSearch, upper_beam
_SQ_TYPE = struct.Struct("<iifQQ")  # qtype, rangestat, rangestat_arg, d, code_size
_SQ8 = 0  # faiss.ScalarQuantizer.QT_8bit: one byte per dimension, two trained floats per dimension
_FP16 = 4  # faiss.ScalarQuantizer.QT_fp16: two bytes per dimension, nothing trained
_MAX_BEAM = 1 << 16  # efSearch: a search allocates this many heap slots (speech-qa calibrates <= 2048)
_CHUNK_ITEMS = 1 << 22  # HNSW neighbour ids are range-checked 16 MB at a time
_MAX_K_FACTOR = 64.0  # IndexRefine: a search shortlists k * k_factor candidates (speech-qa: 1-16)


def _sizes(raw: bytes) -> list[int]:
    return [int(size) for size in np.frombuffer(raw, dtype="<u8")]


def _id_range(raw: bytes) -> tuple[int, int]:
    ids = np.frombuffer(raw, dtype="<i8")
    return int(ids.min()), int(ids.max())


class _Walker:
    """Reads lengths from an open FAISS file, refusing any that overruns it."""

    def __init__(self, path: Path, file: BinaryIO, size: int) -> None:
        self.path = path
        self.file = file
        self.size = size
        self.pos = 0

    def fail(self, why: str) -> IndexLoadError:
        return IndexLoadError(f"{self.path}: not a readable FAISS index ({why})")

    def check(self, size: int, what: str) -> None:
        if size < 0 or self.pos + size > self.size:
            raise self.fail(f"{what} runs past the end of the file")

    def skip(self, size: int, what: str) -> None:
        self.check(size, what)
        self.pos += size
        self.file.seek(self.pos)

    def take(self, size: int, what: str) -> bytes:
        self.check(size, what)
        self.pos += size
        return self.file.read(size)

    def unpack(self, layout: str | struct.Struct, what: str) -> tuple[int | float, ...]:
        layout = layout if isinstance(layout, struct.Struct) else struct.Struct(layout)
        return layout.unpack(self.take(layout.size, what))

    def vector(self, item_size: int, what: str) -> int:
        (count,) = struct.unpack("<Q", self.take(8, what))
        self.skip(count * item_size, f"{what} ({count} items)")
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

    def sub_flat(self, role: str) -> tuple[int, int]:
        kind = self.take(4, f"{role} kind")
        if kind not in _FLAT:
            raise self.fail(f"{role} of kind {kind!r}")
        return self.flat()

    def array(self, dtype: str, what: str) -> np.ndarray:
        """A length-prefixed vector read into memory (for tables whose values FAISS trusts)."""
        item = np.dtype(dtype)
        (count,) = struct.unpack("<Q", self.take(8, what))
        return np.frombuffer(self.take(count * item.itemsize, f"{what} ({count} items)"), dtype=item)

    def hnsw(self) -> tuple[int, int]:
        """The graph's tables are read, not skipped: FAISS follows their values as array
        indexes without bounds checks, so a crafted level, offset, neighbour or entry point
        would make a search read (and the build write) outside its arrays."""
        dimension, ntotal = self.header()
        self.vector(8, "HNSW level probabilities")
        per_level = self.array("<i4", "HNSW neighbours per level").astype(np.int64)
        levels = self.array("<i4", "HNSW node levels").astype(np.int64)
        offsets = self.array("<u8", "HNSW neighbour offsets")
        neighbours_count = self.vector_count("HNSW neighbours")
        top = len(per_level) - 1
        if top < 1 or per_level[0] != 0 or (np.diff(per_level) < 0).any():
            raise self.fail("HNSW neighbours-per-level table is malformed")
        if len(levels) != ntotal or len(offsets) != ntotal + 1:
            raise self.fail(f"HNSW tables for {len(levels)} nodes, expected {ntotal}")
        if ntotal and (levels.min() < 1 or levels.max() > top):
            raise self.fail(f"HNSW node levels outside 1..{top}")
        if offsets[0] != 0 or int(offsets[-1]) != neighbours_count or \
                (np.diff(offsets.astype(np.int64)) != per_level[levels]).any():
            raise self.fail("HNSW neighbour offsets disagree with the node levels")
        for start in range(0, neighbours_count, _CHUNK_ITEMS):
            count = min(_CHUNK_ITEMS, neighbours_count - start)
            neighbours = np.frombuffer(self.take(4 * count, "HNSW neighbours"), dtype="<i4")
            if count and (neighbours.min() < -1 or neighbours.max() >= ntotal):
                raise self.fail("HNSW neighbour ids outside the table")
        entry_point, max_level, _, ef_search, _ = self.unpack(_HNSW_SCALARS, "HNSW parameters")
        if not 0 < ef_search <= _MAX_BEAM:
            raise self.fail(f"HNSW efSearch {ef_search}")
        if ntotal == 0:
            entry_ok = entry_point == -1 and max_level == -1
        else:
            entry_ok = 0 <= entry_point < ntotal and max_level == int(levels.max()) - 1 \
                and int(levels[int(entry_point)]) - 1 == max_level
        if not entry_ok:
            raise self.fail(f"HNSW entry point {entry_point} is not a node of the top level {max_level}")
        if self.sub_flat("HNSW storage") != (dimension, ntotal):
            raise self.fail("HNSW graph and storage disagree")
        return dimension, ntotal

    def vector_count(self, what: str) -> int:
        """A vector's length, checked against the file, leaving the position at its data."""
        (count,) = struct.unpack("<Q", self.take(8, what))
        self.check(count * 4, f"{what} ({count} items)")
        return int(count)

    def refine(self) -> tuple[int, int]:
        shape = self.header()
        kind = self.take(4, "refined index kind")
        if kind in _IVF_SQ:
            base, rows = self.ivf_sq(by_residual_byte=_IVF_SQ[kind]), "IVF lists"
        elif kind == _SQ:
            base, rows = self.scan_sq(), "scanned codes"
        else:
            raise self.fail(f"refined index of kind {kind!r}")
        if base != shape:
            raise self.fail(f"{rows} and their refine wrapper disagree")
        if self.sub_flat("refine index") != shape:
            raise self.fail(f"{rows} and refine rows disagree")
        (k_factor,) = self.unpack("<f", "k_factor")
        if not 1.0 <= k_factor <= _MAX_K_FACTOR:
            raise self.fail(f"k_factor {k_factor}")
        return shape

    def scan_sq(self) -> tuple[int, int]:
        """An ``IndexScalarQuantizer`` of fp16 codes (the scan kind's base): the header, the
        quantizer (type, range statistic and its argument, dimension, code size, trained
        values), then one code per vector."""
        dimension, ntotal = self.header()
        qtype, _, _, sq_dimension, code_size = self.unpack(_SQ_TYPE, "scalar quantizer")
        if qtype != _FP16:
            raise self.fail(f"scanned scalar quantizer of type {qtype}; speech-qa writes fp16 codes")
        trained = self.vector(4, "scalar quantizer ranges")
        if (sq_dimension, code_size, trained) != (dimension, 2 * dimension, 0):
            raise self.fail(f"fp16 scalar quantizer of dimension {sq_dimension}, code size {code_size}, "
                            f"{trained} ranges for {dimension}-dimensional vectors")
        codes = self.vector(1, "scanned codes")
        if codes != ntotal * code_size:
            raise self.fail(f"{codes} bytes of codes for {ntotal} vectors of {code_size} bytes")
        return dimension, ntotal

    def ivf_sq(self, by_residual_byte: bool) -> tuple[int, int]:
        dimension, ntotal = self.header()
        nlist, nprobe = self.unpack("<QQ", "IVF parameters")
        if self.sub_flat("IVF quantizer") != (dimension, nlist) or nlist == 0:
            raise self.fail(f"IVF quantizer is not {nlist} centroids of dimension {dimension}")
        if not 0 < int(nprobe) <= int(nlist):
            raise self.fail(f"IVF nprobe {nprobe} of {nlist} lists")
        (direct_map,) = self.take(1, "direct map type")
        mapped = self.vector(8, "direct map")
        if direct_map > 1 or mapped != (ntotal if direct_map else 0):  # none or an array, never a hash
            raise self.fail(f"IVF direct map of type {direct_map} with {mapped} entries")
        qtype, _, _, sq_dimension, sq_code_size = self.unpack(_SQ_TYPE, "scalar quantizer")
        trained = self.vector(4, "scalar quantizer ranges")
        (code_size,) = self.unpack("<Q", "IVF code size")
        if by_residual_byte and self.take(1, "by_residual flag")[0] > 1:
            raise self.fail("IVF by_residual flag is not a boolean")
        if (qtype, sq_dimension, sq_code_size, code_size, trained) != (
                _SQ8, dimension, dimension, dimension, 2 * dimension):
            raise self.fail(f"scalar quantizer of type {qtype}, dimension {sq_dimension}, code size "
                            f"{sq_code_size}/{code_size}, {trained} ranges; speech-qa writes 8-bit codes")
        self.inverted_lists(int(nlist), dimension, ntotal)
        return dimension, ntotal

    def inverted_lists(self, nlist: int, code_size: int, ntotal: int) -> None:
        kind = self.take(4, "inverted lists kind")
        if kind != b"ilar":
            raise self.fail(f"inverted lists of kind {kind!r}")
        if self.unpack("<QQ", "inverted lists shape") != (nlist, code_size):
            raise self.fail(f"inverted lists disagree with the IVF index's {nlist} lists "
                            f"of {code_size}-byte codes")
        encoding = self.take(4, "list sizes encoding")
        (count,) = self.unpack("<Q", "list sizes")
        sizes = _sizes(self.take(8 * int(count), f"list sizes ({count} items)"))
        if encoding == b"full":
            if len(sizes) != nlist:
                raise self.fail(f"{len(sizes)} list sizes for {nlist} lists")
        elif encoding == b"sprs":  # (list number, size) pairs for the non-empty lists
            numbers = sizes[0::2]
            if len(sizes) % 2 or numbers != sorted(set(numbers)) or any(n >= nlist for n in numbers):
                raise self.fail("sparse list sizes out of order or past the last list")
            sizes = sizes[1::2]
        else:
            raise self.fail(f"list sizes encoding {encoding!r}")
        if sum(sizes) != ntotal:
            raise self.fail(f"inverted lists hold {sum(sizes)} vectors, the header says {ntotal}")
        for size in sizes:
            if size:
                self.skip(size * code_size, f"list codes ({size} items)")
                low, high = _id_range(self.take(size * 8, f"list ids ({size} items)"))
                if low < 0 or high >= ntotal:
                    raise self.fail(f"list ids {low}..{high} outside 0..{ntotal - 1}")

    def index(self) -> tuple[int, int]:
        kind = self.take(4, "index kind")
        if kind in _FLAT:
            return self.flat()
        if kind in _HNSW_FLAT:
            return self.hnsw()
        if kind == _REFINE:
            return self.refine()
        raise self.fail(f"index kind {kind!r} is not one speech-qa writes")


def check_faiss_file(path: Path) -> tuple[int, int]:
    """Walk ``path``'s layout and return its (dimension, vector count).

    Reads only the fields that hold lengths and the IVF list ids (8 bytes per vector);
    vector data is skipped, not read.

    Raises:
        IndexLoadError: A length runs past the end of the file, trailing bytes follow the
            index, a size or id the index depends on is inconsistent, or the index kind is
            not one speech-qa writes.
    """
    with path.open("rb") as file:
        walker = _Walker(path, file, path.stat().st_size)
        shape = walker.index()
    if walker.pos != walker.size:
        raise walker.fail(f"{walker.size - walker.pos} unexpected bytes after the index")
    return shape
