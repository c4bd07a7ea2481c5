"""Reductions over axes: sum and max (mean is sum times a count, see ``symgrad.ops.api``).

Owns: the ``sum`` and ``max`` declarations. ``max`` sends the gradient to the maximal elements;
exact ties share it evenly (like ``torch.amax`` and JAX). May import: numpy, ``symgrad.ir`` and
other ``symgrad.ops`` modules.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from symgrad.ir.dtypes import BOOL, INT64, DType
from symgrad.ir.errors import ShapeError
from symgrad.ir.node import Node, Shape
from symgrad.ir.opdef import Kind, OpDef, apply, fmt_shape, register
from symgrad.ops.elementwise import cast, where, zeros_like
from symgrad.ops.infer import reduced_shape


def _infer(inputs: tuple[Node, ...], attrs: dict[str, Any]) -> tuple[Shape, DType]:
    (x,) = inputs
    return reduced_shape(x.shape, attrs["axis"], attrs["keepdims"]), x.dtype


def _max_infer(inputs: tuple[Node, ...], attrs: dict[str, Any]) -> tuple[Shape, DType]:
    (x,) = inputs
    empty = [a for a in attrs["axis"] if x.shape[a] == 0]
    if empty:  # (a symbolic dim that is 0 at run time fails when the function runs)
        raise ShapeError(
            f"the max over axis {empty[0]} of shape {fmt_shape(x.shape)} has no value: the axis "
            "is empty (NumPy refuses it too)"
        )
    return _infer(inputs, attrs)


def _sum_infer(inputs: tuple[Node, ...], attrs: dict[str, Any]) -> tuple[Shape, DType]:
    # like NumPy, a sum of bools counts them (int64), e.g. (pred == y).sum()
    shape, dtype = _infer(inputs, attrs)
    return shape, (INT64 if dtype is BOOL else dtype)


def expand_back(g: Node, x: Node, axis: tuple[int, ...], keepdims: bool) -> Node:
    """Reshape a reduction's cotangent to keepdims form and broadcast it to ``x``'s shape."""
    if not keepdims:
        g = apply("reshape", (g,), {"shape": reduced_shape(x.shape, axis, True)})
    return apply("broadcast_to", (g,), {"shape": x.shape})


def _sum_vjp(g: Node, out: Node, x: Node, axis: tuple[int, ...], keepdims: bool) -> Any:
    return (expand_back(g, x, axis, keepdims),)


def _max_vjp(g: Node, out: Node, x: Node, axis: tuple[int, ...], keepdims: bool) -> Any:
    hit = apply("eq", (x, expand_back(out, x, axis, keepdims)))
    count = apply("sum", (cast(hit, x.dtype),), {"axis": axis, "keepdims": keepdims})
    share = expand_back(g / count, x, axis, keepdims)
    return (where(hit, share, zeros_like(share)),)


def _max_eval(ctx: Any, x: Any) -> Any:
    if any(x.shape[a] == 0 for a in ctx.attrs["axis"]):
        raise ShapeError("max of an empty array has no value")
    return np.max(x, axis=ctx.attrs["axis"], keepdims=ctx.attrs["keepdims"])


register(
    OpDef(
        "sum",
        Kind.REDUCE,
        1,
        eval=lambda ctx, x: np.sum(x, axis=ctx.attrs["axis"], keepdims=ctx.attrs["keepdims"]),
        infer=_sum_infer,
        vjp=_sum_vjp,
        emit={"numpy": "np.sum({0}, axis={axis}, keepdims={keepdims})"},
        doc="sum over axes (attrs: axis tuple, keepdims)",
    )
)
register(
    OpDef(
        "max",
        Kind.REDUCE,
        1,
        eval=_max_eval,
        infer=_max_infer,
        vjp=_max_vjp,
        emit={"numpy": "np.max({0}, axis={axis}, keepdims={keepdims})"},
        doc="maximum over axes; the gradient goes to the maximal elements, ties share it evenly",
        kinks="reduced ties",
    )
)
