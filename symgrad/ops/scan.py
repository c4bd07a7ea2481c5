"""Running sums along an axis: ``cumsum`` (the worked example of ``docs/adding-an-op.md``).

Owns: the ``cumsum`` declaration (evaluation, shape/dtype rule, VJP, NumPy and C lowerings) and
:func:`cumsum`, its node-level function. ``cumsum(x, axis)[..., j, ...]`` is the sum of
``x[..., :j + 1, ...]`` along ``axis``, added in order from the first element like
``np.cumsum``, so float results agree with NumPy to the bit; int64 sums wrap around like
NumPy's. Its VJP is the running sum from the other end, ``g.sum(axis) - cumsum(g) + g``.
May import: numpy, ``symgrad.ir`` and other ``symgrad.ops`` modules.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from symgrad.ir.dtypes import DType
from symgrad.ir.errors import DTypeError, ShapeError
from symgrad.ir.node import Node, Shape
from symgrad.ir.opdef import Kind, OpDef, apply, fmt_shape, register
from symgrad.ops.c.emitter import Emitter
from symgrad.ops.c.loops import prod


def _infer(inputs: tuple[Node, ...], attrs: dict[str, Any]) -> tuple[Shape, DType]:
    (x,) = inputs
    axis = attrs["axis"]
    if not x.dtype.is_float and x.dtype.name != "int64":
        raise DTypeError(f"cumsum: expected a float or int64 array, got {x.dtype}")
    if not isinstance(axis, int) or not 0 <= axis < x.ndim:
        raise ShapeError(f"cumsum: axis {axis!r} is not an axis of {fmt_shape(x.shape)}")
    return x.shape, x.dtype


def _vjp(g: Node, out: Node, x: Node, axis: int) -> tuple[Node | None, ...]:
    total = apply("sum", (g,), {"axis": (axis,), "keepdims": True})
    return (total - cumsum(g, axis) + g,)  # total broadcasts back along the axis


def _c_cumsum(e: Emitter, node: Node, out: str) -> list[str]:
    """One running sum per line along the axis: the lines are the (outer, inner) pairs of the
    axes before and after it, the elements of a line ``inner`` apart."""
    (x,) = node.inputs
    axis = node.attrs["axis"]
    outer, n, inner = (
        e.c(prod(x.shape[a:b])) for a, b in ((0, axis), (axis, axis + 1), (axis + 1, None))
    )
    lines = [f"{node.dtype.c_type} _s = 0;"]
    if node.dtype.name == "int64":  # wraps around like NumPy's (signed overflow is UB in C)
        add = f"_s = (int64_t)((uint64_t)_s + (uint64_t){e.at(x, '_k')});"
    else:
        add = f"_s += {e.at(x, '_k')};"
    line = "_j" if outer == "1" else f"_o * {n} + _j"  # the element's index along the line
    at = line if inner == "1" else f"{line if outer == '1' else f'({line})'} * {inner} + _i"
    lines += [
        f"for (int64_t _j = 0; _j < {n}; _j++) {{",
        f"    const int64_t _k = {at};",
        f"    {add}",
        f"    {out}[_k] = _s;",
        "}",
    ]
    if inner != "1":
        lines = [f"for (int64_t _i = 0; _i < {inner}; _i++) {{", *("    " + s for s in lines), "}"]
    if outer == "1":
        return lines
    return [f"for (int64_t _o = 0; _o < {outer}; _o++) {{", *("    " + s for s in lines), "}"]


register(
    OpDef(
        "cumsum",
        Kind.SCAN,
        1,
        eval=lambda ctx, x: np.cumsum(x, axis=ctx.attrs["axis"], dtype=x.dtype),
        infer=_infer,
        vjp=_vjp,
        emit={"numpy": "np.cumsum({0}, axis={axis})", "c": _c_cumsum},
        doc="running sums along an axis, in order like np.cumsum (attrs: axis)",
    )
)


def cumsum(x: Node, axis: int = -1) -> Node:
    """The running sums of ``x`` along ``axis`` (negative axes count from the end)."""
    if not isinstance(axis, int) or not -x.ndim <= axis < x.ndim:
        raise ShapeError(f"cumsum: axis {axis!r} is not an axis of {fmt_shape(x.shape)}")
    return apply("cumsum", (x,), {"axis": axis % x.ndim})
