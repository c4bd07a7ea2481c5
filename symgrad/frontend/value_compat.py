"""micrograd's node protocol on ``Value``: ``Value(data, _children, _op)`` and per-node
``_backward``.

Owns: what a Value built by the user's own op code is (:class:`Custom`: its children, op name
and hand-written ``_backward``, as in the micrograd lecture's
``out = Value(t, (self,), 'tanh'); out._backward = _backward``), the ``_backward`` of a Value
symgrad computed (:func:`local_backward`: the op's VJP rule on this node's operands, adding to
their ``.grad``, as micrograd's closures do), and micrograd's ``backward()`` sweep
(:func:`sweep`: topological order, ``root.grad = 1``, every node's ``_backward`` in reverse),
which ``Value.backward()`` uses when the graph holds a hand-made node (the generated tape sweep
cannot run user code). May import: numpy, ``symgrad.ir``, ``symgrad.ops`` and
``symgrad.autodiff``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from symgrad.autodiff.vjp import vjp
from symgrad.ir.dtypes import FLOAT64
from symgrad.ir.graph import evaluate
from symgrad.ir.node import Node
from symgrad.ir.opdef import apply
from symgrad.ops.source import make_input
from symgrad.ops.tape import LEAF, tape_ops


class Custom:
    """The micrograd fields of a Value made with ``_children`` (or ``_op``, or whose
    ``_backward`` was assigned)."""

    __slots__ = ("fn", "kids", "op")

    def __init__(self, kids: tuple[Any, ...], op: str) -> None:
        self.kids = kids
        self.op = op
        self.fn: Callable[[], None] | None = None


class _Count:
    __slots__ = ("made",)

    def __init__(self) -> None:
        self.made = 0  # Values made with children: until then backward() never looks for them


COUNT = _Count()


def _noop() -> None:
    pass


@functools.cache
def _rule(code: int) -> tuple[list[Node], Node, list[Node | None], str]:
    """For a tape op: its operand placeholders (one per position of its form), the cotangent
    placeholder, the cotangent nodes of the Value operands, and the form."""
    t = tape_ops()[code]
    ins = [make_input((), FLOAT64, f"x{i}") for i in range(len(t.form))]
    out = apply(t.name, tuple(ins))
    g = make_input((), FLOAT64, "g")
    wrt = [n for n, c in zip(ins, t.form, strict=True) if c == "v"]
    cots = vjp([out], [g], wrt, all_nodes=True)
    assert isinstance(cots, dict)
    return ins, g, [cots.get(id(n)) for n in wrt], t.form


def local_backward(v: Any) -> Callable[[], None]:
    """micrograd's ``v._backward`` for a Value symgrad computed: add this node's contribution
    (``v.grad`` times the op's local derivatives) to its operands' ``.grad``."""
    code = v._code
    if code == LEAF:
        return _noop
    ins, g, cots, form = _rule(code)
    operands = list(v._prev)

    def backward() -> None:
        it = iter(operands)
        env: dict[Node, Any] = {
            n: np.asarray(next(it)._v if c == "v" else v._k, dtype=np.float64)
            for n, c in zip(ins, form, strict=True)
        }
        env[g] = np.asarray(float(v.grad), dtype=np.float64)
        targets = [c for c in cots if c is not None]
        got = evaluate(targets, env) if targets else []
        assert isinstance(got, list)
        values = iter(got)
        for operand, c in zip(operands, cots, strict=True):
            if c is not None:
                operand.grad = operand.grad + float(next(values))

    return backward


def has_custom(root: Any) -> bool:
    """Whether a hand-made node (a Value built with ``_children``) is behind ``root``."""
    if not COUNT.made:
        return False
    seen: set[int] = set()
    stack = [root]
    while stack:
        v = stack.pop()
        if id(v) in seen:
            continue
        seen.add(id(v))
        c = getattr(v, "_custom", None)
        if c is not None and c.kids:
            return True
        stack.extend(v._prev)
    return False


def sweep(root: Any) -> None:
    """micrograd's ``backward()``: every node's ``_backward`` in reverse topological order,
    after ``root.grad = 1`` (iterative: a graph may be deep)."""
    topo: list[Any] = []
    seen: set[int] = {id(root)}
    stack: list[tuple[Any, int]] = [(root, 0)]
    while stack:
        v, i = stack[-1]
        prev = v._prev
        if i < len(prev):
            stack[-1] = (v, i + 1)
            p = prev[i]
            if id(p) not in seen:
                seen.add(id(p))
                stack.append((p, 0))
        else:
            stack.pop()
            topo.append(v)
    root.grad = 1.0
    for v in reversed(topo):
        v._backward()
