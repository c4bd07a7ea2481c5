"""symgrad.nn.layers against PyTorch on the same weights (float64): outputs, gradients, running
statistics, modes."""

from __future__ import annotations

import numpy as np
import pytest

import symgrad as sg
from symgrad import nn

torch = pytest.importorskip("torch")


def _t(a: np.ndarray, grad: bool = False) -> object:
    return torch.tensor(a, dtype=torch.float64, requires_grad=grad)


def test_linear_layout_init_and_gradients() -> None:
    lin = nn.Linear(5, 3, generator=sg.Generator().manual_seed(0), dtype="float64")
    assert lin.weight.shape == (3, 5) and lin.bias is not None and lin.bias.shape == (3,)
    k = 1 / np.sqrt(5)
    assert np.abs(lin.weight.data).max() <= k and np.abs(lin.bias.data).max() <= k
    ref = torch.nn.Linear(5, 3).double()
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(lin.weight.data))
        ref.bias.copy_(torch.tensor(lin.bias.data))
    x = np.random.default_rng(0).standard_normal((4, 5))
    out = lin(sg.Tensor(x))
    want = ref(_t(x))
    np.testing.assert_allclose(out.data, want.detach().numpy(), rtol=1e-12)
    (out * out).sum().backward()
    (want * want).sum().backward()
    np.testing.assert_allclose(lin.weight.grad, ref.weight.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(lin.bias.grad, ref.bias.grad.numpy(), rtol=1e-12)
    assert nn.Linear(2, 2, bias=False).bias is None


def _batchnorm_pair(c: int) -> tuple[nn.BatchNorm1d, object]:
    ours = nn.BatchNorm1d(c, momentum=0.2, dtype="float64")
    ref = torch.nn.BatchNorm1d(c, momentum=0.2).double()
    rng = np.random.default_rng(3)
    w, b = rng.standard_normal(c), rng.standard_normal(c)
    assert ours.weight is not None and ours.bias is not None
    ours.weight.data, ours.bias.data = w, b
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(w))
        ref.bias.copy_(torch.tensor(b))
    return ours, ref


@pytest.mark.parametrize("shape", [(8, 4), (6, 4, 5)])
def test_batchnorm1d_training_and_eval_match_pytorch(shape: tuple[int, ...]) -> None:
    ours, ref = _batchnorm_pair(4)
    rng = np.random.default_rng(4)
    for _ in range(3):
        x = rng.standard_normal(shape) * 3 + 1
        xs, xt = sg.Tensor(x, requires_grad=True), _t(x, grad=True)
        out, want = ours(xs), ref(xt)
        np.testing.assert_allclose(out.data, want.detach().numpy(), rtol=1e-10, atol=1e-12)
        g = rng.standard_normal(shape)
        (out * sg.Tensor(g)).sum().backward()
        (want * _t(g)).sum().backward()
        np.testing.assert_allclose(xs.grad, xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    assert ours.weight is not None
    np.testing.assert_allclose(ours.weight.grad, ref.weight.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(ours.running_mean.data, ref.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.running_var.data, ref.running_var.numpy(), rtol=1e-12)
    assert [n for n, _ in ours.named_buffers()] == ["running_mean", "running_var"]
    ours.eval()
    ref.eval()
    x = rng.standard_normal(shape)
    np.testing.assert_allclose(
        ours(sg.Tensor(x)).data, ref(_t(x)).detach().numpy(), rtol=1e-12, atol=1e-12
    )
    with pytest.raises(ValueError, match=r"BatchNorm1d\(4\)"):
        ours(sg.Tensor(np.ones((2, 3))))


def test_layernorm_matches_pytorch() -> None:
    ours = nn.LayerNorm(6, dtype="float64")
    ref = torch.nn.LayerNorm(6).double()
    rng = np.random.default_rng(5)
    assert ours.weight is not None and ours.bias is not None
    ours.weight.data = rng.standard_normal(6)
    ours.bias.data = rng.standard_normal(6)
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(ours.weight.data))
        ref.bias.copy_(torch.tensor(ours.bias.data))
    x = rng.standard_normal((2, 3, 6))
    xs, xt = sg.Tensor(x, requires_grad=True), _t(x, grad=True)
    out, want = ours(xs), ref(xt)
    np.testing.assert_allclose(out.data, want.detach().numpy(), rtol=1e-10, atol=1e-12)
    (out.tanh()).sum().backward()
    (want.tanh()).sum().backward()
    np.testing.assert_allclose(xs.grad, xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.weight.grad, ref.weight.grad.numpy(), rtol=1e-10)


def test_embedding_and_activations() -> None:
    emb = nn.Embedding(27, 3, generator=sg.Generator().manual_seed(1), dtype="float64")
    idx = np.array([[1, 2], [26, 0]])
    out = emb(sg.Tensor(idx))
    np.testing.assert_array_equal(out.data, emb.weight.data[idx])
    x = sg.Tensor(np.array([-1.0, 0.5]))
    np.testing.assert_allclose(nn.ReLU()(x).data, [0.0, 0.5])
    np.testing.assert_allclose(nn.Tanh()(x).data, np.tanh([-1.0, 0.5]))
    np.testing.assert_allclose(nn.Sigmoid()(x).data, 1 / (1 + np.exp([1.0, -0.5])))
    assert nn.Identity()(x) is x
    f = nn.Flatten()(sg.Tensor(np.zeros((2, 3, 4))))
    assert f.shape == (2, 12)
    loss = nn.CrossEntropyLoss()(sg.Tensor(np.zeros((2, 3))), np.array([0, 2]))
    assert loss.item() == pytest.approx(np.log(3))


def test_dropout_modes() -> None:
    drop = nn.Dropout(0.25, generator=sg.Generator().manual_seed(2))
    x = sg.Tensor(np.ones((200, 50)))
    y = drop(x).data
    assert set(np.unique(y)) == {0.0, 1 / 0.75}
    assert abs((y == 0).mean() - 0.25) < 0.02
    drop.eval()
    assert drop(x) is x
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        nn.Dropout(1.5)


def test_makemore_style_model_matches_pytorch() -> None:
    """Embedding -> Flatten -> Linear -> BatchNorm1d -> Tanh -> Linear, cross-entropy, three
    SGD steps: the same losses and weights as PyTorch from the same initial weights."""
    g = sg.Generator().manual_seed(7)
    ours = nn.Sequential(
        nn.Embedding(27, 4, generator=g, dtype="float64"),
        nn.Flatten(),
        nn.Linear(12, 16, bias=False, generator=g, dtype="float64"),
        nn.BatchNorm1d(16, dtype="float64"),
        nn.Tanh(),
        nn.Linear(16, 27, generator=g, dtype="float64"),
    )
    ref = torch.nn.Sequential(
        torch.nn.Embedding(27, 4),
        torch.nn.Flatten(),
        torch.nn.Linear(12, 16, bias=False),
        torch.nn.BatchNorm1d(16),
        torch.nn.Tanh(),
        torch.nn.Linear(16, 27),
    ).double()
    with torch.no_grad():
        for (n1, p1), (n2, p2) in zip(ours.named_parameters(), ref.named_parameters(), strict=True):
            assert n1 == n2
            p2.copy_(torch.tensor(p1.data))
    rng = np.random.default_rng(0)
    opt = sg.optim.SGD(ours.parameters(), lr=0.1)
    topt = torch.optim.SGD(ref.parameters(), lr=0.1)
    for _ in range(3):
        X = rng.integers(0, 27, (32, 3))
        Y = rng.integers(0, 27, 32)
        loss = sg.cross_entropy(ours(sg.Tensor(X)), Y)
        tloss = torch.nn.functional.cross_entropy(ref(torch.tensor(X)), torch.tensor(Y))
        assert loss.item() == pytest.approx(tloss.item(), rel=1e-12)
        opt.zero_grad()
        topt.zero_grad()
        loss.backward()
        tloss.backward()
        opt.step()
        topt.step()
    for p1, p2 in zip(ours.parameters(), ref.parameters(), strict=True):
        np.testing.assert_allclose(p1.data, p2.detach().numpy(), rtol=1e-10, atol=1e-13)
    bn = ours[3]
    np.testing.assert_allclose(bn.running_var.data, ref[3].running_var.numpy(), rtol=1e-12)
