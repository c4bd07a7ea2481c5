"""Eager ``backward()`` runs generated code, compiled once per graph structure."""

from __future__ import annotations

import random
from collections.abc import Iterator

import numpy as np
import pytest

import symgrad as sg
from symgrad.frontend import backward as bw
from symgrad.runtime import eager


@pytest.fixture(autouse=True)
def _fresh(tmp_path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("SYMGRAD_BACKEND", "numpy")
    saved = dict(eager._MEMO)
    eager._MEMO.clear()
    yield
    eager._MEMO.clear()
    eager._MEMO.update(saved)


def _moons_like_step(model: sg.nn.MLP, X: np.ndarray, y: np.ndarray) -> sg.Value:
    inputs = [list(map(sg.Value, row)) for row in X.tolist()]
    scores = list(map(model, inputs))
    losses = [(1 + -yi * si).relu() for yi, si in zip(y.tolist(), scores, strict=True)]
    total = sum(losses) * (1.0 / len(losses)) + 1e-4 * sum(p * p for p in model.parameters())
    model.zero_grad()
    total.backward()
    return total


def test_training_loop_compiles_once_and_matches_the_interpreter() -> None:
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((6, 2)), np.sign(rng.standard_normal(6))
    random.seed(3)
    model = sg.nn.MLP(2, [4, 1])
    for _ in range(3):
        _moons_like_step(model, X, y)
        got = [p.grad for p in model.parameters()]
        bw.set_executor(None)  # the same step on the reference interpreter
        try:
            _moons_like_step(model, X, y)
        finally:
            bw.set_executor(sg._eager_executor)
        want = [p.grad for p in model.parameters()]
        np.testing.assert_allclose(got, want, rtol=1e-12)
        for p in model.parameters():
            p.data -= 0.1 * p.grad
    assert len(eager._MEMO) == 1  # three steps, one structure, one module


def test_intermediate_values_get_gradients_from_generated_code() -> None:
    a, b = sg.Value(2.0), sg.Value(-3.0)
    c = a * b
    d = c.tanh() + a
    d.backward()
    t = np.tanh(-6.0)
    assert c.grad == pytest.approx(1 - t * t, rel=1e-12)
    assert a.grad == pytest.approx((1 - t * t) * -3.0 + 1.0, rel=1e-12)
    assert len(eager._MEMO) == 1


def test_tensor_backward_uses_generated_code_with_an_explicit_gradient() -> None:
    W = sg.Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    out = (W * 2.0).tanh()
    g = np.ones((2, 3))
    out.backward(g)
    np.testing.assert_allclose(W.grad, 2.0 * (1 - np.tanh(2.0 * W.data) ** 2), rtol=1e-12)
    assert len(eager._MEMO) == 1


def test_large_graphs_use_numpy_even_when_c_is_available(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYMGRAD_BACKEND", "c")
    monkeypatch.setenv("SYMGRAD_EAGER_C_MAX_NODES", "10")
    assert eager.choose_backend(11) == "numpy"


@pytest.mark.cc
def test_value_backward_runs_compiled_c_and_reuses_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from symgrad.runtime.cc import compiler_available

    if not compiler_available():
        pytest.skip("no working C compiler")
    monkeypatch.setenv("SYMGRAD_BACKEND", "c")
    for step in range(3):
        a, b = sg.Value(1.5 + step), sg.Value(-0.5)
        c = (a * b).tanh() * a
        c.backward()
        t = np.tanh(a.data * b.data)
        assert a.grad == pytest.approx((1 - t * t) * b.data * a.data + t, rel=1e-12)
    assert len(eager._MEMO) == 1
    ((_, backend),) = eager._MEMO.keys()
    assert backend == "c"
