"""Reductions over axes: sum, prod and max (mean is sum times a count, see ``symgrad.ops.api``).

Owns: the ``sum``, ``prod`` and ``max`` declarations. ``max`` sends the gradient to the maximal
elements; exact ties share it evenly (like ``torch.amax`` and JAX). ``prod`` multiplies in
order like NumPy's (int64 products wrap around); its gradient is the product of the other
elements, exact where elements are zero (one zero: only it gets a gradient; two: none do).
May import: numpy, ``symgrad.ir`` and other ``symgrad.ops`` modules.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from symgrad.ir.dtypes import BOOL, FLOAT32, INT64, DType
from symgrad.ir.errors import ShapeError
from symgrad.ir.node import Node, Shape
from symgrad.ir.opdef import Kind, OpDef, apply, fmt_shape, register
from symgrad.ops.c.emitter import Emitter, plus
from symgrad.ops.c.loops import Mono, View, coalesce, contiguous, nest, prod, strides
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


def _prod_vjp(g: Node, out: Node, x: Node, axis: tuple[int, ...], keepdims: bool) -> Any:
    """The product of the other elements: ``out / x`` where the line has no zero; where it has
    one, the product of its non-zero elements at the zero and 0 elsewhere; 0 for more."""
    zero = apply("eq", (x, zeros_like(x)))
    nonzero = where(zero, zeros_like(x) + 1.0, x)  # x with its zeros replaced by ones

    def back(n: Node) -> Node:
        return expand_back(n, x, axis, keepdims)

    zeros = back(apply("sum", (cast(zero, x.dtype),), {"axis": axis, "keepdims": keepdims}))
    others = back(apply("prod", (nonzero,), {"axis": axis, "keepdims": keepdims}))
    none = zeros_like(x)
    at_the_zero = where(apply("eq", (zeros, none + 1.0)), where(zero, others, none), none)
    d = where(apply("eq", (zeros, none)), back(out) / nonzero, at_the_zero)
    return (back(g) * d,)


def _max_eval(ctx: Any, x: Any) -> Any:
    if any(x.shape[a] == 0 for a in ctx.attrs["axis"]):
        raise ShapeError("max of an empty array has no value")
    return np.max(x, axis=ctx.attrs["axis"], keepdims=ctx.attrs["keepdims"])


# -- the C lowering ---------------------------------------------------------------------------
REDUCE_COLUMNS = 32  # column sums with at most this many (static) columns accumulate locally


def _update(node: Node, acc: str, v: str) -> str:
    """The C statement folding the value ``v`` into the accumulator ``acc``."""
    if node.op == "prod":
        if node.dtype is INT64:  # wraps around like NumPy's (signed overflow is UB in C)
            return f"{acc} = (int64_t)((uint64_t){acc} * (uint64_t){v});"
        return f"{acc} *= {v};"
    if node.op == "max":
        if node.inputs[0].dtype.is_float:
            return f"{acc} = ({v} > {acc} || {v} != {v}) ? {v} : {acc};"
        if node.inputs[0].dtype is BOOL:
            return f"{acc} = {acc} || {v};"
        return f"{acc} = {v} > {acc} ? {v} : {acc};"
    if node.dtype is INT64 and node.inputs[0].dtype is INT64:
        return f"{acc} = (int64_t)((uint64_t){acc} + (uint64_t){v});"
    return f"{acc} += {v};"


def _c_reduce(e: Emitter, node: Node, out: str) -> list[str]:
    """sum/prod/max over axes, in the input's memory order. When the reduced axes are innermost
    (``sum(axis=-1)``, a full reduction) each result is one pass over a contiguous run:
    NumPy's pairwise summation for float sums (``_sg_sum_f32``/``_f64`` of the runtime), a
    running value otherwise; else results start at the identity and every input element
    updates its result in place."""
    (x,) = node.inputs
    axes = node.attrs["axis"]
    kept = [d for k, d in enumerate(x.shape) if k not in axes]
    kst = iter(strides(kept))
    out_view = View(tuple(Mono(0) if k in axes else next(kst) for k in range(x.ndim)))
    lens, (ov, xv) = coalesce([Mono.of(d) for d in x.shape], [out_view, contiguous(x.shape)])
    dt = x.dtype
    if node.op == "sum":
        ident = "0"
    elif node.op == "prod":
        ident = "1"
    elif dt.is_float:
        ident = "(-INFINITY)"
    else:
        ident = "0" if dt is BOOL else "INT64_MIN"
    lines: list[str] = []
    reduced = prod(tuple(x.shape[a] for a in axes))  # NumPy: no identity when it is 0
    if node.op == "max" and (reduced.coef == 0 or reduced.syms):
        fail = e.fail("SG_ERR_EMPTY", "0", "0", e.site(node))
        lines.append(f"if ({e.c(reduced)} == 0) {fail}")
    inner = bool(lens) and ov.strides[-1].is_zero and xv.strides[-1].is_one
    once = inner and not any(st.is_zero for st in ov.strides[:-1])  # one run per result
    if not inner and _columns(lens, ov, xv):
        return lines + _reduce_columns(e, node, out, lens, ident)
    if not once:
        lines += e.fill(out, e.size(node.shape), ident)
    if not inner:
        upd = lambda ix: [_update(node, f"{out}[{ix[0]}]", e.at(x, ix[1]))]  # noqa: E731
        return lines + nest(lens, [ov, xv], upd, e.dim)
    n_inner = e.c(lens[-1])
    ovo, xvo = (View(v.strides[:-1], v.offset) for v in (ov, xv))
    ctype = node.dtype.c_type
    assign = "=" if once else "+="

    def body(ix: list[str]) -> list[str]:
        if node.op == "sum" and dt.is_float:
            fn = "sum_f32" if dt is FLOAT32 else "sum_f64"
            e.need(fn)
            return [f"{out}[{ix[0]}] {assign} _sg_{fn}(&{e.ref(x)}[{ix[1]}], {n_inner});"]
        return [
            f"{ctype} _acc = {ident if once else f'{out}[{ix[0]}]'};",
            f"for (int64_t _j = 0; _j < {n_inner}; _j++) {{",
            f"    {_update(node, '_acc', e.at(x, plus(ix[1], '_j')))}",
            "}",
            f"{out}[{ix[0]}] = _acc;",
        ]

    return lines + nest(lens[:-1], [ovo, xvo], body, e.dim)


def _columns(lens: list[Mono], ov: View, xv: View) -> bool:
    """A reduction over the rows of a contiguous matrix with a few static columns (a bias
    gradient: ``g.sum(0)``), whose results fit in registers."""
    return (
        len(lens) == 2
        and not lens[1].syms
        and 0 < lens[1].coef <= REDUCE_COLUMNS
        and not ov.offset
        and not xv.offset
        and ov.strides[0].is_zero
        and ov.strides[1].is_one
        and xv.strides[1].is_one
        and xv.strides[0] == lens[1]
    )


def _reduce_columns(e: Emitter, node: Node, out: str, lens: list[Mono], ident: str) -> list[str]:
    """Column results accumulated in a local array while the rows run (each still updated in
    row order, so the values are those of the in-place loop)."""
    (x,) = node.inputs
    rows, cols = (e.c(d) for d in lens)
    ct = node.dtype.c_type
    value = e.at(x, f"_r * {cols} + _j")
    return [
        "{",
        f"    {ct} _acc[{cols}];",
        f"    for (int64_t _j = 0; _j < {cols}; _j++) {{",
        f"        _acc[_j] = {ident};",
        "    }",
        f"    for (int64_t _r = 0; _r < {rows}; _r++) {{",
        f"        for (int64_t _j = 0; _j < {cols}; _j++) {{",
        f"            {_update(node, '_acc[_j]', value)}",
        "        }",
        "    }",
        f"    for (int64_t _j = 0; _j < {cols}; _j++) {{",
        f"        {out}[_j] = _acc[_j];",
        "    }",
        "}",
    ]


register(
    OpDef(
        "sum",
        Kind.REDUCE,
        1,
        eval=lambda ctx, x: np.sum(x, axis=ctx.attrs["axis"], keepdims=ctx.attrs["keepdims"]),
        infer=_sum_infer,
        vjp=_sum_vjp,
        emit={"numpy": "np.sum({0}, axis={axis}, keepdims={keepdims})", "c": _c_reduce},
        doc="sum over axes (attrs: axis tuple, keepdims)",
    )
)
register(
    OpDef(
        "prod",
        Kind.REDUCE,
        1,
        eval=lambda ctx, x: np.prod(x, axis=ctx.attrs["axis"], keepdims=ctx.attrs["keepdims"]),
        infer=_sum_infer,
        vjp=_prod_vjp,
        emit={"numpy": "np.prod({0}, axis={axis}, keepdims={keepdims})", "c": _c_reduce},
        doc="product over axes, in order like np.prod (attrs: axis tuple, keepdims)",
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
        emit={"numpy": "np.max({0}, axis={axis}, keepdims={keepdims})", "c": _c_reduce},
        doc="maximum over axes; the gradient goes to the maximal elements, ties share it evenly",
        kinks="reduced ties",
    )
)
