"""Property tests over random small programs: values against NumPy, gradients against central
finite differences, and eager execution against the traced graph.

A program is a list of steps over 2-3 inputs of small random shapes; each step applies one of
``OPS`` to earlier values (falling back to a compatible operand when shapes do not fit). The plan
is resolved once on NumPy arrays and then replayed on symgrad tensors, eagerly and under
``trace``, and on NumPy for the finite differences.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import symgrad
from symgrad import Spec, Tensor
from symgrad.autodiff.vjp import vjp
from symgrad.ir.graph import evaluate
from symgrad.ops.source import make_input

OPS = (
    "add",
    "sub",
    "mul",
    "div",
    "tanh",
    "sigmoid",
    "exp",
    "relu",
    "sum",
    "mean",
    "matmul",
    "reshape",
    "transpose",
    "row",
)


class NumpyLib:
    """The NumPy meaning of each step."""

    add = staticmethod(np.add)
    sub = staticmethod(np.subtract)
    mul = staticmethod(np.multiply)
    tanh = staticmethod(np.tanh)
    exp = staticmethod(np.exp)

    @staticmethod
    def div(a, b):
        return a / (1 + b * b)

    @staticmethod
    def sigmoid(x):
        return 1 / (1 + np.exp(-x))

    @staticmethod
    def relu(x):
        return np.maximum(x, 0)

    @staticmethod
    def sum(x, axis, keepdims):
        return np.asarray(np.sum(x, axis=axis, keepdims=keepdims))

    @staticmethod
    def mean(x, axis, keepdims):
        return np.asarray(np.mean(x, axis=axis, keepdims=keepdims))

    @staticmethod
    def matmul(a, b):
        return np.asarray(a @ b)

    @staticmethod
    def reshape(x, shape):
        return np.reshape(x, shape)

    @staticmethod
    def T(x):
        return x.T


class SymgradLib:
    """The same steps with the Tensor API (works on eager and traced tensors)."""

    add = staticmethod(lambda a, b: a + b)
    sub = staticmethod(lambda a, b: a - b)
    mul = staticmethod(lambda a, b: a * b)
    div = staticmethod(lambda a, b: a / (1 + b * b))
    tanh = staticmethod(lambda x: x.tanh())
    exp = staticmethod(lambda x: x.exp())
    sigmoid = staticmethod(lambda x: symgrad.sigmoid(x))
    relu = staticmethod(lambda x: x.relu())
    sum = staticmethod(lambda x, axis, keepdims: x.sum(axis, keepdims=keepdims))
    mean = staticmethod(lambda x, axis, keepdims: x.mean(axis, keepdims=keepdims))
    matmul = staticmethod(lambda a, b: a @ b)
    reshape = staticmethod(lambda x, shape: x.reshape(shape))
    T = staticmethod(lambda x: x.T)


@dataclass(frozen=True)
class Step:
    op: str
    a: int
    b: int = -1
    param: Any = None


def _broadcastable(s, t) -> bool:
    try:
        np.broadcast_shapes(s, t)
    except ValueError:
        return False
    return True


def resolve(shapes, raw_steps, row_index):
    """Turn drawn (op, i, j, r) tuples into steps whose operands fit, using shapes only."""
    cur = [tuple(s) for s in shapes]
    plan = []
    for op, i, j, r in raw_steps:
        a = i % len(cur)
        b = j % len(cur)
        sa, sb = cur[a], cur[b]
        if op in ("add", "sub", "mul", "div"):
            step = Step(op, a, b if _broadcastable(sa, sb) else a)
        elif op in ("tanh", "sigmoid", "exp", "relu", "transpose"):
            # exp only of a bounded value: exp(tanh(x))
            step = Step(op, a)
        elif op in ("sum", "mean"):
            axis = None if not sa or r % 3 == 0 else r % len(sa)
            step = Step(op, a, param=(axis, bool(j % 2)))
        elif op == "matmul":
            if len(sa) == 2 and len(sb) == 2 and sa[1] == sb[0]:
                step = Step("matmul", a, b)
            elif len(sa) == 2 and len(sb) == 2 and sa[1] == sb[1]:
                step = Step("matmul_t", a, b)  # a @ b.T
            elif len(sa) >= 1 and len(sb) == 1 and sa[-1] == sb[0]:
                step = Step("matmul", a, b)
            elif len(sa) >= 1:
                step = Step("matmul_t", a, a) if len(sa) == 2 else Step("matmul", a, a)
            else:
                step = Step("mul", a, a)
        elif op == "reshape":
            n = int(np.prod(sa))
            shape = (n,) if len(sa) != 1 else ((1, n) if r % 2 else (n, 1))
            step = Step("reshape", a, param=shape)
        elif op == "row":
            # broadcast against the (k,) row vector input, when the last dims fit
            fits = sa and row_index is not None and sa[-1] == shapes[row_index][0]
            step = Step("mul", a, row_index) if fits else Step("add", a, a)
        else:  # pragma: no cover - OPS and this function must agree
            raise AssertionError(op)
        plan.append(step)
        cur.append(_shape_after(step, cur))
    return plan


def _shape_after(step, cur):
    zeros = [np.zeros(s) for s in cur]
    return np.shape(execute([step], zeros, NumpyLib)[0][-1])


def execute(plan, inputs, lib):
    """Run the plan; returns all values and the inputs of every relu."""
    vals = list(inputs)
    relu_inputs = []
    for s in plan:
        a = vals[s.a]
        b = vals[s.b] if s.b >= 0 else None
        if s.op in ("add", "sub", "mul", "div", "matmul"):
            out = getattr(lib, s.op)(a, b)
        elif s.op == "matmul_t":
            out = lib.matmul(a, lib.T(b))
        elif s.op == "exp":
            out = lib.exp(lib.tanh(a))
        elif s.op == "relu":
            relu_inputs.append(a)
            out = lib.relu(a)
        elif s.op in ("tanh", "sigmoid"):
            out = getattr(lib, s.op)(a)
        elif s.op in ("sum", "mean"):
            out = getattr(lib, s.op)(a, *s.param)
        elif s.op == "reshape":
            out = lib.reshape(a, s.param)
        elif s.op == "transpose":
            out = lib.T(a)
        else:  # pragma: no cover
            raise AssertionError(s.op)
        vals.append(out)
    return vals, relu_inputs


@st.composite
def programs(draw):
    m = draw(st.integers(1, 4))
    k = draw(st.integers(1, 4))
    n_inputs = draw(st.integers(2, 3))
    second = draw(st.sampled_from([(m, k), (k, m), (k,)]))
    shapes = [(m, k), second, (k,)][:n_inputs]
    row_index = next((i for i, s in enumerate(shapes) if s == (k,)), None)
    raw = draw(
        st.lists(
            st.tuples(
                st.sampled_from(OPS),
                st.integers(0, 50),
                st.integers(0, 50),
                st.integers(0, 50),
            ),
            min_size=1,
            max_size=6,
        )
    )
    seed = draw(st.integers(0, 2**32 - 1))
    plan = resolve(shapes, raw, row_index)
    rng = np.random.default_rng(seed)
    arrays = [rng.uniform(-2.0, 2.0, s) for s in shapes]
    return shapes, plan, arrays, cotangents(plan, arrays, rng)


def cotangents(plan, arrays, rng):
    """One random cotangent per step: every step's value is an output (no dead code)."""
    vals, _ = execute(plan, arrays, NumpyLib)
    return [rng.standard_normal(np.shape(v)) for v in vals[len(arrays) :]]


def numpy_loss(plan, cots):
    def f(*arrays):
        vals, _ = execute(plan, arrays, NumpyLib)
        return sum(float(np.sum(v * c)) for v, c in zip(vals[len(arrays) :], cots, strict=True))

    return f


def symgrad_loss(plan, tensors, cots):
    vals, _ = execute(plan, tensors, SymgradLib)
    total = None
    for v, c in zip(vals[len(tensors) :], cots, strict=True):
        term = (v * c).sum()
        total = term if total is None else total + term
    return total


def _relu_is_smooth_here(plan, arrays) -> bool:
    _, relu_inputs = execute(plan, arrays, NumpyLib)
    return all(np.all(np.abs(r) > 1e-3) for r in relu_inputs)


PROPERTY_SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY_SETTINGS
@given(programs())
def test_eager_values_and_gradients(num_grad, prog):
    _, plan, arrays, cot = prog
    want_vals, _ = execute(plan, arrays, NumpyLib)
    tensors = [Tensor(a, requires_grad=True) for a in arrays]
    got_vals, _ = execute(plan, tensors, SymgradLib)
    for got, want in zip(got_vals[len(arrays) :], want_vals[len(arrays) :], strict=True):
        assert got.shape == np.shape(want)
        np.testing.assert_allclose(got.data, want, rtol=1e-10, atol=1e-12)
    symgrad_loss(plan, tensors, cot).backward()
    if not _relu_is_smooth_here(plan, arrays):
        return  # a relu input is too close to 0 for finite differences
    fd = num_grad(numpy_loss(plan, cot), arrays)
    for t, want in zip(tensors, fd, strict=True):
        got = np.zeros(t.shape) if t.grad is None else t.grad
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


@PROPERTY_SETTINGS
@given(programs())
def test_traced_graph_agrees_with_eager(prog):
    """trace + the reference interpreter + ``vjp`` on nodes give the eager values and grads."""
    shapes, plan, arrays, cot = prog

    def fn(*xs):
        return tuple(execute(plan, xs, SymgradLib)[0][len(xs) :])

    g = symgrad.trace(fn, *[Spec(s) for s in shapes])
    assert g.input_names == tuple(f"xs{i}" for i in range(len(shapes)))
    assert g.captures == () and len(g.outputs) == len(plan)
    env = dict(zip(g.inputs, arrays, strict=True))
    outs = evaluate(list(g.outputs), env)
    wants = execute(plan, arrays, NumpyLib)[0][len(arrays) :]
    for out, want in zip(outs, wants, strict=True):
        np.testing.assert_allclose(out, want, rtol=1e-10, atol=1e-12)

    gnodes = [make_input(o.shape, "float64", name=f"g{k}") for k, o in enumerate(g.outputs)]
    cts = vjp(list(g.outputs), gnodes, list(g.inputs))
    reached = [c for c in cts if c is not None]
    genv = dict(zip(gnodes, cot, strict=True))
    vals = evaluate(reached, {**env, **genv}) if reached else []
    it = iter(vals)
    tensors = [Tensor(a, requires_grad=True) for a in arrays]
    symgrad_loss(plan, tensors, cot).backward()
    for c, t in zip(cts, tensors, strict=True):
        eager = np.zeros(t.shape) if t.grad is None else t.grad
        traced = np.zeros(t.shape) if c is None else next(it)
        np.testing.assert_allclose(traced, eager, rtol=1e-12, atol=1e-14)


def test_a_program_of_every_op_is_checked(num_grad):
    """The generator's vocabulary, each op at least once, deterministically."""
    shapes = [(3, 2), (3, 2), (2,)]
    raw = [(op, k, k + 1, k) for k, op in enumerate(OPS)] + [("sum", 20, 1, 1)]
    plan = resolve(shapes, raw, row_index=2)
    assert {s.op for s in plan} >= {
        "add",
        "sub",
        "mul",
        "div",
        "tanh",
        "sigmoid",
        "exp",
        "relu",
        "sum",
        "reshape",
        "transpose",
    }
    rng = np.random.default_rng(7)
    arrays = [rng.uniform(0.5, 2.0, s) for s in shapes]  # relu inputs stay positive here
    cot = cotangents(plan, arrays, rng)
    tensors = [Tensor(a, requires_grad=True) for a in arrays]
    symgrad_loss(plan, tensors, cot).backward()
    assert _relu_is_smooth_here(plan, arrays)
    fd = num_grad(numpy_loss(plan, cot), arrays)
    for t, want in zip(tensors, fd, strict=True):
        got = np.zeros(t.shape) if t.grad is None else t.grad
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
