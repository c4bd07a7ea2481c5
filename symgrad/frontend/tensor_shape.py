"""``Tensor``'s shape, movement and cast methods: ``reshape``/``view``, ``transpose``/``T``,
``astype``/``float``/``double`` and ``detach``.

Owns: :class:`ShapeMethods`, a base class of ``Tensor`` (``tensor.py``). Each method records one
op through the tensor's ``_apply`` (which ``Tensor`` defines: it builds the node from the
tensors' nodes and computes its value when every input has data). May import: ``symgrad.ir``
and ``symgrad.ops``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from symgrad.ir.dtypes import FLOAT32, FLOAT64
from symgrad.ir.node import Node
from symgrad.ops import api

TensorT = TypeVar("TensorT")  # the tensor type the methods return (Tensor)


class ShapeMethods(Generic[TensorT]):
    __slots__ = ()

    if TYPE_CHECKING:

        def _apply(
            self, build: Callable[..., Node], *others: Any, indexing: bool = False
        ) -> TensorT: ...

    def reshape(self, *shape: Any) -> TensorT:
        shp = shape[0] if len(shape) == 1 and isinstance(shape[0], tuple | list) else shape
        return self._apply(lambda x: api.reshape(x, shp))

    def view(self, *shape: Any) -> TensorT:
        """The same as :meth:`reshape` (PyTorch's name)."""
        return self.reshape(*shape)

    def transpose(self, *axes: Any) -> TensorT:
        ax = axes[0] if len(axes) == 1 and isinstance(axes[0], tuple | list) else axes
        return self._apply(lambda x: api.transpose(x, ax or None))

    @property
    def T(self) -> TensorT:
        return self.transpose()

    def astype(self, dtype: Any) -> TensorT:
        return self._apply(lambda x: api.cast(x, dtype))

    def float(self) -> TensorT:
        """Convert to float32 (PyTorch's ``.float()``)."""
        return self.astype(FLOAT32)

    def double(self) -> TensorT:
        return self.astype(FLOAT64)

    def detach(self) -> TensorT:
        return self._apply(api.detach)
