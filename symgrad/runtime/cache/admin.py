"""Housekeeping of the cache in use: what it holds (``symgrad cache info``), emptying it
(``symgrad cache clear``) and bounding its size (``symgrad cache prune --max-size``, and the
automatic bound after builds).

Owns: :func:`info`, :func:`clear`, :func:`prune`, :func:`maybe_prune`, :func:`max_size` (the
automatic bound: ``$SYMGRAD_CACHE_MAX_SIZE``, default :data:`DEFAULT_MAX_SIZE`), :func:`parse_size`,
the walk over published entries and :data:`STALE_TMP_SECONDS` (when a build in progress counts
as abandoned).

May import: the standard library and the modules ``lock``, ``layout``, ``location`` and
``store`` of ``symgrad.runtime.cache``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from symgrad.runtime.cache import lock
from symgrad.runtime.cache.layout import _KEY_RE, _SHARD_RE, CacheError
from symgrad.runtime.cache.location import cache_root
from symgrad.runtime.cache.store import _remove

STALE_TMP_SECONDS = 3600.0
MAX_SIZE_VAR = "SYMGRAD_CACHE_MAX_SIZE"
DEFAULT_MAX_SIZE = 2 << 30  # 2 GiB: about 13,000 C entries
PRUNE_EVERY = 60.0  # seconds between two automatic size checks (shared by all processes)
_LAYOUT = ("locks", "tmp", "trash", "aliases")
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str) -> int:
    """``"500M"``, ``"2G"``, ``"1048576"`` (bytes; K, M, G, T are powers of 1024) as bytes."""
    t = text.strip().lower().removesuffix("ib").removesuffix("b")
    unit = t[-1:] if t[-1:] in _UNITS and t[-1:] else ""
    try:
        value = float(t[: len(t) - len(unit)])
    except ValueError:
        raise ValueError(
            f"not a size: {text!r} (expected bytes, or a number with K, M, G or T)"
        ) from None
    if value < 0:
        raise ValueError(f"a size must not be negative, got {text!r}")
    return int(value * _UNITS[unit])


def max_size() -> int:
    """The automatic bound of the cache's size in bytes: ``$SYMGRAD_CACHE_MAX_SIZE`` (``0``:
    unbounded), else :data:`DEFAULT_MAX_SIZE`."""
    raw = os.environ.get(MAX_SIZE_VAR, "")
    if not raw:
        return DEFAULT_MAX_SIZE
    try:
        return parse_size(raw)
    except ValueError as e:
        raise CacheError(f"${MAX_SIZE_VAR}: {e}") from None


def _entries(root: Path) -> Iterator[Path]:
    if not root.is_dir():
        return
    for shard in sorted(root.iterdir()):
        if not _SHARD_RE.fullmatch(shard.name) or not shard.is_dir() or shard.is_symlink():
            continue
        for path in sorted(shard.iterdir()):
            if _KEY_RE.fullmatch(path.name) and path.name[:2] == shard.name:
                yield path


def _size(path: Path) -> int:
    total = 0
    for folder, _dirs, names in os.walk(path):
        for name in names:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(folder, name)).st_size
    return total


def info() -> dict[str, Any]:
    """``{"root", "entries", "bytes", "locks", "locks_held"}``: the cache in use, how many
    entries it holds, the total size of every file under it, and its lock files (and how many
    of them a process holds now)."""
    root = cache_root()
    entries = sum(1 for _ in _entries(root))
    files, holders = lock.held(root / "locks")
    return {
        "root": str(root),
        "entries": entries,
        "bytes": _size(root),
        "locks": files,
        "locks_held": holders,
    }


def prune(max_bytes: int, keep: Path | None = None) -> tuple[int, int]:
    """Remove the least recently used entries until the entries take at most ``max_bytes``;
    return ``(removed, bytes left)``. An entry whose lock is held (being rebuilt) is skipped, and
    so is ``keep`` (the entry just built); entries in use by a running process stay usable (its
    modules are loaded already)."""
    root = cache_root()
    sized = []
    for path in _entries(root):
        with contextlib.suppress(OSError):
            sized.append((path.stat().st_mtime, _size(path), path))
    total = sum(size for _, size, _ in sized)
    removed = 0
    for _, size, path in sorted(sized, key=lambda t: t[0]):
        if total <= max_bytes:
            break
        if keep is not None and path == keep:
            continue
        try:
            held = lock.acquire(root / "locks" / f"{path.name}.lock", 0.0)
        except (lock.LockTimeout, OSError):
            continue
        try:
            if _remove(root, path, path.name):
                removed += 1
                total -= size
        finally:
            lock.release(held)
    lock.sweep(root / "locks")
    return removed, total


def maybe_prune(keep: Path | None = None) -> None:
    """After a build: when no process has checked for :data:`PRUNE_EVERY` seconds, prune the
    cache to :func:`max_size`, keeping the entry ``keep`` (best effort; ``0`` turns it off)."""
    bound = max_size()
    if bound <= 0:
        return
    root = cache_root()
    stamp = root / "pruned"
    with contextlib.suppress(OSError):
        if time.time() - stamp.lstat().st_mtime < PRUNE_EVERY:
            return
    with contextlib.suppress(OSError):
        fd = os.open(stamp, os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
        os.close(fd)
        os.utime(stamp)
        prune(bound, keep)


def clear() -> int:
    """Remove every entry (and stale leftovers, and lock files no process holds) from the cache
    in use, and repair its layout (a ``locks``, ``tmp``, ``trash`` or ``aliases`` that is not a
    directory is removed); return how many entries were removed."""
    root = cache_root()
    for sub in _LAYOUT:
        path = root / sub
        with contextlib.suppress(OSError):
            if os.path.lexists(path) and (path.is_symlink() or not path.is_dir()):
                os.unlink(path)
    removed = sum(1 for path in list(_entries(root)) if _remove(root, path, path.name))
    for path in list(root.iterdir()) if root.is_dir() else []:
        if _SHARD_RE.fullmatch(path.name) and path.is_dir() and not path.is_symlink():
            with contextlib.suppress(OSError):
                path.rmdir()  # only when empty
    now = time.time()
    for sub in ("tmp", "trash"):
        folder = root / sub
        for path in list(folder.iterdir()) if folder.is_dir() else []:
            with contextlib.suppress(OSError):
                if sub == "trash" or now - path.lstat().st_mtime > STALE_TMP_SECONDS:
                    shutil.rmtree(path, ignore_errors=True)
    lock.sweep(root / "locks")
    return removed
