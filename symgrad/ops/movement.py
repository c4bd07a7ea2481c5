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
from symgrad.ops.c.emitter import Emitter
from symgrad.ops.c.loops import View, contiguous, sliced, strides


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


def _c_copy(e: Emitter, node: Node, out: str) -> list[str]:
    return e.copy(node, node.inputs[0], out)


register(
    OpDef(
        "reshape",
        Kind.MOVEMENT,
        1,
        eval=lambda ctx, x: np.reshape(x, ctx.shape),
        infer=_reshape_infer,
        vjp=lambda g, out, x, shape: (apply("reshape", (g,), {"shape": x.shape}),),
        emit={
            "numpy": "np.reshape({0}, {shape})",
            "c": _c_copy,
        },
        alias=True,
        doc="same elements, new shape (C order)",
    )
)


def _transpose_infer(inputs: tuple[Node, ...], attrs: dict[str, Any]) -> tuple[Shape, DType]:
    (x,) = inputs
    perm = attrs["perm"]
    if sorted(perm) != list(range(x.ndim)):
        raise ShapeError(f"perm {perm} is not a permutation of the axes of {fmt_shape(x.shape)}")
    return tuple(x.shape[p] for p in perm), x.dtype


def _c_transpose(e: Emitter, node: Node, out: str) -> list[str]:
    (x,) = node.inputs
    st = strides(x.shape)
    src = View(tuple(st[p] for p in node.attrs["perm"]))
    return e.strided(out, contiguous(node.shape), x, src, node.shape)


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
        emit={"numpy": "np.transpose({0}, {perm})", "c": _c_transpose},
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
        emit={"numpy": "np.broadcast_to({0}, {shape})", "c": "{0}"},  # read through its view
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


def _c_concatenate(e: Emitter, node: Node, out: str) -> list[str]:
    axis = node.attrs["axis"]
    st = strides(node.shape)
    lines: list[str] = []
    start = 0
    for x in node.inputs:
        dst = View(tuple(st), (st[axis].scale(start),))
        lines += e.strided(out, dst, x, contiguous(x.shape), x.shape)
        n = x.shape[axis]
        start += n if isinstance(n, int) else 0
    return lines


register(
    OpDef(
        "concatenate",
        Kind.MOVEMENT,
        None,
        eval=lambda ctx, *xs: np.concatenate(xs, axis=ctx.attrs["axis"]),
        infer=_concat_infer,
        vjp=_concat_vjp,
        emit={"numpy": "np.concatenate({args_tuple}, axis={axis})", "c": _c_concatenate},
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


def _c_slice(e: Emitter, node: Node, out: str) -> list[str]:
    (x,) = node.inputs
    src = sliced(x.shape, node.attrs["index"])
    return e.strided(out, contiguous(node.shape), x, src, node.shape)


def _c_unslice(e: Emitter, node: Node, out: str) -> list[str]:
    (g,) = node.inputs
    lines = e.fill(out, e.size(node.shape), "0")
    dst = sliced(node.shape, node.attrs["index"])
    return lines + e.strided(out, dst, g, contiguous(g.shape), g.shape)


register(
    OpDef(
        "slice",
        Kind.MOVEMENT,
        1,
        eval=lambda ctx, x: x[_py_slices(ctx.attrs["index"], ctx.dims)],
        infer=_slice_infer,
        vjp=lambda g, out, x, index: (apply("unslice", (g,), {"index": index, "shape": x.shape}),),
        emit={"numpy": "{0}[{index}]", "c": _c_slice},
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
        emit={"numpy": "_unslice({0}, {shape}, np.s_[{index}])", "c": _c_unslice},
        helpers={"numpy": ("unslice",)},
        doc="the adjoint of slice: place x into zeros of a larger shape (attrs: index, shape)",
    )
)


def element_of(node: Node) -> tuple[Node, int, tuple[Node, ...]] | None:
    """``(x, flat offset, chain)`` when ``node`` is one element of ``x`` picked with static
    indices (``x[i, j]`` traces to a slice, usually reshaped to a scalar); ``chain`` is the
    statements from ``node`` down to the slice. None otherwise (the compaction of scalar
    graphs reads such elements straight from ``x``)."""
    sl = node.inputs[0] if node.op == "reshape" and node.inputs else node
    if sl.op != "slice" or sl.shape.count(1) != len(sl.shape):
        return None
    x = sl.inputs[0]
    if not all(isinstance(d, int) for d in x.shape):
        return None
    offset, stride = 0, 1
    for d, (start, _, _) in reversed(list(zip(x.shape, sl.attrs["index"], strict=True))):
        if not isinstance(start, int):
            return None
        offset += start * stride
        stride *= int(d)
    return x, offset, (node, sl) if sl is not node else (node,)
