"""Matrix multiplication with NumPy's ``@`` semantics for 1-D, 2-D and batched operands.

Owns: the ``matmul`` declaration and its C lowering. The VJP works on operands promoted to 2-D
(a 1-D left operand is a row, a 1-D right operand a column); the autodiff driver then sums batch
axes and the promoted leading unit axis.
May import: numpy, ``symgrad.ir`` and other ``symgrad.ops`` modules.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from symgrad.ir.dtypes import FLOAT32, DType
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
from symgrad.ops.c.emitter import Emitter, plus
from symgrad.ops.c.loops import Mono, broadcast, coalesce, contiguous, nest


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


# -- the C lowering: a call of the runtime's matrix product per (broadcast) batch element --------
def transposed_operand(node: Node) -> Node | None:
    """``x`` when ``node`` is the 2-D product ``transpose(x) @ b``: the C lowering then reads
    ``x`` column-wise instead of a transposed copy (the printer leaves the transpose out)."""
    if node.op != "matmul" or node.ndim != 2:
        return None
    a = node.inputs[0]
    if a.op == "transpose" and a.ndim == 2 and tuple(a.attrs["perm"]) == (1, 0):
        return a.inputs[0]
    return None


def _c_matmul(e: Emitter, node: Node, out: str) -> list[str]:
    """``_sg_matmul_f32``/``_f64`` (``templates/c/_runtime.c.j2``: register tiles, each element
    summed over k in order from 0) on each batch element; the left operand is addressed by a
    row stride and a k stride, so ``x.T @ b`` reads ``x`` in place."""
    a, b = node.inputs
    at = transposed_operand(node)
    if at is not None:
        a = at
    ash = a.shape if a.ndim >= 2 else (1, a.shape[0])
    if at is not None:
        ash = (ash[1], ash[0])
    bsh = b.shape if b.ndim >= 2 else (b.shape[0], 1)
    m, k, n = Mono.of(ash[-2]), Mono.of(ash[-1]), Mono.of(bsh[-1])
    batch = node.shape[: node.ndim - (a.ndim >= 2) - (b.ndim >= 2)]
    views = [
        contiguous(batch, m * n),
        broadcast(ash[:-2], batch, m * k),
        broadcast(bsh[:-2], batch, k * n),
    ]
    lens, vs = coalesce([Mono.of(d) for d in batch], views)
    mc, kc, nc = e.c(m), e.c(k), e.c(n)
    strides_a = f"1, {mc}" if at is not None else f"{kc}, 1"  # (row, k) of the left operand
    fn = "matmul_f32" if node.dtype is FLOAT32 else "matmul_f64"
    e.need(fn)

    def body(ix: list[str]) -> list[str]:
        args = [plus(out, ix[0]), plus(e.ref(a), ix[1]), plus(e.ref(b), ix[2])]
        return [f"_sg_{fn}({', '.join(args)}, {mc}, {kc}, {nc}, {strides_a});"]

    note = [f"/* the left operand is {e.ref(a)} transposed: read column-wise */"]
    return (note if at is not None else []) + nest(lens, vs, body, e.dim, prefix="_p")


register(
    OpDef(
        "matmul",
        Kind.LINALG,
        2,
        eval=lambda ctx, a, b: np.matmul(a, b),
        infer=_infer,
        vjp=_vjp,
        emit={"numpy": "{0} @ {1}", "c": _c_matmul},
        absorbs=lambda node: node.inputs[0] if transposed_operand(node) is not None else None,
        doc="a @ b with NumPy semantics (1-D, 2-D and batched operands)",
        surface=Surface("matmul", True, ufuncs=("matmul",), symbol="@"),
    )
)
