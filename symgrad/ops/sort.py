"""Sorting along an axis: the ``argsort`` op, and PyTorch's ``gather(dim, index)``, ``sort``
and ``topk`` written with it and the ``gather`` op.

Owns: the ``argsort`` declaration (evaluation, shape/dtype rule, NumPy and C lowerings; its
result is int64, so it has no gradient) and the node-level functions :func:`gather_along`,
:func:`sort` and :func:`topk`. ``argsort(x, axis)`` is the stable ascending order of ``x``
along ``axis`` (equal elements keep their order, NaN sorts last, like
``np.argsort(kind="stable")`` and PyTorch's ``sort(stable=True)``). ``sort`` and ``topk``
return the values as ``gather_along(x, dim, indices)``: a ``gather`` indexing every axis, so
the values' gradient is the ``gather`` VJP (a scatter-add back to the sorted positions).
Descending orders sort ``-x`` (ties still keep their order; a NaN then sorts last where
PyTorch puts it first). May import: numpy, ``symgrad.ir`` and other ``symgrad.ops`` modules.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from symgrad.ir.dtypes import BOOL, INT64, DType
from symgrad.ir.errors import DTypeError, ShapeError
from symgrad.ir.node import Node, Shape
from symgrad.ir.opdef import Kind, OpDef, apply, const, fmt_shape, register
from symgrad.ops import api
from symgrad.ops.c.emitter import Emitter
from symgrad.ops.c.loops import prod
from symgrad.ops.elementwise import cast
from symgrad.ops.movement import slice_node


def _infer(inputs: tuple[Node, ...], attrs: dict[str, Any]) -> tuple[Shape, DType]:
    (x,) = inputs
    axis = attrs["axis"]
    if not isinstance(axis, int) or not 0 <= axis < x.ndim:
        raise ShapeError(f"argsort: axis {axis!r} is not an axis of {fmt_shape(x.shape)}")
    return x.shape, INT64


def _c_argsort(e: Emitter, node: Node, out: str) -> list[str]:
    """A stable insertion sort of each line's indices, in place in ``out`` (the lines are the
    (outer, inner) pairs of the axes before and after ``axis``, elements ``inner`` apart)."""
    (x,) = node.inputs
    axis = node.attrs["axis"]
    outer, n, inner = (
        e.c(prod(x.shape[a:b])) for a, b in ((0, axis), (axis, axis + 1), (axis + 1, None))
    )

    def at(j: str) -> str:  # the position of element j of the line
        return f"_b + {j}" if inner == "1" else f"_b + ({j}) * {inner}"

    ct = x.dtype.c_type
    moved = f"{out}[{at('_k')}]"  # the index at position _k
    # (floats: NaN sorts last, as in NumPy)
    less = "(_v < _w || (_v == _v && _w != _w))" if x.dtype.is_float else "(_v < _w)"
    base = "_o * " + (n if inner == "1" else f"{n} * {inner}")
    base += "" if inner == "1" else " + _i"
    lines = [
        f"const int64_t _b = {base};",
        f"for (int64_t _j = 0; _j < {n}; _j++) {{",
        f"    {out}[{at('_j')}] = _j;",
        "}",
        f"for (int64_t _j = 1; _j < {n}; _j++) {{",
        f"    const int64_t _key = {out}[{at('_j')}];",
        f"    const {ct} _v = {e.at(x, at('_key'))};",
        "    int64_t _k = _j - 1;",
        "    while (_k >= 0) {",
        f"        const {ct} _w = {e.at(x, at(moved))};",
        f"        if (!{less}) break;",
        f"        {out}[{at('_k + 1')}] = {out}[{at('_k')}];",
        "        _k--;",
        "    }",
        f"    {out}[{at('_k + 1')}] = _key;",
        "}",
    ]
    if inner != "1":
        lines = [f"for (int64_t _i = 0; _i < {inner}; _i++) {{", *("    " + s for s in lines), "}"]
    return [f"for (int64_t _o = 0; _o < {outer}; _o++) {{", *("    " + s for s in lines), "}"]


register(
    OpDef(
        "argsort",
        Kind.SCAN,
        1,
        eval=lambda ctx, x: np.argsort(x, axis=ctx.attrs["axis"], kind="stable"),
        infer=_infer,
        differentiable=False,
        emit={"numpy": "np.argsort({0}, axis={axis}, kind='stable')", "c": _c_argsort},
        doc="the stable ascending order along an axis, int64 (NaN last; attrs: axis)",
    )
)


def _axis(x: Node, dim: Any, what: str) -> int:
    nd = x.ndim
    if isinstance(dim, bool) or not isinstance(dim, int | np.integer) or not -nd <= dim < nd:
        raise ShapeError(
            f"{what}: dim {dim!r} is out of range for a tensor of shape {fmt_shape(x.shape)} "
            f"(expected an int in [{-nd}, {nd - 1}])"
        )
    return int(dim) % nd


def argsort(x: Node, dim: int = -1, descending: bool = False) -> Node:
    """The stable order of ``x`` along ``dim`` (int64); ``descending`` sorts ``-x``."""
    if x.ndim == 0:
        _axis(api.reshape(x, (1,)), dim, "argsort")
        return const(0, INT64)
    axis = _axis(x, dim, "argsort")
    key = cast(x, INT64) if x.dtype is BOOL else x
    return apply("argsort", (-key if descending else key,), {"axis": axis})


def gather_along(x: Node, dim: int, index: Node) -> Node:
    """PyTorch's ``gather``: ``out[i][j][k] = x[index[i][j][k]][j][k]`` for ``dim`` 0 (and so
    on): ``index`` has ``x``'s number of dims and is no larger than ``x`` off ``dim``."""
    if index.dtype is not INT64:
        raise DTypeError(f"gather: the index must be an int64 tensor, got {index.dtype}")
    if index.ndim != x.ndim:
        raise ShapeError(
            f"gather: the index must have as many dims as the input ({x.ndim}), got "
            f"{fmt_shape(index.shape)} for an input of shape {fmt_shape(x.shape)}"
        )
    axis = _axis(x, dim, "gather") if x.ndim else 0
    if x.ndim == 0:  # (a 0-d input and index: the element itself)
        picked = api.gather(api.reshape(x, (1,)), api.reshape(index, (1,)))
        return api.reshape(picked, ())
    for d, (n, m) in enumerate(zip(index.shape, x.shape, strict=True)):
        if d != axis and isinstance(n, int) and isinstance(m, int) and n > m:
            raise ShapeError(
                f"gather: the index {fmt_shape(index.shape)} is larger than the input "
                f"{fmt_shape(x.shape)} along dim {d} (only dim {axis} may differ)"
            )
    keys = []
    for d, n in enumerate(index.shape):
        if d == axis:
            keys.append(index)
        else:
            shape = tuple(n if k == d else 1 for k in range(index.ndim))
            keys.append(api.reshape(apply("arange", (), {"n": n}), shape))
    return api.gather(x, *keys)


def sort(x: Node, dim: int = -1, descending: bool = False) -> tuple[Node, Node]:
    """The values and indices of ``x`` sorted along ``dim`` (stable)."""
    indices = argsort(x, dim, descending)
    if x.ndim == 0:
        return x, indices
    return gather_along(x, dim, indices), indices


def topk(x: Node, k: int, dim: int = -1, largest: bool = True) -> tuple[Node, Node]:
    """The ``k`` largest (or smallest) values of ``x`` along ``dim``, in order, and their
    indices (ties: the first elements first)."""
    if x.ndim == 0:
        raise ShapeError("topk: the input is 0-d; it needs a dim to choose from")
    axis = _axis(x, dim, "topk")
    n = x.shape[axis]
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 0:
        raise ShapeError(f"topk: k must be a non-negative int, got {k!r}")
    if not isinstance(n, int):
        raise ShapeError(f"topk: the dim {axis} of {fmt_shape(x.shape)} must be static")
    if k > n:
        raise ShapeError(f"topk: k = {k} is larger than dim {axis} of {fmt_shape(x.shape)}")
    indices = slice_node(argsort(x, axis, largest), {axis: (0, int(k), 1)})
    return gather_along(x, axis, indices), indices
