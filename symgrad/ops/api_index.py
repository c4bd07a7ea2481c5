"""Python indexing keys as nodes: ``x[key]`` for ints, slices (whole slices of symbolic dims,
``x[:, :T]``), ``None``, ``...`` and integer arrays (``range``\\ s too) on the leading axes.

Owns: :func:`index` and the errors of keys a graph cannot hold (an array after a slice, a
symbolic bound on a static axis, a partial slice of a symbolic dim), each naming the key it got.
May import: numpy, ``symgrad.ir`` and the other ``symgrad.ops`` modules.
"""

from __future__ import annotations

import builtins
from typing import Any

import numpy as np

from symgrad.ir.errors import DTypeError, ShapeError, TraceError
from symgrad.ir.node import Dim, Node, Shape
from symgrad.ir.opdef import apply, fmt_shape
from symgrad.ops.api import index_node, reshape
from symgrad.ops.movement import slice_node


def index(x: Node, key: Any) -> Node:
    """``x[key]`` for ints, slices, None, Ellipsis, and integer arrays on the leading axes."""
    items = list(key) if isinstance(key, tuple) else [key]
    items = [np.arange(k.start, k.stop, k.step) if isinstance(k, range) else k for k in items]
    n_real = len([k for k in items if k is not None and k is not Ellipsis])
    if builtins.sum(k is Ellipsis for k in items) > 1:
        raise TraceError("an index can only have a single ellipsis ('...')")
    if any(k is Ellipsis for k in items):
        at = next(i for i, k in enumerate(items) if k is Ellipsis)
        items[at : at + 1] = [slice(None)] * (x.ndim - n_real)
    if n_real > x.ndim:
        raise ShapeError(f"too many indices ({n_real}) for shape {fmt_shape(x.shape)}")

    def is_array(k: Any) -> bool:
        return isinstance(k, Node | np.ndarray | list)

    arrays = [k for k in items if is_array(k)]
    if arrays:
        lead = 0
        while lead < len(items) and (is_array(items[lead]) or _is_int(items[lead])):
            lead += 1
        rest = items[lead:]
        if any(is_array(k) or _is_int(k) for k in rest) or any(k is None for k in items[:lead]):
            raise TraceError(
                "integer-array indexing is supported on the leading axes only "
                "(x[idx], x[i, j], x[idx, 1:3]): every array or int must come before the first "
                f"slice, None or '...'; got the index ({_describe(items)}). Index in two steps "
                "(x[:, j][idx]) or move the axis first (x.transpose(0, 1)[idx])"
            )
        idx = [index_node(k, x) for k in items[:lead]]
        x = apply("gather", (x, *idx))
        items = [slice(None)] * len(_bshape(idx)) + rest
    return _basic(x, items)


def _describe(items: list[Any]) -> str:
    def one(k: Any) -> str:
        if isinstance(k, Node | np.ndarray | list):
            return "array"
        if isinstance(k, slice):
            parts = ["" if v is None else str(v) for v in (k.start, k.stop, k.step)]
            return ":".join(parts[:2] if k.step is None else parts)
        return "None" if k is None else "..." if k is Ellipsis else repr(k)

    return ", ".join(one(k) for k in items)


def _bshape(idx: list[Node]) -> Shape:
    from symgrad.ir.opdef import broadcast_shapes

    return broadcast_shapes(*(i.shape for i in idx))


def _is_int(k: Any) -> bool:
    return isinstance(k, int | np.integer) and not isinstance(k, bool)


def _slice_bounds(k: slice, d: int) -> tuple[int, int, int]:
    try:
        return k.indices(d)
    except TypeError:
        raise DTypeError(
            f"slice {k!r} has non-integer bounds: slice bounds must be integers or None"
        ) from None
    except ValueError as e:  # a zero step
        raise ShapeError(f"slice {k!r}: {e}") from None


def _whole(k: slice, d: str) -> bool:
    """Whether slice ``k`` takes all of the symbolic dim ``d`` (``:``, ``0:d``, ``:d:1``)."""
    start, stop, step = k.start, k.stop, k.step
    return (
        (start is None or (start.__class__ is int and start == 0))
        and (step is None or (step.__class__ is int and step == 1))
        and (stop is None or (isinstance(stop, str) and str.__str__(stop) == d))
    )


def _static_bounds(k: slice, d: int, axis: int) -> None:
    for v in (k.start, k.stop, k.step):
        if isinstance(v, str):
            raise ShapeError(
                f"the slice {_describe([k])} on axis {axis} (of static size {d}) has the "
                f"symbolic bound {str(v)!r}: the result's size would depend on the input's, "
                "which a graph shape of a static axis cannot hold. Slice an axis whose size is "
                "that dim, make the tensor from the dim (a causal mask: "
                "tril(ones(T, T))), or trace with concrete sizes"
            )


def _basic(x: Node, items: list[Any]) -> Node:
    parts: dict[int, tuple[int, int, int]] = {}
    out_shape: list[Dim] = []
    axis = 0
    for k in items:
        if k is None:
            out_shape.append(1)
            continue
        d = x.shape[axis]
        if _is_int(k):
            if isinstance(d, str):
                raise ShapeError(f"cannot take an integer index into symbolic dim {d!r}")
            if not -d <= k < d:
                raise ShapeError(f"index {k} is out of bounds for axis {axis} with size {d}")
            parts[axis] = (k % d, k % d + 1, 1)
        elif isinstance(k, slice):
            if isinstance(d, str):
                if not _whole(k, d):
                    raise ShapeError(
                        f"the symbolic dim {d!r} can only be sliced whole (x[:, :{d}] or ':'), "
                        f"got the slice {_describe([k])} on axis {axis}: its size would be an "
                        "expression in the dim, which a graph shape cannot hold; trace with "
                        "concrete sizes for that"
                    )
            else:
                _static_bounds(k, d, axis)
                s = _slice_bounds(k, d)
                if s != (0, d, 1):
                    parts[axis] = s
                out_shape.append(len(range(*s)))
                axis += 1
                continue
            out_shape.append(d)
        elif isinstance(k, float | np.floating):
            raise DTypeError(
                f"index {k!r} is a float: indices must be integers, slices, None, '...' or "
                "integer arrays; convert with int(...)"
            )
        else:
            raise TraceError(f"unsupported index {k!r} ({type(k).__name__})")
        axis += 1
    out_shape.extend(x.shape[axis:])
    if parts:
        x = slice_node(x, parts)
    return reshape(x, tuple(out_shape))
