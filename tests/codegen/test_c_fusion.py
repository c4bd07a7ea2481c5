"""Elementwise fusion in the C printer: which statements join a loop, what the fused code looks
like, and (Hypothesis) that random elementwise DAGs compute the reference interpreter's values."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import symgrad as sg
from symgrad.codegen.c.fusion import fusion_groups
from symgrad.ir.graph import evaluate
from symgrad.ir.node import Node
from symgrad.ir.opdef import apply
from symgrad.ops.source import make_input


def _x(shape=(4, 3)):  # type: ignore[no-untyped-def]
    return make_input(shape, "float64", "x")


def test_a_chain_fuses_into_its_last_statement() -> None:
    x = _x()
    a = apply("exp", (x,))
    b = apply("mul", (a, a))
    c = apply("tanh", (b,))
    groups = fusion_groups([a, b, c], {id(c)})
    assert groups == {id(c): [a, b]}


def test_results_and_values_read_elsewhere_are_not_fused() -> None:
    x = _x()
    a = apply("exp", (x,))
    b = apply("neg", (a,))
    s = apply("sum", (a,), {"axis": (0, 1), "keepdims": False})  # a is read by a reduction
    assert fusion_groups([a, b, s], {id(b), id(s)}) == {}
    c = apply("tanh", (x,))
    d = apply("neg", (c,))
    assert fusion_groups([c, d], {id(c), id(d)}) == {}  # c is a result: stored


def test_a_value_of_another_shape_is_not_fused() -> None:
    x, v = _x(), make_input((3,), "float64", "v")
    a = apply("exp", (v,))  # (3,), broadcast into the (4, 3) loop: computed once, stored
    b = apply("mul", (x, a))
    assert fusion_groups([a, b], {id(b)}) == {}


@pytest.mark.cc
def test_fused_code_keeps_one_named_line_per_statement(c_backend_ready: None) -> None:
    def f(x):  # type: ignore[no-untyped-def]
        return ((x * 2.0).exp() + 1.0).tanh().sum()

    fn = sg.compile(f, sg.Spec((5,)), backend="c")
    src = fn.source("forward")
    assert re.search(r"const double t\d+ = x\[_i\] \* 2\.0;", src)
    assert re.search(r"const double t\d+ = exp\(t\d+\);", src)
    for label in ("mul", "exp", "add", "tanh"):  # every fused statement keeps its comment
        assert re.search(rf"/\* t\d+: {label}  test_c_fusion\.py:\d+", src)
    x = np.linspace(-1, 1, 5)
    assert np.isclose(float(fn(x)), np.tanh(np.exp(2 * x) + 1).sum(), rtol=1e-14)


_UNARY = ["exp", "tanh", "neg", "sigmoid", "relu", "abs", "log"]
_BINARY = ["add", "mul", "sub", "maximum", "minimum"]


@st.composite
def _dags(draw):  # type: ignore[no-untyped-def]
    """A random DAG of elementwise ops over two (3, 4) inputs and a (4,) one (broadcast)."""
    n = draw(st.integers(2, 10))
    steps = []
    for k in range(n):
        if draw(st.booleans()):
            steps.append(("u", draw(st.sampled_from(_UNARY)), draw(st.integers(0, k + 2))))
        else:
            op = draw(st.sampled_from(_BINARY))
            steps.append(("b", op, draw(st.integers(0, k + 2)), draw(st.integers(0, k + 2))))
    n_out = draw(st.integers(1, 3))
    return steps, n_out


def _build(steps, n_out, inputs):  # type: ignore[no-untyped-def]
    vals: list[Node] = list(inputs)
    for s in steps:
        if s[0] == "u":
            vals.append(apply(s[1], (vals[s[2]],)))
        else:
            vals.append(apply(s[1], (vals[s[2]], vals[s[3]])))
    return vals[-n_out:]


@pytest.mark.cc
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(_dags())
def test_fused_dags_match_the_interpreter(c_backend_ready: None, dag) -> None:  # type: ignore[no-untyped-def]
    steps, n_out = dag

    def f(a, b, v):  # type: ignore[no-untyped-def]
        outs = _build(steps, n_out, [a.node, b.node, v.node])
        return tuple(sg.Tensor._wrap(o, None, (), False) for o in outs)

    rng = np.random.default_rng(0)
    args = [rng.standard_normal((3, 4)), rng.standard_normal((3, 4)), rng.standard_normal(4)]
    fn = sg.compile(f, *args, backend="c")
    got = fn(*args)
    got = got if isinstance(got, tuple) else (got,)
    g = fn.graph
    want = evaluate(g.outputs, dict(zip(g.inputs, args, strict=True)))
    for w, o in zip(want, got, strict=True):
        # libm's exp/log/tanh and NumPy's differ in the last bit, and a chain of ops can
        # amplify that (x - y of close values); a wrong fusion is off by far more
        w = np.asarray(w)
        scale = float(np.abs(w[np.isfinite(w)]).max(initial=1.0))
        np.testing.assert_allclose(o, w, rtol=1e-11, atol=1e-12 * scale)
