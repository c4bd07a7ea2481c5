"""Shared shape/dtype rules for op declarations.

Owns: the inference helpers the op modules reuse. May import: numpy and ``symgrad.ir``.
"""

from __future__ import annotations

from typing import Any

from symgrad.ir.dtypes import BOOL, DType
from symgrad.ir.errors import DTypeError, ShapeError
from symgrad.ir.node import Node, Shape
from symgrad.ir.opdef import broadcast_shapes, fmt_shape, unify_dtypes


def ew_infer(float_only: bool = True, out_dtype: DType | None = None, bool_ok: bool = True) -> Any:
    """Shape rule of an elementwise op: broadcast the inputs, unify their dtypes. ``bool_ok``
    False refuses bool inputs (``-``, negation and sign of bools, which NumPy refuses too)."""

    def infer(inputs: tuple[Node, ...], attrs: dict[str, Any]) -> tuple[Shape, DType]:
        first = inputs[0]
        if all(i.shape == first.shape and i.dtype is first.dtype for i in inputs):
            if float_only and not first.dtype.is_float:  # the common case: no broadcasting
                raise DTypeError(
                    f"expected floating-point input(s), got {first.dtype}; cast with "
                    ".astype('float64')"
                )
            dt = first.dtype
            shape = first.shape
        else:
            dt = unify_dtypes("", inputs)
            if float_only and not dt.is_float:
                raise DTypeError(
                    f"expected floating-point input(s), got {dt}; cast with .astype('float64')"
                )
            shape = broadcast_shapes(*(i.shape for i in inputs))
        if not bool_ok and dt is BOOL:
            raise DTypeError(
                "bool inputs are not supported (as in NumPy and PyTorch); cast with "
                ".astype('int64') or use symgrad.where"
            )
        return shape, (out_dtype or dt)

    return infer


def norm_axes(axis: int | tuple[int, ...] | list[int] | None, ndim: int) -> tuple[int, ...]:
    """Normalise an axis argument to a sorted tuple of non-negative ints."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out = []
    for a in axes:
        if not isinstance(a, int) or isinstance(a, bool):
            raise ShapeError(f"axis must be an int or a tuple of ints, got {axis!r}")
        if not -ndim <= a < ndim:
            raise ShapeError(f"axis {a} is out of range for an array of rank {ndim}")
        out.append(a % ndim if ndim else 0)
    if len(set(out)) != len(out):
        raise ShapeError(f"repeated axis in {axis!r}")
    return tuple(sorted(out))


def reduced_shape(shape: Shape, axes: tuple[int, ...], keepdims: bool) -> Shape:
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def require_bool(node: Node, what: str) -> None:
    if node.dtype is not BOOL:
        raise DTypeError(f"{what} must be bool, got {node.dtype}{fmt_shape(node.shape)}")
