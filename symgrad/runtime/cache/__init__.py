"""The content-addressed on-disk cache of built artefacts.

The public names are re-exported here (``from symgrad.runtime.cache import get_or_build``;
``cache.lookup``), each defined in one submodule:

- ``layout.py``: the format, keys (:func:`make_key`), entry file names, where an entry lives,
  :class:`Entry`, :class:`CacheError` and :class:`CacheWarning`;
- ``location.py``: the cache root (:func:`cache_root`: ``$SYMGRAD_CACHE_DIR``, else the
  platform's user cache dir, else -- when that is unusable -- a process-private temporary
  directory, with one warning);
- ``trust.py``: the trust policy (owner, modes, regular files, ``meta.json`` and the sha256 of
  every file);
- ``store.py``: entries (:func:`lookup`, :func:`get_or_build`, :func:`discard`), the per-key
  cross-process lock, atomic publication;
- ``aliases.py``: :func:`read_alias`, :func:`write_alias`;
- ``lock.py``: the per-key ``flock`` whose file is removed on release;
- ``admin.py``: housekeeping (:func:`info`, :func:`clear`, :func:`prune`, the automatic size
  bound :func:`maybe_prune`).

An entry is published by ``os.replace`` of a complete, fsynced temporary directory while the
key's lock is held, so readers (who look without the lock) see either no entry or a whole one.
Before an entry is used it is checked: ``meta.json`` parses and records this format, symgrad
version and key; every file is a regular file owned by this user, not group/other-writable, and
matches the sha256 recorded in ``meta.json``. An entry failing a check is removed and rebuilt
(with a :class:`CacheWarning` naming it, unless it is merely from another format or version).
Directories are created 0700 and files 0600. Metadata is JSON; nothing here pickles.

May import: the standard library, platformdirs, filelock (where ``fcntl`` is missing),
``symgrad.ir.errors`` and ``symgrad._version`` (the submodules); this ``__init__`` imports only
its submodules.
"""

from __future__ import annotations

from symgrad.runtime.cache.admin import (
    DEFAULT_MAX_SIZE,
    MAX_SIZE_VAR,
    STALE_TMP_SECONDS,
    clear,
    info,
    max_size,
    maybe_prune,
    parse_size,
    prune,
)
from symgrad.runtime.cache.aliases import read_alias, write_alias
from symgrad.runtime.cache.layout import (
    FORMAT,
    META,
    CacheError,
    CacheUnusableError,
    CacheWarning,
    Entry,
    make_key,
)
from symgrad.runtime.cache.location import ENV_VAR, cache_root
from symgrad.runtime.cache.store import LOCK_TIMEOUT, discard, get_or_build, lookup

__all__ = [
    "DEFAULT_MAX_SIZE",
    "ENV_VAR",
    "FORMAT",
    "LOCK_TIMEOUT",
    "MAX_SIZE_VAR",
    "META",
    "STALE_TMP_SECONDS",
    "CacheError",
    "CacheUnusableError",
    "CacheWarning",
    "Entry",
    "cache_root",
    "clear",
    "discard",
    "get_or_build",
    "info",
    "lookup",
    "make_key",
    "max_size",
    "maybe_prune",
    "parse_size",
    "prune",
    "read_alias",
    "write_alias",
]
