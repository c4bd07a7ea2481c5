"""makemore part 3's program (its own Linear/BatchNorm1d/Tanh classes, running statistics
updated under no_grad, parameters made requires_grad after init, `p.data += -lr * p.grad`),
written once and run with `lib = torch` and `lib = symgrad`: the same losses, weights and
running statistics (float64), eagerly and through compile_step, and the same eval-mode loss."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import symgrad as sg

torch = pytest.importorskip("torch")

N_EMBD, BLOCK, HIDDEN, VOCAB, BATCH = 4, 3, 16, 27, 32


def program(lib: Any, tensor: Any, F: Any, init: dict[str, np.ndarray]) -> Any:
    class Linear:
        def __init__(self, w: np.ndarray, bias: np.ndarray | None) -> None:
            self.weight = tensor(w)
            self.bias = None if bias is None else tensor(bias)

        def __call__(self, x: Any) -> Any:
            self.out = x @ self.weight
            if self.bias is not None:
                self.out = self.out + self.bias
            return self.out

        def parameters(self) -> list[Any]:
            return [self.weight] + ([] if self.bias is None else [self.bias])

    class BatchNorm1d:
        def __init__(self, dim: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
            self.eps, self.momentum, self.training = eps, momentum, True
            self.gamma = tensor(np.ones(dim))
            self.beta = tensor(np.zeros(dim))
            self.running_mean = tensor(np.zeros(dim))
            self.running_var = tensor(np.ones(dim))

        def __call__(self, x: Any) -> Any:
            if self.training:
                n = x.shape[0]
                xmean = x.mean(0, True)
                xvar = ((x - xmean) ** 2).mean(0, True) * (n / (n - 1))
            else:
                xmean, xvar = self.running_mean, self.running_var
            xhat = (x - xmean) / (xvar + self.eps) ** 0.5
            self.out = self.gamma * xhat + self.beta
            if self.training:
                with lib.no_grad():
                    m = self.momentum
                    self.running_mean = (1 - m) * self.running_mean + m * xmean
                    self.running_var = (1 - m) * self.running_var + m * xvar
            return self.out

        def parameters(self) -> list[Any]:
            return [self.gamma, self.beta]

    class Tanh:
        def __call__(self, x: Any) -> Any:
            self.out = x.tanh()
            return self.out

        def parameters(self) -> list[Any]:
            return []

    class Model:
        def __init__(self) -> None:
            self.C = tensor(init["C"])
            self.layers = [
                Linear(init["W1"], None),
                BatchNorm1d(HIDDEN),
                Tanh(),
                Linear(init["W2"], init["b2"]),
            ]
            with lib.no_grad():
                self.layers[-1].weight *= 0.1  # make the last layer less confident
            self.parameters = [self.C] + [p for layer in self.layers for p in layer.parameters()]
            for p in self.parameters:
                p.requires_grad = True

        def loss(self, Xb: Any, Yb: Any) -> Any:
            emb = self.C[Xb]
            x = emb.reshape(emb.shape[0], N_EMBD * BLOCK)
            for layer in self.layers:
                x = layer(x)
            return F.cross_entropy(x, Yb)

    return Model()


def _init() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(2147483647)
    fan_in = N_EMBD * BLOCK
    return {
        "C": rng.standard_normal((VOCAB, N_EMBD)),
        "W1": rng.standard_normal((fan_in, HIDDEN)) * (5 / 3) / fan_in**0.5,
        "W2": rng.standard_normal((HIDDEN, VOCAB)),
        "b2": rng.standard_normal(VOCAB) * 0.1,
    }


def _batches(n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    return [
        (rng.integers(0, VOCAB, (BATCH, BLOCK)), rng.integers(0, VOCAB, BATCH)) for _ in range(n)
    ]


def _torch_run(steps: int, lr: float) -> tuple[Any, list[float]]:
    model = program(
        torch, lambda a: torch.tensor(a, dtype=torch.float64), torch.nn.functional, _init()
    )
    losses = []
    for Xb, Yb in _batches(steps):
        loss = model.loss(torch.tensor(Xb), torch.tensor(Yb))
        for p in model.parameters:
            p.grad = None
        loss.backward()
        for p in model.parameters:
            p.data += -lr * p.grad
        losses.append(loss.item())
    return model, losses


def _compare(ours: Any, ref: Any) -> None:
    for p, q in zip(ours.parameters, ref.parameters, strict=True):
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-9, atol=1e-12)
    bn, tbn = ours.layers[1], ref.layers[1]
    for name in ("running_mean", "running_var"):
        np.testing.assert_allclose(
            np.asarray(getattr(bn, name).data).reshape(-1),
            getattr(tbn, name).numpy().reshape(-1),
            rtol=1e-9,
        )


def _eval_loss(model: Any, tensor_of: Any) -> float:
    model.layers[1].training = False
    Xb, Yb = _batches(7)[-1]
    return float(model.loss(tensor_of(Xb), tensor_of(Yb)).item())


def test_eager_matches_pytorch() -> None:
    ref, want = _torch_run(5, 0.1)
    ours = program(sg, sg.Tensor, sg, _init())
    got = []
    for Xb, Yb in _batches(5):
        loss = ours.loss(sg.Tensor(Xb), sg.Tensor(Yb))
        for p in ours.parameters:
            p.grad = None
        loss.backward()
        for p in ours.parameters:
            p.data += -0.1 * p.grad
        got.append(loss.item())
    np.testing.assert_allclose(got, want, rtol=1e-9)
    _compare(ours, ref)
    assert _eval_loss(ours, sg.Tensor) == pytest.approx(_eval_loss(ref, torch.tensor), rel=1e-9)


def test_compile_step_matches_pytorch() -> None:
    ref, want = _torch_run(5, 0.1)
    ours = program(sg, sg.Tensor, sg, _init())
    step = sg.compile_step(
        ours.loss,
        sg.Spec((BATCH, BLOCK), "int64"),
        sg.Spec((BATCH,), "int64"),
        optimizer=sg.optim.SGD(ours.parameters, lr=0.1),
    )
    assert len(step.buffers) == 2  # the running statistics
    for layer in ours.layers:  # tracing left nothing traced behind
        assert all(v._data is not None for v in vars(layer).values() if isinstance(v, sg.Tensor))
    got = [step(Xb, Yb) for Xb, Yb in _batches(5)]
    np.testing.assert_allclose(got, want, rtol=1e-9)
    _compare(ours, ref)
    assert _eval_loss(ours, sg.Tensor) == pytest.approx(_eval_loss(ref, torch.tensor), rel=1e-9)
