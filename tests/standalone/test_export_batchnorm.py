"""An exported eval-mode model that was trained with BatchNorm carries the running statistics
(issue 17): after eager training (checked against PyTorch on the same weights and batches) and
after ``compile_step`` training, the NumPy module and the C library compute the eval-mode
output from the trained ``running_mean``/``running_var`` (named so in the export), not from
the initial ones; so does a lecture-style BatchNorm class of the user's own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import symgrad as sg
from tests.standalone.test_export import load, make, needs_cc

V, BLOCK, EMB, HID, BS = 27, 3, 6, 16, 32
RNG = np.random.default_rng(21)
BATCHES = [(RNG.integers(0, V, (BS, BLOCK)), RNG.integers(0, V, BS)) for _ in range(6)]
XE = RNG.integers(0, V, (10, BLOCK))


def _model(lib: Any) -> Any:
    return lib.nn.Sequential(
        lib.nn.Embedding(V, EMB, dtype=lib.float64),
        lib.nn.Flatten(),
        lib.nn.Linear(BLOCK * EMB, HID, bias=False, dtype=lib.float64),
        lib.nn.BatchNorm1d(HID, dtype=lib.float64),
        lib.nn.Tanh(),
        lib.nn.Linear(HID, V, dtype=lib.float64),
    )


def _trained_eagerly() -> Any:
    model = _model(sg)
    opt = sg.optim.SGD(model.parameters(), lr=0.1)
    for X, Y in BATCHES:
        loss = sg.nn.functional.cross_entropy(model(sg.tensor(X)), sg.tensor(Y))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


def _eval_output(model: Any, X: np.ndarray) -> np.ndarray:
    model.eval()
    with sg.no_grad():
        return model(sg.tensor(X)).numpy()


def _by_hand(model: Any, X: np.ndarray) -> np.ndarray:
    """The eval-mode forward pass in NumPy, from the model's arrays."""
    emb, lin, bn, out = model[0], model[2], model[3], model[5]
    h = emb.weight.numpy()[X].reshape(len(X), -1) @ lin.weight.numpy().T
    h = (h - bn.running_mean.numpy()) / np.sqrt(bn.running_var.numpy() + bn.eps)
    h = np.tanh(h * bn.weight.numpy() + bn.bias.numpy())
    return h @ out.weight.numpy().T + out.bias.numpy()


def _export_numpy(model: Any, d: Path) -> Any:
    model.eval()
    path = sg.export(model, d, sg.Spec(("n", BLOCK), "int64"), name="bn")
    return load(path, "bn"), path


def test_the_export_uses_the_trained_running_statistics(tmp_path: Path) -> None:
    model = _trained_eagerly()
    bn = model[3]
    assert not np.allclose(bn.running_mean.numpy(), 0.0)  # training moved them
    want = _eval_output(model, XE)
    np.testing.assert_allclose(want, _by_hand(model, XE), rtol=1e-12, atol=1e-12)
    mod, _ = _export_numpy(model, tmp_path / "np")
    np.testing.assert_allclose(mod.forward(XE), want, rtol=0, atol=1e-12)
    names = [w[0] for w in mod.WEIGHTS]
    assert "running_mean" in names and "running_var" in names, names
    weights = dict(zip(names, mod.params, strict=True))  # (loaded from bn.npz)
    np.testing.assert_array_equal(weights["running_mean"], bn.running_mean.numpy())
    np.testing.assert_array_equal(weights["running_var"], bn.running_var.numpy())
    fresh = _model(sg)
    fresh.load_state_dict(
        {k: v for k, v in model.state_dict().items() if "running" not in k}, strict=False
    )
    assert not np.allclose(_eval_output(fresh, XE), want)  # the statistics matter


def test_eager_training_matches_pytorch_and_so_does_the_export(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    model = _model(sg)
    tmodel = _model(torch)
    state = {k: torch.tensor(v) for k, v in model.state_dict().items()}
    assert tmodel.load_state_dict(state, strict=False).unexpected_keys == []
    topt = torch.optim.SGD(tmodel.parameters(), lr=0.1)
    for X, Y in BATCHES:
        loss = torch.nn.functional.cross_entropy(tmodel(torch.tensor(X)), torch.tensor(Y))
        topt.zero_grad()
        loss.backward()
        topt.step()
    tmodel.eval()
    with torch.no_grad():
        want = tmodel(torch.tensor(XE)).numpy()
    model = _trained_eagerly_from(model)
    tbn, bn = tmodel[3], model[3]
    np.testing.assert_allclose(bn.running_mean.numpy(), tbn.running_mean.numpy(), rtol=1e-9)
    np.testing.assert_allclose(bn.running_var.numpy(), tbn.running_var.numpy(), rtol=1e-9)
    mod, _ = _export_numpy(model, tmp_path / "np")
    np.testing.assert_allclose(mod.forward(XE), want, rtol=1e-9, atol=1e-12)


def _trained_eagerly_from(model: Any) -> Any:
    opt = sg.optim.SGD(model.parameters(), lr=0.1)
    for X, Y in BATCHES:
        loss = sg.nn.functional.cross_entropy(model(sg.tensor(X)), sg.tensor(Y))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


def test_a_model_trained_by_compile_step_exports_its_statistics(tmp_path: Path) -> None:
    model = _model(sg)
    opt = sg.optim.SGD(model.parameters(), lr=0.1)
    step = sg.compile_step(
        lambda X, Y: sg.nn.functional.cross_entropy(model(X), Y),
        sg.Spec((BS, BLOCK), "int64"),
        sg.Spec((BS,), "int64"),
        optimizer=opt,
        backend="numpy",
    )
    for X, Y in BATCHES:
        step(X, Y)
    assert not np.allclose(model[3].running_var.numpy(), 1.0)
    want = _by_hand(model, XE)
    mod, _ = _export_numpy(model, tmp_path / "np")
    np.testing.assert_allclose(mod.forward(XE), want, rtol=1e-12, atol=1e-12)


class LectureBatchNorm:
    """makemore part 3's own BatchNorm1d: plain attributes, rebound every training step."""

    def __init__(self, dim: int) -> None:
        self.eps, self.momentum, self.training = 1e-5, 0.1, True
        self.gamma = sg.ones(dim, dtype=sg.float64)
        self.beta = sg.zeros(dim, dtype=sg.float64)
        self.running_mean = sg.zeros(dim, dtype=sg.float64)
        self.running_var = sg.ones(dim, dtype=sg.float64)

    def __call__(self, x: Any) -> Any:
        if self.training:
            xmean, xvar = x.mean(0, keepdim=True), x.var(0, keepdim=True)
        else:
            xmean, xvar = self.running_mean, self.running_var
        out = self.gamma * (x - xmean) / sg.sqrt(xvar + self.eps) + self.beta
        if self.training:
            with sg.no_grad():
                m = self.momentum
                self.running_mean = (1 - m) * self.running_mean + m * xmean
                self.running_var = (1 - m) * self.running_var + m * xvar
        return out


def test_a_lecture_style_batchnorm_exports_its_statistics(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    C = sg.tensor(rng.standard_normal((V, EMB)), requires_grad=True)
    W1 = sg.tensor(rng.standard_normal((BLOCK * EMB, HID)) * 0.3, requires_grad=True)
    W2 = sg.tensor(rng.standard_normal((HID, V)) * 0.1, requires_grad=True)
    bn = LectureBatchNorm(HID)
    params = [C, W1, W2, bn.gamma, bn.beta]
    for p in params:
        p.requires_grad = True

    def forward(X: Any) -> Any:
        h = bn(C[X].view(X.shape[0], -1) @ W1)
        return sg.tanh(h) @ W2

    for X, Y in BATCHES:
        loss = sg.nn.functional.cross_entropy(forward(sg.tensor(X)), sg.tensor(Y))
        for p in params:
            p.grad = None
        loss.backward()
        for p in params:
            p.data += -0.1 * p.grad
    bn.training = False
    with sg.no_grad():
        want = forward(sg.tensor(XE)).numpy()
    path = sg.export(forward, tmp_path / "np", sg.Spec(("n", BLOCK), "int64"), name="lbn")
    np.testing.assert_allclose(load(path, "lbn").forward(XE), want, rtol=0, atol=1e-12)
    assert bn.running_mean.shape == (1, HID)  # (the lecture's keepdim statistics)


@pytest.mark.cc
def test_the_c_library_uses_the_trained_statistics(tmp_path: Path) -> None:
    needs_cc()
    model = _trained_eagerly()
    want = _eval_output(model, XE)
    d = sg.export(
        model, tmp_path / "c", sg.Spec(("n", BLOCK), "int64"), backend="c", name="bn", examples=[XE]
    )
    r = make(d, "all", "check")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "self-test passed" in r.stdout
    np.testing.assert_allclose(_by_hand(model, XE), want, rtol=1e-12, atol=1e-12)
    assert "running_mean" in (d / "bn.c").read_text() or "running_mean" in (d / "bn.h").read_text()
