"""MODEL references of the command line: ``path/to/model.py:function``.

Owns: parsing a reference, importing the file by path (``importlib``, under a private module
name, with the file's directory on ``sys.path`` while it runs), finding the function and its
example inputs, and turning every way this can fail into one :class:`ModelRefError` with a
one-line message. Used by ``symgrad gradcheck``, ``show``, ``graph`` and ``export``.

The conventions that give a model its example inputs and its argument specs:

- ``<function>_inputs()``: a companion function taking no arguments and returning the function's
  arguments as a tuple (a single array is one argument). The specs are those of the arrays.
- ``@specs(Spec(("n", 3)), Spec((3, 2)))`` on the function (this module's :func:`specs`): the
  argument specs, symbolic dims allowed. Without a companion, example inputs are generated from
  them (seeded standard normal floats, every symbolic dim of size 3); integer and boolean
  arguments need the companion.

Both may be given: the specs then shape the generated code (``show``, ``export``) and the
companion's arrays are the inputs (``gradcheck``, ``graph``).

May import: the standard library, numpy and ``symgrad.ir.errors``; ``symgrad.frontend.trace``
lazily (a top-level helper of the CLI).
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
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from symgrad.ir.errors import SymgradError

if TYPE_CHECKING:
    from symgrad.frontend.trace import Spec

INPUTS_SUFFIX = "_inputs"
SPECS_ATTR = "__symgrad_specs__"
EXAMPLE_DIM = 3  # the size of every symbolic dim in generated example inputs
F = TypeVar("F", bound=Callable[..., Any])


def specs(*arg_specs: Any) -> Callable[[F], F]:
    """Decorator declaring a model function's argument specs for the ``symgrad`` command line:
    ``@specs(Spec(("n", 3)), Spec((3, 2)))``; a shape tuple or an array stands for its Spec.
    The function itself is returned unchanged (with the specs attached)."""
    from symgrad.frontend.trace import Spec

    try:
        declared = tuple(Spec.of(s) if not isinstance(s, tuple) else Spec(s) for s in arg_specs)
    except (TypeError, ValueError) as e:
        raise ModelRefError(f"@specs: expected Specs or shape tuples, got {_one_line(e)}") from e

    def attach(fn: F) -> F:
        if not callable(fn):
            raise ModelRefError(f"@specs decorates a function, got {_kind(fn)}")
        setattr(fn, SPECS_ATTR, declared)
        return fn

    return attach


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

    @property
    def declared_specs(self) -> tuple[Spec, ...] | None:
        """The specs given with ``@specs(...)``, or None."""
        got = getattr(self.function, SPECS_ATTR, None)
        return got if isinstance(got, tuple) else None

    @property
    def has_companion(self) -> bool:
        return getattr(self.module, f"{self.name}{INPUTS_SUFFIX}", None) is not None

    def specs(self) -> tuple[Spec, ...]:
        """The argument specs: ``@specs(...)``'s, else those of the companion's arrays."""
        from symgrad.frontend.trace import Spec

        declared = self.declared_specs
        if declared is not None:
            return declared
        inputs = self.example_inputs()
        try:
            return tuple(Spec.of(a) for a in inputs)
        except (TypeError, ValueError) as e:
            raise ModelRefError(
                f"{self.path}: {self.name}{INPUTS_SUFFIX}() must return arrays or numbers: "
                f"{_one_line(e)}"
            ) from e

    def example_inputs(self) -> tuple[Any, ...]:
        """The arguments returned by the companion ``<function>_inputs()``, else arrays generated
        from ``@specs(...)`` (float arguments only)."""
        companion = f"{self.name}{INPUTS_SUFFIX}"
        make = getattr(self.module, companion, None)
        if make is None:
            declared = self.declared_specs
            if declared is not None:
                return self._generated(declared)
            raise ModelRefError(
                f"{self.path} has no {companion}(): define it to return the example inputs of "
                f"{self.name} as a tuple, or declare the argument specs with "
                f"@symgrad.model_ref.specs(...)"
            )
        if not callable(make):
            raise ModelRefError(f"{self.path}: {companion} must be a function, got {_kind(make)}")
        try:
            got = make()
        except Exception as e:
            raise ModelRefError(f"{self.path}: {companion}() failed: {_one_line(e)}") from e
        return tuple(got) if isinstance(got, tuple | list) else (got,)

    def _generated(self, declared: tuple[Spec, ...]) -> tuple[Any, ...]:
        rng = np.random.default_rng(0)
        out: list[Any] = []
        for k, s in enumerate(declared):
            if not s.dtype.is_float:
                raise ModelRefError(
                    f"{self.path}: argument {k} of {self.name} is {s.dtype.name}: define "
                    f"{self.name}{INPUTS_SUFFIX}() to give example inputs (only float arguments "
                    "are generated from @specs)"
                )
            shape = tuple(d if isinstance(d, int) else EXAMPLE_DIM for d in s.shape)
            out.append(rng.standard_normal(shape).astype(s.dtype.np))
        return tuple(out)


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
