"""A WaveNet program in the style of makemore part 5 — its own Linear, BatchNorm1d (over batch
and time for 3-D inputs, with running statistics), Tanh, Embedding, FlattenConsecutive and
Sequential classes, a minibatch SGD loop, then evaluation mode — written once against a
``torch``-like module and run with ``torch`` = PyTorch and ``torch`` = symgrad (only the import
differs), eagerly and through ``compile_step``. Losses, gradients, running statistics and the
evaluation loss agree: float64 to 1e-9 relative, float32 to 1e-4 (issue 17)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

import symgrad

V, BLOCK, EMB, HID, N, BS, STEPS = 27, 8, 10, 16, 200, 32, 4


class Linear:
    def __init__(self, torch: Any, W: np.ndarray, bias: bool = True) -> None:
        self.weight = torch.tensor(W)
        self.bias = torch.zeros(W.shape[1], dtype=self.weight.dtype) if bias else None

    def __call__(self, x: Any) -> Any:
        self.out = x @ self.weight
        if self.bias is not None:
            self.out += self.bias
        return self.out

    def parameters(self) -> list[Any]:
        return [self.weight] + ([] if self.bias is None else [self.bias])


class BatchNorm1d:
    def __init__(self, torch: Any, dim: int, dtype: Any, eps: float = 1e-5) -> None:
        self.torch, self.eps, self.momentum, self.training = torch, eps, 0.1, True
        self.gamma = torch.ones(dim, dtype=dtype)
        self.beta = torch.zeros(dim, dtype=dtype)
        self.running_mean = torch.zeros(dim, dtype=dtype)
        self.running_var = torch.ones(dim, dtype=dtype)

    def __call__(self, x: Any) -> Any:
        torch = self.torch
        if self.training:
            dim = 0 if x.ndim == 2 else (0, 1)
            xmean = x.mean(dim, keepdim=True)
            xvar = x.var(dim, keepdim=True)
        else:
            xmean, xvar = self.running_mean, self.running_var
        xhat = (x - xmean) / torch.sqrt(xvar + self.eps)
        self.out = self.gamma * xhat + self.beta
        if self.training:
            with torch.no_grad():
                m = self.momentum
                self.running_mean = (1 - m) * self.running_mean + m * xmean.squeeze()
                self.running_var = (1 - m) * self.running_var + m * xvar.squeeze()
        return self.out

    def parameters(self) -> list[Any]:
        return [self.gamma, self.beta]


class Tanh:
    def __init__(self, torch: Any) -> None:
        self.torch = torch

    def __call__(self, x: Any) -> Any:
        self.out = self.torch.tanh(x)
        return self.out

    def parameters(self) -> list[Any]:
        return []


class Embedding:
    def __init__(self, torch: Any, W: np.ndarray) -> None:
        self.weight = torch.tensor(W)

    def __call__(self, IX: Any) -> Any:
        self.out = self.weight[IX]
        return self.out

    def parameters(self) -> list[Any]:
        return [self.weight]


class FlattenConsecutive:
    def __init__(self, n: int) -> None:
        self.n = n

    def __call__(self, x: Any) -> Any:
        B, T, C = x.shape
        x = x.view(B, T // self.n, C * self.n)
        if x.shape[1] == 1:
            x = x.squeeze(1)
        self.out = x
        return self.out

    def parameters(self) -> list[Any]:
        return []


class Sequential:
    def __init__(self, layers: list[Any]) -> None:
        self.layers = layers

    def __call__(self, x: Any) -> Any:
        for layer in self.layers:
            x = layer(x)
        self.out = x
        return self.out

    def parameters(self) -> list[Any]:
        return [p for layer in self.layers for p in layer.parameters()]


def _np(x: Any) -> np.ndarray:
    """A copy as a NumPy array (a PyTorch tensor through ``.numpy()``)."""
    return x.detach().numpy().copy() if hasattr(x, "numpy") else np.array(x)


def run(torch: Any, dtype: str, compiled: bool = False) -> dict[str, Any]:
    """Build, train STEPS steps (``compiled``: with symgrad's ``compile_step`` and SGD) and
    evaluate; the numbers as NumPy arrays / floats."""
    F = torch.nn.functional
    dt = getattr(torch, dtype)
    rng = np.random.default_rng(17)

    def w(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) / np.sqrt(shape[0])).astype(dtype)

    layers: list[Any] = [Embedding(torch, rng.standard_normal((V, EMB)).astype(dtype))]
    fan = EMB * 2
    for _ in range(3):
        layers += [FlattenConsecutive(2), Linear(torch, w(fan, HID), bias=False)]
        layers += [BatchNorm1d(torch, HID, dt), Tanh(torch)]
        fan = HID * 2
    layers.append(Linear(torch, w(HID, V)))
    model = Sequential(layers)
    with torch.no_grad():
        model.layers[-1].weight *= 0.1  # last layer: less confident
    parameters = model.parameters()
    for p in parameters:
        p.requires_grad = True
    Xtr = torch.tensor(rng.integers(0, V, (N, BLOCK)))
    Ytr = torch.tensor(rng.integers(0, V, N))
    losses = []
    if compiled:
        return _run_compiled(torch, model, parameters, Xtr, Ytr, rng)
    for _ in range(STEPS):
        ix = torch.tensor(rng.integers(0, N, (BS,)))
        logits = model(Xtr[ix])
        loss = F.cross_entropy(logits, Ytr[ix])
        for p in parameters:
            p.grad = None
        loss.backward()
        for p in parameters:
            p.data += -0.1 * p.grad
        losses.append(loss.item())
    grads = [_np(p.grad) for p in parameters]
    return _evaluated(torch, model, parameters, Xtr, Ytr, losses) | {"grads": grads}


def _run_compiled(
    torch: Any, model: Any, parameters: list[Any], Xtr: Any, Ytr: Any, rng: Any
) -> dict[str, Any]:
    F = torch.nn.functional
    step = torch.compile_step(
        lambda X, Y: F.cross_entropy(model(X), Y),
        torch.Spec((BS, BLOCK), "int64"),
        torch.Spec((BS,), "int64"),
        optimizer=torch.optim.SGD(parameters, lr=0.1),
        backend="numpy",
    )
    losses = []
    for _ in range(STEPS):
        ix = rng.integers(0, N, (BS,))
        losses.append(float(step(Xtr.numpy()[ix], Ytr.numpy()[ix])))
    return _evaluated(torch, model, parameters, Xtr, Ytr, losses)


def _evaluated(
    torch: Any, model: Any, parameters: list[Any], Xtr: Any, Ytr: Any, losses: list[float]
) -> dict[str, Any]:
    for layer in model.layers:
        layer.training = False
    with torch.no_grad():
        logits = model(Xtr)
        val = torch.nn.functional.cross_entropy(logits, Ytr).item()
    bns = [layer for layer in model.layers if isinstance(layer, BatchNorm1d)]
    return {
        "losses": np.array(losses),
        "params": [_np(p.data) for p in parameters],
        "running": [_np(b.running_mean) for b in bns] + [_np(b.running_var) for b in bns],
        "val": val,
        "shape": tuple(logits.shape),
    }


@pytest.mark.parametrize(("dtype", "rtol"), [("float64", 1e-9), ("float32", 1e-4)])
def test_wavenet_program_matches_pytorch_eagerly(dtype: str, rtol: float) -> None:
    torch = pytest.importorskip("torch")
    want = run(torch, dtype)
    got = run(symgrad, dtype)
    assert got["shape"] == want["shape"] == (N, V)
    np.testing.assert_allclose(got["losses"], want["losses"], rtol=rtol)
    assert got["val"] == pytest.approx(want["val"], rel=rtol)
    atol = 1e-12 if dtype == "float64" else 1e-6
    for key in ("grads", "params", "running"):
        for k, (g, t) in enumerate(zip(got[key], want[key], strict=True)):
            assert g.dtype == t.dtype == np.dtype(dtype), (key, k)
            np.testing.assert_allclose(g, t, rtol=rtol, atol=atol, err_msg=f"{key}[{k}]")


@pytest.mark.parametrize(("dtype", "rtol"), [("float64", 1e-9), ("float32", 1e-4)])
def test_wavenet_program_trains_through_compile_step_like_pytorch(dtype: str, rtol: float) -> None:
    """The same model (the lecture's classes, running statistics rebound under no_grad) trained
    with one compiled step: the losses, weights, running statistics and evaluation loss are
    PyTorch's eager ones."""
    torch = pytest.importorskip("torch")
    want = run(torch, dtype)
    got = run(symgrad, dtype, compiled=True)
    np.testing.assert_allclose(got["losses"], want["losses"], rtol=rtol)
    assert got["val"] == pytest.approx(want["val"], rel=rtol)
    atol = 1e-12 if dtype == "float64" else 1e-6
    for key in ("params", "running"):
        for k, (g, t) in enumerate(zip(got[key], want[key], strict=True)):
            assert g.dtype == np.dtype(dtype), (key, k)
            np.testing.assert_allclose(g, t, rtol=rtol, atol=atol, err_msg=f"{key}[{k}]")


def _small_model() -> Any:
    rng = np.random.default_rng(3)
    layers: list[Any] = [Embedding(symgrad, rng.standard_normal((V, 4)))]
    fan = 8
    for _ in range(3):
        layers += [FlattenConsecutive(2), Linear(symgrad, rng.standard_normal((fan, 6)) * 0.4)]
        layers += [BatchNorm1d(symgrad, 6, symgrad.float64), Tanh(symgrad)]
        fan = 12
    layers.append(Linear(symgrad, rng.standard_normal((6, V)) * 0.3))
    for p in Sequential(layers).parameters():
        p.requires_grad = True
    return Sequential(layers)


def test_the_wavenet_loss_passes_gradcheck_and_the_trained_model_exports(tmp_path: Any) -> None:
    from tests.standalone.test_export import load

    model = _small_model()
    rng = np.random.default_rng(4)
    X, Y = rng.integers(0, V, (6, BLOCK)), rng.integers(0, V, 6)
    F = symgrad.nn.functional
    with warnings.catch_warnings():  # gradcheck puts the running statistics back, and says so
        warnings.simplefilter("ignore")
        report = symgrad.gradcheck(lambda X, Y: F.cross_entropy(model(X), Y), X, Y)
    assert report.ok, report
    loss = F.cross_entropy(model(symgrad.tensor(X)), symgrad.tensor(Y))  # one eager step
    loss.backward()
    for p in model.parameters():
        p.data += -0.1 * p.grad
    for layer in model.layers:
        layer.training = False
    with symgrad.no_grad():
        want = model(symgrad.tensor(X)).numpy()
    path = symgrad.export(model, tmp_path, symgrad.Spec(("n", BLOCK), "int64"), name="wavenet")
    np.testing.assert_allclose(load(path, "wavenet").forward(X), want, rtol=0, atol=1e-12)
