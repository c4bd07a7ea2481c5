"""``Tensor``'s reductions, with PyTorch's names and NumPy's as aliases: ``sum``, ``mean``,
``max``, ``min``, ``argmax``, ``argmin``, ``var``, ``std`` over all dims or the ones given.

Owns: :class:`Reductions`, a base class of ``Tensor`` (``tensor.py``), and the reading of their
arguments: ``dim=``/``keepdim=`` (PyTorch) or ``axis=``/``keepdims=`` (NumPy), positional either
way. ``x.max(dim)`` / ``x.min(dim)`` return PyTorch's pair :class:`MinMax` (``.values``,
``.indices``), while ``x.max(axis=...)`` keeps NumPy's meaning (the values only); ``x.max(y)``
with a tensor ``y`` is the elementwise maximum. ``var``/``std`` are unbiased by default
(PyTorch's ``correction=1``; ``unbiased=False`` or ``correction=0`` for NumPy's). Each method
records its op(s) through the tensor's ``_apply`` (which ``Tensor`` defines). May import:
``symgrad.ir`` and ``symgrad.ops``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

import numpy as np

from symgrad.ir.errors import ArgumentError
from symgrad.ir.node import Node
from symgrad.ops import api, api_torch

TensorT = TypeVar("TensorT")  # the tensor type the methods return (Tensor)


class MinMax(NamedTuple):
    """What ``x.max(dim)`` / ``x.min(dim)`` return: the values and the (first) indices."""

    values: Any
    indices: Any


def _dims(what: str, dim: Any, keepdim: Any, axis: Any, keepdims: Any) -> tuple[Any, bool]:
    """The reduced dims and keep flag from PyTorch's or NumPy's spelling (not both)."""
    if axis is not None:
        if dim is not None:
            raise ArgumentError(f"{what}: pass dim= (PyTorch) or axis= (NumPy), not both")
        dim = axis
    if keepdims is not None:
        if keepdim:
            raise ArgumentError(f"{what}: pass keepdim= (PyTorch) or keepdims= (NumPy), not both")
        keepdim = keepdims
    if isinstance(dim, list):
        dim = tuple(dim)
    return dim, bool(keepdim)


class Reductions(Generic[TensorT]):
    __slots__ = ()

    if TYPE_CHECKING:

        def _apply(
            self, build: Callable[..., Node], *others: Any, indexing: bool = False
        ) -> TensorT: ...

    def sum(
        self,
        dim: Any = None,
        keepdim: bool = False,
        *,
        axis: Any = None,
        keepdims: bool | None = None,
        dtype: Any = None,
    ) -> TensorT:
        d, k = _dims("sum()", dim, keepdim, axis, keepdims)
        if dtype is not None:
            return self._apply(lambda x: api.sum(api.cast(x, dtype), d, k))
        return self._apply(lambda x: api.sum(x, d, k))

    def mean(
        self,
        dim: Any = None,
        keepdim: bool = False,
        *,
        axis: Any = None,
        keepdims: bool | None = None,
    ) -> TensorT:
        d, k = _dims("mean()", dim, keepdim, axis, keepdims)
        return self._apply(lambda x: api.mean(x, d, k))

    def max(
        self,
        dim: Any = None,
        keepdim: bool = False,
        *,
        axis: Any = None,
        keepdims: bool | None = None,
    ) -> Any:
        """All elements' maximum; ``x.max(dim)``: :class:`MinMax` (values, indices);
        ``x.max(axis=...)``: the values (NumPy); ``x.max(other)``: the elementwise maximum."""
        return self._extreme("max()", dim, keepdim, axis, keepdims, True)

    def min(
        self,
        dim: Any = None,
        keepdim: bool = False,
        *,
        axis: Any = None,
        keepdims: bool | None = None,
    ) -> Any:
        """Like :meth:`max`, for the minimum."""
        return self._extreme("min()", dim, keepdim, axis, keepdims, False)

    def _extreme(
        self, what: str, dim: Any, keepdim: Any, axis: Any, keepdims: Any, largest: bool
    ) -> Any:
        if isinstance(dim, Reductions | np.ndarray):
            if axis is not None or keepdims is not None:
                raise ArgumentError(f"{what[:-2]}(other) takes no axis= or keepdims=")
            pick = api.maximum if largest else api.minimum
            return self._apply(lambda x, y: pick(x, y), dim)  # torch.max(a, b)
        reduce = api.max if largest else api_torch.min
        d, k = _dims(what, dim, keepdim, axis, keepdims)
        values = self._apply(lambda x: reduce(x, d, k))
        if dim is None or not isinstance(dim, int | np.integer):
            return values  # all dims, NumPy's axis=, or several dims: the values
        indices = self._apply(lambda x: api_torch.argmax(x, d, k, largest))
        return MinMax(values, indices)

    def amax(self, dim: Any = None, keepdim: bool = False) -> TensorT:
        d, k = _dims("amax()", dim, keepdim, None, None)
        return self._apply(lambda x: api.max(x, d, k))

    def amin(self, dim: Any = None, keepdim: bool = False) -> TensorT:
        d, k = _dims("amin()", dim, keepdim, None, None)
        return self._apply(lambda x: api_torch.min(x, d, k))

    def argmax(self, dim: Any = None, keepdim: bool = False, *, axis: Any = None) -> TensorT:
        d, k = _dims("argmax()", dim, keepdim, axis, None)
        return self._apply(lambda x: api_torch.argmax(x, d, k, True))

    def argmin(self, dim: Any = None, keepdim: bool = False, *, axis: Any = None) -> TensorT:
        d, k = _dims("argmin()", dim, keepdim, axis, None)
        return self._apply(lambda x: api_torch.argmax(x, d, k, False))

    def all(self, dim: Any = None, keepdim: bool = False) -> TensorT:
        """Whether every element (over ``dim``) is nonzero, as a bool tensor."""
        d, k = _dims("all()", dim, keepdim, None, None)
        return self._apply(lambda x: api_torch.all_any(x, d, k, True))

    def any(self, dim: Any = None, keepdim: bool = False) -> TensorT:
        """Whether any element (over ``dim``) is nonzero, as a bool tensor."""
        d, k = _dims("any()", dim, keepdim, None, None)
        return self._apply(lambda x: api_torch.all_any(x, d, k, False))

    def var(
        self,
        dim: Any = None,
        unbiased: bool | None = None,
        keepdim: bool = False,
        *,
        correction: float | None = None,
        axis: Any = None,
        keepdims: bool | None = None,
        ddof: float | None = None,
    ) -> TensorT:
        """The variance, unbiased unless told otherwise (PyTorch: ``correction=1``);
        ``unbiased=False``, ``correction=0`` or NumPy's ``ddof=0`` for the biased one."""
        return self._variance("var()", dim, unbiased, keepdim, correction, axis, keepdims, ddof)

    def std(
        self,
        dim: Any = None,
        unbiased: bool | None = None,
        keepdim: bool = False,
        *,
        correction: float | None = None,
        axis: Any = None,
        keepdims: bool | None = None,
        ddof: float | None = None,
    ) -> TensorT:
        """The standard deviation, unbiased unless told otherwise (see :meth:`var`)."""
        v = self._variance("std()", dim, unbiased, keepdim, correction, axis, keepdims, ddof)
        return v.sqrt()  # type: ignore[attr-defined]

    def _variance(
        self,
        what: str,
        dim: Any,
        unbiased: bool | None,
        keepdim: bool,
        correction: float | None,
        axis: Any,
        keepdims: bool | None,
        ddof: float | None,
    ) -> TensorT:
        c = _correction(unbiased, correction, ddof)
        d, k = _dims(what, dim, keepdim, axis, keepdims)
        return self._apply(lambda x: api_torch.var(x, d, c, k))


def _correction(unbiased: bool | None, correction: float | None, ddof: float | None) -> float:
    given = [v for v in (unbiased, correction, ddof) if v is not None]
    if len(given) > 1:
        raise ArgumentError("var/std: pass one of unbiased=, correction= or ddof=")
    if unbiased is not None:
        if not isinstance(unbiased, bool):
            raise ArgumentError(
                f"var/std: unbiased must be True or False, got {unbiased!r:.40}; the dims "
                "come first (x.var(dim, unbiased))"
            )
        return 1.0 if unbiased else 0.0
    if correction is not None:
        return float(correction)
    return float(ddof) if ddof is not None else 1.0
