"""A sweep over every op in the registry: evaluation against NumPy, the shape/dtype rule, and the
VJP rule against central finite differences (with broadcasting for binary elementwise ops).

``SWEEP`` has an entry for every registered op name: a list of variants, each a builder of random
valid inputs (input nodes, attrs, input arrays) and the NumPy expression the op must agree with.
A newly declared op makes ``test_every_registered_op_is_swept`` fail until it is added here.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import symgrad
from symgrad.autodiff.vjp import MissingRuleError, vjp
from symgrad.ir import FLOAT32, FLOAT64, INT64
from symgrad.ir.errors import TraceError
from symgrad.ir.graph import evaluate
from symgrad.ir.node import Node
from symgrad.ir.opdef import (
    EvalContext,
    Kind,
    OpDef,
    apply,
    const,
    get_op,
    registry,
    resolve_shape,
)
from symgrad.ops.infer import ew_infer
from symgrad.ops.source import ConstArray, make_input

# -- cases ---------------------------------------------------------------------------------------


@dataclass
class Case:
    """One application of an op: its operand nodes (``input`` nodes, or constants) with the
    arrays they stand for, its attrs, and the bindings of symbolic dims (if any)."""

    inputs: list[Node]
    attrs: dict[str, Any]
    arrays: list[np.ndarray]
    dims: dict[str, int] | None = None
    # finite-difference step and tolerance of the VJP check (float32 results need a larger step)
    fd_eps: float = 1e-6
    rtol: float = 1e-6
    atol: float = 1e-8

    @property
    def env(self) -> dict[Node, np.ndarray]:
        return {n: a for n, a in zip(self.inputs, self.arrays, strict=True) if n.op == "input"}

    def float_inputs(self) -> list[int]:
        return [k for k, n in enumerate(self.inputs) if n.op == "input" and n.dtype.is_float]


Builder = Callable[[np.random.Generator, Any], Case]
NumpyFn = Callable[..., np.ndarray]  # (attrs, *arrays) -> expected


@dataclass
class Variant:
    id: str
    build: Builder
    numpy: NumpyFn
    # whether ``build`` honours the float dtype it is given (so the case also runs in float32)
    float_generic: bool = True
    # the VJP is a symbolic zero (None) for every input: sign, casts from/to integers
    zero_grad: bool = False
    # second derivatives are checked by differences of float64 values only
    second_order: bool = True


def _inp(a: np.ndarray) -> Node:
    return make_input(a.shape, a.dtype)


def _case(arrays: list[np.ndarray], attrs: dict[str, Any] | None = None, **kw: Any) -> Case:
    return Case([_inp(a) for a in arrays], dict(attrs or {}), arrays, **kw)


def _uniform(lo: float, hi: float) -> Callable[..., np.ndarray]:
    def gen(rng: np.random.Generator, shape: tuple[int, ...], dt: Any) -> np.ndarray:
        return rng.uniform(lo, hi, shape).astype(dt)

    return gen


def _away_from_zero(rng: np.random.Generator, shape: tuple[int, ...], dt: Any) -> np.ndarray:
    """Values in ±[0.2, 2]: away from the kinks of relu/abs/sign and the poles of division."""
    sign = rng.choice([-1.0, 1.0], size=shape)
    return (sign * rng.uniform(0.2, 2.0, shape)).astype(dt)


def _small_ints_as_floats(rng: np.random.Generator, shape: tuple[int, ...], dt: Any) -> np.ndarray:
    """Values in {0, 1, 2}: comparisons see plenty of ties."""
    return rng.integers(0, 3, shape).astype(dt)


_sym = _uniform(-2.0, 2.0)


def ew(*gens_and_shapes: tuple[Callable[..., np.ndarray], tuple[int, ...]]) -> Builder:
    """An elementwise case: one generated array per operand."""

    def build(rng: np.random.Generator, dt: Any) -> Case:
        return _case([gen(rng, shape, dt) for gen, shape in gens_and_shapes])

    return build


BCAST = ((3, 1), (4,))  # broadcast to (3, 4)


def binary_variants(np_fn: Callable[..., np.ndarray], gen_b=_sym, gen_a=_sym) -> list[Variant]:
    fn = lambda attrs, a, b: np_fn(a, b)  # noqa: E731
    return [
        Variant("bcast", ew((gen_a, BCAST[0]), (gen_b, BCAST[1])), fn),
        Variant("same", ew((gen_a, (2, 3)), (gen_b, (2, 3))), fn),
        Variant("scalar", ew((gen_a, ()), (gen_b, (2, 3))), fn),
    ]


def unary(np_fn: Callable[..., np.ndarray], gen=_sym) -> list[Variant]:
    return [Variant("2x3", ew((gen, (2, 3))), lambda attrs, x: np_fn(x))]


def comparison(np_fn: Callable[..., np.ndarray]) -> list[Variant]:
    fn = lambda attrs, a, b: np_fn(a, b)  # noqa: E731
    ints = lambda rng, shape, dt: rng.integers(0, 3, shape)  # noqa: E731
    return [
        Variant(
            "bcast", ew((_small_ints_as_floats, BCAST[0]), (_small_ints_as_floats, BCAST[1])), fn
        ),
        Variant("int64", ew((ints, (2, 3)), (ints, (3,))), fn, float_generic=False),
    ]


def _reduce_variants(np_fn: Callable[..., np.ndarray]) -> list[Variant]:
    fn = lambda attrs, x: np_fn(x, axis=attrs["axis"], keepdims=attrs["keepdims"])  # noqa: E731

    def build(axis: tuple[int, ...], keepdims: bool) -> Builder:
        def b(rng: np.random.Generator, dt: Any) -> Case:
            x = rng.uniform(-2, 2, (2, 3, 4)).astype(dt)
            return _case([x], {"axis": axis, "keepdims": keepdims})

        return b

    return [
        Variant("axis1", build((1,), False), fn),
        Variant("axes02_keepdims", build((0, 2), True), fn),
        Variant("all", build((0, 1, 2), False), fn),
        # NumPy counts: the sum of bools is an int64; the max of bools is a bool
        Variant("bool", _bool_reduce, fn, float_generic=False, zero_grad=True),
    ]


def _bool_reduce(rng, dt):
    return _case([rng.random((3, 4)) < 0.5], {"axis": (1,), "keepdims": False})


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


# -- non-elementwise builders ----------------------------------------------------------------------


def _reshape(rng, dt):
    return _case([rng.standard_normal((2, 3, 2)).astype(dt)], {"shape": (3, 4)})


def _reshape_to_scalar(rng, dt):
    return _case([rng.standard_normal((1, 1)).astype(dt)], {"shape": ()})


def _transpose(rng, dt):
    return _case([rng.standard_normal((2, 3, 4)).astype(dt)], {"perm": (2, 0, 1)})


def _argsort(axis, ints=False):
    def build(rng, dt):
        # values in {0, 1, 2}: many ties, which keep their order (a stable sort)
        x = rng.integers(0, 3, (3, 4, 5))
        return _case([x if ints else x.astype(dt)], {"axis": axis})

    return build


def _argsort_nan(rng, dt):
    x = rng.standard_normal((2, 6)).astype(dt)
    x[0, 1] = x[1, 4] = np.nan
    return _case([x], {"axis": 1})


def _cumsum(axis):
    def build(rng, dt):
        return _case([rng.standard_normal((2, 3, 4)).astype(dt)], {"axis": axis})

    return build


def _broadcast_to(rng, dt):
    return _case([rng.standard_normal((3, 1)).astype(dt)], {"shape": (2, 3, 4)})


def _concatenate(rng, dt):
    arrays = [rng.standard_normal((2, k)).astype(dt) for k in (1, 3, 2)]
    return _case(arrays, {"axis": 1})


SLICE_INDEX = ((0, 4, 2), (1, 4, 1))  # x[0:4:2, 1:4] of a (4, 5) array


def _slice(rng, dt):
    return _case([rng.standard_normal((4, 5)).astype(dt)], {"index": SLICE_INDEX})


def _slice_reversed(rng, dt):
    # x[::-1] of a (5,) array: slice(None, None, -1).indices(5) == (4, -1, -1)
    return _case([rng.standard_normal((5,)).astype(dt)], {"index": ((4, -1, -1),)})


def _slice_negative_step(rng, dt):
    return _case([rng.standard_normal((5, 2)).astype(dt)], {"index": ((3, 0, -2), (0, 2, 1))})


def _py_slice(index):
    return tuple(slice(a, None if (c < 0 and b < 0) else b, c) for a, b, c in index)


def _unslice(rng, dt):
    g = rng.standard_normal((2, 3)).astype(dt)
    return _case([g], {"index": SLICE_INDEX, "shape": (4, 5)})


def _unslice_np(attrs, g):
    z = np.zeros(attrs["shape"], dtype=g.dtype)
    z[_py_slice(attrs["index"])] = g
    return z


def _gather(rng, dt):
    x = rng.standard_normal((5, 3)).astype(dt)
    idx = np.array([0, 4, -1, 2, 2, -5])  # duplicates and negative indices
    return _case([x, idx])


def _gather_pairs(rng, dt):
    x = rng.standard_normal((4, 5, 2)).astype(dt)
    i0 = np.array([[3], [0]])  # (2, 1) broadcasts with (3,) to (2, 3)
    i1 = np.array([1, -1, 1])
    return _case([x, i0, i1])


def _scatter_add(rng, dt):
    g = rng.standard_normal((6, 3)).astype(dt)
    idx = np.array([0, 4, -1, 2, 2, -5])
    return _case([g, idx], {"shape": (5, 3)})


def _scatter_add_np(attrs, g, *idx):
    z = np.zeros(attrs["shape"], dtype=g.dtype)
    np.add.at(z, tuple(idx), g)
    return z


def _bincount(rng, dt):
    i0 = np.array([[3], [0], [-1]])  # (3, 1) broadcasts with (4,) to (3, 4)
    i1 = np.array([1, -5, 1, 4])
    return _case([i0, i1], {"shape": (4, 5)})


def _bincount_np(attrs, *idx):
    z = np.zeros(attrs["shape"], dtype=np.int64)
    np.add.at(z, np.broadcast_arrays(*idx), 1)
    return z


TARGETS = np.array([0, 3, -1, 2, -4])  # negative targets wrap, like gather's indices


def _softmax_nll(scale):
    def build(rng, dt):
        return _case([(scale * rng.standard_normal((5, 4))).astype(dt), TARGETS])

    return build


def _softmax_np(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _softmax_nll_np(attrs, z, y):
    m = z.max(1)
    lse = m + np.log(np.exp(z - m[:, None]).sum(1))
    return lse - z[np.arange(len(z)), y]


def _softmax_nll_grad(rng, dt):
    z = rng.standard_normal((5, 4)).astype(dt)
    return _case([z, TARGETS, rng.standard_normal(5).astype(dt)])


def _softmax_nll_grad_np(attrs, z, y, g):
    return g[:, None] * (_softmax_np(z) - np.eye(z.shape[1], dtype=z.dtype)[y])


def _one_hot(dtype_name):
    def build(rng, dt):
        i = rng.integers(0, 4, (2, 3))
        return _case([i], {"num_classes": 4, "dtype": dtype_name})

    return build


def _one_hot_np(attrs, i):
    return np.eye(attrs["num_classes"], dtype=attrs["dtype"])[i]


def _matmul(sa, sb):
    def build(rng, dt):
        return _case([rng.standard_normal(sa).astype(dt), rng.standard_normal(sb).astype(dt)])

    return build


def _cast(src, dst):
    def build(rng, dt):
        if np.dtype(src).kind == "f":
            x = rng.uniform(-2, 2, (2, 3)).astype(src)
        else:
            x = rng.integers(-3, 4, (2, 3)).astype(src)
        # a float32 result is only accurate to ~1e-7: take a large step (cast is linear)
        kw = {"fd_eps": 0.1, "rtol": 1e-5, "atol": 1e-5} if "float32" in (src, dst) else {}
        return _case([x], {"dtype": dst}, **kw)

    return build


def _where(rng, dt):
    c = rng.random((3, 1)) < 0.5
    c[0, 0], c[1, 0] = True, False
    a = rng.standard_normal((4,)).astype(dt)
    b = rng.standard_normal((3, 4)).astype(dt)
    return _case([c, a, b])


def _pow_const_exponent(value):
    def build(rng, dt):
        x = rng.uniform(0.5, 2.0, (2, 3)).astype(dt)
        if value == 0.0:
            x[0, 0] = 0.0  # d/dx x**0 is 0 everywhere, at 0 too
        c = symgrad.ir.opdef.const(value, symgrad.ir.as_dtype(dt))
        return Case([_inp(x), c], {}, [x, np.asarray(value, dtype=dt)])

    return build


@dataclass
class _InputCase(Case):
    """``input`` has no evaluation of its own: its value is bound in the environment."""

    value: np.ndarray | None = None


def _input(rng, dt):
    x = rng.standard_normal((2, 3)).astype(dt)
    attrs = {"name": "x", "uid": uuid.uuid4().hex, "shape": (2, 3), "dtype": np.dtype(dt).name}
    return _InputCase([], attrs, [], value=x)


def _const(rng, dt):
    return Case([], {"value": 1.5, "dtype": np.dtype(dt).name}, [])


def _constant(rng, dt):
    return Case([], {"value": ConstArray(rng.standard_normal((2, 3)).astype(dt))}, [])


def _arange(n, dims=None):
    def build(rng, dt):
        return Case([], {"n": n}, [], dims=dims)

    return build


def _dimsize(rng, dt):
    return Case([], {"dims": (2, "n"), "dtype": np.dtype(dt).name}, [], dims={"n": 3})


def _counter_random(dist, low=0, high=1):
    def build(rng, dt):
        key = np.array([int(rng.integers(-(2**62), 2**62)), 7], dtype=np.int64)
        params = [np.asarray(v, dtype=np.int64) for v in (3, dist, low, high)]
        consts = [const(int(v), INT64) for v in params]
        out_dt = "int64" if dist == 2 else np.dtype(dt).name
        return Case([_inp(key), *consts], {"shape": (3, 5), "dtype": out_dt}, [key, *params])

    return build


def _counter_random_np(attrs, key, stream, dist, low, high):
    # an independent reference: SplitMix64 on Python ints
    m = 2**64 - 1

    def mix(v):
        v = (v + 0x9E3779B97F4A7C15) & m
        v = ((v ^ (v >> 30)) * 0xBF58476D1CE4E5B9) & m
        v = ((v ^ (v >> 27)) * 0x94D049BB133111EB) & m
        return v ^ (v >> 31)

    base = mix(mix(mix(int(key[0]) & m) ^ (int(key[1]) & m)) ^ int(stream))
    n = 15
    words = [mix((base + i * 0xD1B54A32D192ED03) & m) for i in range(2 * n)]
    dt = np.dtype(attrs["dtype"])
    if int(dist) == 1:
        u1 = np.array([(w >> 11) * 2.0**-53 for w in words[0::2]])
        u2 = np.array([(w >> 11) * 2.0**-53 for w in words[1::2]])
        z = np.sqrt(-2.0 * np.log(1.0 - u1)) * np.cos(2.0 * np.pi * u2)
        return z.astype(dt).reshape(3, 5)
    if int(dist) == 2:
        u = np.array([(w >> 11) * 2.0**-53 for w in words[:n]])
        return (np.floor(u * float(high - low)).astype(np.int64) + int(low)).reshape(3, 5)
    if dt == np.float32:
        return np.array([(w >> 40) * 2.0**-24 for w in words[:n]], np.float32).reshape(3, 5)
    return np.array([(w >> 11) * 2.0**-53 for w in words[:n]]).reshape(3, 5)


SWEEP: dict[str, list[Variant]] = {
    # sources
    "input": [Variant("bound", _input, lambda attrs: None)],
    "const": [Variant("scalar", _const, lambda attrs: np.asarray(attrs["value"], attrs["dtype"]))],
    "constant": [Variant("array", _constant, lambda attrs: attrs["value"].array)],
    "arange": [
        Variant("static", _arange(5), lambda attrs: np.arange(5), float_generic=False),
        Variant(
            "symbolic", _arange("n", {"n": 4}), lambda attrs: np.arange(4), float_generic=False
        ),
    ],
    "dimsize": [Variant("sym", _dimsize, lambda attrs: np.asarray(6.0, attrs["dtype"]))],
    "counter_random": [
        Variant("uniform", _counter_random(0), _counter_random_np),
        Variant("normal", _counter_random(1), _counter_random_np),
        Variant("integers", _counter_random(2, -3, 9), _counter_random_np, float_generic=False),
    ],
    # elementwise arithmetic (broadcasting (3, 1) with (4,))
    "add": binary_variants(np.add),
    "sub": binary_variants(np.subtract),
    "mul": binary_variants(np.multiply),
    "div": binary_variants(np.true_divide, gen_b=_away_from_zero),
    "pow": [
        *binary_variants(np.power, gen_a=_uniform(0.5, 2.0), gen_b=_uniform(-1.5, 1.5)),
        Variant("const3", _pow_const_exponent(3.0), lambda attrs, x, c: x**c),
        Variant("const2", _pow_const_exponent(2.0), lambda attrs, x, c: x**c),
        Variant("const_half", _pow_const_exponent(0.5), lambda attrs, x, c: x**c),
        Variant("const0", _pow_const_exponent(0.0), lambda attrs, x, c: x**c, zero_grad=True),
    ],
    "maximum": binary_variants(np.maximum),
    "minimum": binary_variants(np.minimum),
    "neg": unary(np.negative),
    "exp": unary(np.exp),
    "log": unary(np.log, _uniform(0.2, 3.0)),
    "tanh": unary(np.tanh),
    "sigmoid": [*unary(_sigmoid, _uniform(-4.0, 4.0))],
    "relu": unary(lambda x: np.maximum(x, 0), _away_from_zero),
    "sqrt": unary(np.sqrt, _uniform(0.2, 3.0)),
    "abs": unary(np.abs, _away_from_zero),
    "sign": [
        Variant("2x3", ew((_away_from_zero, (2, 3))), lambda attrs, x: np.sign(x), zero_grad=True)
    ],
    "lt": comparison(np.less),
    "le": comparison(np.less_equal),
    "gt": comparison(np.greater),
    "ge": comparison(np.greater_equal),
    "eq": comparison(np.equal),
    "ne": comparison(np.not_equal),
    "where": [Variant("bcast", _where, lambda attrs, c, a, b: np.where(c, a, b))],
    "cast": [
        Variant(
            "f64_to_f32",
            _cast("float64", "float32"),
            lambda attrs, x: x.astype(np.float32),
            float_generic=False,
            second_order=False,
        ),
        Variant(
            "f32_to_f64",
            _cast("float32", "float64"),
            lambda attrs, x: x.astype(np.float64),
            float_generic=False,
            second_order=False,
        ),
        Variant(
            "i64_to_f64",
            _cast("int64", "float64"),
            lambda attrs, x: x.astype(np.float64),
            float_generic=False,
            zero_grad=True,
        ),
        Variant(
            "f64_to_i64",
            _cast("float64", "int64"),
            lambda attrs, x: x.astype(np.int64),
            float_generic=False,
            zero_grad=True,
        ),
    ],
    "detach": unary(lambda x: x),
    # reductions
    "sum": _reduce_variants(np.sum),
    "max": _reduce_variants(np.max),
    "prod": _reduce_variants(np.prod),
    # scans
    "cumsum": [
        Variant(f"axis{a}", _cumsum(a), lambda attrs, x: np.cumsum(x, axis=attrs["axis"]))
        for a in (0, 1, 2)
    ],
    # sorting
    "argsort": [
        *(
            Variant(
                f"axis{a}",
                _argsort(a),
                lambda attrs, x: np.argsort(x, attrs["axis"], kind="stable"),
            )
            for a in (0, 1, 2)
        ),
        Variant(
            "int64",
            _argsort(1, ints=True),
            lambda attrs, x: np.argsort(x, attrs["axis"], kind="stable"),
            float_generic=False,
        ),
        Variant("nan_last", _argsort_nan, lambda attrs, x: np.argsort(x, 1, kind="stable")),
    ],
    # movement
    "reshape": [
        Variant("2x3x2_to_3x4", _reshape, lambda attrs, x: x.reshape(attrs["shape"])),
        Variant("to_scalar", _reshape_to_scalar, lambda attrs, x: x.reshape(())),
    ],
    "transpose": [Variant("perm201", _transpose, lambda attrs, x: np.transpose(x, attrs["perm"]))],
    "broadcast_to": [
        Variant("3x1_to_2x3x4", _broadcast_to, lambda attrs, x: np.broadcast_to(x, attrs["shape"]))
    ],
    "concatenate": [
        Variant("axis1", _concatenate, lambda attrs, *xs: np.concatenate(xs, attrs["axis"]))
    ],
    "slice": [
        Variant("strided", _slice, lambda attrs, x: x[0:4:2, 1:4]),
        Variant("reversed", _slice_reversed, lambda attrs, x: x[::-1]),
        Variant("negative_step", _slice_negative_step, lambda attrs, x: x[3:0:-2, :]),
    ],
    "unslice": [Variant("strided", _unslice, _unslice_np)],
    # indexing
    "gather": [
        Variant("rows", _gather, lambda attrs, x, i: x[i]),
        Variant("pairs", _gather_pairs, lambda attrs, x, i, j: x[i, j]),
    ],
    "scatter_add": [Variant("rows", _scatter_add, _scatter_add_np)],
    "bincount": [
        Variant("pairs", _bincount, _bincount_np, float_generic=False),
        Variant(
            "rows",
            lambda rng, dt: _case([rng.integers(-6, 6, 40)], {"shape": (6,)}),
            _bincount_np,
            float_generic=False,
        ),
    ],
    "class_index": [
        Variant(
            "2x3",
            lambda rng, dt: _case([rng.integers(0, 4, (2, 3))], {"num_classes": 4}),
            lambda attrs, i: i,
            float_generic=False,
        )
    ],
    "class_targets": [
        Variant(
            "rows",
            lambda rng, dt: _case([rng.integers(0, 3, (4,)), rng.standard_normal((4, 3))]),
            lambda attrs, y, z: y,
            float_generic=False,
        )
    ],
    "one_hot": [
        Variant("f64", _one_hot("float64"), _one_hot_np, float_generic=False),
        Variant("f32", _one_hot("float32"), _one_hot_np, float_generic=False),
    ],
    # the fused cross-entropy (large logits: exp would overflow without the max subtraction)
    "softmax_nll": [
        Variant("rows", _softmax_nll(1.0), _softmax_nll_np),
        Variant("large", _softmax_nll(30.0), _softmax_nll_np),
    ],
    "softmax_nll_grad": [Variant("rows", _softmax_nll_grad, _softmax_nll_grad_np)],
    # linear algebra (NumPy @ semantics)
    "matmul": [
        Variant(f"{sa}@{sb}".replace(" ", ""), _matmul(sa, sb), lambda attrs, a, b: a @ b)
        for sa, sb in [
            ((3, 4), (4, 2)),
            ((4,), (4, 2)),
            ((3, 4), (4,)),
            ((4,), (4,)),
            ((2, 3, 4), (4, 5)),
            ((4,), (2, 4, 3)),
            ((2, 3, 4), (4,)),
            ((2, 1, 3, 4), (3, 4, 2)),
        ]
    ],
}


def _params(only: Callable[[str, Variant], bool] = lambda n, v: True, dtypes: bool = False):
    out = []
    for name in sorted(SWEEP):
        for v in SWEEP[name]:
            if not only(name, v):
                continue
            for dt in ("float64", "float32") if (dtypes and v.float_generic) else ("float64",):
                out.append(pytest.param(name, v, dt, id=f"{name}-{v.id}-{dt}"))
    return out


def _differentiable(name: str, v: Variant) -> bool:
    return name in registry() and get_op(name).differentiable


def _rng_for(name: str, v: Variant) -> np.random.Generator:
    # a fixed seed per case, independent of test order
    return np.random.default_rng(list(f"{name}/{v.id}".encode()))


def _node(name: str, case: Case) -> Node:
    return apply(name, tuple(case.inputs), case.attrs)


def _expected(name: str, v: Variant, case: Case) -> Any:
    if name == "input":
        return case.value
    return v.numpy(case.attrs, *case.arrays)


def _evaluate(node: Node, case: Case, extra: dict[Node, Any] | None = None) -> Any:
    env = dict(case.env)
    if isinstance(case, _InputCase):
        env[node] = case.value
    env.update(extra or {})
    (val,) = evaluate([node], env, dims=case.dims)
    return val


# -- the registry and the table -------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    sorted(n for n in registry() if not n.startswith("ew_")),  # ew_*: other tests' ops
)
def test_every_registered_op_is_swept(name):
    assert name in SWEEP, (
        f"op {name!r} is registered but has no entry in tests/ops/test_registry_sweep.py SWEEP: "
        "add a builder of random valid inputs and its NumPy expression"
    )
    assert SWEEP[name], f"SWEEP[{name!r}] has no variants"


def test_sweep_has_no_stale_entries():
    assert sorted(set(SWEEP) - set(registry())) == []


def _incomplete(op: OpDef) -> list[str]:
    """What the record ``op`` leaves undeclared, for the layers that read it."""
    missing = []
    if not op.doc.strip():
        missing.append("a doc")
    if not (callable(op.eval) and callable(op.infer)):
        missing.append("eval and infer")
    if op.differentiable and op.vjp is None:
        missing.append("a VJP rule (or differentiable=False)")
    if op.kind is Kind.SOURCE and (op.arity != 0 or op.differentiable):
        missing.append("arity 0 and differentiable=False (a source)")
    if op.name not in ("input", "constant"):  # parameters of the code, never statements
        for backend in ("numpy", "c"):
            if not any(k.split(":")[0] == backend for k in op.emit):
                missing.append(f"a {backend} lowering")
    return missing


@pytest.mark.parametrize("name", sorted(registry()))
def test_opdef_is_complete(name):
    op = get_op(name)
    assert op.name == name
    assert isinstance(op.kind, Kind)
    assert not _incomplete(op), f"{name} declares no {', '.join(_incomplete(op))}"
    from symgrad.ops.catalogue import catalogue_markdown

    assert f"| `{name}` |" in catalogue_markdown()


def test_a_half_declared_op_is_incomplete():
    half = OpDef(
        "cumsum_draft",
        Kind.REDUCE,
        1,
        eval=lambda ctx, x: np.cumsum(x, axis=-1),
        infer=lambda inputs, attrs: (inputs[0].shape, inputs[0].dtype),
        emit={"numpy": "np.cumsum({0}, axis=-1)"},
        doc="running sums along the last axis",
    )
    assert _incomplete(half) == ["a VJP rule (or differentiable=False)", "a c lowering"]


# -- evaluation and the shape/dtype rule -----------------------------------------------------------


@pytest.mark.parametrize(("name", "variant", "dtype"), _params(dtypes=True))
def test_eval_matches_numpy(name, variant, dtype):
    case = variant.build(_rng_for(name, variant), np.dtype(dtype))
    node = _node(name, case)
    got = _evaluate(node, case)
    want = np.asarray(_expected(name, variant, case))
    assert isinstance(got, np.ndarray)
    assert got.shape == want.shape
    assert got.dtype == want.dtype, f"{name}: got {got.dtype}, NumPy gives {want.dtype}"
    if want.dtype.kind == "f":
        tol = 1e-6 if want.dtype == np.float32 else 1e-13
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    else:
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(("name", "variant", "dtype"), _params(dtypes=True))
def test_infer_agrees_with_eval(name, variant, dtype):
    case = variant.build(_rng_for(name, variant), np.dtype(dtype))
    op = get_op(name)
    shape, dt = op.infer(tuple(case.inputs), case.attrs)
    node = _node(name, case)
    assert (node.shape, node.dtype) == (shape, dt)
    dims = case.dims or {}
    resolved = resolve_shape(shape, dims)
    if isinstance(case, _InputCase):
        raw = case.value
    else:
        # the op's own eval, before the interpreter casts anything: its result must already
        # have the inferred shape and dtype
        ctx = EvalContext(case.attrs, resolved, dt.np, dims)
        raw = np.asarray(op.eval(ctx, *case.arrays))
    assert raw.shape == resolved
    assert raw.dtype == dt.np, f"{name}: eval gives {raw.dtype}, infer says {dt}"
    if dt.is_float and variant.float_generic and any(a.dtype.kind == "f" for a in case.arrays):
        assert dt is (FLOAT32 if dtype == "float32" else FLOAT64)


def test_unbound_input_cannot_be_evaluated():
    x = make_input((2,), "float64", name="xs")
    with pytest.raises(TraceError, match="xs"):
        evaluate([x * 2.0], {})


# -- the VJP rules ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "variant", "dtype"), _params(_differentiable))
def test_vjp_matches_finite_differences(name, variant, dtype, num_grad):
    rng = _rng_for(name, variant)
    case = variant.build(rng, np.dtype(dtype))
    node = _node(name, case)
    g_node = make_input(node.shape, node.dtype, name="g")
    gval = rng.standard_normal(resolve_shape(node.shape, case.dims or {})).astype(node.dtype.np)
    wrt = [n for n in case.inputs if n.op == "input"]
    cts = vjp([node], [g_node], wrt)
    assert isinstance(cts, list) and len(cts) == len(wrt)
    floats = case.float_inputs()
    if variant.zero_grad:
        assert all(ct is None for ct in cts), f"{name}/{variant.id}: expected symbolic zeros"
    else:
        assert floats and any(ct is not None for ct in cts)

    def loss(*float_arrays):
        arrays = list(case.arrays)
        for k, a in zip(floats, float_arrays, strict=True):
            arrays[k] = a.astype(case.arrays[k].dtype)
        out = np.asarray(variant.numpy(case.attrs, *arrays), dtype=np.float64)
        return float(np.sum(gval.astype(np.float64) * out))

    fd = num_grad(loss, [case.arrays[k] for k in floats], eps=case.fd_eps)
    by_node = dict(zip(wrt, cts, strict=True))
    for k, want in zip(floats, fd, strict=True):
        inp = case.inputs[k]
        ct = by_node[inp]
        if ct is None:  # a symbolic zero
            got = np.zeros(case.arrays[k].shape)
        else:
            assert ct.shape == inp.shape and ct.dtype == inp.dtype
            got = _evaluate(ct, case, {g_node: gval})
            assert got.shape == case.arrays[k].shape
            assert got.dtype == case.arrays[k].dtype
        np.testing.assert_allclose(
            got, want, rtol=case.rtol, atol=case.atol, err_msg=f"{name}: input {k}"
        )
    for inp in case.inputs:
        if inp.op == "input" and not inp.dtype.is_float:  # indices and conditions
            assert by_node[inp] is None, f"{name}: an integer/bool input got a cotangent"


def _second_order(name: str, v: Variant) -> bool:
    return _differentiable(name, v) and v.second_order and not v.zero_grad


@pytest.mark.parametrize(("name", "variant", "dtype"), _params(_second_order))
def test_vjp_rule_is_itself_differentiable(name, variant, dtype, num_grad):
    """The VJP is a graph: differentiate <w, vjp(x; g)> again and compare with differences of
    the evaluated VJP (second derivatives through every rule)."""
    rng = _rng_for(name, variant)
    case = variant.build(rng, np.dtype(dtype))
    node = _node(name, case)
    g_node = make_input(node.shape, node.dtype, name="g")
    gval = rng.standard_normal(resolve_shape(node.shape, case.dims or {}))
    floats = case.float_inputs()
    x_nodes = [case.inputs[k] for k in floats]
    cts = vjp([node], [g_node], x_nodes)
    pairs = [(x, ct) for x, ct in zip(x_nodes, cts, strict=True) if ct is not None]
    assert pairs
    ws = [rng.standard_normal(ct.shape).astype(ct.dtype.np) for _, ct in pairs]
    total = None
    for (_, ct), w in zip(pairs, ws, strict=True):
        term = symgrad.ops.api.sum(ct * symgrad.ops.source.make_constant(w))
        total = term if total is None else total + term
    second = vjp([total], [symgrad.ir.opdef.const(1.0, total.dtype)], x_nodes)

    def h(*float_arrays):
        env = dict(case.env)
        for k, a in zip(floats, float_arrays, strict=True):
            env[case.inputs[k]] = a
        env[g_node] = gval
        (val,) = evaluate([total], env, dims=case.dims)
        return float(val)

    fd = num_grad(h, [case.arrays[k] for k in floats], eps=1e-5)
    for x, s, want in zip(x_nodes, second, fd, strict=True):
        got = np.zeros(x.shape) if s is None else _evaluate(s, case, {g_node: gval})
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7, err_msg=name)


@pytest.mark.parametrize("name", ["detach", "lt", "eq", "sign"])
def test_gradient_does_not_flow_through_non_differentiable_ops(name):
    x = make_input((3,), "float64", name="x")
    y = make_input((3,), "float64", name="y")
    out = apply(name, (x,) if get_op(name).arity == 1 else (x, y))
    g = make_input(out.shape, "float64", name="g")
    assert vjp([out], [g], [x]) == [None]


def test_broadcast_cotangents_are_summed_back():
    # the rule of add returns the (3, 4) cotangent for both inputs; the driver unbroadcasts
    a = make_input((3, 1), "float64", name="a")
    b = make_input((4,), "float64", name="b")
    g = make_input((3, 4), "float64", name="g")
    ga, gb = vjp([a + b], [g], [a, b])
    assert ga.shape == (3, 1) and gb.shape == (4,)
    gv = np.arange(12.0).reshape(3, 4)
    env = {a: np.zeros((3, 1)), b: np.zeros(4), g: gv}
    va, vb = evaluate([ga, gb], env)
    np.testing.assert_array_equal(va, gv.sum(1, keepdims=True))
    np.testing.assert_array_equal(vb, gv.sum(0))


def test_differentiable_op_without_rule_raises_missing_rule_error():
    name = f"test_norule_{uuid.uuid4().hex}"
    op = OpDef(
        name,
        Kind.ELEMENTWISE,
        1,
        eval=lambda ctx, x: x * 2,
        infer=ew_infer(),
        vjp=None,
        differentiable=True,
        doc="a throwaway op without a VJP rule",
    )
    symgrad.ir.opdef.register(op)
    try:
        x = make_input((2,), "float64", name="x")
        y = apply(name, (x,))
        (val,) = evaluate([y], {x: np.array([1.0, 2.0])})
        np.testing.assert_array_equal(val, [2.0, 4.0])
        with pytest.raises(MissingRuleError, match=name):
            vjp([y], [make_input((2,), "float64", name="g")], [x])
        with pytest.raises(NotImplementedError):
            symgrad.autodiff.grad(symgrad.ops.api.sum(y), [x])
    finally:
        symgrad.ir.opdef._REGISTRY.pop(name)
    assert name not in registry()


def test_register_refuses_a_second_declaration():
    with pytest.raises(ValueError, match="already declared"):
        symgrad.ir.opdef.register(get_op("add"))


def test_sweep_ids_are_unique():
    ids = [p.id for p in _params(dtypes=True)]
    assert len(ids) == len(set(ids))
    builtin = [n for n in registry() if not n.startswith("ew_")]  # ew_*: user ops of other tests
    assert len(list(itertools.chain.from_iterable(SWEEP.values()))) >= len(builtin)
