"""Integer-array indexing: gather (``W[xs]``, ``p[arange(n), ys]``), its adjoint scatter_add,
one_hot, class_index and bincount.

Owns: those declarations and their C lowerings. ``gather(x, i0, ..., ik)`` is
``x[i0, ..., ik]`` with int64 index arrays on the leading ``k`` axes (broadcast together);
indices must lie in ``[-d, d)`` like NumPy, checked when evaluated.
May import: numpy, ``symgrad.ir`` and other ``symgrad.ops`` modules.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from symgrad.ir.dtypes import INT64, DType, as_dtype
from symgrad.ir.errors import DTypeError, IndexRangeError, ShapeError
from symgrad.ir.node import Node, Shape
from symgrad.ir.opdef import Kind, OpDef, apply, broadcast_shapes, fmt_shape, register, shape_size
from symgrad.ops.c.emitter import Emitter, plus
from symgrad.ops.c.loops import Mono, broadcast, coalesce, contiguous, nest, prod, strides


def check_range(idx: Any, n: int, what: str) -> None:
    if idx.size and (idx.min() < -n or idx.max() >= n):
        bad = idx[(idx < -n) | (idx >= n)].ravel()[0]
        raise IndexRangeError(f"{what}: index {int(bad)} is out of range for a dim of size {n}")


def _check_index_dtypes(idx: tuple[Node, ...], what: str) -> None:
    """(Called from shape rules: ``apply`` prefixes the message with the op's name.)"""
    for i in idx:
        if i.dtype is not INT64:
            raise DTypeError(
                f"index arrays must be integers (int64), got {i.dtype}{fmt_shape(i.shape)}"
            )


# -- the C lowerings: one loop over the index tuples, indices checked (all of each array, in
# order, like NumPy) and negative ones wrapped ----------------------------------------------------
def _in_range(idx: Node, dim: Any) -> bool:
    """Whether ``idx`` is known to hold indices in ``[0, dim)``: a ``class_index`` with at most
    ``dim`` classes has been checked already (so a second range check is left out)."""
    n = idx.attrs.get("num_classes") if idx.op == "class_index" else None
    return isinstance(n, int) and isinstance(dim, int) and n <= dim


def _c_indexed(
    e: Emitter, node: Node, out: str, table: tuple[Any, ...], scatter: bool
) -> list[str]:
    """gather (``out = x[i0, ..., ik]``) and scatter_add (``out[i0, ..., ik] += g``)."""
    src, *idx = node.inputs
    k = len(idx)
    lines: list[str] = []
    dims = [e.c(d) for d in table[:k]]
    for m, i in enumerate(idx):
        if not _in_range(i, table[m]):
            lines += e.check_range(node, i, dims[m], "SG_ERR_INDEX", f"-{dims[m]}")
    full = src if scatter else node  # the array of shape (*index shape, *rows)
    ishape = full.shape[: full.ndim - (len(table) - k)]
    rows = prod(table[k:])
    tst = strides(table)
    views = [contiguous(ishape, rows)] + [broadcast(i.shape, ishape) for i in idx]
    lens, vs = coalesce([Mono.of(d) for d in ishape], views)
    n_rows = e.c(rows)

    def body(ix: list[str]) -> list[str]:
        code: list[str] = []
        terms = []
        for m, i in enumerate(idx):
            code.append(f"int64_t _v{m} = {e.at(i, ix[1 + m])};")
            code.append(f"if (_v{m} < 0) _v{m} += {dims[m]};")
            st = tst[m]
            terms.append(f"_v{m}" if st.is_one else f"_v{m} * {e.c(st)}")
        code.append(f"const int64_t _s = {' + '.join(terms)};")
        r = "0" if rows.is_one else "_r"
        if scatter:
            stmt = f"{out}[{plus('_s', r)}] += {e.at(src, plus(ix[0], r))};"
        else:
            stmt = f"{out}[{plus(ix[0], r)}] = {e.ref(src)}[{plus('_s', r)}];"
        if rows.is_one:
            return [*code, stmt]
        return [*code, f"for (int64_t _r = 0; _r < {n_rows}; _r++) {{", f"    {stmt}", "}"]

    return lines + nest(lens, vs, body, e.dim)


def _c_gather(e: Emitter, node: Node, out: str) -> list[str]:
    return _c_indexed(e, node, out, node.inputs[0].shape, scatter=False)


def _c_scatter_add(e: Emitter, node: Node, out: str) -> list[str]:
    lines = e.fill(out, e.size(node.shape), "0")
    return lines + _c_indexed(e, node, out, node.attrs["shape"], scatter=True)


def _c_bincount(e: Emitter, node: Node, out: str) -> list[str]:
    """``out[i0, ..., ik] += 1`` per index tuple, indices checked like gather's: in the
    counting loop when one array needs it (the first bad value in order either way), else
    array by array first."""
    idx, table = node.inputs, node.attrs["shape"]
    dims = [e.c(d) for d in table]
    lines = e.fill(out, e.size(node.shape), "0")
    checked = [m for m, i in enumerate(idx) if not _in_range(i, table[m])]
    inline = len(checked) == 1
    for m in [] if inline else checked:
        lines += e.check_range(node, idx[m], dims[m], "SG_ERR_INDEX", f"-{dims[m]}")
    ishape = broadcast_shapes(*(i.shape for i in idx))
    lens, vs = coalesce([Mono.of(d) for d in ishape], [broadcast(i.shape, ishape) for i in idx])
    tst = strides(table)
    site = e.site(node)

    def body(ix: list[str]) -> list[str]:
        code, terms = [], []
        for m, i in enumerate(idx):
            code.append(f"int64_t _v{m} = {e.at(i, ix[m])};")
            if inline and m in checked:
                fail = e.fail("SG_ERR_INDEX", f"_v{m}", dims[m], site)
                code.append(f"if (_v{m} < -{dims[m]} || _v{m} >= {dims[m]}) {fail}")
            if m in checked:
                code.append(f"if (_v{m} < 0) _v{m} += {dims[m]};")
            terms.append(f"_v{m}" if tst[m].is_one else f"_v{m} * {e.c(tst[m])}")
        return [*code, f"{out}[{' + '.join(terms)}] += 1;"]

    return lines + nest(lens, vs, body, e.dim)


def _c_check_classes(e: Emitter, node: Node) -> list[str]:
    """one_hot's and class_index's check: every class in ``[0, num_classes)``."""
    c = node.attrs["num_classes"]
    return e.check_range(node, node.inputs[0], str(c), "SG_ERR_CLASS", "0")


def _c_one_hot(e: Emitter, node: Node, out: str) -> list[str]:
    (i,) = node.inputs
    c = node.attrs["num_classes"]
    lines = _c_check_classes(e, node) + e.fill(out, e.size(node.shape), "0")
    return lines + [
        f"for (int64_t _i = 0; _i < {e.size(i.shape)}; _i++) {{",
        f"    {out}[_i * {c} + {e.at(i, '_i')}] = 1;",
        "}",
    ]


def _c_class_index(e: Emitter, node: Node, out: str) -> list[str]:
    return _c_check_classes(e, node) + e.copy(node, node.inputs[0], out)


# -- the declarations ------------------------------------------------------------------------------
def _gather_infer(inputs: tuple[Node, ...], attrs: dict[str, Any]) -> tuple[Shape, DType]:
    x, *idx = inputs
    if not idx:
        raise ShapeError("gather needs at least one index array")
    if len(idx) > x.ndim:
        raise ShapeError(f"too many index arrays ({len(idx)}) for shape {fmt_shape(x.shape)}")
    _check_index_dtypes(tuple(idx), "gather")
    for i, d in zip(idx, x.shape, strict=False):  # constant indices into static dims
        if i.op == "constant" and isinstance(d, int):  # are checked at trace time
            check_range(i.attrs["value"].array, d, "indexing")
    return broadcast_shapes(*(i.shape for i in idx)) + x.shape[len(idx) :], x.dtype


def _gather_eval(ctx: Any, x: Any, *idx: Any) -> Any:
    try:  # (NumPy checks the range as it reads, [-n, n) as here: searched only to name it)
        return x[tuple(idx)]
    except IndexError:
        for k, i in enumerate(idx):
            check_range(i, x.shape[k], "indexing")
        raise


def _gather_vjp(g: Node, out: Node, x: Node, *idx: Node) -> tuple[Node | None, ...]:
    return (apply("scatter_add", (g, *idx), {"shape": x.shape}),) + (None,) * len(idx)


register(
    OpDef(
        "gather",
        Kind.INDEX,
        None,
        eval=_gather_eval,
        infer=_gather_infer,
        vjp=_gather_vjp,
        emit={"numpy": "_gather({0}, {rest_tuple})", "c": _c_gather},
        helpers={"numpy": ("gather", "check")},
        reports_site=True,
        doc="x[i0, ..., ik]: integer-array indexing on the leading axes (embedding lookup, "
        "pair indexing)",
    )
)


def _scatter_infer(inputs: tuple[Node, ...], attrs: dict[str, Any]) -> tuple[Shape, DType]:
    g, *idx = inputs
    shape: Shape = attrs["shape"]
    _check_index_dtypes(tuple(idx), "scatter_add")
    expected = broadcast_shapes(*(i.shape for i in idx)) + shape[len(idx) :]
    if g.shape != expected:
        raise ShapeError(
            f"scatter_add: updates of shape {fmt_shape(g.shape)} do not fit {fmt_shape(expected)}"
        )
    return shape, g.dtype


def _scatter_eval(ctx: Any, g: Any, *idx: Any) -> Any:
    z = np.zeros(ctx.shape, dtype=ctx.dtype)
    for k, i in enumerate(idx):
        check_range(i, ctx.shape[k], "scatter_add")
    np.add.at(z, tuple(idx), g)
    return z


register(
    OpDef(
        "scatter_add",
        Kind.INDEX,
        None,
        eval=_scatter_eval,
        infer=_scatter_infer,
        vjp=lambda g, out, u, *idx, shape: (apply("gather", (g, *idx)),) + (None,) * len(idx),
        emit={"numpy": "_scatter_add({0}, {rest_tuple}, {shape})", "c": _c_scatter_add},
        helpers={"numpy": ("scatter_add", "check")},
        reports_site=True,
        doc="zeros of a shape with updates added at integer indices (the adjoint of gather)",
    )
)


def _one_hot_infer(inputs: tuple[Node, ...], attrs: dict[str, Any]) -> tuple[Shape, DType]:
    (i,) = inputs
    _check_index_dtypes((i,), "one_hot")
    n = attrs["num_classes"]
    if not isinstance(n, int) or n <= 0:
        raise ShapeError(f"num_classes must be a positive int, got {n!r}")
    if i.op == "constant":  # constant classes: checked at trace time
        check_classes(i.attrs["value"].array, n)
    return i.shape + (n,), as_dtype(attrs["dtype"])


def check_classes(i: Any, n: int) -> Any:
    """``i``, whose values must be classes in ``[0, n)`` (one_hot's rule: no wrap-around)."""
    if i.size and (i.min() < 0 or i.max() >= n):
        bad = i[(i < 0) | (i >= n)].ravel()[0]
        raise IndexRangeError(f"one_hot: class {int(bad)} is out of range [0, {n})")
    return i


def _one_hot_eval(ctx: Any, i: Any) -> Any:
    n = ctx.attrs["num_classes"]
    return (check_classes(i, n)[..., None] == np.arange(n)).astype(ctx.dtype)


register(
    OpDef(
        "one_hot",
        Kind.INDEX,
        1,
        eval=_one_hot_eval,
        infer=_one_hot_infer,
        differentiable=False,
        emit={"numpy": "_one_hot({0}, {num_classes}, np.{dtype})", "c": _c_one_hot},
        helpers={"numpy": ("one_hot",)},
        reports_site=True,
        doc="one_hot(i, num_classes): 1.0 at each index along a new last axis",
    )
)


def _class_index_infer(inputs: tuple[Node, ...], attrs: dict[str, Any]) -> tuple[Shape, DType]:
    (i,) = inputs
    _check_index_dtypes((i,), "class_index")
    return i.shape, INT64


def _class_index_eval(ctx: Any, i: Any) -> Any:
    return check_classes(i, ctx.attrs["num_classes"])


register(
    OpDef(
        "class_index",
        Kind.INDEX,
        1,
        eval=_class_index_eval,
        infer=_class_index_infer,
        differentiable=False,
        emit={
            "numpy": "_class_index({0}, {num_classes})",
            "c": _c_class_index,
            "c-check": _c_check_classes,
        },
        alias=True,
        helpers={"numpy": ("class_index",)},
        reports_site=True,
        doc="the indices unchanged, checked to lie in [0, num_classes) like one_hot's (used when "
        "one_hot(i) @ W is rewritten as a row gather)",
    )
)


def _bincount_infer(inputs: tuple[Node, ...], attrs: dict[str, Any]) -> tuple[Shape, DType]:
    shape: Shape = attrs["shape"]
    if not inputs or len(inputs) != len(shape):
        raise ShapeError(
            f"one index array per dim of the table {fmt_shape(shape)} is needed, got {len(inputs)}"
        )
    _check_index_dtypes(inputs, "bincount")
    broadcast_shapes(*(i.shape for i in inputs))
    for i, d in zip(inputs, shape, strict=True):
        if i.op == "constant" and isinstance(d, int):
            check_range(i.attrs["value"].array, d, "indexing")
    return shape, INT64


def _bincount_eval(ctx: Any, *idx: Any) -> Any:
    shape = ctx.shape
    for k, i in enumerate(idx):
        check_range(i, shape[k], "indexing")
    cells = np.zeros(shape_size(shape) or 0, dtype=np.int64)
    if cells.size:
        flat = np.ravel_multi_index(np.broadcast_arrays(*idx), shape, mode="wrap")
        cells += np.bincount(np.ravel(flat), minlength=cells.size)
    return cells.reshape(shape)


register(
    OpDef(
        "bincount",
        Kind.INDEX,
        None,
        eval=_bincount_eval,
        infer=_bincount_infer,
        differentiable=False,
        emit={"numpy": "_bincount({args_tuple}, {shape})", "c": _c_bincount},
        helpers={"numpy": ("bincount", "check")},
        reports_site=True,
        doc="bincount(i0, ..., ik; shape): int64 table of how often each index tuple occurs "
        "(indices broadcast together, checked and wrapped like gather's); the counts of "
        "aggregation by value (level 2)",
    )
)
