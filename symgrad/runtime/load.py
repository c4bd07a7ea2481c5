"""Loading built artefacts into the running process.

Owns: :func:`load_extension` (a CPython extension module from a file path, or from a fresh
private copy of it), :func:`load_python_module` (a generated NumPy module from its source file)
and :func:`load_python_source` (from source kept in memory), none of which
leaves the module in ``sys.modules``, and :class:`LoadError`, raised when a file cannot be loaded
so that the caller can discard the cache entry and rebuild it.

May import: the standard library and ``symgrad.ir.errors``.

Extensions are remembered per resolved path while they are in use: loading the same path again
returns the same module object. Give every artefact a module name of its own (e.g. derived from
its cache key): the init function is ``PyInit_<name>``. Where the platform can (``dlclose``),
an extension is opened with ``dlopen`` and its ``PyInit_<name>`` called directly, not through
the import system (which keeps every single-phase module alive for the life of the process): a
module nobody holds is collected, its ``m_free`` drops what its statics held, and its shared
library is closed (its memory maps unmapped) at the next load or :func:`close_released`.

Security (see docs/security.md): the cache verifies an entry (owner, permissions, sha256) just
before it is loaded; these loaders check again on the file they open -- a regular file, not a
symlink, owned by this user, not writable by group or others, and, when ``sha256`` is given,
with that content hash. A NumPy module is executed from exactly the bytes that were checked.
"""

from __future__ import annotations

import _ctypes
import atexit
import ctypes
import hashlib
import importlib.machinery
import importlib.util
import os
import secrets
import shutil
import stat
import sys
import tempfile
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from symgrad.ir.errors import SymgradError

# POSIX: shared libraries can be closed (Windows: extensions stay loaded, as CPython keeps them)
_dlclose: Callable[[int], None] | None = getattr(_ctypes, "dlclose", None)

_lock = threading.Lock()
_extensions: weakref.WeakValueDictionary[Path, ModuleType] = weakref.WeakValueDictionary()
_kept: dict[Path, ModuleType] = {}  # loaded by the import system: never collected
_released: list[tuple[int, Path | None]] = []  # (dlopen handle, private copy) of dead modules
_failed: set[Path] = set()  # paths whose load failed in this process
_copies_lock = threading.Lock()
_copies: Path | None = None  # this process's private copies of rebuilt extensions


class LoadError(SymgradError):
    """A built artefact cannot be loaded (missing, corrupt, wrong platform, bad source)."""

    def __init__(self, message: str, path: Path) -> None:
        self.path = path
        super().__init__(message)


def _untrusted(st: os.stat_result) -> str | None:
    """Why a file with this stat must not be loaded (``None`` when it may)."""
    if not stat.S_ISREG(st.st_mode):
        return "it is not a regular file"
    geteuid = getattr(os, "geteuid", None)
    if geteuid is None:  # pragma: no cover  (Windows: no uids or mode bits)
        return None
    if st.st_uid != geteuid():
        return f"it is owned by uid {st.st_uid}, not by this user (uid {geteuid()})"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"it is group- or other-writable (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def _read_checked(path: Path, what: str, sha256: str | None, read: bool = True) -> bytes:
    """The bytes of ``path`` after the checks above (not following a symlink); ``b""`` when
    neither ``read`` nor a ``sha256`` asks for them."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise LoadError(f"cannot read {what}: no file at {path}", path) from None
    except OSError as exc:  # ELOOP: a symlink
        raise LoadError(f"cannot read {what} at {path}: {exc.strerror or exc}", path) from None
    try:
        why = _untrusted(os.fstat(fd))
        if why is not None:
            raise LoadError(f"refusing to load {what} from {path}: {why}", path)
        with os.fdopen(os.dup(fd), "rb") as fh:
            data = fh.read() if read or sha256 is not None else b""
    finally:
        os.close(fd)
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise LoadError(f"refusing to load {what} from {path}: its sha256 does not match", path)
    return data


def _private_copy(path: Path, data: bytes) -> Path:
    """``data`` (the checked bytes of ``path``) in a file of its own in a private directory."""
    global _copies
    with _copies_lock:
        if _copies is None or not _copies.is_dir():
            _copies = Path(tempfile.mkdtemp(prefix="symgrad-load-"))
            atexit.register(shutil.rmtree, str(_copies), True)
        folder = _copies
    target = folder / f"{secrets.token_hex(8)}-{path.name}"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o700)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return target


def load_extension(
    path: Path, module_name: str, sha256: str | None = None, fresh: bool = False
) -> ModuleType:
    """Load the CPython extension module ``module_name`` from the shared library ``path``.

    Loading the same (resolved) path twice returns the same module. ``sys.modules`` is left as
    it was. Raises :class:`LoadError` when the file is missing, untrusted (a symlink, not a
    regular file, another user's, group/other-writable, or not of content hash ``sha256``) or
    is not a loadable extension with a ``PyInit_<module_name>``.

    ``fresh=True`` (for a file rebuilt at a path that failed to load before): the checked bytes
    are loaded from a new private copy, because the dynamic loader hands back the handle it
    already has for a path -- the stale library -- instead of opening the new file.
    """
    key = Path(path).resolve()
    with _lock:
        _close_released()
        fresh = fresh or key in _failed  # a path that failed: its handle may be stale
        module = None if fresh else _extensions.get(key)
        if module is not None:
            return module
        original = key
        data = _read_checked(Path(path), f"extension {module_name!r}", sha256, read=fresh)
        if fresh:
            try:
                key = _private_copy(key, data)
            except OSError as exc:
                raise LoadError(f"cannot copy {path} to load it afresh: {exc}", key) from exc
        try:
            if _dlclose is not None:
                module = _open(key, module_name, path, copy=key if fresh else None)
            else:  # pragma: no cover  (Windows)
                module = _import(key, module_name, path)
                _kept[original] = module
        except LoadError:
            _failed.add(original)
            raise
        _extensions[original] = module
        _failed.discard(original)
        return module


def _open(path: Path, module_name: str, shown: Path, copy: Path | None) -> ModuleType:
    """``PyInit_<module_name>`` of the library at ``path``, called outside the import system;
    its handle is closed once the module is collected (``copy``, a private copy, then deleted)."""
    try:
        lib = ctypes.PyDLL(str(path), mode=os.RTLD_NOW | os.RTLD_LOCAL)
    except OSError as exc:
        raise LoadError(f"cannot load extension {module_name!r} from {shown}: {exc}", path) from exc
    handle = lib._handle
    try:
        init = getattr(lib, f"PyInit_{module_name}")
        init.argtypes = []
        init.restype = ctypes.py_object
        module = init()
        if not isinstance(module, ModuleType):
            raise TypeError(f"PyInit_{module_name} returned {type(module).__name__}, not a module")
    except Exception as exc:  # no such symbol, or the init function raised
        if _dlclose is not None:
            _dlclose(handle)
        raise LoadError(
            f"cannot load extension {module_name!r} from {shown}: {type(exc).__name__}: {exc}",
            path,
        ) from exc
    module.__file__ = str(path)
    # runs inside the module's deallocation, before its m_free: only note the handle here
    weakref.finalize(module, _released.append, (handle, copy))
    return module


def _import(path: Path, module_name: str, shown: Path) -> ModuleType:  # pragma: no cover
    """The module through the import system (where libraries cannot be closed)."""
    loader = importlib.machinery.ExtensionFileLoader(module_name, str(path))
    spec = importlib.util.spec_from_file_location(module_name, path, loader=loader)
    if spec is None:  # a loader is given, so a spec is always made
        raise LoadError(f"cannot make an import spec for {shown}", path)
    previous = sys.modules.get(module_name)
    try:
        module = importlib.util.module_from_spec(spec)
        loader.exec_module(module)
    except (ImportError, OSError) as exc:
        raise LoadError(f"cannot load extension {module_name!r} from {shown}: {exc}", path) from exc
    finally:
        # single-phase init registers the module in sys.modules; undo that
        if previous is None:
            sys.modules.pop(module_name, None)
        else:
            sys.modules[module_name] = previous
    return module


def close_released() -> int:
    """Close the shared libraries of extension modules that have been collected (done at every
    load as well); how many were closed."""
    with _lock:
        return _close_released()


def _close_released() -> int:
    closed = 0
    while _released:
        handle, copy = _released.pop()
        if _dlclose is not None:
            _dlclose(handle)
        if copy is not None:
            copy.unlink(missing_ok=True)
        closed += 1
    return closed


def _execute(source: str | bytes, module_name: str, where: str, origin: str) -> ModuleType:
    """``source`` executed as a fresh module (the one ``exec`` of this module)."""
    module = ModuleType(module_name)
    module.__file__ = where
    try:
        code = compile(source, where, "exec", dont_inherit=True)
        exec(code, module.__dict__)
    except Exception as exc:
        raise LoadError(
            f"cannot load the module {module_name!r}{origin}: {type(exc).__name__}: {exc}",
            Path(where),
        ) from exc
    return module


def load_python_source(source: str, module_name: str, where: str) -> ModuleType:
    """Execute generated Python ``source`` as a fresh module (kept in memory only: the fallback
    when the cache cannot be written); ``where`` names it in tracebacks."""
    return _execute(source, module_name, where, "")


def load_python_module(path: Path, module_name: str, sha256: str | None = None) -> ModuleType:
    """Execute the Python source file ``path`` as a fresh module named ``module_name``.

    The module is not inserted into ``sys.modules`` and no bytecode is written beside the file
    (cache entries hold exactly the files their metadata lists). Raises :class:`LoadError` when
    the file cannot be read, is untrusted (as for :func:`load_extension`), does not compile, or
    raises while it runs. The bytes executed are the bytes checked.
    """
    path = Path(path)
    source = _read_checked(path, f"the module {module_name!r}", sha256)
    return _execute(source, module_name, str(path), f" from {path}")
