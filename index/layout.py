"""The on-disk layout of an index: its format name and version, and the names of its files.

Why a module of its own: the names are shared by the code that writes an index, the code
that validates it and the code that appends segments to it; keeping them in one place (with
no code) lets each of those import them without importing the others.

Layout of an index directory (all readable, none pickled):

- ``manifest.json``: format version, model and dimension, chunking, corpus hash, counts,
  vector-index kind, creation time, and the SHA-256 of every other file.
- ``documents.jsonl``: one repaired document per line (offsets point into these texts).
- ``sentences.jsonl`` / ``passages.jsonl``: one span per line; row i is FAISS row i.
- ``sentences.faiss`` / ``passages.faiss``: normalised embeddings.
- ``bm25_sentences/`` / ``bm25_passages/``: word counts (``index.terms``); in format 1,
  bm25s' own JSON + ``.npy`` score files.
- ``sentence_tokens.npy`` / ``sentence_token_offsets.npy`` (only when the manifest says
  ``"late_interaction": true``): every sentence's normalised MiniLM token vectors as one
  float16 ``(total_tokens, dim)`` array, and int64 offsets (sentence i is rows
  ``offsets[i]:offsets[i+1]``), for late-interaction (MaxSim) ranking. From format 3, a
  sentence that follows another in its paragraph has, after its own rows, one all-zero row
  and the rows of that sentence and itself encoded together (``index.context``).
- ``segments/<name>/`` (format 2, written by ``add``): more table sets of the same kind.
"""

from __future__ import annotations

import re

FORMAT_NAME = "speech-qa-index"
FORMAT_VERSION = 3
#: Format 1 (one table set, bm25s score files) still loads; ``add`` and ``remove`` rewrite
#: it as format 2 (term counts instead of scores, so BM25 follows the collection). Format 3
#: adds sentence-in-context rows to the token blocks; a format 2 index reads as one without
#: them (its sentences rank as if each opened its paragraph). The number changed so that an
#: older program refuses a format 3 index instead of misreading its token blocks.
READABLE_VERSIONS = (1, 2, 3)
SEGMENTS_DIR = "segments"
SEGMENT_PATTERN = re.compile(r"segments/[0-9]{6}-[0-9a-f]{8}")
MANIFEST = "manifest.json"
BACKUP_SUFFIX = ".previous"
TOKENS_FILE = "sentence_tokens.npy"
TOKEN_OFFSETS_FILE = "sentence_token_offsets.npy"
#: Corpora with at most this many sentences store token vectors (late interaction).
#: Why a limit: ~15-25 KB per sentence at float16 read alone, about 2.5 times that with the
#: in-context rows of format 3 (54 KB per sentence on the speech); beyond this the disk, memory and
#: build cost grow with little to gain, so big corpora stay exactly as before.
LATE_INTERACTION_MAX_SENTENCES = 20_000
