"""``TracedValue``: a scalar ``Value`` backed by a graph node.

Owns: :class:`TracedValue`, the ``Tensor`` of shape ``()`` that micrograd-style code meets
wherever a scalar is symbolic (a traced function's scalar arguments and every scalar computed
from them) or computed by the node machinery (a Value mixed with a tensor, an element of a 1-D
tensor, an eager Value's tensor in the graph, see ``value.py``), with micrograd's surface:
``.data`` a Python float, ``.grad`` kept on every one, ``_prev``/``_op``, identity comparison.
``value.py`` registers it as a virtual subclass of ``Value``. May import: numpy, ``symgrad.ir``
and ``symgrad.frontend.tensor``/``tensor_eval``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from symgrad.frontend.tensor import Tensor
from symgrad.frontend.tensor_eval import concrete_error
from symgrad.ir.errors import ShapeError


class TracedValue(Tensor):
    """A node-backed scalar ``Value`` (symbolic inside a traced function, or the result of
    mixing a Value with a tensor): a ``Tensor`` of shape ``()`` with micrograd's ``.data``,
    ``.grad`` and identity comparison."""

    __slots__ = ()
    _always_retain = True  # every Value keeps its gradient (micrograd)

    @property
    def _prev(self) -> tuple[Any, ...]:
        """The Values this one was computed from (micrograd's ``_prev``)."""
        return tuple(p._owner() for p in self._parents if isinstance(p, TracedValue))

    @property
    def _op(self) -> str:
        return "" if self.is_leaf else self.node.op

    @property
    def data(self) -> float:
        if self._data is None:
            raise concrete_error(".data")
        return float(self._data)

    @data.setter
    def data(self, value: Any) -> None:
        arr = np.asarray(value, dtype=self.node.dtype.np)
        if arr.size != 1:
            raise ShapeError(f"Value.data must be a number, got an array of shape {arr.shape}")
        self._assign(np.array(arr.reshape(())))

    def item(self) -> float:
        return float(Tensor.item(self))

    def retain_grad(self) -> Tensor:
        return self

    def __repr__(self) -> str:
        if self._data is None:
            return f"Value(<traced {self.dtype.short}>)"
        return f"Value(data={self.data}, grad={self.grad})"

    def __eq__(self, o: object) -> bool:  # type: ignore[override]
        return self is o

    def __ne__(self, o: object) -> bool:  # type: ignore[override]
        return self is not o

    __hash__ = object.__hash__

    def _owner(self) -> Any:
        """The object the user holds for this tensor (an eager Value's tensor: the Value)."""
        return self
