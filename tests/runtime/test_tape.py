"""Eager ``Value.backward()`` on the tape: the generated C module and the Python rules agree
with differentiating the materialised graph, on random programs, special values and a moons
training step; the tape falls back to the graph path when it meets something else."""

from __future__ import annotations

import gc
import math
import random
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import symgrad as sg
from symgrad.frontend import value as value_mod
from symgrad.runtime import tape
from symgrad.runtime.cc import compiler_available

BACKENDS = [pytest.param("c", marks=pytest.mark.cc), "numpy"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "c" and not compiler_available():
        pytest.skip("no working C compiler")
    monkeypatch.setenv("SYMGRAD_BACKEND", request.param)
    return str(request.param)


def _graph_path() -> Iterator[None]:
    """Differentiate the materialised node graph instead of running the tape."""
    value_mod.set_tape_runner(None)
    try:
        yield
    finally:
        value_mod.set_tape_runner(sg._tape_runner)


def _grads_both_ways(build: Callable[[], tuple[sg.Value, list[sg.Value]]]) -> tuple[list, list]:
    out, leaves = build()
    out.backward()
    got = [v.grad for v in leaves]
    out, leaves = build()
    gen = _graph_path()
    next(gen)
    try:
        out.backward()
    finally:
        next(gen, None)
    return got, [v.grad for v in leaves]


def _close(got: list[float], want: list[float]) -> None:
    for g, w in zip(got, want, strict=True):
        assert isinstance(g, float)
        if math.isnan(w):
            assert math.isnan(g)
        else:
            assert g == pytest.approx(w, rel=1e-12, abs=1e-300)


# -- random programs ---------------------------------------------------------------------------
UNARY = ["exp", "log", "tanh", "sigmoid", "relu", "sqrt", "abs", "__neg__"]
BINARY = ["+", "-", "*", "/", "**"]


def _apply(op: str, x: object, y: object) -> object:
    return {
        "+": lambda: x + y,  # type: ignore[operator]
        "-": lambda: x - y,  # type: ignore[operator]
        "*": lambda: x * y,  # type: ignore[operator]
        "/": lambda: x / y,  # type: ignore[operator]
        "**": lambda: x**y,  # type: ignore[operator]
    }[op]()


program = st.lists(
    st.tuples(
        st.sampled_from(UNARY + BINARY),
        st.integers(0, 50),
        st.integers(0, 50),
        st.sampled_from(["vv", "vk", "kv"]),
        st.sampled_from([0.5, 2, -1.5, 3.0]),
    ),
    min_size=1,
    max_size=25,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(prog=program, xs=st.lists(st.floats(0.2, 2.0), min_size=3, max_size=3))
def test_random_programs_match_the_graph_path(backend: str, prog: list, xs: list) -> None:
    def build() -> tuple[sg.Value, list[sg.Value]]:
        leaves = [sg.Value(x) for x in xs]
        vals: list[sg.Value] = list(leaves)
        for op, i, j, form, k in prog:
            a, b = vals[i % len(vals)], vals[j % len(vals)]
            if op in UNARY:
                r = getattr(a, op)()
            elif form == "vv":
                r = _apply(op, a, b)
            elif form == "vk":
                r = _apply(op, a, k)
            else:
                r = _apply(op, k, a)
            vals.append(r.tanh() if abs(r.data) > 1e6 else r)  # keep values finite and moderate
        out = sum(vals[len(leaves) :], sg.Value(0.0))
        return out, leaves

    got, want = _grads_both_ways(build)
    _close(got, want)


@pytest.mark.parametrize(
    "expr",
    [
        lambda x: x / 0.0,
        lambda x: (x * 0.0).log(),
        lambda x: (x * 0.0).relu(),
        lambda x: (x * 0.0).sqrt(),
        lambda x: (x * 0.0) ** 0,
        lambda x: (x * 0.0) ** 2,
        lambda x: (x * 0.0) ** 0.5,
        lambda x: (-x) ** 0.5,
        lambda x: (x * 1000.0).exp(),
        lambda x: 0.0 / (x * 0.0),
        lambda x: (x * 0.0).abs(),
    ],
)
def test_special_values_match_the_graph_path(backend: str, expr: Callable) -> None:
    def build() -> tuple[sg.Value, list[sg.Value]]:
        x = sg.Value(1.0)
        return expr(x), [x]

    with np.errstate(all="ignore"):
        got, want = _grads_both_ways(build)
    _close(got, want)


def test_moons_training_matches_the_graph_path(backend: str) -> None:
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((8, 2)), np.sign(rng.standard_normal(8))

    def step(model: sg.nn.MLP) -> float:
        inputs = [list(map(sg.Value, row)) for row in X.tolist()]
        scores = list(map(model, inputs))
        losses = [(1 + -yi * si).relu() for yi, si in zip(y.tolist(), scores, strict=True)]
        total = sum(losses) * (1.0 / len(losses)) + 1e-4 * sum(p * p for p in model.parameters())
        model.zero_grad()
        total.backward()
        for p in model.parameters():
            p.data -= 0.1 * p.grad
        return total.data

    random.seed(3)
    a = sg.nn.MLP(2, [4, 4, 1])
    random.seed(3)
    b = sg.nn.MLP(2, [4, 4, 1])
    gen = _graph_path()
    for _ in range(3):
        la = step(a)
        next(gen)
        lb = step(b)
        next(gen, None)
        gen = _graph_path()
        assert la == pytest.approx(lb, rel=1e-12)
        _close([p.data for p in a.parameters()], [p.data for p in b.parameters()])


def test_every_value_gets_its_gradient_and_gradients_accumulate(backend: str) -> None:
    a, b = sg.Value(2.0), sg.Value(-3.0)
    c = a * b
    d = c.tanh() + a
    d.backward()
    t = math.tanh(-6.0)
    assert (d.grad, c.grad) == (1.0, pytest.approx(1 - t * t, rel=1e-12))
    assert a.grad == pytest.approx((1 - t * t) * -3.0 + 1.0, rel=1e-12)
    first = a.grad
    d.backward()
    assert a.grad == pytest.approx(2 * first, rel=1e-12)
    a.grad = 0  # an int, as a user may reset it
    (a * a).backward()
    assert a.grad == 4.0 and isinstance(a.grad, float)


def test_a_value_used_twice_and_a_deep_chain(backend: str) -> None:
    x = sg.Value(0.5)
    s = x
    for _ in range(100_000):  # no recursion anywhere: the walk and the sweep are iterative
        s = s * 1.0 + x * 0.0
    (s * s).backward()
    assert x.grad == pytest.approx(1.0, rel=1e-12)


def test_results_from_before_a_data_update_keep_their_gradients(backend: str) -> None:
    x = sg.Value(1.0)
    y1 = x * x  # d/dx = 2 at x = 1
    x.data = 5.0
    y2 = x * 3.0
    (y1 + y2).backward()
    # like micrograd, the tape reads a leaf's data when backward() runs: 2 * 5 + 3
    assert x.grad == 13.0
    assert (y1.data, y2.data) == (1.0, 15.0)


@pytest.mark.cc
def test_the_c_module_refuses_what_is_not_a_tape(monkeypatch: pytest.MonkeyPatch) -> None:
    if not compiler_available():
        pytest.skip("no working C compiler")
    mod = tape.module("c")
    assert mod.backward(object(), 1.0) is NotImplemented
    assert mod.backward(sg.Tensor(np.ones(2)), 1.0) is NotImplemented
    with pytest.raises(TypeError):
        mod.backward(sg.Value(1.0))
    # a Value mixed with a tensor is a traced Value: the graph path gives its gradient
    t = sg.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    v = sg.Value(3.0)
    out = v * t[1]
    out.backward()
    assert (v.grad, list(t.grad)) == (2.0, [0.0, 3.0])


@pytest.mark.cc
def test_eager_values_are_left_to_reference_counting() -> None:
    if not compiler_available():
        pytest.skip("no working C compiler")
    tape.module("c")  # installs untrack
    v = sg.Value(1.0) * 2.0
    assert not gc.is_tracked(v)
    assert gc.is_tracked(sg.Tensor(np.ones(2)))


def test_a_failing_c_build_falls_back_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without SYMGRAD_BACKEND, a C tape module that does not build gives one warning and the
    Python rules from then on: no compiler probe or rebuild per backward()."""
    from symgrad.runtime import modules
    from symgrad.runtime.cc import CompileError

    attempts = []

    def broken() -> None:
        attempts.append(1)
        raise CompileError("no luck", ["cc"])

    monkeypatch.delenv("SYMGRAD_BACKEND", raising=False)
    monkeypatch.setattr(tape, "_chosen", {})
    monkeypatch.setattr(tape, "_loaded", {k: v for k, v in tape._loaded.items() if k != "c"})
    monkeypatch.setattr(tape, "_build_c", broken)
    monkeypatch.setattr(modules, "resolve_backend", lambda explicit: "c")
    x = sg.Value(3.0)
    with pytest.warns(RuntimeWarning, match="Python rules"):
        (x * x).backward()
    (x * 2.0).backward()
    assert x.grad == 8.0 and len(attempts) == 1
