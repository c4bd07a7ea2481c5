"""The per-key cross-process lock of the cache, whose file is removed when it is released.

``<root>/locks/<key>.lock`` is locked with ``flock`` (POSIX; elsewhere ``filelock``). A lock dies
with the process holding it (``kill -9`` included). The holder removes the file before it lets
go, and whoever takes the lock checks that the file it locked is still the one at the path (same
inode), else it tries again: so removing lock files is safe, and the ``locks/`` directory holds
only the files of locks being held or of holders that were killed (which the next holder, or
:func:`sweep`, removes).

Owns: :func:`acquire` / :func:`release` (take; remove the file and let go), :func:`sweep`
(remove lock files nobody holds), :func:`held` (count them) and :class:`LockTimeout`.

May import: the standard library and filelock (lazily, where ``fcntl`` is missing).
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover  (Windows)
    fcntl = None  # type: ignore[assignment]


class LockTimeout(Exception):
    """The lock was not taken within the timeout."""


def _try(path: Path) -> int | None:
    """The descriptor of ``path`` locked by this process, or None when another holds it (or the
    file this locked is no longer the one at ``path``)."""
    assert fcntl is not None
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    try:
        same = os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        same = False
    if not same:  # removed (and maybe re-created) by the holder we waited for: try again
        os.close(fd)
        return None
    return fd


def _release(path: Path, fd: int) -> None:
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # while still held: whoever opens the path now makes a new file
    finally:
        os.close(fd)  # (closing releases the flock)


class Held:
    """A lock this process holds: release it with :func:`release`."""

    def __init__(self, path: Path, fd: int = -1, other: object = None) -> None:
        self.path, self.fd, self.other = path, fd, other


def acquire(path: Path, timeout: float) -> Held:
    """Take the lock ``path``, waiting up to ``timeout`` seconds (else :class:`LockTimeout`);
    ``OSError`` when the lock file cannot be created."""
    if fcntl is None:  # pragma: no cover
        import filelock

        lock = filelock.FileLock(str(path), timeout=timeout, mode=0o600)
        try:
            lock.acquire()
        except filelock.Timeout:
            raise LockTimeout(str(path)) from None
        return Held(path, other=lock)
    deadline = time.monotonic() + timeout
    pause = 0.002
    while True:
        fd = _try(path)
        if fd is not None:
            return Held(path, fd)
        if time.monotonic() >= deadline:
            raise LockTimeout(str(path))
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def release(held: Held) -> None:
    """Remove the lock file and let go of the lock."""
    if held.other is not None:  # pragma: no cover
        held.other.release()  # type: ignore[attr-defined]
        return
    _release(held.path, held.fd)


def sweep(folder: Path) -> int:
    """Remove the lock files in ``folder`` that no process holds; return how many."""
    if fcntl is None or not folder.is_dir():  # pragma: no cover
        return 0
    removed = 0
    for path in list(folder.glob("*.lock")):
        with contextlib.suppress(OSError):
            fd = _try(path)
            if fd is not None:
                _release(path, fd)
                removed += 1
    return removed


def held(folder: Path) -> tuple[int, int]:
    """``(files, held)``: how many lock files ``folder`` has and how many a process holds."""
    if fcntl is None or not folder.is_dir():  # pragma: no cover
        return 0, 0
    files = holders = 0
    for path in list(folder.glob("*.lock")):
        files += 1
        with contextlib.suppress(OSError):
            fd = os.open(path, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(fd, fcntl.LOCK_UN)
            except BlockingIOError:
                holders += 1
            finally:
                os.close(fd)
    return files, holders
