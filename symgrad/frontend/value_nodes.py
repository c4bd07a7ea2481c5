"""Eager ``Value`` tapes as graph nodes, and as arrays for generated code.

Owns: :func:`materialise` (the graph node of an eager Value, built from its tape without
recursion, when a Value meets a tensor, a traced function or a drawing) and
:class:`LeafArrays` (0-d arrays standing for leaf Values, which ``compile_step`` updates in
place). May import: numpy, ``symgrad.ir``, ``symgrad.ops`` and ``symgrad.frontend``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from symgrad.frontend.tensor import Tensor
from symgrad.frontend.value import Value
from symgrad.ir.dtypes import FLOAT64
from symgrad.ir.node import Node
from symgrad.ir.opdef import apply, const
from symgrad.ops.source import make_input
from symgrad.ops.tape import LEAF, tape_ops


def _node_of(v: Value) -> Node:
    if v._code == LEAF:
        return make_input((), FLOAT64, name=v.label)
    t = tape_ops()[v._code]
    operands = iter(p.node for p in v._prev)
    inputs = tuple(next(operands) if c == "v" else const(v._k, FLOAT64) for c in t.form)
    return apply(t.name, inputs)


def materialise(root: Value) -> Node:
    """The graph node of an eager Value, building the nodes of its tape (iteratively) first."""
    stack = [root]
    while stack:
        v = stack[-1]
        if getattr(v, "_n", None) is not None:
            stack.pop()
            continue
        pending = [p for p in v._prev if type(p) is Value and getattr(p, "_n", None) is None]
        if pending:
            stack.extend(pending)
            continue
        stack.pop()
        v._n = _node_of(v)
    n = root._n
    assert n is not None
    return n


class LeafArrays:
    """0-d float64 arrays standing for eager leaf Values, for generated code that updates
    parameters in place (``compile_step``): :meth:`arrays` loads the Values' data into one
    buffer and returns a view per Value; :meth:`store` writes the buffer back as their data.
    Other tensors pass through as their ``_data``."""

    def __init__(self, tensors: Sequence[Tensor]) -> None:
        self.tensors = tuple(tensors)
        self._values = [t for t in self.tensors if type(t) is Value and t._code == LEAF]
        self._buf = np.zeros(len(self._values))
        views = {id(v): self._buf[i : i + 1].reshape(()) for i, v in enumerate(self._values)}
        # per tensor: the array standing for it (a leaf Value), or None (its _data, read per call)
        self._fixed = [views.get(id(t)) for t in self.tensors]

    def arrays(self) -> list[Any]:
        if self._values:
            self._buf[:] = [v._v for v in self._values]
        return [t._data if a is None else a for t, a in zip(self.tensors, self._fixed, strict=True)]

    def store(self) -> None:
        if not self._values:
            return
        for v, x in zip(self._values, self._buf.tolist(), strict=True):
            v._v = x
            v._n = None
