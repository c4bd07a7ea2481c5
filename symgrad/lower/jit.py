"""``symgrad.compile``: trace a function and lower it (:mod:`symgrad.lower.driver`).

Owns: resolving ``wrt`` (argument indices and captured leaves) to input positions, and the
in-process memo that skips tracing when the same function is compiled again with the same specs
(the backend choice is ``runtime.modules.load``'s).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from symgrad.frontend.tensor import Tensor
from symgrad.frontend.trace import Spec, TracedGraph, trace
from symgrad.frontend.value import Value
from symgrad.ir.errors import ArgumentError
from symgrad.ir.graph import gc_paused
from symgrad.lower.driver import load, lower
from symgrad.passes.levels import DEFAULT_OPT
from symgrad.runtime import modules
from symgrad.runtime.compiled import CompiledFunction

_MEMO: weakref.WeakKeyDictionary[Any, dict[Any, CompiledFunction]] = weakref.WeakKeyDictionary()


def wrt_positions(wrt: Any, graph: TracedGraph) -> list[int]:
    if wrt is None:
        return []
    items = list(wrt) if isinstance(wrt, list | tuple) else [wrt]
    pos: list[int] = []
    for w in items:
        if isinstance(w, bool) or not isinstance(w, int | Tensor | Value):
            raise ArgumentError(
                f"wrt: expected argument indices or captured Values/Tensors, got {w!r:.60}"
            )
        if isinstance(w, int):
            if not 0 <= w < graph.n_args:
                raise ArgumentError(
                    f"wrt: argument index {w} is out of range (0..{graph.n_args - 1})"
                )
            k = w
        else:
            found = [i for i, c in enumerate(graph.captures) if c is w]
            if not found:
                raise ArgumentError(
                    f"wrt: {w!r:.60} is not used by the function (not among its captured leaves)"
                )
            k = graph.n_args + found[0]
        node = graph.inputs[k]
        if not node.dtype.is_float:
            raise ArgumentError(
                f"wrt: {graph.input_names[k]} has dtype {node.dtype}; only float inputs have "
                "gradients"
            )
        pos.append(k)
    return pos


def compile(
    fn: Callable[..., Any],
    *specs_or_arrays: Any,
    wrt: Any = None,
    backend: str | None = None,
    opt: int = DEFAULT_OPT,
    check_finite: bool = False,
) -> CompiledFunction:
    """Trace ``fn`` once and compile it (see the README for the full contract).

    ``check_finite=True``: every call checks its inputs for NaN/inf and, when an output or
    gradient is not finite, raises ``NonFiniteError`` naming the node that produced it."""
    specs = tuple(Spec.of(s) for s in specs_or_arrays)
    wkey = tuple(
        id(w) if isinstance(w, Tensor | Value) else w
        for w in (wrt if isinstance(wrt, list | tuple) else [wrt])
    )
    if backend is not None and backend not in modules.BACKENDS:
        raise ValueError(f"backend must be one of {modules.BACKENDS}, got {backend!r}")
    memo_key = (specs, wkey, backend, opt, bool(check_finite))
    try:
        per_fn = _MEMO.setdefault(fn, {})
    except TypeError:
        per_fn = {}
    hit = per_fn.get(memo_key)
    if hit is not None:
        return hit
    with gc_paused():  # a large graph: see ir.graph.gc_paused
        graph = trace(fn, *specs)
        positions = wrt_positions(wrt, graph)
        lowered = lower(graph, wrt=positions, opt=opt)
        built = load(lowered, backend)
    cf = CompiledFunction(
        getattr(fn, "__name__", "fn"),
        graph,
        graph.n_args,
        graph.captures,
        positions,
        lowered.prog,
        built,
        lowered.optimised,
        check_finite,
    )
    per_fn[memo_key] = cf
    return cf
