"""``Tensor``'s shape, movement and cast methods, with PyTorch's meanings: ``reshape``/``view``
(one ``-1``), ``transpose``/``T``/``mT``, ``permute``, ``squeeze``/``unsqueeze``, ``flatten``,
``expand``, the casts (``astype``, ``float``, ``double``, ``long``, ``int``, ``bool``, ``to``),
``detach`` and ``clone``.

Owns: :class:`ShapeMethods`, a base class of ``Tensor`` (``tensor.py``). ``x.transpose(d0, d1)``
swaps two dims as in PyTorch (on a 2-D tensor, ``transpose(-2, -1)`` is the matrix transpose);
``x.transpose()`` and ``x.transpose(axes)`` with one tuple, or three or more dims, keep NumPy's
meaning (a permutation), which PyTorch does not accept, so no program changes meaning.
``np.transpose(t)`` is NumPy's (``numpy_interop``). Each method records its op through the
tensor's ``_apply`` (which ``Tensor`` defines). May import: numpy, ``symgrad.ir`` and
``symgrad.ops``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from symgrad.frontend.grad_mode import no_grad
from symgrad.ir.dtypes import BOOL, FLOAT32, FLOAT64, INT64, as_dtype
from symgrad.ir.errors import ArgumentError
from symgrad.ir.node import Node, Shape
from symgrad.ops import api, api_torch

TensorT = TypeVar("TensorT")  # the tensor type the methods return (Tensor)


def _dims_arg(dims: tuple[Any, ...]) -> tuple[Any, ...]:
    """``f(2, 3)`` or ``f((2, 3))``/``f([2, 3])``: the dims as a tuple."""
    if len(dims) == 1 and isinstance(dims[0], tuple | list):
        return tuple(dims[0])
    return dims


class ShapeMethods(Generic[TensorT]):
    __slots__ = ()

    if TYPE_CHECKING:
        node: Node
        requires_grad: bool

        @property
        def shape(self) -> Shape: ...
        def _apply(
            self, build: Callable[..., Node], *others: Any, indexing: bool = False
        ) -> TensorT: ...

    def reshape(self, *shape: Any) -> TensorT:
        shp = _dims_arg(shape)
        return self._apply(lambda x: api.reshape(x, shp))

    def view(self, *shape: Any) -> TensorT:
        """The same as :meth:`reshape` (PyTorch's name; symgrad never shares storage)."""
        return self.reshape(*shape)

    def view_as(self, other: Any) -> TensorT:
        return self.reshape(other.shape)

    def reshape_as(self, other: Any) -> TensorT:
        return self.reshape(other.shape)

    def transpose(self, *dims: Any) -> TensorT:
        """``transpose(d0, d1)``: swap two dims (PyTorch). ``transpose()`` reverses the dims
        and ``transpose((2, 0, 1))`` permutes them (NumPy; PyTorch accepts neither)."""
        if len(dims) == 2 and not isinstance(dims[0], tuple | list):
            d0, d1 = dims
            return self._apply(lambda x: api_torch.swapaxes(x, d0, d1))
        return self._np_transpose(_dims_arg(dims) or None)

    def _np_transpose(self, axes: Any = None) -> TensorT:
        """NumPy's ``transpose``: reverse the dims, or permute them by ``axes``."""
        ax = None if axes is None else tuple(axes)
        return self._apply(lambda x: api.transpose(x, ax))

    def swapaxes(self, d0: int, d1: int) -> TensorT:
        return self._apply(lambda x: api_torch.swapaxes(x, d0, d1))

    swapdims = swapaxes

    def t(self) -> TensorT:
        """The transpose of a tensor with at most 2 dims (PyTorch's ``.t()``)."""
        if self.node.ndim > 2:
            raise ArgumentError(
                f"t() expects a tensor with at most 2 dims, got {self.node.ndim} dims; use "
                "transpose(d0, d1) or permute(...)"
            )
        return self._np_transpose()

    @property
    def T(self) -> TensorT:
        return self._np_transpose()

    @property
    def mT(self) -> TensorT:
        """The transpose of the last two dims (PyTorch's ``.mT``)."""
        return self.transpose(-2, -1)

    def permute(self, *dims: Any) -> TensorT:
        d = _dims_arg(dims)
        return self._apply(lambda x: api_torch.permute(x, d))

    def squeeze(self, dim: Any = None) -> TensorT:
        return self._apply(lambda x: api_torch.squeeze(x, dim))

    def unsqueeze(self, dim: int) -> TensorT:
        return self._apply(lambda x: api_torch.unsqueeze(x, dim))

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> TensorT:
        return self._apply(lambda x: api_torch.flatten(x, start_dim, end_dim))

    def expand(self, *sizes: Any) -> TensorT:
        """Broadcast to ``sizes`` (``-1`` keeps a dim), like PyTorch's ``expand``."""
        want = _dims_arg(sizes)
        have = self.node.shape
        lead = len(want) - len(have)
        shp = tuple(
            have[i - lead] if (isinstance(w, int) and w == -1 and i >= lead) else w
            for i, w in enumerate(want)
        )
        return self._apply(lambda x: api.broadcast_to(x, shp))

    def expand_as(self, other: Any) -> TensorT:
        return self.expand(other.shape)

    # -- casts ------------------------------------------------------------------------------------
    def astype(self, dtype: Any) -> TensorT:
        return self._apply(lambda x: api.cast(x, dtype))

    def to(self, dtype: Any = None, *args: Any, **kwargs: Any) -> TensorT:
        """``x.to(dtype)``; a device (``"cpu"``) is accepted and ignored (symgrad runs on the
        CPU)."""
        if dtype is None or (isinstance(dtype, str) and dtype.startswith("cpu")):
            dtype = kwargs.pop("dtype", None)
        kwargs.pop("device", None)
        if dtype is None or as_dtype(dtype) is self.node.dtype:
            return self  # type: ignore[return-value]  # (nothing to do: PyTorch returns self)
        return self.astype(dtype)

    def float(self) -> TensorT:
        """Convert to float32 (PyTorch's ``.float()``)."""
        return self.astype(FLOAT32)

    def double(self) -> TensorT:
        return self.astype(FLOAT64)

    def long(self) -> TensorT:
        """Convert to int64 (PyTorch's ``.long()``; floats are truncated towards zero)."""
        return self.astype(INT64)

    def int(self) -> TensorT:
        """Convert to int64: symgrad's one integer dtype (PyTorch's ``.int()`` is int32)."""
        return self.astype(INT64)

    def bool(self) -> TensorT:
        return self.astype(BOOL)

    def type_as(self, other: Any) -> TensorT:
        return self.astype(as_dtype(other.dtype))

    def detach(self) -> TensorT:
        """The same values, cut from the graph: a tensor that does not require grad; with data
        (outside a trace) a new leaf, so ``x.detach().requires_grad_()`` works as in PyTorch."""
        with no_grad():  # (a result without gradient history is a leaf: Tensor._wrap)
            return self._apply(api.detach)

    def clone(self) -> TensorT:
        """A copy with the same value and gradient path (PyTorch's ``clone``)."""
        return self._apply(lambda x: x * 1.0 if x.dtype.is_float else api_torch.copy(x))
