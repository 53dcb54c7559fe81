"""The page's side of uploads: where Gradio stores them, and the one status line.

Reading, budgeting, indexing and freeing a session's documents belong to ``qa``
(``qa.UploadSessions``); this module only keeps Gradio's upload folder private (and cleans
up after a killed server) and words the status a visitor sees.
"""

from __future__ import annotations

import atexit
import contextlib
import html
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

UPLOAD_PREFIX = "speech-qa-uploads-"
"""Upload folders are ``speech-qa-uploads-<pid>-<random>`` in the temp folder; the pid
tells the next server whether the folder's owner is still running."""

_OWNED = re.compile(rf"^{re.escape(UPLOAD_PREFIX)}(\d+)-")


def _alive(pid: int) -> bool:
    """Whether a process with this id exists (another user's counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_upload_folders(temp_root: Path | None = None) -> list[Path]:
    """Delete upload folders left by servers that died without cleaning up (``kill -9``).

    Only folders of this user whose server process no longer exists are removed; a live
    server's folder (any pid still running) is left alone.

    Returns:
        The folders removed.
    """
    root = Path(temp_root or tempfile.gettempdir())
    removed = []
    with contextlib.suppress(OSError):
        for folder in root.iterdir():
            match = _OWNED.match(folder.name)
            if not match or int(match.group(1)) == os.getpid():
                continue
            with contextlib.suppress(OSError):
                if folder.is_dir() and not folder.is_symlink() and folder.stat().st_uid == os.getuid() \
                        and not _alive(int(match.group(1))):
                    shutil.rmtree(folder, ignore_errors=True)
                    removed.append(folder)
    if removed:
        logger.info("removed %d upload folder(s) left by a stopped server", len(removed))
    return removed


def private_upload_folder() -> Path:
    """Where Gradio keeps uploads: a fresh folder only this user can read, removed at exit.

    Why: Gradio's default, ``/tmp/gradio``, is shared and world-readable, so other users of
    the machine could read what visitors upload. Gradio sanitises upload names into this
    folder; ``GRADIO_TEMP_DIR`` set by the caller is respected. The folder's name carries
    this server's pid, so a server killed before its exit handler ran leaves a folder the
    next start recognises and removes.
    """
    folder = os.environ.get("GRADIO_TEMP_DIR")
    if not folder:
        remove_stale_upload_folders()
        folder = tempfile.mkdtemp(prefix=f"{UPLOAD_PREFIX}{os.getpid()}-")  # mode 0700
        os.environ["GRADIO_TEMP_DIR"] = folder
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return Path(folder)


def status_html(base_label: str, sources: Sequence[str] = (),
                problems: Sequence[dict[str, Any]] = ()) -> str:
    """Which corpus questions go to, plus any file that was not added (and why).

    Args:
        base_label: The shared collection ("the speech", "the collection").
        sources: The session's own documents.
        problems: ``UploadProblem.to_dict()`` rows of the last upload.
    """
    if sources:
        names = ", ".join(html.escape(name) for name in sources)
        lines = [f"<p><b>Searching:</b> {html.escape(base_label)} + {names}</p>"]
    else:
        lines = [f"<p><b>Searching:</b> {html.escape(base_label)}</p>"]
    for problem in problems:
        lead = "Could not read" if problem.get("kind") == "unreadable" else "Not added:"
        lines.append(f'<p class="upload-problem">{lead} {html.escape(str(problem["message"]))}</p>')
    if problems and not sources:
        lines.append(f"<p>Questions still go to {html.escape(base_label)}.</p>")
    return '<div class="corpus-status">' + "".join(lines) + "</div>"
