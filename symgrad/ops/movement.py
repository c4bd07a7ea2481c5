"""Movement ops: reshape, transpose, broadcast_to, concatenate, slice and its adjoint unslice.

Owns: those declarations. Slices are static: attrs ``index`` holds one ``(start, stop, step)``
per axis, already normalised (symbolic axes can only be taken whole). May import: numpy,
``symgrad.ir`` and other ``symgrad.ops`` modules.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from symgrad.ir.dtypes import DType
from symgrad.ir.errors import ShapeError
from symgrad.ir.node import Dim, Node, Shape, install_transpose
from symgrad.ir.opdef import Kind, OpDef, apply, fmt_shape, register, unify_dtypes


def _same_size(a: Shape, b: Shape) -> bool:
    """Whether two shapes surely hold the same number of elements (symbolic dims cancel)."""
    sa = [d for d in a if isinstance(d, str)]
    sb = [d for d in b if isinstance(d, str)]
    if sorted(sa) != sorted(sb):
        return False
    return math.prod(d for d in a if isinstance(d, int)) == math.prod(
        d for d in b if isinstance(d, int)
    )


def _reshape_infer(inputs: tuple[Node, ...], attrs: dict[str, Any]) -> tuple[Shape, DType]:
    (x,) = inputs
    shape = attrs["shape"]
    if not _same_size(x.shape, shape):
        raise ShapeError(f"cannot reshape {fmt_shape(x.shape)} to {fmt_shape(shape)}")
    return shape, x.dtype


register(
    OpDef(
        "reshape",
        Kind.MOVEMENT,
        1,
        eval=lambda ctx, x: np.reshape(x, ctx.shape),
        infer=_reshape_infer,
        vjp=lambda g, out, x, shape: (apply("reshape", (g,), {"shape": x.shape}),),
        emit={"numpy": "np.reshape({0}, {shape})"},
        doc="same elements, new shape (C order)",
    )
)


def _transpose_infer(inputs: tuple[Node, ...], attrs: dict[str, Any]) -> tuple[Shape, DType]:
    (x,) = inputs
    perm = attrs["perm"]
    if sorted(perm) != list(range(x.ndim)):
        raise ShapeError(f"perm {perm} is not a permutation of the axes of {fmt_shape(x.shape)}")
    return tuple(x.shape[p] for p in perm), x.dtype


def _inverse(perm: tuple[int, ...]) -> tuple[int, ...]:
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return tuple(inv)


register(
    OpDef(
        "transpose",
        Kind.MOVEMENT,
        1,
        eval=lambda ctx, x: np.transpose(x, ctx.attrs["perm"]),
        infer=_transpose_infer,
        vjp=lambda g, out, x, perm: (apply("transpose", (g,), {"perm": _inverse(perm)}),),
        emit={"numpy": "np.transpose({0}, {perm})"},
        doc="permute axes (attrs: perm)",
    )
)
install_transpose("transpose")  # Node.T


def _bcast_infer(inputs: tuple[Node, ...], attrs: dict[str, Any]) -> tuple[Shape, DType]:
    (x,) = inputs
    shape: Shape = attrs["shape"]
    ok = len(shape) >= x.ndim and all(
        d == 1 or d == t for d, t in zip(reversed(x.shape), reversed(shape), strict=False)
    )
    if not ok:
        raise ShapeError(f"cannot broadcast {fmt_shape(x.shape)} to {fmt_shape(shape)}")
    return shape, x.dtype


register(
    OpDef(
        "broadcast_to",
        Kind.MOVEMENT,
        1,
        eval=lambda ctx, x: np.broadcast_to(x, ctx.shape),
        infer=_bcast_infer,
        vjp=lambda g, out, x, shape: (g,),  # the autodiff driver sums the broadcast axes
        emit={"numpy": "np.broadcast_to({0}, {shape})"},
        doc="broadcast to a larger shape (NumPy rules)",
    )
)


def _concat_infer(inputs: tuple[Node, ...], attrs: dict[str, Any]) -> tuple[Shape, DType]:
    if not inputs:
        raise ShapeError("concatenate needs at least one input")
    axis = attrs["axis"]
    dt = unify_dtypes("concatenate", inputs)
    first = inputs[0].shape
    if not 0 <= axis < len(first):
        raise ShapeError(f"axis {axis} is out of range for rank {len(first)}")
    total: Dim = 0
    for x in inputs:
        s = x.shape
        if len(s) != len(first) or any(
            a != b for i, (a, b) in enumerate(zip(s, first, strict=True)) if i != axis
        ):
            shown = ", ".join(fmt_shape(i.shape) for i in inputs)
            raise ShapeError(f"shapes {shown} differ outside axis {axis}")
        if isinstance(s[axis], str) or isinstance(total, str):
            if len(inputs) > 1:
                raise ShapeError("cannot concatenate along a symbolic dim")
            total = s[axis]
        else:
            total += s[axis]
    return first[:axis] + (total,) + first[axis + 1 :], dt


def _concat_vjp(g: Node, out: Node, *xs: Node, axis: int) -> tuple[Node | None, ...]:
    res: list[Node | None] = []
    start = 0
    for x in xs:
        n = x.shape[axis]
        assert isinstance(n, int)
        res.append(slice_node(g, {axis: (start, start + n, 1)}))
        start += n
    return tuple(res)


register(
    OpDef(
        "concatenate",
        Kind.MOVEMENT,
        None,
        eval=lambda ctx, *xs: np.concatenate(xs, axis=ctx.attrs["axis"]),
        infer=_concat_infer,
        vjp=_concat_vjp,
        emit={"numpy": "np.concatenate({args_tuple}, axis={axis})"},
        doc="join arrays along an existing axis (attrs: axis)",
    )
)


def slice_node(x: Node, parts: dict[int, tuple[int, int, int]]) -> Node:
    """``x`` sliced along the given axes (other axes whole)."""
    index = tuple(parts.get(i, (0, d, 1)) for i, d in enumerate(x.shape))
    return apply("slice", (x,), {"index": index})


def _slice_len(start: int, stop: int, step: int) -> int:
    return len(range(start, stop, step))


def _sliced_shape(shape: Shape, index: tuple[tuple[Any, Any, Any], ...]) -> Shape:
    if len(index) != len(shape):
        raise ShapeError(f"slice has {len(index)} entries for rank {len(shape)}")
    out: list[Dim] = []
    for d, (start, stop, step) in zip(shape, index, strict=True):
        if isinstance(d, str) or isinstance(stop, str):
            if (start, stop, step) != (0, d, 1):
                raise ShapeError(f"a symbolic dim {d!r} can only be sliced whole (':')")
            out.append(d)
        else:
            out.append(_slice_len(start, stop, step))
    return tuple(out)


def _slice_infer(inputs: tuple[Node, ...], attrs: dict[str, Any]) -> tuple[Shape, DType]:
    return _sliced_shape(inputs[0].shape, attrs["index"]), inputs[0].dtype


def _py_slices(index: tuple[tuple[Any, Any, Any], ...], dims: Any) -> tuple[slice, ...]:
    res = []
    for start, stop, step in index:
        stop_i = dims[stop] if isinstance(stop, str) else stop
        if step < 0 and stop_i < 0:
            stop_i = None
        res.append(slice(start, stop_i, step))
    return tuple(res)


def _unslice_eval(ctx: Any, g: Any) -> Any:
    z = np.zeros(ctx.shape, dtype=ctx.dtype)
    z[_py_slices(ctx.attrs["index"], ctx.dims)] = g
    return z


register(
    OpDef(
        "slice",
        Kind.MOVEMENT,
        1,
        eval=lambda ctx, x: x[_py_slices(ctx.attrs["index"], ctx.dims)],
        infer=_slice_infer,
        vjp=lambda g, out, x, index: (apply("unslice", (g,), {"index": index, "shape": x.shape}),),
        emit={"numpy": "{0}[{index}]"},
        doc="basic slicing, one (start, stop, step) per axis (attrs: index)",
    )
)


def _unslice_infer(inputs: tuple[Node, ...], attrs: dict[str, Any]) -> tuple[Shape, DType]:
    (g,) = inputs
    shape = _sliced_shape(attrs["shape"], attrs["index"])
    if shape != g.shape:
        raise ShapeError(f"unslice: {fmt_shape(g.shape)} does not fit slice of {fmt_shape(shape)}")
    return attrs["shape"], g.dtype


register(
    OpDef(
        "unslice",
        Kind.MOVEMENT,
        1,
        eval=_unslice_eval,
        infer=_unslice_infer,
        vjp=lambda g, out, x, index, shape: (apply("slice", (g,), {"index": index}),),
        emit={"numpy": "_unslice({0}, {shape}, np.s_[{index}])"},
        helpers={"numpy": ("unslice",)},
        doc="the adjoint of slice: place x into zeros of a larger shape (attrs: index, shape)",
    )
)
