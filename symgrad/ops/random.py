"""The counter-based random source: ``counter_random(key, stream, dist, low, high)``.

Owns: the declaration of the op that turns a key — an int64 array ``[seed, counter]``, a graph
input — into random numbers, its shape rule, its NumPy and C lowerings, and :func:`draw_array`
(the same numbers computed eagerly). Element ``i`` of draw ``stream`` is a pure function of
``(seed, counter, stream, i)``: each 64-bit word is the SplitMix64 finaliser of the key mixed
with the word's index, so NumPy, C and the interpreter give the same bits, and a compiled
function whose key's counter advances every call draws new numbers every call, reproducibly
from the seed. Distributions (``dist``): 0 uniform on [0, 1) (53 bits for float64, 24 for
float32), 1 standard normal (Box–Muller in float64, then rounded to the dtype), 2 integers in
``[low, high)``. May import: numpy and ``symgrad.ir``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from symgrad.ir.dtypes import INT64, DType, as_dtype
from symgrad.ir.errors import DTypeError, ShapeError
from symgrad.ir.node import Node, Shape
from symgrad.ir.opdef import Kind, OpDef, apply, const, register
from symgrad.ops.c.emitter import Emitter
from symgrad.ops.c.loops import prod
from symgrad.ops.source import check_shape

UNIFORM, NORMAL, INTEGERS = 0, 1, 2
_GOLDEN = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB
_STRIDE = 0xD1B54A32D192ED03  # the per-word step of an element's counter


def _mix(v: np.ndarray) -> np.ndarray:
    """SplitMix64 on uint64 arrays (wrapping arithmetic)."""
    v = v + np.uint64(_GOLDEN)
    v = (v ^ (v >> np.uint64(30))) * np.uint64(_M1)
    v = (v ^ (v >> np.uint64(27))) * np.uint64(_M2)
    return v ^ (v >> np.uint64(31))


def _words(key: np.ndarray, stream: int, n: int) -> np.ndarray:
    k = np.asarray(key, dtype=np.int64).astype(np.uint64).reshape(2)
    base = _mix(_mix(_mix(k[:1]) ^ k[1:]) ^ np.array([stream], dtype=np.int64).astype(np.uint64))
    return _mix(base + np.arange(n, dtype=np.uint64) * np.uint64(_STRIDE))


def draw_array(
    key: Any, stream: int, dist: int, low: int, high: int, shape: tuple[int, ...], dtype: Any
) -> np.ndarray:
    """The op's values: ``math.prod(shape)`` numbers of ``dist`` from ``key``."""
    n = math.prod(shape)
    npdt = np.dtype(as_dtype(dtype).np)
    if dist == NORMAL:
        w = _words(key, stream, 2 * n)
        u1 = (w[0::2] >> np.uint64(11)).astype(np.float64) * 2.0**-53
        u2 = (w[1::2] >> np.uint64(11)).astype(np.float64) * 2.0**-53
        with np.errstate(all="ignore"):
            z = np.sqrt(-2.0 * np.log(1.0 - u1)) * np.cos((2.0 * math.pi) * u2)
        return z.astype(npdt).reshape(shape)
    w = _words(key, stream, n)
    if dist == INTEGERS:
        u = (w >> np.uint64(11)).astype(np.float64) * 2.0**-53
        return (np.floor(u * float(high - low)).astype(np.int64) + low).reshape(shape)
    if npdt == np.float32:
        return ((w >> np.uint64(40)).astype(np.float32) * np.float32(2.0**-24)).reshape(shape)
    return ((w >> np.uint64(11)).astype(np.float64) * 2.0**-53).reshape(shape)


def _params(inputs: tuple[Node, ...]) -> list[int]:
    out = []
    for i in inputs[1:]:
        if i.op != "const" or i.dtype is not INT64:
            raise ShapeError(f"expected int64 scalar constants after the key, got {i.op}")
        out.append(int(i.attrs["value"]))
    return out


def _infer(inputs: tuple[Node, ...], attrs: dict[str, Any]) -> tuple[Shape, DType]:
    key = inputs[0]
    if key.dtype is not INT64 or key.shape != (2,):
        raise DTypeError(
            f"expected the key to be an int64 array of shape (2,) ([seed, counter]), got "
            f"{key.dtype}{key.shape}"
        )
    _, dist, low, high = _params(inputs)
    dt = as_dtype(attrs["dtype"])
    if dist not in (UNIFORM, NORMAL, INTEGERS):
        raise ShapeError(f"expected dist 0 (uniform), 1 (normal) or 2 (integers), got {dist}")
    if (dist == INTEGERS) != (dt is INT64) or (dist != INTEGERS and not dt.is_float):
        raise DTypeError(f"dist {dist} cannot make {dt} numbers")
    if dist == INTEGERS and high <= low:
        raise ShapeError(f"expected low < high, got low={low}, high={high}")
    return check_shape(attrs["shape"]), dt


def _eval(ctx: Any, key: np.ndarray, *params: np.ndarray) -> np.ndarray:
    stream, dist, low, high = (int(p) for p in params)
    return draw_array(key, stream, dist, low, high, tuple(ctx.shape), ctx.dtype)


def _c_mix(v: str) -> list[str]:
    return [
        f"{v} += 0x{_GOLDEN:X}ULL;",
        f"{v} = ({v} ^ ({v} >> 30)) * 0x{_M1:X}ULL;",
        f"{v} = ({v} ^ ({v} >> 27)) * 0x{_M2:X}ULL;",
        f"{v} ^= {v} >> 31;",
    ]


def _c_word(v: str, index: str) -> list[str]:
    return [f"uint64_t {v} = _rb + (uint64_t)({index}) * 0x{_STRIDE:X}ULL;", *_c_mix(v)]


def _c_random(e: Emitter, node: Node, out: str) -> list[str]:
    key = node.inputs[0]
    stream, dist, low, high = _params(node.inputs)
    n = e.c(prod(node.shape))
    head = [f"uint64_t _rb = (uint64_t){e.at(key, '0')};", *_c_mix("_rb")]
    head += [f"_rb ^= (uint64_t){e.at(key, '1')};", *_c_mix("_rb")]
    head += [f"_rb ^= (uint64_t){stream}LL;", *_c_mix("_rb")]
    ct = node.dtype.c_type
    if dist == NORMAL:
        body = [*_c_word("_w1", "2 * _i"), *_c_word("_w2", "2 * _i + 1")]
        body += [
            "const double _u1 = (double)(_w1 >> 11) * 0x1p-53;",
            "const double _u2 = (double)(_w2 >> 11) * 0x1p-53;",
            f"{out}[_i] = ({ct})(sqrt(-2.0 * log(1.0 - _u1)) * cos(6.283185307179586 * _u2));",
        ]
    elif dist == INTEGERS:
        body = [
            *_c_word("_w1", "_i"),
            "const double _u = (double)(_w1 >> 11) * 0x1p-53;",
            f"{out}[_i] = (int64_t)floor(_u * {float(high - low)!r}) + ({low}LL);",
        ]
    elif node.dtype.name == "float32":
        body = [*_c_word("_w1", "_i"), f"{out}[_i] = (float)(_w1 >> 40) * 0x1p-24f;"]
    else:
        body = [*_c_word("_w1", "_i"), f"{out}[_i] = (double)(_w1 >> 11) * 0x1p-53;"]
    loop = [f"for (int64_t _i = 0; _i < {n}; _i++) {{", *("    " + s for s in body), "}"]
    return ["{", *("    " + s for s in head + loop), "}"]


register(
    OpDef(
        "counter_random",
        Kind.INDEX,
        5,
        eval=_eval,
        infer=_infer,
        differentiable=False,
        emit={"numpy": "_rng_draw({0}, {1}, {2}, {3}, {4}, {shape}, np.{dtype})", "c": _c_random},
        helpers={"numpy": ("rng_draw",)},
        doc="random numbers from a key [seed, counter]: uniform, normal or integers "
        "(counter-based SplitMix64; the same bits in every backend)",
    )
)


def draw(
    key: Node,
    shape: Any,
    dtype: Any,
    dist: int = UNIFORM,
    stream: int = 0,
    low: int = 0,
    high: int = 1,
) -> Node:
    """The node of a draw of ``shape`` from ``key`` (an int64 ``[seed, counter]`` node)."""
    params = tuple(const(v, INT64) for v in (stream, dist, low, high))
    return apply(
        "counter_random",
        (key, *params),
        {"shape": check_shape(shape), "dtype": as_dtype(dtype).name},
    )
