"""What a cache entry is and where it lives: the format, keys, file names and directories.

Layout under the root::

    <root>/<key[:2]>/<key>/{files written by the build..., meta.json}
    <root>/locks/<key>.lock      per-key cross-process lock (files stay; deleting them is unsafe)
    <root>/tmp/<key>.<pid>.<hex> builds in progress (same filesystem, so publishing is a rename)
    <root>/trash/                entries being removed
    <root>/aliases/<alias[:2]>/<alias>  the key an alias names

Owns: :data:`FORMAT`, :data:`META`, keys (:func:`make_key`, :func:`_check_key`), entry file
names (:func:`_check_name`), the entry directory of a key,
:class:`Entry`, and the cache's error and warning classes.

May import: the standard library, ``symgrad.ir.errors`` and ``symgrad._version``.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from symgrad._version import __version__
from symgrad.ir.errors import SymgradError

FORMAT = 1
META = "meta.json"

_KEY_RE = re.compile(r"[0-9a-f]{64}")
_SHARD_RE = re.compile(r"[0-9a-f]{2}")


class CacheError(SymgradError):
    """The cache cannot do what was asked: a build did not write its files, a lock timed out."""


class CacheUnusableError(CacheError):
    """The cache cannot be written or trusted: the disk is full, its layout is damaged (``locks/``
    or ``tmp/`` is a file), or one of its directories is another user's or group/other-writable.
    ``path`` is the file or directory at fault. With the default backend symgrad warns and uses
    NumPy code kept in memory; an explicit ``backend="c"`` raises this."""

    def __init__(self, message: str, path: Path) -> None:
        self.path = path
        super().__init__(message)


class CacheWarning(RuntimeWarning):
    """A cache directory or entry was refused (unusable, untrusted or corrupt) and replaced."""


@dataclass
class Entry:
    """A published cache entry: its key, its directory and its parsed ``meta.json``."""

    key: str
    path: Path
    meta: dict[str, Any]

    def file(self, name: str) -> Path:
        """The path of the entry's file ``name`` (a plain file name)."""
        _check_name(name)
        return self.path / name


# --- keys ------------------------------------------------------------------------------------


def make_key(**parts: str) -> str:
    """The sha256 (hex) of ``parts`` plus everything else an artefact depends on.

    Callers pass the rendered source, the compiler argv and version, flags, and (when flags are
    native) :func:`symgrad.runtime.cc.cpu_tag`. Added here: the symgrad version, :data:`FORMAT`,
    ``sys.platform``, ``platform.machine()`` and the Python implementation and version tag.
    """
    for name, value in parts.items():
        if not isinstance(value, str):
            raise TypeError(f"make_key part {name!r} must be a str, not {type(value).__name__}")
    payload = {
        "parts": parts,
        "symgrad": __version__,
        "format": FORMAT,
        "platform": sys.platform,
        "machine": platform.machine(),
        "python": f"{sys.implementation.name}-{sys.implementation.cache_tag}",
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()  # (file names)


def _check_key(key: str) -> None:
    if not isinstance(key, str) or not _KEY_RE.fullmatch(key):
        raise ValueError(f"not a cache key (64 lowercase hex digits): {key!r}")


def _check_name(name: str) -> None:
    bad = (
        not name
        or name in (".", "..", META)
        or "/" in name
        or os.sep in name
        or (os.altsep is not None and os.altsep in name)
    )
    if bad:
        raise ValueError(f"not a valid cache entry file name: {name!r}")


def _entry_dir(root: Path, key: str) -> Path:
    return root / key[:2] / key
