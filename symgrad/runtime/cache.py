"""The content-addressed on-disk cache of built artefacts.

Owns: the cache location (:func:`cache_root`: ``$SYMGRAD_CACHE_DIR``, else the platform's user
cache dir, else -- when that is unusable -- a process-private temporary directory, with one
warning), keys (:func:`make_key`), entries (:class:`Entry`, :func:`lookup`, :func:`get_or_build`,
:func:`discard`) and housekeeping (:func:`info`, :func:`clear`).

May import: the standard library, platformdirs, filelock, ``symgrad.ir.errors`` and
``symgrad._version``. Metadata is JSON; nothing here pickles.

Layout under the root::

    <root>/<key[:2]>/<key>/{files written by the build..., meta.json}
    <root>/locks/<key>.lock      per-key cross-process lock (files stay; deleting them is unsafe)
    <root>/tmp/<key>.<pid>.<hex> builds in progress (same filesystem, so publishing is a rename)
    <root>/trash/                entries being removed

An entry is published by ``os.replace`` of a complete, fsynced temporary directory while the
key's lock is held, so readers (who look without the lock) see either no entry or a whole one.
Before an entry is used it is checked: ``meta.json`` parses and records this format, symgrad
version and key; every file is a regular file owned by this user, not group/other-writable, and
matches the sha256 recorded in ``meta.json``. An entry failing a check is removed and rebuilt
(with a :class:`CacheWarning` naming it, unless it is merely from another format or version).
Directories are created 0700 and files 0600.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import platform
import re
import secrets
import shutil
import stat
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from symgrad._version import __version__
from symgrad.ir.errors import SymgradError

FORMAT = 1
META = "meta.json"
LOCK_TIMEOUT = 600.0
ENV_VAR = "SYMGRAD_CACHE_DIR"
STALE_TMP_SECONDS = 3600.0

_KEY_RE = re.compile(r"[0-9a-f]{64}")
_SHARD_RE = re.compile(r"[0-9a-f]{2}")
_RESERVED = frozenset({"key", "format", "symgrad_version", "created", "files"})

_state = threading.RLock()
_roots: dict[str, Path] = {}  # configured location -> the root in use for it
_warned: set[str] = set()
_fallback: Path | None = None


class CacheError(SymgradError):
    """The cache cannot do what was asked: a build did not write its files, a lock timed out."""


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


# --- location --------------------------------------------------------------------------------


def _configured() -> Path:
    env = os.environ.get(ENV_VAR, "")
    if env:
        return Path(os.path.abspath(os.path.expanduser(env)))
    import platformdirs  # imported when needed: a warm process with $SYMGRAD_CACHE_DIR skips it

    return Path(platformdirs.user_cache_dir("symgrad"))


def _unusable(path: Path) -> str | None:
    """Why ``path`` cannot be the cache root (``None`` when it can), creating it if needed."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = path.stat()
    except FileExistsError:
        return "it exists and is not a directory"
    except OSError as exc:
        return f"it cannot be created: {exc.strerror or exc}"
    if not stat.S_ISDIR(st.st_mode):
        return "it is not a directory"
    euid = _euid()
    if euid is not None and st.st_uid != euid:
        return f"it is owned by uid {st.st_uid}, not by this user (uid {euid})"
    if euid is not None and st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"it is group- or other-writable (mode {stat.S_IMODE(st.st_mode):04o})"
    if not os.access(path, os.W_OK | os.X_OK):
        return "it is not writable"
    return None


def _fallback_root() -> Path:
    """This process's private temporary cache directory (created on first use, removed at exit)."""
    global _fallback
    with _state:
        if _fallback is None or not _fallback.is_dir():
            _fallback = Path(tempfile.mkdtemp(prefix="symgrad-cache-"))
            atexit.register(shutil.rmtree, str(_fallback), True)
        return _fallback


def cache_root() -> Path:
    """The cache directory in use: ``$SYMGRAD_CACHE_DIR``, else the user cache dir.

    The directory is created (mode 0700) if needed. When it is unusable (a file, under a file,
    not writable, owned by someone else, group- or other-writable) a process-wide temporary
    directory is used instead, with one :class:`CacheWarning` (a ``RuntimeWarning``) per
    unusable path saying why.
    Re-evaluated whenever ``$SYMGRAD_CACHE_DIR`` changes.
    """
    configured = _configured()
    name = str(configured)
    with _state:
        known = _roots.get(name)
        if known is not None and known.is_dir():
            return known
        reason = _unusable(configured)
        if reason is None:
            root = configured
        else:
            root = _fallback_root()
            if name not in _warned:
                _warned.add(name)
                warnings.warn(
                    f"symgrad cache directory {configured} is unusable ({reason}); "
                    f"using the temporary directory {root} for this process instead",
                    CacheWarning,
                    stacklevel=2,
                )
        _roots[name] = root
        return root


def _subdir(parent: Path, name: str) -> Path:
    path = parent / name
    path.mkdir(mode=0o700, exist_ok=True)
    return path


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


# --- checking entries ------------------------------------------------------------------------


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


class _Refused(Exception):
    """An entry failed a check. ``loud``: worth a warning (not just an old format)."""

    def __init__(self, why: str, loud: bool = True) -> None:
        super().__init__(why)
        self.why = why
        self.loud = loud


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
    if missing:
        raise _Refused(f"{META} does not list {missing}")
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


# --- locking, removing -----------------------------------------------------------------------


@contextlib.contextmanager
def _key_lock(root: Path, key: str) -> Iterator[None]:
    path = _subdir(root, "locks") / f"{key}.lock"
    import filelock  # only writers and repairs take locks; readers of a warm cache do not

    lock = filelock.FileLock(str(path), timeout=LOCK_TIMEOUT, mode=0o600)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise CacheError(
            f"timed out after {LOCK_TIMEOUT:g} s waiting for the cache lock {path} "
            "(another process is building this entry, or died holding the lock)"
        ) from None
    try:
        yield
    finally:
        lock.release()


def _remove(root: Path, path: Path, key: str) -> bool:
    """Remove the directory ``path`` (best effort): rename it into the trash, then delete it."""
    if not os.path.lexists(path):
        return False
    trash = _subdir(root, "trash") / f"{key}.{os.getpid()}.{secrets.token_hex(4)}"
    try:
        os.rename(path, trash)
    except OSError:
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


# --- the API ---------------------------------------------------------------------------------


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
    except _Refused:
        pass
    else:
        return None if meta is None else Entry(key, path, meta)
    with _key_lock(root, key):  # look again: another process may have replaced it meanwhile
        try:
            meta = _verify(path, key, expect)
        except _Refused as refused:
            _refusal_warning(path, refused)
            _remove(root, path, key)
            return None
    return None if meta is None else Entry(key, path, meta)


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
    try:
        shard = _subdir(root, key[:2])
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
            _refusal_warning(path, refused)
            meta = None
        if meta is not None:
            return Entry(key, path, meta), False
        _clean_leftovers(root, key)
        tmp = _subdir(root, "tmp") / f"{key}.{os.getpid()}.{secrets.token_hex(4)}"
        tmp.mkdir(mode=0o700)
        try:
            extra = build(tmp)
            meta = _seal(tmp, key, expect, extra)
            _before_publish(tmp)
            final = _publish(root, key, tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return Entry(key, final, meta), True


# --- aliases: a cheap key (e.g. of a graph) naming the entry built from it -------------------


def _alias_path(root: Path, alias: str) -> Path:
    return root / "aliases" / alias[:2] / alias


def read_alias(alias: str) -> str | None:
    """The entry key recorded for ``alias``, or None (missing, untrusted or malformed).

    Aliases let a warm process find an entry from something cheaper to compute than the entry's
    own key (the rendered source): the entry itself is still verified by :func:`lookup`.
    """
    _check_key(alias)
    try:
        text = _read_trusted(_alias_path(cache_root(), alias)).decode("ascii", "replace").strip()
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
    except OSError:
        pass


def discard(key: str) -> bool:
    """Remove the entry for ``key`` (e.g. after it failed to load); True if there was one."""
    _check_key(key)
    root = cache_root()
    with _key_lock(root, key):
        return _remove(root, _entry_dir(root, key), key)


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
