"""Scalar-graph compaction (backends.compact): micrograd-style graphs of thousands of scalar
statements are printed as vector statements over index tables, on both backends, computing
exactly what the straight-line code computes; small graphs stay straight-line."""

from __future__ import annotations

import random

import numpy as np
import pytest

import symgrad as sg
from symgrad.codegen import compact
from symgrad.codegen.schedule import schedule
from symgrad.ir.graph import Graph
from symgrad.ir.opdef import apply
from symgrad.ops.source import make_input

BACKENDS = ["numpy", pytest.param("c", marks=pytest.mark.cc)]
MARK = "scalar statements as"


def _need(backend: str) -> None:
    if backend == "c":
        from symgrad.runtime.cc import compiler_available

        if not compiler_available():
            pytest.skip("no working C compiler")


def _moons_step(n: int, backend: str):  # type: ignore[no-untyped-def]
    """micrograd's demo model and loss written with Values, compiled as one training step at
    opt=1: the scalar graph as traced (at opt=2 it is re-rolled into tensor code and packed,
    tests/passes/test_pack.py)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, 2))
    y = np.where(rng.random(n) > 0.5, 1.0, -1.0)
    random.seed(0)
    model = sg.nn.MLP(2, [4, 4, 1])

    def loss(X, y):  # type: ignore[no-untyped-def]
        scores = [model([X[i, 0], X[i, 1]]) for i in range(X.shape[0])]
        losses = [(1 + -y[i] * s).relu() for i, s in enumerate(scores)]
        reg = 1e-4 * sum(p * p for p in model.parameters())
        return sum(losses) * (1.0 / len(losses)) + reg

    opt = sg.optim.SGD(model.parameters(), lr=0.1)
    step = sg.compile_step(loss, X, y, optimizer=opt, backend=backend, opt=1)
    return step, model, X, y


@pytest.mark.parametrize("backend", BACKENDS)
def test_compacted_step_matches_straight_line_code(backend: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _need(backend)
    runs = {}
    for threshold in (10**9, 50):  # never compacted, then compacted
        monkeypatch.setattr(compact, "THRESHOLD", threshold)
        step, model, X, y = _moons_step(6, backend)
        losses = [step(X, y) for _ in range(4)]
        runs[threshold] = (losses, [p.data for p in model.parameters()], step.source())
    (l1, p1, s1), (l2, p2, s2) = runs[10**9], runs[50]
    assert MARK not in s1 and MARK in s2
    assert l2[-1] < l2[0]
    np.testing.assert_allclose(l2, l1, rtol=1e-13)
    np.testing.assert_allclose(p2, p1, rtol=1e-12, atol=1e-15)
    assert len(s2) < len(s1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_compacted_gradients_of_every_input(backend: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A differentiated function (forward and backward both compacted) against eager Values."""
    _need(backend)
    monkeypatch.setattr(compact, "THRESHOLD", 20)

    def f(a, b, c):  # type: ignore[no-untyped-def]
        out = a
        for k in range(12):
            out = (out * b + c).tanh() + (a - k * 0.1).relu() * (c.exp() / (1 + b * b))
        return out

    fn = sg.compile(f, sg.Spec(()), sg.Spec(()), sg.Spec(()), wrt=[0, 1, 2], backend=backend)
    assert MARK in fn.source("forward") and MARK in fn.source("backward")
    args = (0.3, -0.7, 0.2)
    out, grads = fn(*(np.float64(v) for v in args))
    vals = [sg.Value(v) for v in args]
    ref = f(*vals)
    ref.backward()
    assert float(out) == pytest.approx(ref.data, rel=1e-13)
    np.testing.assert_allclose([float(g) for g in grads], [v.grad for v in vals], rtol=1e-12)


def test_the_lecture_neuron_stays_straight_line() -> None:
    def neuron(x1, x2, w1, w2, b):  # type: ignore[no-untyped-def]
        return (x1 * w1 + x2 * w2 + b).tanh()

    fn = sg.compile(neuron, *[sg.Spec(())] * 5, wrt=[2, 3, 4], backend="numpy")
    assert MARK not in fn.source()


def test_groups_are_ops_at_one_depth_and_elements_are_read_in_place() -> None:
    x = make_input((3,), "float64", "x")
    picks = [
        apply("reshape", (apply("slice", (x,), {"index": ((k, k + 1, 1),)}),), {"shape": ()})
        for k in range(3)
    ]
    a = [apply("exp", (p,)) for p in picks]  # level 1: one exp group of 3
    b = [apply("mul", (u, u)) for u in a]  # level 2: one mul group of 3
    total = apply("add", (apply("add", (b[0], b[1])), b[2]))
    prog = schedule(Graph([x], [total], ["x"]))
    fn = prog.forward
    region = compact.compact(prog, fn, threshold=1) if fn.region is None else fn.region
    assert region is not None
    assert [(g.node.op, g.level, g.count) for g in region.groups] == [
        ("exp", 1, 3),
        ("mul", 2, 3),
        ("add", 3, 1),
        ("add", 4, 1),
    ]
    assert [(e.array, e.count) for e in region.picks] == [(x, 3)]
    assert fn.stmts == []  # the slices were replaced by reads from x


def test_a_region_that_would_need_a_later_statement_is_not_made() -> None:
    x = make_input((), "float64", "x")
    y = apply("exp", (x,))
    z = apply("sum", (apply("reshape", (y,), {"shape": (1,)}),), {"axis": (0,), "keepdims": False})
    w = apply("mul", (z, y))  # reads a statement that reads the region
    prog = schedule(Graph([x], [w], ["x"]))
    assert compact.compact(prog, prog.forward, threshold=1) is None
