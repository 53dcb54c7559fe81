"""Asking within chosen documents: the collection cut down to them, ranked as if it were all.

Why a sub-index and not a filter on the answers: the ranking normalises every feature over
the corpus it is given (BM25's IDF and average length, the dense scores' z-scores, the
candidate sample, the calibrated confidence). Filtering the whole collection's ranking
afterwards would score a sentence against documents the caller excluded, and a document
with few good sentences would lose to ones that are not even searched. ``CorpusIndex.without``
(the same code ``remove`` uses; nothing is embedded) gives a real index of those documents
only, so the answer and its confidence are exactly what a collection holding only them
would give.

The cost is one copy of the chosen documents' vectors per distinct choice, kept for the few
most recent choices per served index (``RESTRICTED_CACHE``) and freed with that index.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence

from index import CorpusIndex
from qa.errors import QuestionError

MAX_SOURCES = 1000
"""Most names in one ``sources`` list: more is not a choice, it is the collection."""

RESTRICTED_CACHE = 8
"""Sub-indexes kept per served index (distinct ``sources`` choices, most recent first)."""

_RESTRICTED: weakref.WeakKeyDictionary[CorpusIndex, OrderedDict[frozenset[str], CorpusIndex]] = \
    weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def check_sources(index: CorpusIndex, sources: Sequence[str] | None) -> tuple[str, ...] | None:
    """The chosen document names, de-duplicated and sorted (None: the whole collection).

    Raises:
        QuestionError: ``sources`` is empty, too long, not a list of names, or names a
            document the collection does not hold (each unknown name is given).
    """
    if sources is None:
        return None
    if isinstance(sources, str) or not all(isinstance(name, str) for name in sources):
        raise QuestionError("sources must be a list of document names")
    names = tuple(sorted(set(sources)))
    if not names:
        raise QuestionError("sources is empty: name at least one document, or leave it out "
                            "to ask the whole collection")
    if len(names) > MAX_SOURCES:
        raise QuestionError(f"sources names {len(names)} documents; at most {MAX_SOURCES}")
    known = {document.source for document in index.documents}
    unknown = [name for name in names if name not in known]
    if unknown:
        shown = ", ".join(repr(name[:200]) for name in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise QuestionError(f"no document named {shown}{more} in this collection "
                            "(GET /api/documents or 'speech-qa list' shows the names)")
    return None if len(names) == len(known) else names


def restricted(index: CorpusIndex, sources: tuple[str, ...] | None) -> CorpusIndex:
    """``index`` cut down to ``sources`` (as ``check_sources`` returned them), cached.

    The sub-index is built at most once per choice while it stays among the recent ones;
    concurrent first askers of one choice may build it twice (both correct), never block
    each other on a slow build.
    """
    if sources is None:
        return index
    key = frozenset(sources)
    with _LOCK:
        cached = _RESTRICTED.get(index)
        hit = cached.get(key) if cached is not None else None
        if hit is not None and cached is not None:
            cached.move_to_end(key)
            return hit
    keep = set(sources)
    cut = index.without({document.source for document in index.documents if document.source not in keep})
    with _LOCK:
        cached = _RESTRICTED.setdefault(index, OrderedDict())
        cached[key] = cut
        while len(cached) > RESTRICTED_CACHE:
            cached.popitem(last=False)
    return cut


__all__ = ["MAX_SOURCES", "RESTRICTED_CACHE", "check_sources", "restricted"]
