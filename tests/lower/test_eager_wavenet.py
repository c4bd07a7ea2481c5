"""The WaveNet of makemore part 5 trains eagerly without recompiling (issues 16 and 17): after
the first ``loss.backward()`` a new minibatch every step writes no cache entry and runs no
compiler, and the gradients agree with the reference interpreter at every step and with central
differences. The model flattens consecutive pairs with ``x.view(B, T // 2, C * 2)`` (sizes
computed from the concrete shape), squeezes the time dim when it reaches 1, and batch-normalises
over batch and time. Not timed (benchmarks/eager.py measures the speed).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest

import symgrad as sg
from symgrad.runtime import cache
from tests.conftest import directional_derivative
from tests.lower.conftest import BACKENDS
from tests.lower.test_eager_keying import _fresh, _step, compiler_runs  # noqa: F401 (fixtures)

V, BLOCK, EMB, HID, LEVELS = 27, 8, 4, 6, 3
STEPS = 6  # steps after the first one


def wavenet(P: list[sg.Tensor], Xb: np.ndarray, Yb: np.ndarray) -> sg.Tensor:
    x = P[0][sg.tensor(Xb)]
    for level in range(LEVELS):
        W, gamma, beta = P[1 + 3 * level : 4 + 3 * level]
        B, T, C = x.shape
        x = x.view(B, T // 2, C * 2)
        if x.shape[1] == 1:
            x = x.squeeze(1)
        x = x @ W
        dim = 0 if x.ndim == 2 else (0, 1)
        mean = x.mean(dim, keepdim=True)
        var = x.var(dim, keepdim=True)
        x = sg.tanh(gamma * (x - mean) / sg.sqrt(var + 1e-5) + beta)
    return sg.nn.functional.cross_entropy(x @ P[-2] + P[-1], sg.tensor(Yb))


def _params(rng: np.random.Generator) -> list[sg.Tensor]:
    shapes = [(V, EMB)]
    fan = 2 * EMB
    for _ in range(LEVELS):
        shapes += [(fan, HID), (HID,), (HID,)]
        fan = 2 * HID
    shapes += [(HID, V), (V,)]
    P = [sg.Tensor(0.5 * rng.standard_normal(s), requires_grad=True) for s in shapes]
    for level in range(LEVELS):
        P[2 + 3 * level].data = 1.0 + 0.1 * rng.standard_normal(HID)
    return P


def _batch(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    return rng.integers(0, V, (n, BLOCK)), rng.integers(0, V, n)


@pytest.mark.parametrize("backend", BACKENDS)
def test_new_minibatches_compile_nothing_after_the_first_step(
    backend: str,
    monkeypatch: pytest.MonkeyPatch,
    compiler_runs: list[list[str]],  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("SYMGRAD_BACKEND", backend)
    rng = np.random.default_rng(17)
    P = _params(rng)
    _step(wavenet, P, *_batch(rng, 8))
    first = sg.eager_stats()
    assert first.compiles == 1 and first.backward_plans == 1, first
    entries, runs = cache.info()["entries"], len(compiler_runs)

    with caplog.at_level(logging.INFO, logger="symgrad.runtime"):
        losses = [_step(wavenet, P, *_batch(rng, 8)) for _ in range(STEPS)]

    after = sg.eager_stats()
    assert cache.info()["entries"] == entries  # no new cache entry
    assert len(compiler_runs) == runs  # the compiler never ran
    assert after.compiles == 1 and after.plan_hits == first.plan_hits + STEPS
    assert after.backward_plans == 1 and after.plans_cached == 1
    assert not [r for r in caplog.records if "compiled" in r.getMessage()]
    assert np.all(np.isfinite(losses))


def test_gradients_agree_with_central_differences() -> None:
    rng = np.random.default_rng(3)
    P = _params(rng)
    Xb, Yb = _batch(rng, 4)
    wavenet(P, Xb, Yb).backward()
    for p in P:
        p.grad = None
    wavenet(P, Xb, Yb).backward()  # through the cached plan
    assert sg.eager_stats().plan_hits == 1
    arrays = [p.data.copy() for p in P]

    def f(*xs: np.ndarray) -> float:
        return wavenet([sg.Tensor(x) for x in xs], Xb, Yb).item()

    for _ in range(3):
        dirs = [rng.standard_normal(a.shape) for a in arrays]
        want = directional_derivative(f, arrays, dirs)
        got = sum(float(np.sum(p.grad * d)) for p, d in zip(P, dirs, strict=True))
        assert got == pytest.approx(want, rel=1e-6, abs=1e-9)


def test_a_shorter_last_batch_compiles_once_more(compiler_runs: Any) -> None:  # noqa: F811
    rng = np.random.default_rng(4)
    P = _params(rng)
    for n in (8, 8, 5, 8, 5):
        _step(wavenet, P, *_batch(rng, n))
    assert sg.eager_stats().compiles == 2
