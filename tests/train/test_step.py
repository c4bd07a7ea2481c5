"""Optimisers (PyTorch semantics) and ``symgrad.compile_step``: forward + backward + update in
one generated function, matching the eager optimiser and a hand-written NumPy reference."""

from __future__ import annotations

import numpy as np
import pytest

import symgrad as sg
from symgrad.optim import SGD, Adam

BACKENDS = ["numpy", pytest.param("c", marks=pytest.mark.cc)]


def _need(backend: str) -> None:
    if backend == "c":
        from symgrad.runtime.cc import compiler_available

        if not compiler_available():
            pytest.skip("no working C compiler")
        pytest.importorskip("symgrad.codegen.c.printer")


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal((16, 3)), rng.standard_normal(16)


def _adam_reference(w, grads_fn, steps, lr=0.05, b1=0.9, b2=0.999, eps=1e-8):  # type: ignore[no-untyped-def]
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    out = []
    for t in range(1, steps + 1):
        g = grads_fn(w)
        m = m + (g - m) * (1 - b1)
        v = v * b2 + g * g * (1 - b2)
        denom = np.sqrt(v) / np.sqrt(1 - b2**t) + eps
        w = w - (lr / (1 - b1**t)) * (m / denom)
        out.append(w.copy())
    return out


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("make", "kwargs"),
    [
        (SGD, {"lr": 0.1}),
        (SGD, {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01}),
        (Adam, {"lr": 0.05}),
        (Adam, {"lr": 0.05, "weight_decay": 0.1}),
    ],
)
def test_compiled_step_matches_the_eager_optimizer(make, kwargs, backend: str) -> None:  # type: ignore[no-untyped-def]
    _need(backend)
    X, y = _data()
    fused, eager = sg.nn.Linear(3, 1, rng=1), sg.nn.Linear(3, 1, rng=1)

    def loss(X, y):  # type: ignore[no-untyped-def]
        return ((fused(X).reshape(X.shape[0]) - y) ** 2).mean()

    step = sg.compile_step(
        loss,
        sg.Spec(("n", 3)),
        sg.Spec(("n",)),
        optimizer=make(fused.parameters(), **kwargs),
        backend=backend,
    )
    opt = make(eager.parameters(), **kwargs)
    weight_array = fused.weight.data
    for _ in range(6):
        got = step(X, y)
        opt.zero_grad()
        want = ((eager(sg.Tensor(X)).reshape(16) - sg.Tensor(y)) ** 2).mean()
        want.backward()
        opt.step()
        assert got == pytest.approx(want.item(), rel=1e-12)
        np.testing.assert_allclose(fused.weight.data, eager.weight.data, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(fused.bias.data, eager.bias.data, rtol=1e-12, atol=1e-15)
    assert fused.weight.data is weight_array  # updated in place


def test_adam_matches_a_hand_written_reference() -> None:
    X, y = _data()
    w0 = np.random.default_rng(3).standard_normal(3)
    w = sg.Tensor(w0.copy(), requires_grad=True)
    step = sg.compile_step(
        lambda X, y: ((X @ w - y) ** 2).mean(),
        X,
        y,
        optimizer=Adam([w], lr=0.05),
        backend="numpy",
    )
    ref = _adam_reference(w0, lambda v: 2 * X.T @ (X @ v - y) / len(y), 5)
    for want in ref:
        step(X, y)
        np.testing.assert_allclose(w.data, want, rtol=1e-12)


def test_micrograd_values_train_with_a_compiled_step() -> None:
    import random

    random.seed(7)
    model = sg.nn.MLP(2, [4, 1])
    X = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    y = np.array([1.0, 1.0, -1.0, -1.0])

    def loss(X, y):  # type: ignore[no-untyped-def]
        scores = [model(list(row)) for row in X]
        return sum(((1 + -yi * si).relu() for yi, si in zip(y, scores, strict=True)), 0.0) * 0.25

    step = sg.compile_step(loss, X, y, optimizer=SGD(model.parameters(), lr=0.1), backend="numpy")
    losses = [step(X, y) for _ in range(30)]
    assert losses[-1] < losses[0]


def test_parameters_must_be_used_by_the_loss() -> None:
    stranger = sg.Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(sg.ArgumentError, match="not used by the function"):
        sg.compile_step(
            lambda x: (x * 2.0).sum(), sg.Spec((3,)), optimizer=SGD([stranger]), backend="numpy"
        )
    with pytest.raises(ValueError, match="empty parameter list"):
        SGD([])


# --- in place: the step writes parameters and optimiser state into their own arrays ------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("make", [lambda ps: SGD(ps, lr=0.1, momentum=0.9), lambda ps: Adam(ps)])
def test_the_step_updates_parameter_and_state_arrays_in_place(make, backend: str) -> None:  # type: ignore[no-untyped-def]
    _need(backend)
    X, y = _data()
    lin = sg.nn.Linear(3, 1, rng=1)
    opt = make(lin.parameters())

    def loss(X, y):  # type: ignore[no-untyped-def]
        return ((lin(X).reshape(X.shape[0]) - y) ** 2).mean()

    step = sg.compile_step(loss, X, y, optimizer=opt, backend=backend)
    params = [p._data for p in lin.parameters()]
    state = opt.state()
    before = [a.copy() for a in params + state]
    losses = [step(X, y) for _ in range(3)]
    assert losses[2] < losses[0]
    assert all(p._data is a for p, a in zip(lin.parameters(), params, strict=True))
    assert all(s is a for s, a in zip(opt.state(), state, strict=True))
    assert all(not np.array_equal(a, b) for a, b in zip(params + state, before, strict=True))
    if backend == "c":
        assert "(updated in place)" in step.source()
    else:
        assert "[...] = " in step.source()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_read_only_parameter_array_is_replaced_by_a_private_copy(backend: str) -> None:
    _need(backend)
    X, y = _data()
    lin = sg.nn.Linear(3, 1, rng=1)
    frozen = np.array(lin.weight.data)
    frozen.setflags(write=False)
    lin.weight.data = frozen
    opt = SGD(lin.parameters(), lr=0.1)

    def loss(X, y):  # type: ignore[no-untyped-def]
        return ((lin(X).reshape(X.shape[0]) - y) ** 2).mean()

    step = sg.compile_step(loss, X, y, optimizer=opt, backend=backend)
    first = step(X, y)
    second = step(X, y)
    assert second < first
    assert lin.weight._data is not frozen and lin.weight._data.flags.writeable
    assert not np.array_equal(lin.weight.data, frozen)  # learned, and the caller's array is intact


@pytest.mark.cc
def test_the_step_reports_its_scratch_memory_with_and_without_reuse() -> None:
    _need("c")
    X, y = _data()
    lin = sg.nn.Linear(3, 4, rng=1)

    def loss(X, y):  # type: ignore[no-untyped-def]
        h = lin(X).tanh()
        return ((h.sum(1) - y) ** 2).mean()

    step = sg.compile_step(loss, X, y, optimizer=SGD(lin.parameters(), lr=0.1), backend="c")
    report = step.memory()["forward"]
    import re

    m = re.fullmatch(
        r"(\d+) blocks for (\d+) values, ([\d,]+) bytes \(([\d,]+) without reuse\)", report
    )
    assert m, report
    blocks, values, used, without = (int(g.replace(",", "")) for g in m.groups())
    assert blocks <= values and used <= without and used > 0
    numpy_step = sg.compile_step(
        loss, X, y, optimizer=SGD(lin.parameters(), lr=0.1), backend="numpy"
    )
    assert numpy_step.memory() == {}
