"""Node-level functions over the op library: the vocabulary the front end and VJP rules use.

Owns: argument normalisation (axes, ``-1`` in reshape) and sugar written in
terms of core ops (mean, squeeze/expand_dims, stack, softmax, log_softmax, logsumexp,
cross_entropy). Nothing here declares an op. May import: numpy, ``symgrad.ir`` and the other
``symgrad.ops`` modules.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from symgrad.ir.dtypes import BOOL, FLOAT64, INT64, as_dtype
from symgrad.ir.errors import DTypeError, ShapeError
from symgrad.ir.node import Dim, Node, Shape
from symgrad.ir.opdef import apply, as_node, const, fmt_shape
from symgrad.ir.symdim import plain_dim
from symgrad.ops.elementwise import cast, where
from symgrad.ops.infer import norm_axes, reduced_shape
from symgrad.ops.source import check_shape, make_constant

__all__ = [
    "arange",
    "broadcast_to",
    "cast",
    "concatenate",
    "cross_entropy",
    "expand_dims",
    "log_softmax",
    "logsumexp",
    "matmul",
    "max",
    "mean",
    "one_hot",
    "reshape",
    "scatter_add",
    "softmax",
    "squeeze",
    "stack",
    "sum",
    "transpose",
    "where",
]


def _reduce(name: str, x: Node, axis: Any, keepdims: bool) -> Node:
    axes = norm_axes(axis, x.ndim)
    if not axes and name == "sum" and x.dtype is not BOOL:  # (a sum of bools is an int64)
        return x
    return apply(name, (x,), {"axis": axes, "keepdims": bool(keepdims)})


def sum(x: Node, axis: Any = None, keepdims: bool = False) -> Node:
    return _reduce("sum", x, axis, keepdims)


def max(x: Node, axis: Any = None, keepdims: bool = False) -> Node:
    return _reduce("max", x, axis, keepdims)


def prod(x: Node, axis: Any = None, keepdims: bool = False) -> Node:
    return _reduce("prod", x, axis, keepdims)


def mean(x: Node, axis: Any = None, keepdims: bool = False) -> Node:
    if not x.dtype.is_float:
        raise DTypeError(f"mean needs a floating-point input, got {x.dtype}; cast it first")
    axes = norm_axes(axis, x.ndim)
    total = sum(x, axes, keepdims)
    dims = tuple(x.shape[a] for a in axes)
    static = [d for d in dims if isinstance(d, int)]
    if len(static) == len(dims):
        count = math.prod(static)
        return total * (1.0 / count) if count else total / 0.0
    n = apply("dimsize", (), {"dims": dims, "dtype": x.dtype.name})
    return total / n


def reshape(x: Node, shape: Any) -> Node:
    """Reshape; one ``-1`` entry is inferred (it may stand for a symbolic dim)."""
    if isinstance(shape, int | str):
        shape = (shape,)
    shape = tuple([plain_dim(d) for d in shape])
    if minus_one := [i for i, d in enumerate(shape) if isinstance(d, int) and d == -1]:
        if len(minus_one) > 1:
            raise ShapeError(f"reshape: only one -1 is allowed, got {shape}")
        k = minus_one[0]
        known = [d for i, d in enumerate(shape) if i != k]
        rest = _divide(x.shape, known)
        if rest is None:
            raise ShapeError(
                f"cannot reshape {fmt_shape(x.shape)} to {shape}{_computed(x.shape, known)}"
            )
        shape = shape[:k] + (rest,) + shape[k + 1 :]
    shp = check_shape(shape)
    if shp == x.shape:
        return x
    return apply("reshape", (x,), {"shape": shp})


def _computed(total: Shape, known: Sequence[Any]) -> str:
    """Why a ``-1`` cannot stand for a size that divides but is computed from symbolic dims
    (GPT's ``logits.view(-1, C)`` of an (n, T, C) tensor): '' when it does not divide."""
    syms = [d for d in total if isinstance(d, str)]
    if any(isinstance(d, str) for d in known) or not syms:
        return ""
    num = math.prod(d for d in total if isinstance(d, int))
    den = math.prod(d for d in known if isinstance(d, int))
    if den == 0 or num % den:
        return ""
    size = " * ".join([*syms, *([str(num // den)] if num != den else [])])
    return (
        f": the -1 would be {size}, a size computed from symbolic dims, which a shape cannot "
        "hold (only an input's own symbolic dims and ints). Give that size its own dim in the "
        "Spec, or trace with concrete sizes"
    )


def _divide(total: Shape, known: Sequence[Any]) -> Dim | None:
    syms = [d for d in total if isinstance(d, str)]
    for d in known:
        if isinstance(d, str):
            if d not in syms:
                return None
            syms.remove(d)
    num = math.prod(d for d in total if isinstance(d, int))
    den = math.prod(d for d in known if isinstance(d, int))
    if len(syms) > 1 or den == 0 or num % den:
        return None
    if syms:
        return syms[0] if num == den else None
    return num // den


def transpose(x: Node, axes: Sequence[int] | None = None) -> Node:
    perm = tuple(reversed(range(x.ndim))) if axes is None else tuple(a % x.ndim for a in axes)
    if perm == tuple(range(x.ndim)):
        return x
    return apply("transpose", (x,), {"perm": perm})


def broadcast_to(x: Node, shape: Any) -> Node:
    shp = check_shape(shape)
    return x if shp == x.shape else apply("broadcast_to", (x,), {"shape": shp})


def expand_dims(x: Node, axis: int) -> Node:
    nd = x.ndim + 1
    if not -nd <= axis < nd:
        raise ShapeError(f"expand_dims: axis {axis} out of range for rank {x.ndim}")
    a = axis % nd
    return reshape(x, x.shape[:a] + (1,) + x.shape[a:])


def squeeze(x: Node, axis: Any = None) -> Node:
    if axis is None:
        axes = tuple(i for i, d in enumerate(x.shape) if d == 1)
    else:
        axes = norm_axes(axis, x.ndim)
        for a in axes:
            if x.shape[a] != 1:
                raise ShapeError(f"squeeze: axis {a} has size {x.shape[a]}, not 1")
    return reshape(x, tuple(d for i, d in enumerate(x.shape) if i not in axes))


def concatenate(xs: Sequence[Node], axis: int = 0) -> Node:
    xs = tuple(xs)
    if not xs:
        raise ShapeError("concatenate needs at least one array")
    nd = xs[0].ndim
    if not -nd <= axis < nd:
        raise ShapeError(f"concatenate: axis {axis} out of range for rank {nd}")
    if len(xs) == 1:
        return xs[0]
    return apply("concatenate", xs, {"axis": axis % nd})


def stack(xs: Sequence[Node], axis: int = 0) -> Node:
    xs = tuple(xs)
    if not xs:
        raise ShapeError("stack needs at least one array")
    shapes = {x.shape for x in xs}
    if len(shapes) > 1:
        raise ShapeError(
            "stack: all inputs must have the same shape, got "
            + ", ".join(fmt_shape(x.shape) for x in xs)
        )
    return concatenate([expand_dims(x, axis) for x in xs], axis)


def matmul(a: Node, b: Node) -> Node:
    return apply("matmul", (a, b))


def one_hot(indices: Node, num_classes: int, dtype: Any = FLOAT64) -> Node:
    return apply("one_hot", (indices,), {"num_classes": num_classes, "dtype": as_dtype(dtype).name})


def arange(n: Dim) -> Node:
    return apply("arange", (), {"n": plain_dim(n)})


def gather(x: Node, *idx: Node) -> Node:
    """``x[i0, ..., ik]`` for int64 index nodes on the leading axes (what :func:`index` builds
    for such a key)."""
    return apply("gather", (x, *idx))


def scatter_add(g: Node, *idx: Node, shape: Shape) -> Node:
    """Zeros of ``shape`` with ``g``'s rows added at the int64 indices ``idx`` (on the leading
    axes; gather's VJP)."""
    return apply("scatter_add", (g, *idx), {"shape": tuple(shape)})


def index_node(i: Any, like: Node) -> Node:
    """An index argument as an int64 node (arrays and lists become constants)."""
    if isinstance(i, Node):
        if i.dtype is BOOL:
            raise DTypeError("boolean-mask indexing is not supported; use symgrad.where")
        if i.dtype is not INT64:
            raise DTypeError(
                f"index arrays must be integers (int64), got {i.dtype}{fmt_shape(i.shape)}"
            )
        return i
    a = np.asarray(i)
    if a.dtype.kind not in "iu":
        raise DTypeError(f"index arrays must be integers (int64), got {a.dtype} values {i!r:.60}")
    return make_constant(a.astype(np.int64))


# -- numerically stable composites --------------------------------------------------------------
def detach(x: Node) -> Node:
    return apply("detach", (x,))


def logsumexp(x: Node, axis: Any = -1, keepdims: bool = False) -> Node:
    """log(sum(exp(x))) computed as m + log(sum(exp(x - m))) with m = max(x) (no overflow);
    m is 0 where the max is not finite, so that rows with +inf give inf and rows of -inf give
    -inf (like PyTorch and SciPy) instead of nan from inf - inf."""
    axes = norm_axes(axis, x.ndim)
    m = detach(max(x, axes, keepdims=True))
    if x.dtype.is_float:
        finite = apply("lt", (apply("abs", (m,)), const(math.inf, x.dtype)))
        m = where(finite, m, const(0.0, x.dtype))
    s = apply("log", (sum(apply("exp", (x - m,)), axes, keepdims=True),)) + m
    return s if keepdims else reshape(s, reduced_shape(x.shape, axes, False))


def log_softmax(x: Node, axis: int = -1) -> Node:
    """(x - m) - log(sum(exp(x - m))) with m = max(x), like PyTorch: subtracting m first keeps
    float32 exact where x - logsumexp(x) would cancel (e.g. logits all near -1000)."""
    axes = norm_axes(axis, x.ndim)
    shifted = x - detach(max(x, axes, keepdims=True))
    return shifted - apply("log", (sum(apply("exp", (shifted,)), axes, keepdims=True),))


def softmax(x: Node, axis: int = -1) -> Node:
    axes = norm_axes(axis, x.ndim)
    e = apply("exp", (x - detach(max(x, axes, keepdims=True)),))
    return e / sum(e, axes, keepdims=True)


def cross_entropy(logits: Node, targets: Node, fused: bool = False, checked: bool = False) -> Node:
    """Mean negative log-likelihood of integer ``targets`` (n,) under ``logits`` (n, C).

    ``fused``: the per-row losses as the one op ``softmax_nll`` (what ``opt=2`` rewrites the
    composite into: the same values, 3 nodes instead of 14; eager tensors use it). ``checked``:
    the caller has checked the targets' values (``check_targets``: eager targets), so the graph
    does not read them through ``class_targets``."""
    _check_cross_entropy(logits, targets)
    # targets are class indices in [0, C): -1 or C is an error naming cross_entropy, never a wrap
    idx = index_node(targets, logits)
    if not checked:
        idx = apply("class_targets", (idx, logits))
    if fused:
        rows = apply("softmax_nll", (logits, idx))
        n = logits.shape[0]
        if n.__class__ is int and n:  # mean's nodes, built directly (every eager step)
            total = apply("sum", (rows,), {"axis": (0,), "keepdims": False})
            return apply("mul", (total, const(1.0 / n, rows.dtype)))
        return mean(rows)
    logp = log_softmax(logits, axis=1)
    return -mean(apply("gather", (logp, arange(logits.shape[0]), idx)))


def _check_cross_entropy(logits: Node, targets: Node) -> None:
    if logits.ndim != 2:
        raise ShapeError(
            f"cross_entropy: logits must be (n, classes), got {fmt_shape(logits.shape)}"
        )
    if targets.ndim != 1 or targets.shape[0] != logits.shape[0]:
        raise ShapeError(
            f"cross_entropy: targets must be ({logits.shape[0]},) to match logits "
            f"{fmt_shape(logits.shape)}, got {fmt_shape(targets.shape)}"
        )


def maximum(a: Node, b: Any) -> Node:
    return apply("maximum", (a, as_node(b, a)))


def minimum(a: Node, b: Any) -> Node:
    return apply("minimum", (a, as_node(b, a)))


def zeros(shape: Shape, dtype: Any) -> Node:
    return broadcast_to(const(0, as_dtype(dtype)), shape)


_ = (where, cast)
