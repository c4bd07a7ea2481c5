"""Aliases: a cheap key (e.g. of a graph) naming the entry built from it.

An alias is a file ``<root>/aliases/<alias[:2]>/<alias>`` holding an entry key. It is written
atomically (a fresh 0600 file in the same directory, then ``os.replace``) and read only when it
is a trusted regular file; the entry it names is still verified by ``lookup``.

Owns: :func:`read_alias`, :func:`write_alias`.

May import: the standard library and the modules ``layout``, ``trust`` and ``location`` of
``symgrad.runtime.cache``.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from symgrad.runtime.cache.layout import _KEY_RE, CacheUnusableError, _check_key
from symgrad.runtime.cache.location import cache_root
from symgrad.runtime.cache.trust import _read_trusted, _Refused, _subdir, _trust_problem


def _alias_path(root: Path, alias: str) -> Path:
    return root / "aliases" / alias[:2] / alias


def read_alias(alias: str) -> str | None:
    """The entry key recorded for ``alias``, or None (missing, untrusted or malformed).

    Aliases let a warm process find an entry from something cheaper to compute than the entry's
    own key (the rendered source): the entry itself is still verified by :func:`lookup`.
    """
    _check_key(alias)
    path = _alias_path(cache_root(), alias)
    for folder in (path.parent.parent, path.parent):  # aliases/ and its shard: trusted dirs
        try:
            st = os.lstat(folder)
        except OSError:
            return None
        if not stat.S_ISDIR(st.st_mode) or _trust_problem(st):
            return None
    try:
        text = _read_trusted(path).decode("ascii", "replace").strip()
    except _Refused:
        return None
    return text if _KEY_RE.fullmatch(text) else None


def write_alias(alias: str, key: str) -> None:
    """Record that ``alias`` names the entry ``key`` (atomically; best effort)."""
    _check_key(alias)
    _check_key(key)
    root = cache_root()
    try:
        shard = _subdir(_subdir(root, "aliases"), alias[:2])
        tmp = shard / f".{alias}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key + "\n")
        os.replace(tmp, shard / alias)
    except (OSError, CacheUnusableError):  # best effort: the entry itself is published
        pass
