"""The cache location: which directory is the cache root.

``$SYMGRAD_CACHE_DIR``, else the platform's user cache dir, else -- when that is unusable (a
file, under a file, not writable, owned by someone else, group- or other-writable) -- a
process-private temporary directory (removed at exit), with one warning per unusable path.

Owns: :func:`cache_root`, :data:`ENV_VAR`, the process's table of roots in use and its private
fallback directory.

May import: the standard library, platformdirs (lazily), ``symgrad.runtime.cache.layout`` and
``symgrad.runtime.cache.trust``.
"""

from __future__ import annotations

import atexit
import os
import shutil
import stat
import tempfile
import threading
import warnings
from pathlib import Path

from symgrad.runtime.cache.layout import CacheWarning
from symgrad.runtime.cache.trust import _euid

ENV_VAR = "SYMGRAD_CACHE_DIR"

_state = threading.RLock()
_roots: dict[str, Path] = {}  # configured location -> the root in use for it
_warned: set[str] = set()
_fallback: Path | None = None


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
