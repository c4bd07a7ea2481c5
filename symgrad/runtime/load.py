"""Loading built artefacts into the running process.

Owns: :func:`load_extension` (a CPython extension module from a file path) and
:func:`load_python_module` (a generated NumPy module from its source file), neither of which
leaves the module in ``sys.modules``, and :class:`LoadError`, raised when a file cannot be loaded
so that the caller can discard the cache entry and rebuild it.

May import: the standard library and ``symgrad.ir.errors``.

CPython cannot unload or reload an extension module, so extensions are remembered per resolved
path: loading the same path again returns the same module object. Give every artefact a module
name of its own (e.g. derived from its cache key): the init function is ``PyInit_<name>``.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import threading
from pathlib import Path
from types import ModuleType

from symgrad.ir.errors import SymgradError

_lock = threading.Lock()
_extensions: dict[Path, ModuleType] = {}


class LoadError(SymgradError):
    """A built artefact cannot be loaded (missing, corrupt, wrong platform, bad source)."""

    def __init__(self, message: str, path: Path) -> None:
        self.path = path
        super().__init__(message)


def load_extension(path: Path, module_name: str) -> ModuleType:
    """Load the CPython extension module ``module_name`` from the shared library ``path``.

    Loading the same (resolved) path twice returns the same module. ``sys.modules`` is left as
    it was. Raises :class:`LoadError` when the file is missing or is not a loadable extension
    with a ``PyInit_<module_name>``.
    """
    key = Path(path).resolve()
    with _lock:
        module = _extensions.get(key)
        if module is not None:
            return module
        if not key.is_file():
            raise LoadError(f"cannot load extension {module_name!r}: no file at {path}", key)
        loader = importlib.machinery.ExtensionFileLoader(module_name, str(key))
        spec = importlib.util.spec_from_file_location(module_name, key, loader=loader)
        if spec is None:  # pragma: no cover  (a loader is given, so a spec is always made)
            raise LoadError(f"cannot make an import spec for {path}", key)
        previous = sys.modules.get(module_name)
        try:
            module = importlib.util.module_from_spec(spec)
            loader.exec_module(module)
        except (ImportError, OSError) as exc:
            raise LoadError(
                f"cannot load extension {module_name!r} from {path}: {exc}", key
            ) from exc
        finally:
            # single-phase init registers the module in sys.modules; undo that
            if previous is None:
                sys.modules.pop(module_name, None)
            else:
                sys.modules[module_name] = previous
        _extensions[key] = module
        return module


def load_python_module(path: Path, module_name: str) -> ModuleType:
    """Execute the Python source file ``path`` as a fresh module named ``module_name``.

    The module is not inserted into ``sys.modules`` and no bytecode is written beside the file
    (cache entries hold exactly the files their metadata lists). Raises :class:`LoadError` when
    the file cannot be read, does not compile, or raises while it runs.
    """
    path = Path(path)
    try:
        source = path.read_bytes()
    except OSError as exc:
        raise LoadError(f"cannot read the module {module_name!r} at {path}: {exc}", path) from exc
    module = ModuleType(module_name)
    module.__file__ = str(path)
    try:
        code = compile(source, str(path), "exec", dont_inherit=True)
        exec(code, module.__dict__)
    except Exception as exc:
        raise LoadError(
            f"cannot load the module {module_name!r} from {path}: {type(exc).__name__}: {exc}",
            path,
        ) from exc
    return module
