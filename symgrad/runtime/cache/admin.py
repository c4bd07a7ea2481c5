"""Housekeeping of the cache in use: what it holds (``symgrad cache info``) and emptying it
(``symgrad cache clear``).

Owns: :func:`info`, :func:`clear`, the walk over published entries and
:data:`STALE_TMP_SECONDS` (when a build in progress counts as abandoned).

May import: the standard library and the modules ``layout``, ``location`` and ``store`` of
``symgrad.runtime.cache``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from symgrad.runtime.cache.layout import _KEY_RE, _SHARD_RE
from symgrad.runtime.cache.location import cache_root
from symgrad.runtime.cache.store import _remove

STALE_TMP_SECONDS = 3600.0


def _entries(root: Path) -> Iterator[Path]:
    if not root.is_dir():
        return
    for shard in sorted(root.iterdir()):
        if not _SHARD_RE.fullmatch(shard.name) or not shard.is_dir() or shard.is_symlink():
            continue
        for path in sorted(shard.iterdir()):
            if _KEY_RE.fullmatch(path.name) and path.name[:2] == shard.name:
                yield path


def info() -> dict[str, Any]:
    """``{"root": str, "entries": int, "bytes": int}``: the cache in use, how many entries it
    holds, and the total size of every file under it."""
    root = cache_root()
    entries = sum(1 for _ in _entries(root))
    total = 0
    for folder, _dirs, names in os.walk(root):
        for name in names:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(folder, name)).st_size
    return {"root": str(root), "entries": entries, "bytes": total}


def clear() -> int:
    """Remove every entry (and stale leftovers) from the cache in use; return how many entries
    were removed. Lock files stay: deleting a lock file another process holds is unsafe."""
    root = cache_root()
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
    return removed
