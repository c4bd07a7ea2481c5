"""Matrix multiplication with NumPy's ``@`` semantics for 1-D, 2-D and batched operands.

Owns: the ``matmul`` declaration and its C lowering. The VJP works on operands promoted to 2-D
(a 1-D left operand is a row, a 1-D right operand a column); the autodiff driver then sums batch
axes and the promoted leading unit axis.
May import: numpy, ``symgrad.ir`` and other ``symgrad.ops`` modules.
"""

from __future__ import annotations

import math
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
    if b.ndim == 2 and a2.ndim > 2 and a2.shape[:-2] == batch:
        # a weight shared by the batch (x @ W, x of (B, T, E)): its gradient is one product of
        # the batch's rows, (B*T, E).T @ (B*T, F), not B products summed by the driver
        dims = [d for d in a2.shape[:-1] if isinstance(d, int)]
        if len(dims) == a2.ndim - 1:  # (static sizes only)
            rows = math.prod(dims)
            ar = apply("reshape", (a2,), {"shape": (rows, a2.shape[-1])})
            gr = apply("reshape", (g2,), {"shape": (rows, g2.shape[-1])})
            return ga, apply("matmul", (_swap(ar), gr))
    gb = apply("matmul", (_swap(a2), g2))  # (*batch, k, cols)
    if b.ndim == 1:
        gb = apply("reshape", (gb,), {"shape": gb.shape[:-1]})
    return ga, gb


# -- the C lowering: a call of the runtime's matrix product per (broadcast) batch element --------
def _transposed(x: Node) -> Node | None:
    """``y`` when ``x`` is the 2-D ``transpose(y)``."""
    if x.op == "transpose" and x.ndim == 2 and tuple(x.attrs["perm"]) == (1, 0):
        return x.inputs[0]
    return None


def transposed_operands(node: Node) -> tuple[Node | None, Node | None]:
    """``(x, y)`` for the 2-D product ``transpose(x) @ transpose(y)``, ``None`` in place of an
    operand that is not a transpose: the C lowering reads ``x`` and ``y`` in place instead of
    transposed copies (the printer leaves the transposes out)."""
    if node.op != "matmul" or node.ndim != 2:
        return None, None
    a, b = node.inputs
    return _transposed(a), (_transposed(b) if b.ndim == 2 else None)


def _absorbs(node: Node) -> tuple[Node, ...]:
    at, bt = transposed_operands(node)
    a, b = node.inputs
    return tuple(x for x, t in ((a, at), (b, bt)) if t is not None)


#: The runtime's dispatch thresholds (``SG_MM_PACKED_BYTES``/``_WORK`` in ``_runtime.c.j2``,
#: ``SG_MM_ROWS_MAX_<t>`` in ``_smm.c.j2``, in bytes).
PACKED_BYTES, PACKED_WORK, ROWS_MAX_BYTES = 262144, 8388608, 65536


def _packed(m: Mono, k: Mono, n: Mono, item: int, bt: Node | None) -> bool:
    """Whether ``_sg_matmul_<t>`` sends this product (static sizes only) to the packed kernel
    whatever the machine: a product too large for the small tiles, or a right operand read
    column-wise too large to copy into rows (smaller ones are copied on AVX2 machines)."""
    if m.syms or k.syms or n.syms:
        return False
    mi, ki, ni = m.coef, k.coef, n.coef
    if ni == 1:
        return False
    if bt is not None and ki != 1:
        return ki * ni * item > ROWS_MAX_BYTES or mi * ki * ni >= PACKED_WORK
    return mi >= 4 and ni >= 8 and (ki * ni * item > PACKED_BYTES or mi * ki * ni >= PACKED_WORK)


def _c_matmul(e: Emitter, node: Node, out: str) -> list[str]:
    """``_sg_matmul_f32``/``_f64`` (``templates/c/_runtime.c.j2``: inlined register tiles for
    small products, the packed multi-threaded kernel of ``_gemm.c.j2`` for large ones) on each
    batch element; both operands are addressed by a row stride and a column stride, so
    ``x.T @ b``, ``a @ y.T`` and ``x.T @ y.T`` read ``x`` and ``y`` in place."""
    a, b = node.inputs
    at, bt = transposed_operands(node)
    a = a if at is None else at
    b = b if bt is None else bt
    ash = a.shape if a.ndim >= 2 else (1, a.shape[0])
    if at is not None:
        ash = (ash[1], ash[0])
    bsh = b.shape if b.ndim >= 2 else (b.shape[0], 1)
    if bt is not None:
        bsh = (bsh[1], bsh[0])
    m, k, n = Mono.of(ash[-2]), Mono.of(ash[-1]), Mono.of(bsh[-1])
    batch = node.shape[: node.ndim - (a.ndim >= 2) - (b.ndim >= 2)]
    if batch and b.ndim == 2 and at is None and tuple(ash[:-2]) == tuple(batch):
        # a contiguous batch times one shared matrix (x @ W, x of (B, T, E)) is one product of
        # all the batch's rows: the kernel sees (B*T, E) @ (E, F), not B small products
        for d in batch:
            m = m * Mono.of(d)
        batch = ()
    views = [
        contiguous(batch, m * n),
        broadcast(ash[:-2], batch, m * k),
        broadcast(bsh[:-2], batch, k * n),
    ]
    lens, vs = coalesce([Mono.of(d) for d in batch], views)
    mc, kc, nc = e.c(m), e.c(k), e.c(n)
    strides_a = f"1, {mc}" if at is not None else f"{kc}, 1"  # (row, k) of the left operand
    strides_b = f"1, {kc}" if bt is not None else f"{nc}, 1"  # (k, column) of the right one
    fn = "matmul_f32" if node.dtype is FLOAT32 else "matmul_f64"
    e.need(fn)
    # a product known to take the packed kernel calls it directly: the inlined dispatcher
    # would be expanded at the call site only to be folded away (GCC's time, not the run's)
    call = fn.replace("matmul", "gemm") if _packed(m, k, n, node.dtype.np.itemsize, bt) else fn

    def body(ix: list[str]) -> list[str]:
        args = [plus(out, ix[0]), plus(e.ref(a), ix[1]), plus(e.ref(b), ix[2])]
        return [f"_sg_{call}({', '.join(args)}, {mc}, {kc}, {nc}, {strides_a}, {strides_b});"]

    notes = [
        f"/* the {side} operand is {e.ref(x)} transposed: read column-wise */"
        for side, x, t in (("left", a, at), ("right", b, bt))
        if t is not None
    ]
    return notes + nest(lens, vs, body, e.dim, prefix="_p")


register(
    OpDef(
        "matmul",
        Kind.LINALG,
        2,
        eval=lambda ctx, a, b: np.matmul(a, b),
        infer=_infer,
        vjp=_vjp,
        emit={"numpy": "{0} @ {1}", "c": _c_matmul},
        absorbs=_absorbs,
        doc="a @ b with NumPy semantics (1-D, 2-D and batched operands)",
        surface=Surface("matmul", True, ufuncs=("matmul",), symbol="@"),
    )
)
