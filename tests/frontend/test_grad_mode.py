"""symgrad.frontend.grad_mode and tensor_inplace: no_grad, leaves without history, in-place
updates of leaves, retain_grad, p.grad = None."""

from __future__ import annotations

import numpy as np
import pytest

import symgrad as sg
from symgrad.ir.errors import ShapeError, TraceError


def test_no_grad_results_have_no_history_and_the_mode_is_restored() -> None:
    w = sg.Tensor(np.ones(3), requires_grad=True)
    with sg.no_grad():
        assert not sg.is_grad_enabled()
        y = w * 2.0
        with sg.enable_grad():
            z = w * 3.0
    assert sg.is_grad_enabled()
    assert not y.requires_grad and y.is_leaf
    assert z.requires_grad and not z.is_leaf
    with pytest.raises(RuntimeError), sg.no_grad():
        raise RuntimeError("boom")
    assert sg.is_grad_enabled()


def test_no_grad_as_a_decorator() -> None:
    w = sg.Tensor(np.ones(2), requires_grad=True)

    @sg.no_grad()
    def evaluate(x: sg.Tensor) -> sg.Tensor:
        return (x * w).sum()

    assert not evaluate(sg.Tensor(np.ones(2))).requires_grad
    assert sg.is_grad_enabled()
    with sg.set_grad_enabled(False):
        assert not sg.is_grad_enabled()
    with pytest.raises(TypeError, match="decorates a function"):
        sg.no_grad()(3)  # type: ignore[arg-type]


def test_a_result_without_history_is_a_leaf_that_can_require_grad() -> None:
    # makemore: W = randn(...) * scale; then parameters get requires_grad = True
    w = sg.randn(3, 2, generator=sg.Generator().manual_seed(0), dtype="float64") * 0.1
    assert w.is_leaf
    w.requires_grad = True
    x = sg.Tensor(np.arange(6.0).reshape(2, 3))
    loss = (x @ w).sum()
    loss.backward()
    np.testing.assert_allclose(w.grad, np.tile(x.data.sum(0)[:, None], (1, 2)))


def test_in_place_init_keeps_a_leaf() -> None:
    w = sg.Tensor(np.ones(3))
    w *= 0.1  # (the issue: this made a non-leaf whose gradient never arrived)
    w.requires_grad = True
    assert w.is_leaf
    (w * w).sum().backward()
    np.testing.assert_allclose(w.grad, 0.2 * np.ones(3))
    p = sg.Tensor(np.ones(3), requires_grad=True)
    with sg.no_grad():
        p *= 0.1
    assert p.is_leaf and p.requires_grad
    np.testing.assert_allclose(p.data, 0.1)


def test_sgd_updates_under_no_grad() -> None:
    p = sg.Tensor(np.array([1.0, -2.0]), requires_grad=True)
    for _ in range(3):
        p.grad = None
        loss = (p * p).sum()
        loss.backward()
        with sg.no_grad():
            p -= 0.25 * sg.Tensor(p.grad)
    np.testing.assert_allclose(p.data, np.array([1.0, -2.0]) * 0.5**3)
    p.data += -0.5 * p.data  # the .data form (micrograd, makemore)
    np.testing.assert_allclose(p.data, np.array([1.0, -2.0]) * 0.5**4)
    assert p.is_leaf and p.grad is not None
    p.grad = None
    assert p.grad is None


def test_in_place_on_a_leaf_that_requires_grad_outside_no_grad_is_refused() -> None:
    p = sg.Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(TraceError, match=r"no_grad.*\n  at .*test_grad_mode.py"):
        p -= 1.0
    with pytest.raises(TraceError, match="requires grad"):
        p.mul_(2.0)


def test_torch_style_in_place_methods() -> None:
    x = sg.Tensor(np.ones(3))
    assert x.add_(2.0).mul_(3.0).sub_(1.0).div_(2.0) is x
    np.testing.assert_allclose(x.data, 4.0)
    x.add_(sg.Tensor(np.ones(3)), alpha=2.0)
    np.testing.assert_allclose(x.data, 6.0)
    x.zero_()
    np.testing.assert_allclose(x.data, 0.0)
    x.fill_(2.5).copy_(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(x.data, [1.0, 2.0, 3.0])
    with pytest.raises(ShapeError, match="shape"):
        x.add_(sg.Tensor(np.ones((2, 3))))
    i = sg.Tensor(np.array([1, 2]))
    with pytest.raises(sg.DTypeError, match="int64"):
        i.mul_(0.5)
    # a result with history: `+=` rebinds, the methods refuse
    w = sg.Tensor(np.ones(2), requires_grad=True)
    y = w * 2.0
    y2 = y
    y += 1.0
    assert y is not y2 and not y.is_leaf
    with pytest.raises(TraceError, match="x = x \\+ y"):
        y.add_(1.0)


def test_requires_grad_underscore() -> None:
    x = sg.Tensor(np.ones(2)).requires_grad_()
    assert x.requires_grad
    y = x * 2.0
    with pytest.raises(TraceError, match="leaf"):
        y.requires_grad_(False)
    with pytest.raises(sg.DTypeError, match="floating-point"):
        sg.Tensor(np.array([1, 2])).requires_grad_()


def test_retain_grad_of_an_intermediate() -> None:
    w = sg.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    h = (w * 3.0).retain_grad()
    (h * h).sum().backward()
    np.testing.assert_allclose(h.grad, 2 * h.data)
    np.testing.assert_allclose(w.grad, 6 * h.data)


def test_matches_pytorch_on_an_init_and_update_loop() -> None:
    torch = pytest.importorskip("torch")
    w0 = np.random.default_rng(0).standard_normal((4, 3))
    x = np.random.default_rng(1).standard_normal((5, 4))
    ws = sg.Tensor(w0)
    wt = torch.tensor(w0)
    ws *= 0.5
    wt *= 0.5
    ws.requires_grad = True
    wt.requires_grad = True
    for _ in range(3):
        for w, mod in ((ws, sg), (wt, torch)):
            w.grad = None
            xx = mod.tensor(x) if mod is torch else sg.Tensor(x)
            loss = ((xx @ w).tanh() ** 2).sum()
            loss.backward()
            with mod.no_grad():
                w -= 0.1 * (w.grad if mod is torch else sg.Tensor(w.grad))
    np.testing.assert_allclose(ws.data, wt.detach().numpy(), rtol=1e-12)


def test_no_grad_inside_a_traced_function_stops_the_gradient() -> None:
    w = sg.Tensor(np.array([2.0]), requires_grad=True)

    def f(x: sg.Tensor) -> sg.Tensor:
        with sg.no_grad():
            c = w * 10.0  # a constant for the gradient
        return (x * w + c).sum()

    cf = sg.compile(f, sg.Spec((1,)), wrt=[w], backend="numpy")
    value, (gw,) = cf(np.array([3.0]))
    assert value == pytest.approx(26.0)
    np.testing.assert_allclose(gw, [3.0])
