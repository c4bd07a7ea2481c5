"""The store: looking entries up, building and publishing them atomically, discarding them.

An entry is published by ``os.replace`` of a complete, fsynced temporary directory while the
key's cross-process lock is held, so readers (who look without the lock) see either no entry or
a whole one. An entry failing a check of :mod:`symgrad.runtime.cache.trust` is removed and
rebuilt. Directories are created 0700 and files 0600.

Owns: :func:`lookup`, :func:`get_or_build`, :func:`discard`, the per-key lock
(:data:`LOCK_TIMEOUT`), sealing (hashes, fsync, ``meta.json``), publishing and removing entries,
and the ``_before_publish`` hook of the crash tests.

May import: the standard library, ``symgrad._version`` and the modules ``lock``, ``layout``,
``trust`` and ``location`` of ``symgrad.runtime.cache``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import stat
import warnings
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from symgrad._version import __version__
from symgrad.runtime.cache import lock
from symgrad.runtime.cache.layout import (
    FORMAT,
    META,
    CacheError,
    CacheUnusableError,
    CacheWarning,
    Entry,
    _check_key,
    _check_name,
    _entry_dir,
)
from symgrad.runtime.cache.location import _fallback_root, cache_root
from symgrad.runtime.cache.trust import _oserror, _refusal_warning, _Refused, _subdir, _verify

LOCK_TIMEOUT = 600.0

_RESERVED = frozenset({"key", "format", "symgrad_version", "created", "files"})


@contextlib.contextmanager
def _key_lock(root: Path, key: str) -> Iterator[None]:
    """Hold the key's cross-process lock (its file is removed on release: see ``lock.py``).
    Errors of the file system (a full disk, a damaged ``locks/``) are a
    :class:`CacheUnusableError` naming the path."""
    path = _subdir(root, "locks") / f"{key}.lock"
    try:
        held = lock.acquire(path, LOCK_TIMEOUT)
    except lock.LockTimeout:
        raise CacheError(
            f"timed out after {LOCK_TIMEOUT:g} s waiting for the cache lock {path} "
            "(another process is building this entry, or died holding the lock)"
        ) from None
    except OSError as exc:
        raise _oserror(exc, path) from None
    try:
        yield
    finally:
        lock.release(held)


def _remove(root: Path, path: Path, key: str) -> bool:
    """Remove the directory ``path`` (best effort): rename it into the trash, then delete it."""
    if not os.path.lexists(path):
        return False
    try:
        trash = _subdir(root, "trash") / f"{key}.{os.getpid()}.{secrets.token_hex(4)}"
        os.rename(path, trash)
    except (OSError, CacheUnusableError):
        shutil.rmtree(path, ignore_errors=True)
        return not os.path.lexists(path)
    shutil.rmtree(trash, ignore_errors=True)
    return True


def _clean_leftovers(root: Path, key: str) -> None:
    """Remove crashed builds and trash of ``key`` (only call with the key's lock held)."""
    for sub in ("tmp", "trash"):
        folder = root / sub
        if folder.is_dir():
            for path in folder.glob(f"{key}.*"):
                shutil.rmtree(path, ignore_errors=True)


def lookup(key: str, expect: Sequence[str]) -> Entry | None:
    """The entry for ``key`` if it exists, lists every file in ``expect`` and passes every check.

    A broken entry (truncated, garbage, sha256 mismatch, wrong owner or permissions, another
    format or version) is removed under the key's lock -- with a :class:`CacheWarning` naming
    it unless it is merely from another format/version -- and ``None`` is returned.
    """
    _check_key(key)
    if isinstance(expect, str):
        raise TypeError(f"expect must be a sequence of file names, not the str {expect!r}")
    for name in expect:
        _check_name(name)
    root = cache_root()
    path = _entry_dir(root, key)
    try:
        meta = _verify(path, key, expect)
    except _Refused as refused:
        if refused.keep:  # sound, but not what was asked for (or in a refused directory)
            return None
    else:
        return None if meta is None else _used(Entry(key, path, meta))
    with _key_lock(root, key):  # look again: another process may have replaced it meanwhile
        try:
            meta = _verify(path, key, expect)
        except _Refused as refused:
            if refused.keep:
                return None
            _refusal_warning(path, refused)
            try:
                _remove(root, path, key)
            except OSError as exc:
                raise _oserror(exc, path) from None
            return None
    return None if meta is None else _used(Entry(key, path, meta))


def _used(entry: Entry) -> Entry:
    """``entry``, marked as used now (its directory's mtime: ``symgrad cache prune`` removes the
    least recently used entries first)."""
    with contextlib.suppress(OSError):
        os.utime(entry.path)
    return entry


def _before_publish(tmpdir: Path) -> None:
    """Runs after a build is sealed and before it is published (a hook for crash tests)."""


def _fsync_dir(path: Path) -> None:
    if os.name == "nt":  # pragma: no cover
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _seal(tmp: Path, key: str, expect: Sequence[str], extra: dict[str, Any]) -> dict[str, Any]:
    """Hash, fsync and chmod the built files and write ``meta.json``; return the metadata."""
    if not isinstance(extra, dict):
        raise TypeError(f"the build callable must return a dict, not {type(extra).__name__}")
    clash = sorted(_RESERVED & extra.keys())
    if clash:
        raise ValueError(f"build metadata must not set the reserved keys {clash}")
    files: dict[str, str] = {}
    for path in sorted(tmp.iterdir()):
        if path.name == META:
            raise CacheError(f"the build must not write {META} itself")
        if not stat.S_ISREG(os.lstat(path).st_mode):
            raise CacheError(f"the build left {path.name!r}, which is not a regular file")
        os.chmod(path, 0o600)
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
            os.fsync(fh.fileno())
        files[path.name] = digest.hexdigest()
    missing = [name for name in expect if name not in files]
    if missing:
        raise CacheError(f"the build did not write {missing} (it wrote {sorted(files)})")
    meta: dict[str, Any] = {
        "key": key,
        "format": FORMAT,
        "symgrad_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": files,
        **extra,
    }
    data = json.dumps(meta, indent=1, sort_keys=True).encode("utf-8")
    fd = os.open(
        tmp / META, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600
    )
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, 0o700)
    _fsync_dir(tmp)
    return meta


def _publish(root: Path, key: str, tmp: Path) -> Path:
    """Move the sealed ``tmp`` to the key's entry directory (lock held); return where it is.

    When the entry directory cannot be replaced (e.g. a refused entry this user cannot remove),
    the build is kept privately in this process's temporary cache instead, with a warning.
    """
    final = _entry_dir(root, key)
    shard = _subdir(root, key[:2])  # (a refused shard raises: a private copy would hide it)
    try:
        if os.path.lexists(final):
            _remove(root, final, key)
        os.replace(tmp, final)
    except OSError as exc:
        private = _entry_dir(_fallback_root(), key)
        private.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if os.path.lexists(private):
            shutil.rmtree(private, ignore_errors=True)
        shutil.move(str(tmp), str(private))
        warnings.warn(
            f"symgrad cache entry {final} cannot be published ({exc}); "
            f"using a private copy at {private}",
            CacheWarning,
            stacklevel=3,
        )
        return private
    _fsync_dir(shard)
    return final


def get_or_build(
    key: str, build: Callable[[Path], dict[str, Any]], expect: Sequence[str]
) -> tuple[Entry, bool]:
    """The entry for ``key``, building it first if needed; the bool says it was built now.

    ``build(tmpdir)`` writes the files (at least those named in ``expect``) into the fresh
    directory ``tmpdir`` and returns extra JSON-serialisable metadata for ``meta.json`` (e.g.
    the compile command, timings, the graph text). It runs at most once per key across all
    processes sharing the cache: the build and the publication happen under the key's
    cross-process lock, and whoever waited finds the published entry. If ``build`` raises,
    nothing is published and the exception propagates.
    """
    entry = lookup(key, expect)
    if entry is not None:
        return entry, False
    root = cache_root()
    with _key_lock(root, key):
        path = _entry_dir(root, key)
        try:
            meta = _verify(path, key, expect)
        except _Refused as refused:
            if refused.keep and os.path.lexists(path) and path.parent.is_dir():
                _subdir(root, key[:2])  # a refused shard: raises, naming it
            _refusal_warning(path, refused)
            meta = None
        if meta is not None:
            return Entry(key, path, meta), False
        try:
            _clean_leftovers(root, key)
            tmp = _subdir(root, "tmp") / f"{key}.{os.getpid()}.{secrets.token_hex(4)}"
            tmp.mkdir(mode=0o700)
        except OSError as exc:
            raise _oserror(exc, root / "tmp") from None
        try:
            extra = build(tmp)
            meta = _seal(tmp, key, expect, extra)
            _before_publish(tmp)
            final = _publish(root, key, tmp)
        except OSError as exc:  # a full disk while writing the build, most likely
            shutil.rmtree(tmp, ignore_errors=True)
            raise _oserror(exc, tmp) from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return Entry(key, final, meta), True


def discard(key: str) -> bool:
    """Remove the entry for ``key`` (e.g. after it failed to load); True if there was one."""
    _check_key(key)
    root = cache_root()
    with _key_lock(root, key):
        try:
            return _remove(root, _entry_dir(root, key), key)
        except OSError as exc:
            raise _oserror(exc, _entry_dir(root, key)) from None
