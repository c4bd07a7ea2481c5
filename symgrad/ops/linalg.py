"""Matrix multiplication with NumPy's ``@`` semantics for 1-D, 2-D and batched operands.

Owns: the ``matmul`` declaration. The VJP works on operands promoted to 2-D (a 1-D left operand
is a row, a 1-D right operand a column); the autodiff driver then sums batch axes and the
promoted leading unit axis. May import: numpy, ``symgrad.ir`` and other ``symgrad.ops`` modules.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from symgrad.ir.dtypes import DType
from symgrad.ir.errors import DTypeError, ShapeError
from symgrad.ir.node import Node, Shape
from symgrad.ir.opdef import (
    Kind,
    OpDef,
    Surface,
    apply,
    broadcast_shapes,
    fmt_shape,
    register,
    unify_dtypes,
)


def _infer(inputs: tuple[Node, ...], attrs: dict[str, Any]) -> tuple[Shape, DType]:
    a, b = inputs
    dtype = unify_dtypes("matmul", inputs)
    if not dtype.is_float:
        raise DTypeError(f"expected floating-point operands, got {dtype}")
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError(
            f"operands must have rank >= 1, got {fmt_shape(a.shape)} @ {fmt_shape(b.shape)}"
        )
    ka = a.shape[-1]
    kb = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if ka != kb:
        raise ShapeError(
            f"inner dims differ: {fmt_shape(a.shape)} @ {fmt_shape(b.shape)} ({ka} != {kb})"
        )
    batch = broadcast_shapes(a.shape[:-2], b.shape[:-2])
    rows = a.shape[-2:-1] if a.ndim >= 2 else ()
    cols = b.shape[-1:] if b.ndim >= 2 else ()
    return batch + rows + cols, dtype


def _swap(x: Node) -> Node:
    perm = (*range(x.ndim - 2), x.ndim - 1, x.ndim - 2)
    return apply("transpose", (x,), {"perm": perm})


def _promote(x: Node, left: bool) -> Node:
    if x.ndim >= 2:
        return x
    shape = (1, x.shape[0]) if left else (x.shape[0], 1)
    return apply("reshape", (x,), {"shape": shape})


def _vjp(g: Node, out: Node, a: Node, b: Node) -> tuple[Node | None, ...]:
    a2, b2 = _promote(a, True), _promote(b, False)
    batch = out.shape[: len(out.shape) - (a.ndim >= 2) - (b.ndim >= 2)]
    g2shape = (*batch, a2.shape[-2], b2.shape[-1])
    g2 = g if g2shape == g.shape else apply("reshape", (g,), {"shape": g2shape})
    ga = apply("matmul", (g2, _swap(b2)))  # (*batch, rows, k); a 1-D a: the driver sums (1,)
    gb = apply("matmul", (_swap(a2), g2))  # (*batch, k, cols)
    if b.ndim == 1:
        gb = apply("reshape", (gb,), {"shape": gb.shape[:-1]})
    return ga, gb


register(
    OpDef(
        "matmul",
        Kind.LINALG,
        2,
        eval=lambda ctx, a, b: np.matmul(a, b),
        infer=_infer,
        vjp=_vjp,
        emit={"numpy": "{0} @ {1}"},
        doc="a @ b with NumPy semantics (1-D, 2-D and batched operands)",
        surface=Surface("matmul", True, ufuncs=("matmul",), symbol="@"),
    )
)
