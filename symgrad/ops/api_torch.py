"""Node-level sugar for PyTorch's names, written with core ops (no op is declared here).

Owns: ``min`` (``-max(-x)``), ``argmax``/``argmin`` (the first index of the extreme value, as
PyTorch's CPU kernels return it), ``var`` (with PyTorch's ``correction``), ``swapaxes``
(PyTorch's ``transpose(d0, d1)``), ``permute``, ``flatten``, ``unsqueeze``, ``tril``/``triu``
masks, ``masked_fill``, ``full`` and ``linspace``/``eye`` constants, ``log10``/``log2``/
``exp2`` through ``log``/``exp``. Every function takes and returns ``Node``\\ s, so the same code
serves eager tensors and tracing. May import: numpy, ``symgrad.ir`` and the other
``symgrad.ops`` modules.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from symgrad.ir.dtypes import BOOL, INT64, DType, as_dtype
from symgrad.ir.errors import DTypeError, ShapeError
from symgrad.ir.node import Node, Shape
from symgrad.ir.opdef import apply, as_node, const, fmt_shape
from symgrad.ops import api
from symgrad.ops.elementwise import cast, where
from symgrad.ops.infer import norm_axes, reduced_shape

_LN10 = math.log(10.0)
_LN2 = math.log(2.0)


def _axis(x: Node, dim: int, what: str) -> int:
    nd = max(x.ndim, 1)
    if isinstance(dim, bool) or not isinstance(dim, int | np.integer):
        raise ShapeError(f"{what}: dim must be an int, got {dim!r:.40} ({type(dim).__name__})")
    if not -nd <= dim < nd:
        raise ShapeError(
            f"{what}: dim {dim} is out of range for a tensor of shape {fmt_shape(x.shape)} "
            f"(expected a dim in [{-nd}, {nd - 1}])"
        )
    return int(dim) % nd


def min(x: Node, axis: Any = None, keepdims: bool = False) -> Node:
    """The minimum over ``axis`` (``-max(-x)``; bool inputs compare as ints)."""
    if x.dtype is BOOL:
        x = cast(x, INT64)
    return -api.max(-x, axis, keepdims)


def argmax(x: Node, dim: Any = None, keepdim: bool = False, largest: bool = True) -> Node:
    """The index of the first maximum (``largest``) or minimum along ``dim`` (int64); over the
    flattened tensor when ``dim`` is None, like PyTorch."""
    what = "argmax" if largest else "argmin"
    if dim is None:
        flat = api.reshape(x, (-1,))
        out = argmax(flat, 0, False, largest)
        return api.reshape(out, (1,) * x.ndim) if keepdim else out
    if x.ndim == 0:
        _axis(x, dim, what)
        return const(0, INT64)
    a = _axis(x, dim, what)
    v = x if x.dtype is not BOOL else cast(x, INT64)
    v = v if largest else -v
    m = api.detach(api.max(v, a, keepdims=True))
    n = x.shape[a]
    pos_shape: Shape = tuple(n if i == a else 1 for i in range(x.ndim))
    pos = api.reshape(api.arange(n), pos_shape)
    if isinstance(n, int):
        big: Node = const(n, INT64)
    else:
        big = apply("dimsize", (), {"dims": (n,), "dtype": INT64.name})
    hit = apply("eq", (v, m))
    first = min(where(hit, pos, big), a, keepdims=True)
    return first if keepdim else api.reshape(first, reduced_shape(x.shape, (a,), False))


def all_any(x: Node, axis: Any = None, keepdims: bool = False, every: bool = True) -> Node:
    """Whether every (``every``) or any element over ``axis`` is nonzero, as bool."""
    nz = cast(x, BOOL) if x.dtype is not BOOL else x
    ints = cast(nz, INT64)
    out = min(ints, axis, keepdims) if every else api.max(ints, axis, keepdims)
    return cast(out, BOOL)


def count(x: Node, axes: tuple[int, ...]) -> Node | int:
    """The number of elements over ``axes``: an int, or a node when a dim is symbolic."""
    dims = tuple(x.shape[a] for a in axes)
    if all(isinstance(d, int) for d in dims):
        return math.prod(d for d in dims if isinstance(d, int))
    return apply("dimsize", (), {"dims": dims, "dtype": x.dtype.name})


def var(x: Node, axis: Any = None, correction: float = 1.0, keepdims: bool = False) -> Node:
    """The variance over ``axis``: sum((x - mean)^2) / (N - correction), PyTorch's default
    ``correction=1`` (Bessel's correction); ``correction=0`` is the biased (NumPy) variance."""
    if not x.dtype.is_float:
        raise DTypeError(f"var/std need a floating-point input, got {x.dtype}; cast it first")
    axes = norm_axes(axis, x.ndim)
    d = x - api.mean(x, axes, keepdims=True)
    ss = api.sum(d * d, axes, keepdims)
    n = count(x, axes)
    if isinstance(n, int):
        return ss / const(n - correction, x.dtype)
    return ss / (n - const(correction, x.dtype))


def swapaxes(x: Node, d0: int, d1: int) -> Node:
    """PyTorch's ``transpose(d0, d1)``: swap two dims (negative dims count from the end)."""
    if x.ndim == 0:
        for d in (d0, d1):
            if d not in (0, -1):
                raise ShapeError(f"transpose: dim {d} is out of range for a 0-d tensor")
        return x
    a, b = _axis(x, d0, "transpose"), _axis(x, d1, "transpose")
    perm = list(range(x.ndim))
    perm[a], perm[b] = perm[b], perm[a]
    return api.transpose(x, perm)


def permute(x: Node, dims: Any) -> Node:
    dims = tuple(dims)
    if len(dims) != x.ndim:
        raise ShapeError(
            f"permute: expected {x.ndim} dims for a tensor of shape {fmt_shape(x.shape)}, "
            f"got {dims}"
        )
    perm = tuple(_axis(x, d, "permute") for d in dims)
    if sorted(perm) != list(range(x.ndim)):
        raise ShapeError(f"permute: {dims} is not a permutation of the dims of {x.ndim}-d input")
    return api.transpose(x, perm)


def flatten(x: Node, start_dim: int = 0, end_dim: int = -1) -> Node:
    if x.ndim == 0:
        return api.reshape(x, (1,))
    s, e = _axis(x, start_dim, "flatten"), _axis(x, end_dim, "flatten")
    if s > e:
        raise ShapeError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    if s == e:
        return x
    merged = x.shape[s : e + 1]
    if all(isinstance(d, int) for d in merged):
        size: Any = math.prod(d for d in merged if isinstance(d, int))
    elif len([d for d in merged if not isinstance(d, int)]) == 1 and all(
        d == 1 for d in merged if isinstance(d, int)
    ):
        size = next(d for d in merged if not isinstance(d, int))
    else:
        raise ShapeError(
            f"flatten: dims {s}..{e} of {fmt_shape(x.shape)} multiply symbolic dims, which a "
            "graph shape cannot hold; trace with concrete sizes"
        )
    return api.reshape(x, (*x.shape[:s], size, *x.shape[e + 1 :]))


def unsqueeze(x: Node, dim: int) -> Node:
    nd = x.ndim + 1
    if isinstance(dim, bool) or not isinstance(dim, int) or not -nd <= dim < nd:
        raise ShapeError(
            f"unsqueeze: dim {dim!r} is out of range for a tensor of shape "
            f"{fmt_shape(x.shape)} (expected a dim in [{-nd}, {nd - 1}])"
        )
    return api.expand_dims(x, dim)


def squeeze(x: Node, dim: Any = None) -> Node:
    """PyTorch's squeeze: a dim (or dims) that is not of size 1 is left as it is."""
    if dim is None:
        return api.squeeze(x)
    axes = norm_axes(dim, x.ndim) if x.ndim else ()
    keep = tuple(a for a in axes if x.shape[a] == 1)
    return api.squeeze(x, keep) if keep else x


def band(x: Node, diagonal: int, lower: bool) -> Node:
    """``tril`` (``lower``) / ``triu`` of the last two dims: zeros above / below ``diagonal``."""
    what = "tril" if lower else "triu"
    if x.ndim < 2:
        raise ShapeError(
            f"{what}: expected a tensor with at least 2 dims, got {fmt_shape(x.shape)}"
        )
    r, c = x.shape[-2], x.shape[-1]
    rows = api.reshape(api.arange(r), (r, 1))
    cols = api.reshape(api.arange(c), (1, c))
    diff = cols - rows  # j - i
    k = const(int(diagonal), INT64)
    keep = apply("le", (diff, k)) if lower else apply("ge", (diff, k))
    return where(keep, x, const(0, x.dtype))


def masked_fill(x: Node, mask: Node, value: Any) -> Node:
    """``value`` where ``mask`` is true, else ``x`` (the mask broadcasts to ``x``)."""
    if mask.dtype is not BOOL:
        raise DTypeError(
            f"masked_fill: the mask must be a bool tensor, got {mask.dtype}{fmt_shape(mask.shape)}"
            "; compare to make one (mask == 0)"
        )
    v = cast(value, x.dtype) if isinstance(value, Node) else as_node(value, x)
    out = where(mask, v, x)
    return out if out.shape == x.shape else api.broadcast_to(out, x.shape)


def copy(x: Node) -> Node:
    """A new node with ``x``'s values (an int or bool ``clone``)."""
    if x.dtype is BOOL:
        return cast(cast(x, INT64), BOOL)
    return x + 0


def dim_node(d: Any, like: Node) -> Node:
    """A symbolic dim (a ``SymDim``: a polynomial in dims) as a scalar node of ``like``'s dtype
    (int64 for bool), so that ``x / T`` records the size, known when the function runs."""
    dt = like.dtype if like.dtype is not BOOL else INT64
    total: Node | None = None
    for mono, c in d._poly.items():
        if mono:
            term = apply("dimsize", (), {"dims": mono, "dtype": dt.name})
            term = term if c == 1 else term * const(c, dt)
        else:
            term = const(c, dt)
        total = term if total is None else total + term
    return total if total is not None else const(0, dt)


def log10(x: Node) -> Node:
    return apply("log", (x,)) * (1.0 / _LN10)


def log2(x: Node) -> Node:
    return apply("log", (x,)) * (1.0 / _LN2)


def exp2(x: Node) -> Node:
    return apply("exp", (x * _LN2,))


def full(shape: Shape, value: Any, dtype: DType) -> Node:
    return api.broadcast_to(const(value, dtype), shape)


def eye_array(n: int, m: int | None, dtype: Any) -> np.ndarray:
    return np.eye(n, m, dtype=as_dtype(dtype).np)
