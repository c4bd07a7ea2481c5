"""The trust policy: which files, directories and entries the cache may use.

A file or directory is trusted when it is owned by this user and not group- or other-writable;
files are read without following symlinks and must be regular files. An entry is used only when
it passes every check: its directory is a trusted directory (not a symlink), ``meta.json``
parses and records this format, symgrad version and key, lists the expected files, and every
listed file is trusted and matches the sha256 recorded for it. A failed check raises
:class:`_Refused`; it is *loud* (worth a :class:`CacheWarning`) unless the entry is merely from
another format or version.

Every directory of the layout (shards, ``locks/``, ``tmp/``, ``trash/``, ``aliases/`` and its
shards) is checked like the root whenever it is used (:func:`_subdir`), and an entry's shard
before the entry is read: a directory another user could write into is refused.

Owns: :func:`_trust_problem`, :func:`_subdir` (the 0700 subdirectories, created and checked),
:func:`_oserror` (an ``OSError`` as a :class:`CacheUnusableError` naming the path),
:func:`_read_trusted`, :func:`_verify`, :class:`_Refused` and the refusal warning.

May import: the standard library, ``symgrad._version`` and ``symgrad.runtime.cache.layout``.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from symgrad._version import __version__
from symgrad.runtime.cache.layout import (
    FORMAT,
    META,
    CacheUnusableError,
    CacheWarning,
    _check_name,
)


def _euid() -> int | None:
    geteuid = getattr(os, "geteuid", None)
    return geteuid() if geteuid is not None else None


def _trust_problem(st: os.stat_result) -> str | None:
    """Why a file or directory with this stat cannot be trusted (``None`` when it can)."""
    euid = _euid()
    if euid is None:  # pragma: no cover  (Windows: no uids or mode bits)
        return None
    if st.st_uid != euid:
        return f"owned by uid {st.st_uid}, not by this user (uid {euid})"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"group- or other-writable (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def _subdir(parent: Path, name: str) -> Path:
    """``parent/name``, created 0700 if needed; a :class:`CacheUnusableError` when it is not a
    directory (a damaged layout) or is not trusted."""
    path = parent / name
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise _oserror(exc, path) from None
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise _oserror(exc, path) from None
    if not stat.S_ISDIR(st.st_mode):
        raise CacheUnusableError(
            f"the symgrad cache layout is damaged: {path} is not a directory (remove it, or run "
            "`symgrad cache clear`, which repairs the layout)",
            path,
        )
    problem = _trust_problem(st)
    if problem:
        raise CacheUnusableError(
            f"refusing the symgrad cache directory {path}: it is {problem} (another user could "
            f"plant files in it; `chmod 700 {path}` if it is yours)",
            path,
        )
    return path


def _oserror(exc: OSError, where: Path) -> CacheUnusableError:
    """``exc`` (disk full, a file where a directory belongs, ...) as symgrad's error naming the
    path at fault."""
    path = Path(exc.filename) if exc.filename else where
    why = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        text = f"the symgrad cache is full: writing {path} failed ({why})"
    elif exc.errno in (errno.EEXIST, errno.ENOTDIR):
        text = (
            f"the symgrad cache layout is damaged at {path} ({why}; remove it, or run "
            "`symgrad cache clear`, which repairs the layout)"
        )
    else:
        text = f"the symgrad cache cannot be used: {path}: {why}"
    err = CacheUnusableError(text, path)
    err.__cause__ = exc
    return err


class _Refused(Exception):
    """An entry failed a check. ``loud``: worth a warning (not just an old format)."""

    def __init__(self, why: str, loud: bool = True, keep: bool = False) -> None:
        super().__init__(why)
        self.why = why
        self.loud = loud
        self.keep = keep  # a sound entry that is not the one asked for: never remove it


def _read_trusted(path: Path) -> bytes:
    """The bytes of ``path``, which must be a regular, trusted file (not a symlink)."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise _Refused(f"{path.name} is missing") from None
    except OSError as exc:
        raise _Refused(f"{path.name} cannot be opened: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise _Refused(f"{path.name} is not a regular file")
        problem = _trust_problem(st)
        if problem:
            raise _Refused(f"{path.name} is {problem}")
        return fh.read()


def _verify(path: Path, key: str, expect: Sequence[str]) -> dict[str, Any] | None:
    """The entry's metadata when the entry at ``path`` passes every check; ``None`` when there
    is no entry; raises :class:`_Refused` when there is one that fails a check."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _Refused(f"cannot be examined: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise _Refused("is not a directory")
    problem = _trust_problem(st)
    if problem:
        raise _Refused(f"is {problem}")
    try:
        shard = os.lstat(path.parent)
    except OSError as exc:
        raise _Refused(f"has a directory that cannot be examined: {exc.strerror}") from None
    problem = _trust_problem(shard) if stat.S_ISDIR(shard.st_mode) else "not a directory"
    if problem:
        raise _Refused(f"is in the directory {path.parent}, which is {problem}", keep=True)
    try:
        meta = json.loads(_read_trusted(path / META))
    except (ValueError, UnicodeDecodeError):
        raise _Refused(f"{META} is not valid JSON (truncated or corrupt)") from None
    if not isinstance(meta, dict):
        raise _Refused(f"{META} is not a JSON object")
    if meta.get("format") != FORMAT or meta.get("symgrad_version") != __version__:
        raise _Refused(
            f"was written by cache format {meta.get('format')!r} of symgrad "
            f"{meta.get('symgrad_version')!r}",
            loud=False,
        )
    if meta.get("key") != key:
        raise _Refused(f"{META} records another key ({meta.get('key')!r})")
    files = meta.get("files")
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise _Refused(f"{META} has no valid 'files' table")
    missing = [name for name in expect if name not in files]
    if missing:  # another artefact's entry (e.g. named by a stale alias): not ours to remove
        raise _Refused(f"{META} does not list {missing}", loud=False, keep=True)
    for name, digest in files.items():
        try:
            _check_name(name)
        except ValueError:
            raise _Refused(f"{META} lists an invalid file name {name!r}") from None
        if hashlib.sha256(_read_trusted(path / name)).hexdigest() != digest:
            raise _Refused(f"{name} does not match its recorded sha256 (truncated or modified)")
    return meta


def _refusal_warning(path: Path, refused: _Refused) -> None:
    if refused.loud:
        warnings.warn(
            f"symgrad cache entry {path} refused: it {refused.why}; rebuilding it",
            CacheWarning,
            stacklevel=3,
        )
