"""A browser session's own documents: read the uploaded files and give the session an engine.

Uploaded documents live in the browser session (``gr.State``): each session that uploads
gets its own engine over the base corpus plus its files, and the shared engine is never
modified.
"""

from __future__ import annotations

import atexit
import html
import logging
import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index import Encoder
from ingest import Document, IngestError, document_from_bytes
from qa import QA

logger = logging.getLogger(__name__)

@dataclass(frozen=True)
class SessionCorpus:
    """A session's own corpus: the base documents plus its uploads, with their engine.

    Attributes:
        engine: Answers over base + uploads (built for this session only).
        uploads: Display names of the uploaded documents, in upload order.
    """

    engine: QA
    uploads: tuple[str, ...]


class MemoEncoder:
    """Wraps an encoder and remembers the embeddings of texts it has seen.

    Why: every upload builds a session index over the base corpus *plus* the files, and
    re-embedding the whole speech costs seconds on a CPU for every upload. The base texts
    are the same each time, so after the first upload only the new files are embedded.
    Bounded (least recently used first out) so a busy server's memory stays flat.
    """

    def __init__(self, inner: Encoder, max_items: int = 50_000) -> None:
        self._inner = inner
        self.name = inner.name
        self.dimension = inner.dimension
        self._memo: OrderedDict[str, np.ndarray] = OrderedDict()
        self._max_items = max_items
        self._lock = threading.Lock()

    def encode(self, texts: list[str], *, batch_size: int = 64,
               show_progress: bool = False) -> np.ndarray:
        """Embeddings of ``texts``; only texts not seen before reach the model."""
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._memo))
        if missing:
            fresh = self._inner.encode(missing, batch_size=batch_size, show_progress=show_progress)
            with self._lock:
                for text, vector in zip(missing, fresh, strict=True):
                    self._memo[text] = vector
                while len(self._memo) > self._max_items:
                    self._memo.popitem(last=False)
        with self._lock:
            rows = []
            for text in texts:
                vector = self._memo.get(text)
                if vector is None:  # evicted meanwhile by a concurrent upload: embed again
                    vector = self._inner.encode([text])[0]
                else:
                    self._memo.move_to_end(text)
                rows.append(vector)
        if not rows:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.ascontiguousarray(np.stack(rows), dtype=np.float32)


def _unique(name: str, taken: set[str]) -> str:
    """A display name not yet used in the corpus (the same file name can be uploaded twice)."""
    label, counter = name, 2
    while label in taken:
        label = f"{Path(name).stem} ({counter}){Path(name).suffix}"
        counter += 1
    taken.add(label)
    return label


def status_html(session: SessionCorpus | None, problems: Sequence[str] = ()) -> str:
    """Which corpus questions go to, plus any upload that could not be read."""
    if session:
        names = ", ".join(html.escape(name) for name in session.uploads)
        lines = [f"<p><b>Searching:</b> the speech + {names}</p>"]
    else:
        lines = ["<p><b>Searching:</b> the speech</p>"]
    lines += [f'<p class="upload-problem">Could not read {html.escape(problem)}</p>'
              for problem in problems]
    if problems and not session:
        lines.append("<p>Questions still go to the speech.</p>")
    return '<div class="corpus-status">' + "".join(lines) + "</div>"


def read_uploads(base: QA, files: Sequence[str] | None,
                 encoder: Encoder | None = None) -> tuple[SessionCorpus | None, list[str]]:
    """Read uploaded files and index them together with the base corpus.

    A file that cannot be read is reported, not fatal: the readable ones are still used,
    and with none readable the session simply keeps asking the base corpus.

    Args:
        base: The shared engine; its documents and its (already loaded) model are reused.
        files: Paths of the uploaded copies (Gradio keeps the original file names).
        encoder: Embeds the session corpus (default: the base engine's encoder).

    Returns:
        The session corpus (None when nothing was readable) and one message per bad file.
    """
    documents: list[Document] = []
    problems: list[str] = []
    taken = {document.doc_id for document in base.index.documents}
    for file in files or []:
        path = Path(file)
        try:
            document = document_from_bytes(path.name, path.read_bytes())
        except IngestError as exc:
            problems.append(str(exc))
            continue
        except OSError as exc:
            problems.append(f"{path.name}: the upload could not be opened ({exc.strerror})")
            continue
        label = _unique(document.source, taken)
        documents.append(Document(doc_id=label, source=label, text=document.text))
    if not documents:
        return None, problems
    engine = QA.from_documents([*base.index.documents, *documents], encoder=encoder or base.encoder)
    logger.info("session corpus: %s", ", ".join(d.source for d in documents))
    return SessionCorpus(engine=engine, uploads=tuple(d.source for d in documents)), problems


def private_upload_folder() -> Path:
    """Where Gradio keeps uploads: a fresh folder only this user can read, removed at exit.

    Why: Gradio's default, ``/tmp/gradio``, is shared and world-readable, so other users of
    the machine could read what visitors upload. Gradio sanitises upload names into this
    folder; ``GRADIO_TEMP_DIR`` set by the caller is respected.
    """
    folder = os.environ.get("GRADIO_TEMP_DIR")
    if not folder:
        folder = tempfile.mkdtemp(prefix="speech-qa-uploads-")  # mode 0700
        os.environ["GRADIO_TEMP_DIR"] = folder
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return Path(folder)
