"""``Spec`` and ``trace``: run a Python function once on symbolic inputs and record its graph.

Owns: input specs (shapes with symbolic str dims), naming graph inputs after the function's
parameters, capturing the leaves a function closes over (model parameters) as extra inputs, and
:class:`TracedGraph`. May import: numpy, ``symgrad.ir``, ``symgrad.ops``, ``symgrad.frontend``.
"""

from __future__ import annotations

import inspect
import types
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from symgrad.frontend.backward import collect
from symgrad.frontend.random import tracing
from symgrad.frontend.tensor import Tensor
from symgrad.frontend.tensor_inplace import INPLACE
from symgrad.frontend.trace_state import snapshot
from symgrad.frontend.value import Value, owner
from symgrad.frontend.value_traced import TracedValue
from symgrad.ir.dtypes import DType, as_dtype
from symgrad.ir.errors import TraceError
from symgrad.ir.graph import Graph
from symgrad.ir.node import Node, Shape
from symgrad.ir.provenance import Provenance, known_modules, module_paths, path_identifier
from symgrad.ops.source import check_input_shape, make_input


@dataclass(frozen=True)
class Spec:
    """The shape and dtype of a function argument; str dims (``"n"``) are symbolic.

    Refused with a :class:`~symgrad.ir.errors.ShapeError` naming what was expected and what
    was given: a negative or non-integer dim, a dim name that is not an identifier, and a
    shape whose static dims alone need more memory than the machine has (a dim of 10**12)."""

    shape: Shape
    dtype: DType

    def __init__(self, shape: Any, dtype: Any = "float64") -> None:
        dt = as_dtype(dtype)
        object.__setattr__(self, "shape", check_input_shape(shape, dt, "Spec"))
        object.__setattr__(self, "dtype", dt)

    @staticmethod
    def of(x: Any) -> Spec:
        """The Spec of a Spec, an array, a Tensor or a Python number."""
        if isinstance(x, Spec):
            return x
        if isinstance(x, Tensor):
            return Spec(x.shape, x.dtype)
        a = np.asarray(x)
        if a.dtype.kind == "f" and a.dtype.itemsize not in (4, 8):
            a = a.astype(np.float64)
        return Spec(a.shape, a.dtype)

    def __repr__(self) -> str:
        dims = ", ".join(repr(d) for d in self.shape)
        return f"Spec(({dims}{',' if len(self.shape) == 1 else ''}), {self.dtype.name!r})"


class TracedGraph(Graph):
    """A graph from :func:`trace`: its first ``n_args`` inputs are the function's parameters,
    the rest are the captured leaves (``captures``, in order of first use)."""

    __slots__ = ("captures", "n_args", "specs")

    def __init__(
        self,
        inputs: Sequence[Node],
        outputs: Sequence[Node],
        input_names: Sequence[str],
        n_args: int,
        captures: Sequence[Tensor | Value],
        specs: Sequence[Spec],
    ) -> None:
        super().__init__(inputs, outputs, input_names)
        self.n_args = n_args
        self.captures = tuple(captures)
        self.specs = tuple(specs)


def param_names(fn: Callable[..., Any], n: int) -> list[str]:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        params = []
    names: list[str] = []
    for p in params:
        if p.kind is p.VAR_POSITIONAL:
            names += [f"{p.name}{i}" for i in range(n - len(names))]
            break
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            names.append(p.name)
    if len(names) < n:
        names += [f"arg{i}" for i in range(len(names), n)]
    return names[:n]


def model_paths(fn: Callable[..., Any], depth: int = 3) -> dict[int, tuple[object, str]]:
    """Where each object the function reaches sits: ``id -> (object, path)`` with paths from
    the names ``fn`` uses (its globals and closure cells, those of the functions it calls, up
    to ``depth`` calls deep, and ``self`` of a bound method or callable object), walked with
    :func:`~symgrad.ir.provenance.module_paths` (parameters are leaves)."""
    roots: dict[str, object] = {}
    todo: list[tuple[Any, int]] = [(fn, 0)]
    seen: set[int] = set()
    while todo:
        f, d = todo.pop(0)
        if id(f) in seen:
            continue
        seen.add(id(f))
        bound = getattr(f, "__self__", None)
        if isinstance(f, types.MethodType) and bound is not None:
            roots.setdefault("self", bound)
            f = f.__func__
        elif not isinstance(f, types.FunctionType) and callable(f):
            roots.setdefault("self", f)
            continue
        if not isinstance(f, types.FunctionType):
            continue
        try:
            cv = inspect.getclosurevars(f)
        except (TypeError, ValueError):
            continue
        for name, obj in [*cv.nonlocals.items(), *cv.globals.items()]:
            if isinstance(obj, types.FunctionType | types.MethodType):
                if d < depth:
                    todo.append((obj, d + 1))
            elif not isinstance(obj, type | types.ModuleType):
                roots.setdefault(name, obj)
    return module_paths(roots, leaf=lambda o: isinstance(o, Tensor | Value))


def _without_root(path: str) -> str:
    """``model.layers[0].w`` -> ``layers[0].w``; a path one attribute below its root keeps
    the root (``fc1.weight``), as does a root alone (``W``)."""
    root, dot, rest = path.partition(".")
    if not dot or "[" in root or not any(c in rest for c in ".["):
        return path
    return rest


def capture_names(
    captures: Sequence[Tensor | Value], paths: dict[int, tuple[object, str]]
) -> list[str]:
    """A parameter name per captured leaf: from where it sits in the user's objects
    (``model.layers[0].w`` -> ``layers_0_w``: the root's name is left out when that leaves
    the names distinct), else its label, else ``p<k>``."""
    found = [paths.get(id(c), (None, ""))[1] for c in captures]
    short = [_without_root(p) for p in found]
    if len(set(filter(None, short))) < len([s for s in short if s]):
        short = found  # two roots hold the same attribute path: keep the roots' names
    names = []
    for i, (t, path) in enumerate(zip(captures, short, strict=True)):
        if path:
            names.append(path_identifier(path))
        elif t.label.isidentifier():
            names.append(t.label)
        else:
            names.append(f"p{i}")
    return names


def trace(fn: Callable[..., Any], *specs_or_arrays: Any) -> TracedGraph:
    """Call ``fn`` once on symbolic tensors shaped by the specs and return its graph."""
    specs = [Spec.of(s) for s in specs_or_arrays]
    names = param_names(fn, len(specs))
    if len(names) != len(specs):
        raise TraceError(
            f"{getattr(fn, '__name__', fn)} takes {len(names)} arguments, got {len(specs)} specs"
        )
    args: list[Tensor] = []
    for spec, name in zip(specs, names, strict=True):
        node = make_input(spec.shape, spec.dtype, name=name)
        cls = TracedValue if spec.shape == () and spec.dtype.is_float else Tensor
        args.append(cls._wrap(node, None, (), spec.dtype.is_float))
    paths = model_paths(fn)
    modules = {k: v for k, v in paths.items() if not isinstance(v[0], Tensor | Value)}
    snap = snapshot(fn)  # (the user's objects: put back after the trace, see trace_state)
    try:
        # random draws become nodes (symgrad.frontend.random); nodes made inside a module's
        # method record its path
        with tracing(), known_modules(modules):
            result = fn(*args)
    finally:
        undone = snap.restore_tensors()
    outs = result if isinstance(result, tuple | list) else (result,)
    out_tensors: list[Tensor] = []
    for k, o in enumerate(outs):
        if not isinstance(o, Tensor):
            where = Provenance.capture()
            raise TraceError(
                f"{getattr(fn, '__name__', 'fn')} must return symgrad tensors; output {k} is "
                f"{type(o).__name__}",
                where,
            )
        out_tensors.append(o)
    arg_ids = {id(a.node) for a in args}
    captures: list[Tensor | Value] = []  # eager Values as the user holds them
    cap_nodes: list[Node] = []
    seen: set[int] = set()
    for o in out_tensors:
        for t in collect(o):
            for p, (node, data) in zip(t._parents, t._pin, strict=True):
                fresh = id(node) not in arg_ids and id(node) not in seen
                if p.is_leaf and node.op == "input" and fresh and data is not None:
                    seen.add(id(node))
                    captures.append(owner(p))
                    cap_nodes.append(node)
    _warn_state(undone, fn)
    cap_names = capture_names(captures, paths)
    used = set(names)
    for i, nm in enumerate(cap_names):
        if nm in used:
            cap_names[i] = f"{nm}_{i}"
        used.add(cap_names[i])
    return TracedGraph(
        [a.node for a in args] + cap_nodes,
        [o.node for o in out_tensors],
        names + cap_names,
        len(args),
        captures,
        specs,
    )


def _reads(new: Tensor, old: Tensor) -> bool:
    """Whether ``new`` was computed from ``old``'s value."""
    return any(node is old.node for t in collect(new) for node, _ in t._pin)


def _warn_state(undone: list[tuple[Any, Any, Any, Any]], fn: Any) -> None:
    """Module state (a tensor replaced by a traced value computed from it: BatchNorm's running
    statistics in training mode) is not carried by a plain trace: say so (``compile_step``
    carries it)."""
    if INPLACE.entries is not None:
        return  # compile_step: it carries them
    names = [
        type(obj).__name__ + (f"[{key!r}]" if isinstance(obj, list | dict) else f".{key}")
        for obj, key, old, new in undone
        if isinstance(old, Tensor)
        and isinstance(new, Tensor)
        and old._data is not None
        and new._data is None
        and _reads(new, old)
    ]
    if names:
        warnings.warn(
            f"{getattr(fn, '__name__', 'the function')} replaced {', '.join(names)} (tensors "
            "it read) while being traced: symgrad.compile, trace, gradcheck and export do not "
            "carry module state, so they were put back and the compiled code will not update "
            "them. Use symgrad.compile_step to train with them, or trace in eval mode "
            "(model.eval())",
            stacklevel=3,
        )
