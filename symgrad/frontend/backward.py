"""``Tensor.backward()``: differentiate the recorded graph symbolically, run it, fill ``.grad``.

Owns: collecting the Python objects of a recorded graph, choosing who receives gradients
(requires_grad leaves; every ``Value``; tensors that called ``retain_grad()``), and accumulating
into ``.grad``. The backward graph is built by ``symgrad.autodiff.vjp`` (graph nodes, no numeric
closures) and run by the reference interpreter. May import: numpy, ``symgrad.ir``,
``symgrad.ops``, ``symgrad.autodiff`` and ``symgrad.frontend.tensor``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from symgrad.autodiff.vjp import vjp
from symgrad.frontend import tensor as _tensor
from symgrad.ir.errors import ConcretizationError, ShapeError
from symgrad.ir.graph import evaluate, toposort
from symgrad.ir.node import Node
from symgrad.ir.opdef import const, fmt_shape
from symgrad.ir.provenance import Provenance
from symgrad.ops.source import make_input

if TYPE_CHECKING:
    from symgrad.frontend.tensor import Tensor


def collect(root: Tensor) -> list[Tensor]:
    """Every tensor object of the recorded graph behind ``root``, parents first (iterative)."""
    order: list[Tensor] = []
    seen = {id(root)}
    stack: list[tuple[Tensor, int]] = [(root, 0)]
    while stack:
        t, i = stack[-1]
        if i < len(t._parents):
            stack[-1] = (t, i + 1)
            p = t._parents[i]
            if id(p) not in seen:
                seen.add(id(p))
                stack.append((p, 0))
        else:
            stack.pop()
            order.append(t)
    return order


# Runs a graph region: (boundary nodes, output nodes, boundary arrays) -> output arrays.
# symgrad installs one that generates and caches code; without it the interpreter runs.
Executor = Callable[[list[Node], list[Node], list[Any]], list[Any]]
_executor: Executor | None = None


def set_executor(fn: Executor | None) -> None:
    """Choose how backward graphs run (``None``: the reference interpreter)."""
    global _executor
    _executor = fn


def seed_for(out: Tensor, gradient: Any) -> tuple[Node, np.ndarray | None]:
    """The output cotangent: the constant 1 for a scalar, else an input bound to ``gradient``."""
    if gradient is None:
        if out.node.shape != ():
            raise ShapeError(
                f"backward() without a gradient needs a scalar output, got shape "
                f"{fmt_shape(out.node.shape)}; pass gradient= an array of that shape"
            )
        return const(1.0, out.dtype), None
    g = np.asarray(gradient, dtype=out.dtype.np)
    if g.shape != out.node.shape:
        raise ShapeError(f"gradient: expected shape {fmt_shape(out.node.shape)}, got {g.shape}")
    return make_input(g.shape, out.dtype, name="gradient"), g


def run(targets: list[Node], env: dict[Node, Any]) -> list[Any]:
    """Values of ``targets`` given the values in ``env`` (generated code when installed)."""
    boundary = [n for n in toposort(targets, stop=env) if n in env]
    if _executor is not None:
        return _executor(boundary, targets, [env[n] for n in boundary])
    values = evaluate(targets, {n: env[n] for n in boundary})
    assert isinstance(values, list)
    return values


def versions(tensors: list[Tensor]) -> dict[int, list[Node]]:
    """For each tensor object (by id), the graph nodes it was used as (one per data version)."""
    out: dict[int, list[Node]] = {}
    for t in tensors:
        for p, (node, _) in zip(t._parents, t._pin, strict=True):
            seen = out.setdefault(id(p), [])
            if node not in seen:
                seen.append(node)
    return out


def run_backward(out: Tensor, gradient: Any = None) -> None:
    if out._data is None:
        raise ConcretizationError(
            "backward() on a traced tensor: inside symgrad.compile/trace, ask for gradients "
            "with wrt= instead",
            Provenance.capture(),
        )
    if not out.requires_grad:
        raise ShapeError(
            "backward(): the output does not depend on any tensor that requires gradients"
        )
    tensors = collect(out)
    used = versions(tensors)
    used[id(out)] = [out.node]
    receivers = [
        t for t in tensors if t.requires_grad and (t.is_leaf or t._retain or t._always_retain)
    ]
    wrt = list({id(n): n for t in receivers for n in used.get(id(t), ())}.values())
    seed, seed_value = seed_for(out, gradient)
    cots = vjp([out.node], [seed], wrt, all_nodes=True)
    assert isinstance(cots, dict)
    reached = [n for n in wrt if id(n) in cots]
    env: dict[Node, Any] = {}
    for t in tensors:
        if t._data is not None:
            env[t.node] = t._data
        for node, data in t._pin:
            if data is not None:
                env[node] = data
    if seed_value is not None:
        env[seed] = seed_value
    values = run([cots[id(n)] for n in reached], env) if reached else []
    by_node = {id(n): v for n, v in zip(reached, values, strict=True)}
    for t in receivers:
        g: Any = None
        for n in used.get(id(t), ()):
            v = by_node.get(id(n))
            if v is not None:
                g = v if g is None else g + v
        if g is None:
            g = np.zeros(t.node.shape, dtype=t.dtype.np)
        if t._always_retain:
            t.grad = float(t.grad) + float(g)
        else:
            t.grad = np.array(g, copy=True) if t.grad is None else t.grad + g


_tensor._HOOKS.backward = run_backward
