"""Crash-safe replacement of an index directory: lock, temporary sibling, two renames, recovery.

Why a module of its own: this is the promise that a kill at any moment leaves the old index
or the new one, never a mix.  A full save and every update (``index.collection``) rely on
the same lock, flushes and recovery, so they live here once, apart from what is written.

How a save goes: under an ``flock`` on the parent folder, the new index is written into a
sibling ``.<name>.tmp-*`` directory and flushed; the old index is renamed to
``<name>.previous``, the new one renamed into place, and the backup deleted.  A crash
between the two renames leaves only the backup, which the next save or load restores.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from index.errors import IndexBuildError
from index.layout import BACKUP_SUFFIX, MANIFEST

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def parent_lock(parent: Path) -> Iterator[int | None]:
    """Serialise saves into one folder: two ``speech-qa index`` runs at once must not
    delete each other's temporary directory.  The lock is ``flock`` on the folder itself,
    so nothing is left behind; where ``flock`` does not exist the save runs unlocked."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield None
        return
    fd = os.open(parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)  # closing releases the lock


def refuse_foreign(target: Path) -> None:
    """Refuse to replace a file, or a non-empty directory that is not a speech-qa index."""
    if target.is_file():
        raise IndexBuildError(f"{target}: is a file, not an index directory")
    if target.is_dir() and any(target.iterdir()) and not (target / MANIFEST).is_file():
        raise IndexBuildError(
            f"{target}: directory is not empty and is not a speech-qa index; refusing to replace it"
        )


def cleanup_stale(target: Path) -> None:
    """Remove temporary directories left by a crashed save (never a complete index)."""
    recover(target)
    for stale in target.parent.glob(f".{target.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)


def recover(target: Path) -> None:
    """A crash between the two renames of ``save`` leaves only the backup: restore it."""
    backup = target.with_name(target.name + BACKUP_SUFFIX)
    if not target.exists() and backup.is_dir():
        logger.warning("restoring %s from %s after an interrupted save", target, backup)
        os.rename(backup, target)


def fsync_tree(folder: Path) -> None:
    """Flush every file under ``folder`` to disk (before a rename makes it the index)."""
    for path in folder.rglob("*"):
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())


def fsync_dir(folder: Path) -> None:
    """Flush a directory's entries (so a rename inside it survives a power cut)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_directory(target: Path, parent_fd: int | None, write: Callable[[Path], None]) -> None:
    """Replace ``target`` by what ``write`` puts into a fresh folder, crash-safely.

    The caller holds ``parent_lock(target.parent)`` (its descriptor is ``parent_fd``).

    Raises:
        IndexBuildError: ``target`` is foreign, or writing failed (the previous index, if
            any, is intact and the temporary folder is gone).
    """
    refuse_foreign(target)  # re-check under the lock
    cleanup_stale(target)
    temporary = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        write(temporary)
        fsync_tree(temporary)
    except Exception as exc:
        shutil.rmtree(temporary, ignore_errors=True)
        raise IndexBuildError(f"{target}: could not write the index ({exc})") from exc
    backup = target.with_name(target.name + BACKUP_SUFFIX)
    if target.exists():
        shutil.rmtree(backup, ignore_errors=True)
        os.rename(target, backup)
    os.rename(temporary, target)
    if parent_fd is not None:
        os.fsync(parent_fd)  # the renames survive a power cut, not only a kill
    shutil.rmtree(backup, ignore_errors=True)
