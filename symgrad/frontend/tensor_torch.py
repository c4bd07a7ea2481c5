"""``Tensor`` methods under PyTorch's names that are not reductions, movement or casts:
``size()``/``numel()``/``nelement()``/``dim()``, ``tolist()``, ``masked_fill``, ``tril``/``triu``,
``cumsum(dim)``, ``prod(dim)``, ``gather(dim, index)``, ``sort``/``argsort``/``topk``,
``softmax(dim)``/``log_softmax(dim)``, ``log10``/``log2``/``exp2``, ``pow``, ``square``,
``clamp``/``clip``.

Owns: :class:`TorchMethods`, a base class of ``Tensor`` (``tensor.py``), and :class:`Size`, what
``x.size`` is: the number of elements (NumPy's ``x.size``, an int) that can also be called as
PyTorch's ``x.size()`` (the shape) or ``x.size(d)`` (one dim). Methods with arguments are sugar
over the node-level functions of ``symgrad.ops`` (``api``, ``api_torch``, ``scan``, ``sort``)
through the tensor's ``_apply``; ``sort`` and ``topk`` return :class:`Sorted` (``values``,
``indices``), the values gathered at the indices (their gradient flows back through them).
May import: numpy, ``symgrad.ir``, ``symgrad.ops`` and ``symgrad.frontend.tensor_eval``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

import numpy as np

from symgrad.frontend.tensor_eval import concrete_error
from symgrad.ir.errors import ShapeError
from symgrad.ir.node import Node, Shape
from symgrad.ir.symdim import SymDim
from symgrad.ops import api, api_torch, scan, sort
from symgrad.ops.api import maximum, minimum

TensorT = TypeVar("TensorT")  # the tensor type the methods return (Tensor)


class Sorted(NamedTuple):
    """What ``x.sort(dim)`` and ``x.topk(k)`` return (PyTorch's ``values``, ``indices``)."""

    values: Any
    indices: Any


def _pick(shape: Shape, dim: Any) -> Any:
    nd = len(shape)
    if isinstance(dim, bool) or not isinstance(dim, int | np.integer) or not -nd <= dim < nd:
        raise ShapeError(
            f"size({dim!r}): expected a dim in [{-nd}, {nd - 1}] of a tensor of shape "
            f"{tuple(shape)}"
        )
    return shape[dim]


class Size(int):
    """``x.size``: the element count (an int, as NumPy's ``size``), callable as PyTorch's
    ``x.size()`` (the shape) and ``x.size(d)`` (the size of dim ``d``)."""

    _shape: Shape

    def __call__(self, dim: Any = None) -> Any:
        return self._shape if dim is None else _pick(self._shape, dim)


class SymbolicSize(SymDim):
    """``x.size`` of a tensor with symbolic dims: the element count as a :class:`SymDim`
    expression, callable like :class:`Size`."""

    _shape: Shape  # (a class-level annotation: the instance keeps it in its __dict__)

    def __call__(self, dim: Any = None) -> Any:
        return self._shape if dim is None else _pick(self._shape, dim)


def numel_of(shape: Shape) -> Any:
    """The number of elements: an int, or a :class:`SymDim` product for symbolic dims."""
    total: Any = 1
    for d in shape:
        total = total * d
    return total


def size_of(shape: Shape) -> Any:
    n = numel_of(shape)
    if isinstance(n, SymDim):
        s: Any = SymbolicSize._of(n._poly)
    else:
        s = Size(n)
    s._shape = shape
    return s


class TorchMethods(Generic[TensorT]):
    __slots__ = ()

    if TYPE_CHECKING:
        node: Node
        _data: np.ndarray | None

        @property
        def shape(self) -> Shape: ...
        def _apply(
            self, build: Callable[..., Node], *others: Any, indexing: bool = False
        ) -> TensorT: ...

    # -- metadata --------------------------------------------------------------------------------
    @property
    def size(self) -> Any:
        """The element count; ``x.size()`` is the shape and ``x.size(d)`` one dim (PyTorch)."""
        return size_of(self.shape)

    def numel(self) -> Any:
        """The number of elements (a ``SymDim`` expression when a dim is symbolic)."""
        return numel_of(self.shape)

    def nelement(self) -> Any:
        return numel_of(self.shape)

    def dim(self) -> int:
        """The number of dims (PyTorch's ``x.dim()``; also ``x.ndim``)."""
        return self.node.ndim

    def tolist(self) -> Any:
        """The data as (nested) Python lists of numbers."""
        if self._data is None:
            raise concrete_error(".tolist()")
        return np.asarray(self._data).tolist()

    # -- masks and running sums ----------------------------------------------------------------
    def masked_fill(self, mask: Any, value: Any) -> TensorT:
        """``value`` where ``mask`` (a bool tensor broadcasting to this one) is true."""
        if isinstance(value, TorchMethods):
            return self._apply(lambda x, m, v: api_torch.masked_fill(x, m, v), mask, value)
        if isinstance(value, np.ndarray):
            value = value.item() if value.size == 1 else value
        return self._apply(lambda x, m: api_torch.masked_fill(x, m, value), mask)

    def tril(self, diagonal: int = 0) -> TensorT:
        """The lower triangle of the last two dims (zeros above ``diagonal``)."""
        return self._apply(lambda x: api_torch.band(x, diagonal, True))

    def triu(self, diagonal: int = 0) -> TensorT:
        """The upper triangle of the last two dims (zeros below ``diagonal``)."""
        return self._apply(lambda x: api_torch.band(x, diagonal, False))

    def cumsum(self, dim: int, dtype: Any = None) -> TensorT:
        """Running sums along ``dim``."""
        if dtype is not None:
            return self._apply(lambda x: scan.cumsum(api.cast(x, dtype), dim))
        return self._apply(lambda x: scan.cumsum(x, dim))

    def prod(self, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> TensorT:
        """The product over ``dim`` (all dims when None); the gradient is the product of the
        other elements (exact at zeros)."""
        if dtype is not None:
            return self._apply(lambda x: api.prod(api.cast(x, dtype), dim, keepdim))
        return self._apply(lambda x: api.prod(x, dim, keepdim))

    # -- gathering and sorting along a dim -------------------------------------------------------
    def gather(self, dim: int, index: Any) -> TensorT:
        """PyTorch's ``gather``: ``out[i][j] = x[index[i][j]][j]`` for ``dim`` 0, ``x[i][index
        [i][j]]`` for ``dim`` 1, ...; ``index`` (int64) has as many dims as ``x``."""
        return self._apply(lambda x, i: sort.gather_along(x, dim, i), index)

    def argsort(self, dim: int = -1, descending: bool = False, stable: bool = True) -> TensorT:
        """The indices that sort ``x`` along ``dim`` (always stable: ties keep their order)."""
        return self._apply(lambda x: sort.argsort(x, dim, descending))

    def sort(self, dim: int = -1, descending: bool = False, stable: bool = True) -> Sorted:
        """``(values, indices)`` of ``x`` sorted along ``dim`` (stable)."""
        indices = self.argsort(dim, descending)
        return Sorted(self._gathered(dim, indices), indices)

    def topk(self, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> Sorted:
        """The ``k`` largest (``largest=False``: smallest) elements along ``dim``, in order,
        and their indices (ties: the first ones first)."""
        indices = self._apply(lambda x: sort.topk(x, k, dim, largest)[1])
        return Sorted(self._gathered(dim, indices), indices)

    def _gathered(self, dim: int, indices: Any) -> TensorT:
        return self._apply(lambda x, i: sort.gather_along(x, dim, i), indices)

    def softmax(self, dim: int = -1) -> TensorT:
        return self._apply(lambda x: api.softmax(x, dim))

    def log_softmax(self, dim: int = -1) -> TensorT:
        return self._apply(lambda x: api.log_softmax(x, dim))

    def logsumexp(self, dim: Any = -1, keepdim: bool = False) -> TensorT:
        return self._apply(lambda x: api.logsumexp(x, dim, keepdim))

    # -- elementwise sugar ----------------------------------------------------------------------
    def log10(self) -> TensorT:
        return self._apply(api_torch.log10)

    def log2(self) -> TensorT:
        return self._apply(api_torch.log2)

    def exp2(self) -> TensorT:
        return self._apply(api_torch.exp2)

    def pow(self, exponent: Any) -> TensorT:
        return self**exponent

    def add(self, other: Any, *, alpha: Any = 1) -> TensorT:
        return self + (other if alpha == 1 else other * alpha)

    def sub(self, other: Any, *, alpha: Any = 1) -> TensorT:
        return self - (other if alpha == 1 else other * alpha)

    def mul(self, other: Any) -> TensorT:
        return self * other

    def div(self, other: Any) -> TensorT:
        return self / other

    def matmul(self, other: Any) -> TensorT:
        return self @ other

    mm = bmm = matmul

    def square(self) -> TensorT:
        return self._apply(lambda x: x * x)

    def clamp(self, min: Any = None, max: Any = None) -> TensorT:
        """``min``/``max`` bounds (numbers or tensors); the gradient is 0 where clamped."""
        if min is None and max is None:
            raise ShapeError("clamp: give min=, max= or both")
        others = [b for b in (min, max) if isinstance(b, TorchMethods)]

        def build(x: Node, *ts: Node) -> Node:
            it = iter(ts)
            lo = next(it) if isinstance(min, TorchMethods) else min
            hi = next(it) if isinstance(max, TorchMethods) else max
            if lo is not None:
                x = maximum(x, lo)
            if hi is not None:
                x = minimum(x, hi)
            return x

        return self._apply(build, *others)

    clip = clamp
