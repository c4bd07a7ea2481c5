"""MODEL references of the command line: ``path/to/model.py:function``.

Owns: parsing a reference, importing the file by path (``importlib``, under a private module
name, with the file's directory on ``sys.path`` while it runs), finding the function and its
example inputs, and turning every way this can fail into one :class:`ModelRefError` with a
one-line message. Used by ``symgrad gradcheck`` (and later ``show``, ``graph``, ``export``).

The example-input convention: the module defines ``<function>_inputs()``, a companion function
taking no arguments and returning the function's arguments as a tuple (a single array is one
argument).

May import: the standard library and ``symgrad.ir.errors`` (a top-level helper of the CLI).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from symgrad.ir.errors import SymgradError

INPUTS_SUFFIX = "_inputs"


class ModelRefError(SymgradError, ValueError):
    """A MODEL reference that cannot be used: bad syntax, missing file, import failure, no such
    function, missing or broken example inputs. The message is one line."""


@dataclass(frozen=True)
class ModelRef:
    """A loaded ``path.py:function`` reference."""

    path: Path
    name: str
    module: ModuleType
    function: Callable[..., Any]

    def __str__(self) -> str:
        return f"{self.path}:{self.name}"

    def example_inputs(self) -> tuple[Any, ...]:
        """The arguments returned by the companion ``<function>_inputs()``."""
        companion = f"{self.name}{INPUTS_SUFFIX}"
        make = getattr(self.module, companion, None)
        if make is None:
            raise ModelRefError(
                f"{self.path} has no {companion}(): define it to return the example inputs of "
                f"{self.name} as a tuple"
            )
        if not callable(make):
            raise ModelRefError(f"{self.path}: {companion} must be a function, got {_kind(make)}")
        try:
            got = make()
        except Exception as e:
            raise ModelRefError(f"{self.path}: {companion}() failed: {_one_line(e)}") from e
        return tuple(got) if isinstance(got, tuple | list) else (got,)


def parse(ref: str) -> tuple[Path, str]:
    """``"dir/model.py:loss"`` -> ``(Path("dir/model.py"), "loss")``."""
    path, sep, name = ref.rpartition(":")
    if not sep or not path or not name:
        raise ModelRefError(f"expected MODEL as path/to/model.py:function, got {ref!r}")
    if not name.isidentifier():
        raise ModelRefError(f"{name!r} (after the last ':' in {ref!r}) is not a function name")
    return Path(path), name


def import_path(path: Path) -> ModuleType:
    """Import the Python file at ``path`` under a private module name."""
    if not path.exists():
        raise ModelRefError(f"no such file: {path}")
    if not path.is_file():
        raise ModelRefError(f"not a file: {path}")
    resolved = path.resolve()
    digest = hashlib.sha256(str(resolved).encode()).hexdigest()[:12]
    mod_name = f"_symgrad_model_{digest}"
    spec = importlib.util.spec_from_file_location(mod_name, resolved)
    if spec is None or spec.loader is None:
        raise ModelRefError(f"cannot import {path}: not a Python source file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    sys.path.insert(0, str(resolved.parent))
    try:
        spec.loader.exec_module(module)
    except BaseException as e:
        sys.modules.pop(mod_name, None)
        if isinstance(e, KeyboardInterrupt):
            raise
        raise ModelRefError(f"cannot import {path}: {_one_line(e)}") from e
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(str(resolved.parent))
    return module


def load(ref: str) -> ModelRef:
    """Import the file of ``ref`` and find its function."""
    path, name = parse(ref)
    module = import_path(path)
    fn = getattr(module, name, None)
    if fn is None:
        raise ModelRefError(f"{path} has no function {name!r}")
    if not callable(fn):
        raise ModelRefError(f"{path}: {name} is not a function ({_kind(fn)})")
    return ModelRef(path, name, module, fn)


def _kind(x: object) -> str:
    return type(x).__name__


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}" if text else type(e).__name__
