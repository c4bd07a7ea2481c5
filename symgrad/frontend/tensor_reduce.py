"""``Tensor``'s reductions: ``sum``, ``mean`` and ``max`` over all axes or the ones given.

Owns: :class:`Reductions`, a base class of ``Tensor`` (``tensor.py``). Each method records one
op through the tensor's ``_apply`` (which ``Tensor`` defines). May import: ``symgrad.ir`` and
``symgrad.ops``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from symgrad.ir.node import Node
from symgrad.ops import api

TensorT = TypeVar("TensorT")  # the tensor type the methods return (Tensor)


class Reductions(Generic[TensorT]):
    __slots__ = ()

    if TYPE_CHECKING:

        def _apply(
            self, build: Callable[..., Node], *others: Any, indexing: bool = False
        ) -> TensorT: ...

    def sum(self, axis: Any = None, keepdims: bool = False) -> TensorT:
        return self._apply(lambda x: api.sum(x, axis, keepdims))

    def mean(self, axis: Any = None, keepdims: bool = False) -> TensorT:
        return self._apply(lambda x: api.mean(x, axis, keepdims))

    def max(self, axis: Any = None, keepdims: bool = False) -> TensorT:
        return self._apply(lambda x: api.max(x, axis, keepdims))
