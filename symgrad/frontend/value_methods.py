"""A ``Value``'s tensor methods: ``sum``, ``mean``, ``max``, ``reshape``/``view``,
``transpose``/``T``, ``astype``/``float``/``double``, ``detach`` and ``v[...]``.

Owns: :class:`TensorMethods`, a base class of ``Value`` (``value.py``). An eager Value is a
float64 scalar, not a ``Tensor``; each of these methods is the Tensor method of the Value's
tensor in the graph (``Value._as_tensor``, the one bridge), so the result is a node-backed
``TracedValue`` (or a tensor) whose gradients reach the Value. May import:
``symgrad.frontend.tensor``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from symgrad.frontend.tensor import Tensor


class TensorMethods:
    __slots__ = ()

    if TYPE_CHECKING:

        def _as_tensor(self) -> Tensor: ...

    def sum(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return self._as_tensor().sum(axis, keepdims)

    def mean(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return self._as_tensor().mean(axis, keepdims)

    def max(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return self._as_tensor().max(axis, keepdims)

    def reshape(self, *shape: Any) -> Tensor:
        return self._as_tensor().reshape(*shape)

    def view(self, *shape: Any) -> Tensor:
        return self._as_tensor().reshape(*shape)

    def transpose(self, *axes: Any) -> Tensor:
        return self._as_tensor().transpose(*axes)

    @property
    def T(self) -> Tensor:
        return self._as_tensor().transpose()

    def astype(self, dtype: Any) -> Tensor:
        return self._as_tensor().astype(dtype)

    def float(self) -> Tensor:
        """Convert to float32 (PyTorch's ``.float()``)."""
        return self._as_tensor().float()

    def double(self) -> Tensor:
        return self._as_tensor().double()

    def detach(self) -> Tensor:
        return self._as_tensor().detach()

    def __getitem__(self, key: Any) -> Tensor:
        return self._as_tensor()[key]
