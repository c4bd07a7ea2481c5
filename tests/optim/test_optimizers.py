"""symgrad.optim against torch.optim: SGD, Adam, AdamW (weight decay), zero_grad, param_groups;
eagerly and fused by compile_step."""

from __future__ import annotations

import numpy as np
import pytest

import symgrad as sg
from symgrad.optim import SGD, Adam, AdamW

torch = pytest.importorskip("torch")

CASES = [
    ("SGD", {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01}),
    ("Adam", {"lr": 0.05, "weight_decay": 0.1}),
    ("AdamW", {"lr": 0.05}),
    ("AdamW", {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.3}),
]
OURS = {"SGD": SGD, "Adam": Adam, "AdamW": AdamW}


def _problem() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal((3, 2)), rng.standard_normal((16, 3)), rng.standard_normal(16)


@pytest.mark.parametrize(("name", "kwargs"), CASES)
def test_eager_step_matches_pytorch(name: str, kwargs: dict) -> None:  # type: ignore[type-arg]
    w0, X, y = _problem()
    w = sg.Tensor(w0, requires_grad=True)
    tw = torch.tensor(w0, requires_grad=True)
    opt = OURS[name]([w], **kwargs)
    topt = getattr(torch.optim, name)([tw], **kwargs)
    for _ in range(6):
        loss = (((sg.Tensor(X) @ w).tanh().sum(axis=1) - sg.Tensor(y)) ** 2).mean()
        tloss = (((torch.tensor(X) @ tw).tanh().sum(dim=1) - torch.tensor(y)) ** 2).mean()
        opt.zero_grad()
        topt.zero_grad()
        loss.backward()
        tloss.backward()
        opt.step()
        topt.step()
        np.testing.assert_allclose(w.data, tw.detach().numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(("name", "kwargs"), CASES)
def test_compiled_step_matches_pytorch(name: str, kwargs: dict) -> None:  # type: ignore[type-arg]
    w0, X, y = _problem()
    w = sg.Tensor(w0, requires_grad=True)
    tw = torch.tensor(w0, requires_grad=True)

    def loss_fn(X: sg.Tensor, y: sg.Tensor) -> sg.Tensor:
        return (((X @ w).tanh().sum(axis=1) - y) ** 2).mean()

    step = sg.compile_step(
        loss_fn, sg.Spec(("n", 3)), sg.Spec(("n",)), optimizer=OURS[name]([w], **kwargs)
    )
    topt = getattr(torch.optim, name)([tw], **kwargs)
    for _ in range(6):
        got = step(X, y)
        tloss = (((torch.tensor(X) @ tw).tanh().sum(dim=1) - torch.tensor(y)) ** 2).mean()
        topt.zero_grad()
        tloss.backward()
        topt.step()
        assert got == pytest.approx(tloss.item(), rel=1e-12)
        np.testing.assert_allclose(w.data, tw.detach().numpy(), rtol=1e-12, atol=1e-15)


def test_zero_grad_and_param_groups() -> None:
    w = sg.Tensor(np.ones(2), requires_grad=True)
    opt = SGD([w], lr=0.5)
    (w * w).sum().backward()
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(w.grad, [0.0, 0.0])
    opt.zero_grad()
    assert w.grad is None
    opt.param_groups[0]["lr"] = 0.25  # makemore's learning-rate decay, PyTorch style
    assert opt.lr == 0.25
    (w * w).sum().backward()
    opt.step()
    np.testing.assert_allclose(w.data, [0.5, 0.5])
    v = sg.Value(1.0)
    vopt = SGD([v], lr=0.1)
    vopt.zero_grad()
    assert v.grad == 0.0
