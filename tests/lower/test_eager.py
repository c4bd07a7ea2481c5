"""Eager ``Tensor.backward()`` runs generated code, compiled once per graph structure (eager
``Value`` graphs run on the tape instead: tests/runtime/test_tape.py; training loops on new
minibatches: test_eager_keying.py)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

import symgrad as sg
from symgrad.lower import eager


@pytest.fixture(autouse=True)
def _fresh(tmp_path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("SYMGRAD_BACKEND", "numpy")
    eager.clear()
    yield
    eager.clear()


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
