"""``CompiledFunction``: the callable that ``symgrad.compile`` returns.

Owns: argument validation on every call (count, dtype, shape, symbolic-dim consistency; Python
numbers and lists are converted, but never None, strings, or floats for an integer argument),
reading captured leaves' current ``.data``, running the generated forward (and backward) passes,
the opt-in ``check_finite`` (see ``runtime/finite.py``), and access to the generated source.
May import: numpy, ``symgrad.ir``, ``symgrad.backends`` and the rest of ``symgrad.runtime``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from symgrad.codegen.program import Program
from symgrad.ir.dtypes import DType
from symgrad.ir.errors import ArgumentError, IndexRangeError, SymgradError
from symgrad.ir.graph import Graph, bind_dims
from symgrad.ir.node import Node
from symgrad.runtime import finite
from symgrad.runtime.modules import Built

# the kinds of NumPy data a Python number or list may hold for each kind of argument
_KINDS = {"f": "biuf", "i": "biu", "b": "b"}


class CompiledFunction:
    """A traced function compiled to NumPy or C. Call it with arrays: it returns the output
    (an array, or a tuple for several outputs), or ``(output, grads)`` when compiled with
    ``wrt``, ``grads`` being a tuple aligned with ``wrt``.

    With ``check_finite=True`` every call checks that its inputs (arguments and captured
    leaves) are finite and, when an output or gradient is not, raises
    :class:`~symgrad.ir.errors.NonFiniteError` naming the first node that produced a NaN or an
    infinity (its op and the user's file:line)."""

    def __init__(
        self,
        name: str,
        graph: Graph,
        n_args: int,
        captures: Sequence[Any],
        wrt: Sequence[int],
        program: Program,
        built: Built,
        joint_graph: Graph,
        check_finite: bool = False,
    ) -> None:
        self.__name__ = name
        self.check_finite = bool(check_finite)
        self._graph = graph
        self._joint_graph = joint_graph
        self.n_args = n_args
        self.captures = tuple(captures)
        self.wrt = tuple(wrt)
        self.program = program
        self.backend = built.backend
        self._built = built
        self._fwd = built.module.forward
        self._bwd = getattr(built.module, "backward", None)
        self._params: list[tuple[str, Node]] = list(program.forward.params)
        self._names = [p for p, _ in self._params]
        self._dtypes: list[DType] = [n.dtype for _, n in self._params]
        outs = graph.outputs
        self._single = len(outs) == 1
        self._seed = np.ones((), dtype=outs[0].dtype.np) if wrt else None

    # -- introspection ------------------------------------------------------------------------
    @property
    def graph(self) -> Graph:
        """The joint graph (inputs [+ cotangent] → outputs [+ gradients])."""
        return self._joint_graph

    @property
    def cache_path(self) -> Path:
        return self._built.path

    def source(self, which: str = "all") -> str:
        """Generated source: ``"forward"``, ``"backward"``, or ``"all"`` (the whole file)."""
        if which not in ("forward", "backward", "all"):
            raise ValueError(f"source(): expected 'forward', 'backward' or 'all', got {which!r}")
        if which == "backward" and self._bwd is None:
            raise ValueError("this function was compiled without wrt=: it has no backward pass")
        if self.backend == "numpy":
            text = self._built.source("module.py")
            return text if which == "all" else _python_function(text, which)
        text = self._built.source("kernel.c")
        return text if which == "all" else _c_function(text, f"sg_{which}")

    def memory(self) -> dict[str, str]:
        """The scratch memory plan of each generated C function (``"forward"``, and
        ``"backward"`` when differentiated), as the C printer reports it in the source: blocks,
        values, and the peak in bytes with and without buffer reuse (static shapes), e.g.
        ``"24 blocks for 45 values, 72,896 bytes (145,664 without reuse)"``. The NumPy backend
        allocates per statement and has no plan: ``{}``."""
        if self.backend != "c":
            return {}
        out: dict[str, str] = {}
        for which in ("forward", "backward"):
            if which == "backward" and self._bwd is None:
                continue
            m = re.search(r"/\* scratch memory: (.*?): a value's block", self.source(which))
            out[which] = m.group(1) if m else "no scratch memory"
        return out

    def _repr_html_(self) -> str:
        """Jupyter's rich display: the explorer (``symgrad.codegen.explorer``)."""
        from symgrad.codegen.explorer import fragment

        return fragment(self.program, f"{self.__name__} ({self.backend})", self.backend)

    def __repr__(self) -> str:
        w = f", wrt={list(self.wrt)}" if self.wrt else ""
        return f"<CompiledFunction {self.__name__} backend={self.backend!r}{w}>"

    # -- calling ----------------------------------------------------------------------------------
    def _converted(self, args: tuple[Any, ...]) -> list[Any]:
        return self._converted_with(args, ())

    def _converted_with(self, args: tuple[Any, ...], extra: Sequence[Any]) -> list[Any]:
        """Validated and converted arrays for the arguments, the captures and ``extra``."""
        arrays = self._arguments(args, extra)
        if self.backend == "c":
            arrays = [a if a.flags.c_contiguous else np.ascontiguousarray(a) for a in arrays]
        return arrays

    def _arguments(self, args: tuple[Any, ...], extra: Sequence[Any] = ()) -> list[Any]:
        if len(args) != self.n_args:
            names = ", ".join(self._names[: self.n_args])
            raise ArgumentError(
                f"{self.__name__}() takes {self.n_args} argument(s) ({names}), got {len(args)}"
            )
        arrays: list[Any] = []
        for k, a in enumerate(args):
            dt = self._dtypes[k]
            if isinstance(a, np.ndarray):
                if a.dtype != dt.np:
                    raise ArgumentError(f"{self._names[k]}: expected {dt}, got {a.dtype}")
            elif hasattr(a, "_data") and hasattr(a, "node"):  # a symgrad Tensor/Value
                a = np.asarray(a.data)
                if a.dtype != dt.np:
                    raise ArgumentError(f"{self._names[k]}: expected {dt}, got {a.dtype}")
            else:
                a = self._convert(k, a, dt)
            arrays.append(a)
        for t in self.captures:
            arrays.append(t._data)
        arrays.extend(extra)
        bind_dims([n for _, n in self._params], arrays, self._names)
        return arrays

    def _convert(self, k: int, a: Any, dt: DType) -> np.ndarray:
        """A Python number, list or other array-like as an array of ``dt`` (refusing None,
        strings, objects, and data that would be truncated, like 1.5 for an int64 argument)."""
        name = self._names[k]
        if a is None or isinstance(a, str | bytes):
            raise ArgumentError(f"{name}: expected {dt} data, got {a!r:.60}")
        try:
            raw = np.asarray(a)
        except (TypeError, ValueError) as e:
            raise ArgumentError(f"{name}: expected {dt} data, got {a!r:.60}") from e
        if raw.dtype.kind not in _KINDS[np.dtype(dt.np).kind]:
            raise ArgumentError(
                f"{name}: expected {dt} data, got {raw.dtype} data {a!r:.60}"
                + ("; convert it explicitly" if raw.dtype.kind in "biuf" else "")
            )
        return raw.astype(dt.np, copy=False)

    def __call__(self, *args: Any) -> Any:
        try:
            if self.check_finite:
                return self._checked_call(args)
            return self._call(args)
        except (IndexError, ValueError) as e:
            if isinstance(e, SymgradError):
                raise
            # the generated code's run-time checks (index ranges, one_hot classes, the max of
            # an empty array) raise built-in errors: give them symgrad types
            if isinstance(e, IndexError):
                raise IndexRangeError(str(e)) from None
            raise ArgumentError(f"{self.__name__}(): {e}") from None

    def _call(self, args: tuple[Any, ...]) -> Any:
        if self.backend == "c" and len(args) == self.n_args:
            # fast path: the generated binding checks dtypes, shapes and symbolic dims itself;
            # anything that is not a contiguous buffer (lists, numbers, views) raises TypeError
            # and takes the converting path below
            arrays = [*args, *(t._data for t in self.captures)]
            try:
                results, saved = self._fwd(*arrays)
            except TypeError:
                arrays = self._converted(args)
                results, saved = self._fwd(*arrays)
        else:
            arrays = self._converted(args)
            results, saved = self._fwd(*arrays)
        out = results[0] if self._single else tuple(results)
        if self._bwd is None:
            return out
        grads = self._bwd(self._seed, saved, *arrays)
        return out, tuple(grads)

    def _checked_call(self, args: tuple[Any, ...]) -> Any:
        arrays = self._converted(args)
        names = [
            f"input {nm}" if k < self.n_args else f"captured tensor {nm}"
            for k, nm in enumerate(self._names[: len(arrays)])
        ]
        finite.check_inputs(self.__name__, names, arrays)
        results, saved = self._fwd(*arrays)
        outs = list(results)
        labels = ["the output" if self._single else f"output {k}" for k in range(len(outs))]
        grads: list[Any] = []
        env = list(arrays)
        if self._bwd is not None:
            grads = list(self._bwd(self._seed, saved, *arrays))
            labels += [f"the gradient with respect to {self._names[k]}" for k in self.wrt]
            env.append(self._seed)
        finite.locate(self.__name__, self._joint_graph, env, [*outs, *grads], labels)
        out = outs[0] if self._single else tuple(outs)
        return out if self._bwd is None else (out, tuple(grads))


def _python_function(text: str, name: str) -> str:
    m = re.search(rf"^def {name}\(.*?(?=^def |\Z)", text, re.S | re.M)
    return m.group(0).rstrip() + "\n" if m else ""


def _c_function(text: str, name: str) -> str:
    m = re.search(rf"^(?:/\*.*?\*/\n)?[^\n]*\b{name}\(.*?^}}\n", text, re.S | re.M)
    return m.group(0) if m else ""
