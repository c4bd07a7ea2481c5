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
from symgrad.frontend.random import advance
from symgrad.ir.dtypes import DType
from symgrad.ir.errors import ArgumentError, IndexRangeError, SymgradError
from symgrad.ir.graph import Graph, bind_dims
from symgrad.ir.node import Node
from symgrad.runtime import finite
from symgrad.runtime.modules import Built

# the kinds of NumPy data a Python number or list may hold for each kind of argument
_KINDS = {"f": "biuf", "i": "biu", "b": "b"}
_NDARRAY = np.ndarray


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
        self._advance = advance(self.captures)  # random generators' counters, after each call
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
        # NumPy-generated code may return an argument, a view of one, a constant or one array
        # for two outputs (x * 1.0, reshape, identity, broadcast zeros): results are made fresh
        self._fresh = built.backend == "numpy"
        self._consts: list[Any] = list(getattr(built.module, "_C", ())) if self._fresh else []

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

    def _converted_with(
        self, args: tuple[Any, ...], extra: Sequence[Any], captured: Sequence[Any] | None = None
    ) -> list[Any]:
        """Validated and converted arrays for the arguments, the captures (``captured``: their
        arrays, when the caller has them) and ``extra``."""
        arrays = self._arguments(args, extra, captured)
        if self.backend == "c":
            arrays = [a if a.flags.c_contiguous else np.ascontiguousarray(a) for a in arrays]
        return arrays

    def _arguments(
        self,
        args: tuple[Any, ...],
        extra: Sequence[Any] = (),
        captured: Sequence[Any] | None = None,
    ) -> list[Any]:
        if len(args) != self.n_args:
            names = ", ".join(self._names[: self.n_args])
            raise ArgumentError(
                f"{self.__name__}() takes {self.n_args} argument(s) ({names}), got {len(args)}"
            )
        arrays: list[Any] = []
        for k, a in enumerate(args):
            dt = self._dtypes[k]
            if _masked(a):
                raise ArgumentError(_masked_message(self._names[k]))
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
        if captured is None:
            arrays.extend(t._data for t in self.captures)
        else:
            arrays.extend(captured)
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
            out = self._checked_call(args) if self.check_finite else self._call(args)
            self._advance()
            return out
        except MemoryError as e:
            if str(e):
                raise
            raise MemoryError(
                f"{self.__name__}(): out of memory in the generated {self.backend} code "
                f"(inputs of {_nbytes(args)} bytes)"
            ) from None
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
                for a in args:
                    if type(a) is not _NDARRAY and _masked(a):
                        raise TypeError("a masked array")  # (its mask would be ignored)
                results, saved = self._fwd(*arrays)
            except (TypeError, ArgumentError):
                # the checks in Python give the same errors on both backends (e.g. ">f8")
                arrays = self._converted(args)
                results, saved = self._fwd(*arrays)
        else:
            arrays = self._converted(args)
            results, saved = self._fwd(*arrays)
        if self._bwd is None:
            if self._fresh:
                results = _own(list(results), arrays, self._consts)
            return results[0] if self._single else tuple(results)
        grads = self._bwd(self._seed, saved, *arrays)
        if self._fresh:
            both = _own([*results, *grads], arrays, self._consts)
            results, grads = both[: len(results)], both[len(results) :]
        out = results[0] if self._single else tuple(results)
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
        if self._fresh:
            both = _own([*outs, *grads], arrays, self._consts)
            outs, grads = both[: len(outs)], both[len(outs) :]
        out = outs[0] if self._single else tuple(outs)
        return out if self._bwd is None else (out, tuple(grads))


def _masked(a: Any) -> bool:
    """Whether ``a`` is a NumPy masked array (whose mask generated code would ignore)."""
    return isinstance(a, np.ndarray) and type(a) is not np.ndarray and hasattr(a, "mask")


def _masked_message(name: str) -> str:
    return (
        f"{name}: masked arrays are not supported (their mask would be ignored): pass "
        f"{name}.filled(value), or {name}.data to use every element"
    )


def _nbytes(args: Sequence[Any]) -> int:
    return sum(int(getattr(a, "nbytes", 0)) for a in args)


def _own(outs: list[Any], arrays: Sequence[Any], consts: Sequence[Any]) -> list[Any]:
    """``outs`` with each array that the caller must not receive as it is -- read-only (a
    broadcast), sharing memory with an argument, a captured tensor, a constant or an earlier
    output -- replaced by a fresh writable copy: writing into a result never changes anything
    else, as on the C backend."""
    fresh: list[Any] = []
    for r in outs:
        if isinstance(r, np.ndarray) and (
            not r.flags.writeable
            or any(np.may_share_memory(r, a) for a in (*arrays, *consts, *fresh))
        ):
            r = np.array(r, copy=True, order="C")
        fresh.append(r)
    return fresh


def _python_function(text: str, name: str) -> str:
    m = re.search(rf"^def {name}\(.*?(?=^def |\Z)", text, re.S | re.M)
    return m.group(0).rstrip() + "\n" if m else ""


def _c_function(text: str, name: str) -> str:
    m = re.search(rf"^(?:/\*.*?\*/\n)?[^\n]*\b{name}\(.*?^}}\n", text, re.S | re.M)
    return m.group(0) if m else ""
