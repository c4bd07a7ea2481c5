"""Eager training loops compile once (issue 16): ``loss.backward()`` on a new minibatch every
step reuses the code of the first step. The minibatch's arrays (``C[Xb]``, ``cross_entropy(logits,
Yb)``, a fresh ``Tensor(Xb)``, a causal mask) are inputs of the generated code, never part of its
key: after the first step no cache entry is written, the compiler never runs and the in-process
tables do not grow. Gradients agree with the reference interpreter at every step and with
central differences. A new shape or a new structure compiles once.

Three makemore-style models, small: the MLP (embedding, tanh layer, cross-entropy), the same
with a hand-written BatchNorm (makemore part 3), and a one-head causal self-attention block.
Not timed (benchmarks/eager.py measures the speed).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import symgrad as sg
from symgrad.autodiff.vjp import grad
from symgrad.frontend.backward import collect
from symgrad.ir.graph import evaluate
from symgrad.lower import eager
from symgrad.runtime import cache, cc
from tests.conftest import directional_derivative
from tests.lower.conftest import BACKENDS

V, BLOCK, EMB, HID, T, HEAD = 27, 3, 4, 16, 5, 6
STEPS = 6  # steps after the first one


@pytest.fixture(autouse=True)
def _fresh(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path / "cache"))
    eager.clear()
    yield
    eager.clear()


@pytest.fixture
def compiler_runs(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Every compiler command run from now on (C builds, and probes such as ``cc --version``)."""
    runs: list[list[str]] = []
    real = cc.subprocess.run

    def counting(argv: Any, *args: Any, **kwargs: Any) -> Any:
        runs.append(list(argv))
        return real(argv, *args, **kwargs)

    monkeypatch.setattr(cc.subprocess, "run", counting)
    return runs


# -- the models ---------------------------------------------------------------------------------
Model = Callable[[list[sg.Tensor], np.ndarray, np.ndarray], sg.Tensor]


def mlp(P: list[sg.Tensor], Xb: np.ndarray, Yb: np.ndarray) -> sg.Tensor:
    C, W1, b1, W2, b2 = P
    emb = C[Xb]  # the batch's index array, as the user has it
    h = (emb.reshape(Xb.shape[0], BLOCK * EMB) @ W1 + b1).tanh()
    logits = h @ W2 + b2
    return sg.cross_entropy(logits, Yb)


def batchnorm_mlp(P: list[sg.Tensor], Xb: np.ndarray, Yb: np.ndarray) -> sg.Tensor:
    C, W1, gain, bias, W2, b2 = P
    emb = C[sg.Tensor(Xb)]  # a fresh Tensor leaf every step
    hpre = emb.reshape(Xb.shape[0], BLOCK * EMB) @ W1
    mean = hpre.mean(0, keepdims=True)
    var = ((hpre - mean) ** 2).mean(0, keepdims=True)
    h = (gain * (hpre - mean) / (var + 1e-5).sqrt() + bias).tanh()
    return sg.cross_entropy(h @ W2 + b2, sg.Tensor(Yb))


def attention(P: list[sg.Tensor], Xb: np.ndarray, Yb: np.ndarray) -> sg.Tensor:
    wte, wpe, Wq, Wk, Wv, Wo, Wh = P
    B, n = Xb.shape
    x = wte[Xb] + wpe[np.arange(n)]
    q, k, v = x @ Wq, x @ Wk, x @ Wv
    att = (q @ k.transpose(0, 2, 1)) * (1.0 / np.sqrt(HEAD))
    causal = np.tril(np.ones((n, n), dtype=bool))
    att = sg.softmax(sg.where(causal, att, -np.inf), axis=-1)
    x = x + (att @ v) @ Wo
    logits = x @ Wh
    return sg.cross_entropy(logits.reshape(B * n, V), Yb.reshape(B * n))


def _params(model: Model, rng: np.random.Generator) -> list[sg.Tensor]:
    shapes = {
        mlp: [(V, EMB), (BLOCK * EMB, HID), (HID,), (HID, V), (V,)],
        batchnorm_mlp: [(V, EMB), (BLOCK * EMB, HID), (1, HID), (1, HID), (HID, V), (V,)],
        attention: [(V, HEAD), (T, HEAD), *[(HEAD, HEAD)] * 4, (HEAD, V)],
    }[model]
    out = [sg.Tensor(0.5 * rng.standard_normal(s), requires_grad=True) for s in shapes]
    if model is batchnorm_mlp:
        out[2].data = np.ones((1, HID))
        out[3].data = np.zeros((1, HID))
    return out


def _batch(model: Model, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    if model is attention:
        return rng.integers(0, V, (n, T)), rng.integers(0, V, (n, T))
    return rng.integers(0, V, (n, BLOCK)), rng.integers(0, V, n)


def _interpreted(loss: sg.Tensor, P: list[sg.Tensor]) -> list[np.ndarray]:
    """The gradients of ``loss`` by the reference interpreter (no generated code)."""
    env: dict[Any, Any] = {}
    for t in collect(loss):
        env[t.node] = t.data
        env.update((n, d) for n, d in t._pin if d is not None)
    values = evaluate(grad(loss.node, [p.node for p in P]), env)
    assert isinstance(values, list)
    return values


def _step(model: Model, P: list[sg.Tensor], Xb: np.ndarray, Yb: np.ndarray) -> float:
    """One training step, checked against the interpreter; returns the loss."""
    loss = model(P, Xb, Yb)
    want = _interpreted(loss, P)
    for p in P:
        p.grad = None
    loss.backward()
    for p, w in zip(P, want, strict=True):
        np.testing.assert_allclose(p.grad, w, rtol=1e-9, atol=1e-12)
    for p in P:
        p.data += -0.1 * p.grad
    return loss.item()


MODELS = [mlp, batchnorm_mlp, attention]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_new_minibatches_compile_nothing_after_the_first_step(
    model: Model,
    backend: str,
    monkeypatch: pytest.MonkeyPatch,
    compiler_runs: list[list[str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("SYMGRAD_BACKEND", backend)
    rng = np.random.default_rng(16)
    P = _params(model, rng)
    with caplog.at_level(logging.INFO, logger="symgrad.runtime"):
        _step(model, P, *_batch(model, rng, 8))
    first = sg.eager_stats()
    assert first.compiles == 1 and first.backward_plans == 1, first
    assert [r.getMessage() for r in caplog.records if "eager backward" in r.getMessage()] == [
        caplog.records[-1].getMessage()
    ]
    assert "(first eager backward pass)" in caplog.records[-1].getMessage()
    entries = cache.info()["entries"]
    runs = len(compiler_runs)
    caplog.clear()

    with caplog.at_level(logging.INFO, logger="symgrad.runtime"):
        losses = [_step(model, P, *_batch(model, rng, 8)) for _ in range(STEPS)]

    after = sg.eager_stats()
    assert cache.info()["entries"] == entries  # no new cache entry
    assert len(compiler_runs) == runs  # the compiler never ran (not even a probe)
    assert after.compiles == first.compiles and after.cache_loads == first.cache_loads
    assert after.plan_hits == first.plan_hits + STEPS
    assert after.backward_plans == 1 and after.plans_cached == 1 and after.modules_cached == 1
    assert not [r for r in caplog.records if "compiled" in r.getMessage()]
    assert np.all(np.isfinite(losses))


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_gradients_agree_with_central_differences(model: Model) -> None:
    rng = np.random.default_rng(3)
    P = _params(model, rng)
    Xb, Yb = _batch(model, rng, 4)
    model(P, Xb, Yb).backward()  # the first step prepares the plan; the second one uses it
    for p in P:
        p.grad = None
    model(P, Xb, Yb).backward()
    assert sg.eager_stats().plan_hits == 1
    arrays = [p.data.copy() for p in P]

    def f(*xs: np.ndarray) -> float:
        return model([sg.Tensor(x) for x in xs], Xb, Yb).item()

    for _ in range(3):
        dirs = [rng.standard_normal(a.shape) for a in arrays]
        want = directional_derivative(f, arrays, dirs)
        got = sum(float(np.sum(p.grad * d)) for p, d in zip(P, dirs, strict=True))
        assert got == pytest.approx(want, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_new_shape_compiles_once(
    backend: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("SYMGRAD_BACKEND", backend)
    rng = np.random.default_rng(5)
    P = _params(mlp, rng)
    _step(mlp, P, *_batch(mlp, rng, 8))
    _step(mlp, P, *_batch(mlp, rng, 8))
    assert sg.eager_stats().compiles == 1
    with caplog.at_level(logging.INFO, logger="symgrad.runtime"):
        _step(mlp, P, *_batch(mlp, rng, 5))  # the last, shorter batch of an epoch
    assert sg.eager_stats().compiles == 2
    assert "(new shapes)" in caplog.records[-1].getMessage()
    entries = cache.info()["entries"]
    for n in (5, 8, 5, 8):
        _step(mlp, P, *_batch(mlp, rng, n))
    stats = sg.eager_stats()
    assert stats.compiles == 2 and stats.plans_cached == 2 and cache.info()["entries"] == entries


def test_a_new_structure_compiles_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(6)
    P = _params(mlp, rng)
    _step(mlp, P, *_batch(mlp, rng, 8))

    def relu_mlp(P: list[sg.Tensor], Xb: np.ndarray, Yb: np.ndarray) -> sg.Tensor:
        C, W1, b1, W2, b2 = P
        h = (C[Xb].reshape(Xb.shape[0], BLOCK * EMB) @ W1 + b1).relu()
        return sg.cross_entropy(h @ W2 + b2, Yb)

    with caplog.at_level(logging.INFO, logger="symgrad.runtime"):
        _step(relu_mlp, P, *_batch(mlp, rng, 8))
    assert sg.eager_stats().compiles == 2
    assert "(new structure)" in caplog.records[-1].getMessage()


def test_literal_scalars_are_part_of_the_structure() -> None:
    """A scalar written in the model is a constant of the code (0.5 and 0.25 are two
    structures, and -0.0 is not 0.0); arrays are inputs whatever their values."""
    x = sg.Tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    for k in (0.5, 0.25, 0.5, -0.0, 0.0):
        x.grad = None
        (x * k).tanh().sum().backward()
        np.testing.assert_allclose(x.grad, k * (1 - np.tanh(k * x.data) ** 2))
    assert sg.eager_stats().backward_plans == 4
    for _ in range(3):
        x.grad = None
        m = np.random.default_rng().standard_normal(3)
        (x * m).tanh().sum().backward()
        np.testing.assert_allclose(x.grad, m * (1 - np.tanh(m * x.data) ** 2))
    assert sg.eager_stats().backward_plans == 5


def test_the_step_uses_the_batch_as_it_was_at_the_forward_pass() -> None:
    rng = np.random.default_rng(7)
    P = _params(mlp, rng)
    Xb, Yb = _batch(mlp, rng, 8)
    mlp(P, Xb, Yb).backward()
    for p in P:
        p.grad = None
    loss = mlp(P, Xb, Yb)
    want = _interpreted(loss, P)
    Xb[:] = 0  # the user reuses the buffer before backward()
    Yb[:] = 0
    loss.backward()
    assert sg.eager_stats().plan_hits == 1
    for p, w in zip(P, want, strict=True):
        np.testing.assert_allclose(p.grad, w, rtol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_minibatches_fail_clearly_and_leave_the_plan_intact(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYMGRAD_BACKEND", backend)
    rng = np.random.default_rng(8)
    P = _params(mlp, rng)
    Xb, Yb = _batch(mlp, rng, 8)
    _step(mlp, P, Xb, Yb)
    with pytest.raises(sg.IndexRangeError, match="out of range"):
        mlp(P, Xb + V, Yb)  # the forward pass checks the indices at the line that uses them
    with pytest.raises(sg.IndexRangeError, match="out of range"):
        mlp(P, Xb, Yb + V)
    with pytest.raises(sg.DTypeError, match="integers"):
        mlp(P, Xb.astype(np.float64), Yb)
    with pytest.raises(sg.ShapeError):
        mlp(P, Xb[:, :2], Yb)
    _step(mlp, P, Xb - V, Yb)  # negative indices count from the end, as in NumPy
    assert sg.eager_stats().compiles == 1


def test_an_explicit_gradient_is_an_input_too() -> None:
    x = sg.Tensor(np.array([[0.5, -1.0], [2.0, 0.0]]), requires_grad=True)
    for g in (np.ones((2, 2)), np.array([[1.0, -2.0], [3.0, 0.5]]), np.zeros((2, 2))):
        x.grad = None
        (x * 3.0).tanh().backward(g)
        np.testing.assert_allclose(x.grad, g * 3.0 * (1 - np.tanh(3.0 * x.data) ** 2))
    stats = sg.eager_stats()
    assert stats.backward_plans == 1 and stats.plan_hits == 2


def test_the_in_process_tables_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from symgrad.frontend.backward_plan import PLANS

    monkeypatch.setattr(PLANS, "limit", 3)
    monkeypatch.setattr(eager, "MAX_MODULES", 3)
    x = sg.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    for k in range(8):  # eight structures (the literal differs)
        x.grad = None
        (x * float(k + 1)).tanh().sum().backward()
        np.testing.assert_allclose(x.grad, (k + 1) * (1 - np.tanh((k + 1) * x.data) ** 2))
    stats = sg.eager_stats()
    assert stats.backward_plans == 8 and stats.plans_cached == 3 and stats.modules_cached == 3
