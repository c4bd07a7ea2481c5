"""Random programs over the public API, for the Hypothesis fuzz tests (``test_fuzz.py``).

A program is a list of inputs (random shapes, dtypes and values, including 0-size dims, NaN,
±inf and signed zeros) and a list of steps, each applying one op of ``OPS`` to earlier values
chosen at random -- compatible or not. Every op has a symgrad meaning (on Tensors, eager or
traced) and a NumPy meaning (the oracle): running a program on NumPy either fails at some step
or gives the values symgrad must reproduce.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import symgrad as sg
from symgrad.frontend.promote import promote_pair

DTYPES = ["float64", "float32", "int64", "bool"]

SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, 1000.0, -1000.0, np.inf, -np.inf, np.nan]


def _np_sigmoid(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype)


def _np_logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    axis = _axis(x, axis)
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    return (np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m).squeeze(axis)


def _axis(x: np.ndarray, axis: int) -> int:
    if not -x.ndim <= axis < x.ndim:  # (NumPy allows axis 0 of a 0-d array; symgrad does not)
        raise ValueError("axis out of range")
    return axis


def _np_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    axis = _axis(x, axis)
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _np_log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    axis = _axis(x, axis)
    s = x - np.max(x, axis=axis, keepdims=True)
    return s - np.log(np.sum(np.exp(s), axis=axis, keepdims=True))


def _np_one_hot(i: np.ndarray, n: int) -> np.ndarray:
    if n <= 0 or i.dtype.kind not in "iu" or (i.size and (i.min() < 0 or i.max() >= n)):
        raise ValueError("one_hot: not classes")
    return (i[..., None] == np.arange(n)).astype(np.float64)


def _np_cross_entropy(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    if x.ndim != 2 or y.shape != x.shape[:1] or y.dtype.kind not in "iu":
        raise ValueError("cross_entropy: bad operands")
    if y.size and (y.min() < 0 or y.max() >= x.shape[1]):  # class indices: -1 is refused
        raise IndexError("cross_entropy: target out of range")
    return -np.mean(_np_log_softmax(x, 1)[np.arange(len(y)), y])


def _np_reduce(fn: Callable[..., Any]) -> Callable[..., Any]:
    def f(x: np.ndarray, p: tuple[int | None, bool]) -> Any:
        axis, keepdims = p
        if axis is not None and not -x.ndim <= axis < x.ndim:
            raise ValueError("axis out of range")
        return fn(x, axis=axis, keepdims=keepdims)

    return f


def _np_index(x: np.ndarray, key: Any) -> np.ndarray:
    if isinstance(key, int) and x.ndim == 0:
        raise IndexError("0-d")
    return x[key]


# name -> (arity, symgrad meaning, NumPy meaning, parameter strategy or None)
OPS: dict[str, tuple[int, Callable[..., Any], Callable[..., Any], Any]] = {
    "add": (2, lambda a, b: a + b, np.add, None),
    "sub": (2, lambda a, b: a - b, np.subtract, None),
    "mul": (2, lambda a, b: a * b, np.multiply, None),
    "div": (2, lambda a, b: a / b, np.true_divide, None),
    "pow": (2, lambda a, b: a**b, np.power, None),
    "maximum": (2, sg.maximum, np.maximum, None),
    "minimum": (2, sg.minimum, np.minimum, None),
    "lt": (2, lambda a, b: a < b, np.less, None),
    # (Value == Value compares identities, as in micrograd: take the Tensor operator)
    "eq": (2, lambda a, b: sg.Tensor.__eq__(a, b), np.equal, None),
    "where": (3, sg.where, np.where, None),
    "matmul": (2, lambda a, b: a @ b, np.matmul, None),
    "concatenate": (2, lambda a, b, ax: sg.concatenate([a, b], ax), None, st.integers(-2, 2)),
    "stack": (2, lambda a, b, ax: sg.stack([a, b], ax), None, st.integers(-2, 2)),
    "neg": (1, lambda x: -x, np.negative, None),
    "exp": (1, lambda x: x.exp(), np.exp, None),
    "log": (1, lambda x: x.log(), np.log, None),
    "tanh": (1, lambda x: x.tanh(), np.tanh, None),
    "sqrt": (1, lambda x: x.sqrt(), np.sqrt, None),
    "abs": (1, lambda x: abs(x), np.abs, None),
    "sigmoid": (1, sg.sigmoid, _np_sigmoid, None),
    "relu": (1, lambda x: x.relu(), lambda x: np.maximum(x, 0).astype(x.dtype), None),
    "sum": (1, lambda x, p: x.sum(*p), _np_reduce(np.sum), "reduce"),
    "mean": (1, lambda x, p: x.mean(*p), _np_reduce(np.mean), "reduce"),
    "max": (1, lambda x, p: x.max(axis=p[0], keepdims=p[1]), _np_reduce(np.max), "reduce"),
    "reshape": (1, lambda x, s: x.reshape(s), np.reshape, "shape"),
    "transpose": (1, lambda x: x.T, lambda x: x.T, None),
    "index": (1, lambda x, k: x[k], _np_index, "key"),
    "astype": (1, lambda x, d: x.astype(d), lambda x, d: x.astype(d), st.sampled_from(DTYPES)),
    "softmax": (1, sg.softmax, _np_softmax, st.integers(-2, 1)),
    "log_softmax": (1, sg.log_softmax, _np_log_softmax, st.integers(-2, 1)),
    "logsumexp": (1, sg.logsumexp, _np_logsumexp, st.integers(-2, 1)),
    "one_hot": (1, sg.one_hot, _np_one_hot, st.integers(0, 4)),
    "cross_entropy": (2, sg.cross_entropy, _np_cross_entropy, None),
}


def _np_concatenate(a: np.ndarray, b: np.ndarray, ax: int) -> np.ndarray:
    if a.dtype != b.dtype:
        raise TypeError("dtypes differ")
    return np.concatenate([a, b], ax)


def _np_stack(a: np.ndarray, b: np.ndarray, ax: int) -> np.ndarray:
    if a.dtype != b.dtype:
        raise TypeError("dtypes differ")
    return np.stack([a, b], ax)


OPS["concatenate"] = (*OPS["concatenate"][:2], _np_concatenate, OPS["concatenate"][3])
OPS["stack"] = (*OPS["stack"][:2], _np_stack, OPS["stack"][3])


@dataclass
class Program:
    inputs: list[np.ndarray]
    steps: list[tuple[str, tuple[int, ...], Any]] = field(default_factory=list)

    def __repr__(self) -> str:
        ins = ", ".join(f"{a.dtype}{a.shape}: {a.tolist()!r:.80}" for a in self.inputs)
        steps = "; ".join(f"v{len(self.inputs) + k} = {op}{args}{'' if p is None else f' {p!r}'}"
                          for k, (op, args, p) in enumerate(self.steps))  # fmt: skip
        return f"Program(inputs=[{ins}], steps=[{steps}])"


def _values(dtype: str) -> Any:
    if dtype == "bool":
        return st.booleans()
    if dtype == "int64":
        return st.integers(-1, 4)
    return st.one_of(st.floats(-3, 3, width=32), st.sampled_from(SPECIAL))


@st.composite
def arrays(draw: Any) -> np.ndarray:
    dtype = draw(st.sampled_from(DTYPES[:2] * 3 + DTYPES[2:]))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3))
    return draw(hnp.arrays(dtype, shape, elements=_values(dtype)))


@st.composite
def _param(draw: Any, kind: Any, x: np.ndarray) -> Any:
    if kind is None:
        return None
    if kind == "reduce":
        axis = draw(st.one_of(st.none(), st.integers(-3, 2)))
        return (axis, draw(st.booleans()))
    if kind == "shape":
        n = x.size
        good = [(n,), (1, n), (n, 1), (-1,), (n, -1)] if n else [(0,), (0, 2), (2, 0)]
        return draw(st.one_of(st.sampled_from(good), st.tuples(st.integers(0, 4))))
    if kind == "key":
        return draw(
            st.one_of(
                st.integers(-4, 3),
                st.builds(slice, st.none() | st.integers(-3, 3), st.none() | st.integers(-3, 3)),
                st.just((Ellipsis, None)),
                st.just(np.array([0, -1])),
            )
        )
    return draw(kind)


@st.composite
def programs(draw: Any, max_steps: int = 4) -> Program:
    prog = Program(draw(st.lists(arrays(), min_size=1, max_size=3)))
    shapes = [a for a in prog.inputs]
    for _ in range(draw(st.integers(1, max_steps))):
        op = draw(st.sampled_from(sorted(OPS)))
        arity, _, _, kind = OPS[op]
        args = tuple(draw(st.integers(0, len(shapes) - 1)) for _ in range(arity))
        param = draw(_param(kind, shapes[args[0]]))
        prog.steps.append((op, args, param))
        shapes.append(shapes[args[0]])  # (only used to size parameters)
    return prog


#: the steps whose operands symgrad promotes by PyTorch's rule (NumPy's differs: 0-d arrays
#: widen, integer division gives float64); the reference casts them the same way first
PROMOTING = {"add", "sub", "mul", "div", "pow", "maximum", "minimum", "lt", "eq"}


def _promoted(op: str, xs: list[np.ndarray]) -> list[np.ndarray]:
    if op in PROMOTING:
        both = promote_pair(xs[0], xs[1], op == "div")
        return list(both) if both is not None else xs
    if op == "where":
        both = promote_pair(xs[1], xs[2])
        return [xs[0], *both] if both is not None else xs
    return xs


def run_numpy(prog: Program) -> tuple[list[np.ndarray], int | None]:
    """The values of every step by NumPy (with PyTorch's type promotion, as symgrad's), and the
    index of the first step NumPy refuses."""
    vals = list(prog.inputs)
    with np.errstate(all="ignore"):
        for k, (op, args, param) in enumerate(prog.steps):
            fn = OPS[op][2]
            xs = _promoted(op, [vals[i] for i in args])
            try:
                out = fn(*xs) if param is None else fn(*xs, param)
            except (ValueError, TypeError, IndexError, np.exceptions.AxisError):
                return vals, k
            vals.append(np.asarray(out))
    return vals, None


def run_symgrad(prog: Program, inputs: list[Any]) -> list[Any]:
    """The values of every step with symgrad (eager Tensors or traced ones)."""
    vals = list(inputs)
    for op, args, param in prog.steps:
        fn = OPS[op][1]
        xs = [vals[i] for i in args]
        vals.append(fn(*xs) if param is None else fn(*xs, param))
    return vals
