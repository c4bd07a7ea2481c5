"""symgrad.nn.module: parameters found recursively, buffers, modes, zero_grad, state_dict."""

from __future__ import annotations

import numpy as np
import pytest

import symgrad as sg
from symgrad import nn


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.ln = nn.LayerNorm(4, dtype="float64")
        self.fc = nn.Linear(4, 4, dtype="float64")

    def forward(self, x: sg.Tensor) -> sg.Tensor:
        return self.fc(self.ln(x)).relu()


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(10, 4, dtype="float64")
        self.blocks = nn.Sequential(Block(), Block())
        self.heads = nn.ModuleList([nn.Linear(4, 2, dtype="float64")])
        self.register_buffer("mask", sg.Tensor(np.ones(4)))
        self.drop = nn.Dropout(0.1)

    def forward(self, idx: sg.Tensor) -> sg.Tensor:
        return self.heads[0](self.drop(self.blocks(self.emb(idx))))


def test_named_parameters_follow_pytorch_names_and_order() -> None:
    torch = pytest.importorskip("torch")
    tnn = torch.nn

    class TBlock(tnn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ln = tnn.LayerNorm(4)
            self.fc = tnn.Linear(4, 4)

    class TNet(tnn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = tnn.Embedding(10, 4)
            self.blocks = tnn.Sequential(TBlock(), TBlock())
            self.heads = tnn.ModuleList([tnn.Linear(4, 2)])
            self.register_buffer("mask", torch.ones(4))
            self.drop = tnn.Dropout(0.1)

    ours, theirs = Net(), TNet()
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [tuple(p.shape) for p in ours.parameters()] == [
        tuple(p.shape) for p in theirs.parameters()
    ]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert ours.num_parameters() == sum(p.numel() for p in theirs.parameters())


def test_plain_lists_of_layers_and_shared_weights() -> None:
    class Tied(nn.Module):
        def __init__(self) -> None:
            self.layers = [nn.Linear(3, 3, dtype="float64"), nn.Tanh()]
            self.out = nn.Linear(3, 3, dtype="float64")
            self.out.weight = self.layers[0].weight  # tied: listed once
            self.scale = sg.Tensor(np.ones(3), requires_grad=True)
            self.extra = [sg.Tensor(np.ones(2), requires_grad=True)]

    m = Tied()
    names = [n for n, _ in m.named_parameters()]
    assert names == ["scale", "extra.0", "layers.0.weight", "layers.0.bias", "out.bias"]


def test_train_eval_and_zero_grad() -> None:
    net = Net()
    assert net.training and net.drop.training
    assert net.eval() is net and not net.drop.training and not net.blocks[1].fc.training
    net.train()
    assert net.blocks[0].ln.training
    net.eval()
    out = net(sg.Tensor(np.array([1, 2, 3])))
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(np.all(p.grad == 0) for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_state_dict_round_trip() -> None:
    a, b = Net(), Net()
    b.load_state_dict(a.state_dict())
    x = sg.Tensor(np.array([4, 5]))
    a.eval()
    b.eval()
    np.testing.assert_array_equal(a(x).data, b(x).data)
    with pytest.raises(KeyError, match="missing"):
        b.load_state_dict({})


def test_micrograd_modules_keep_working() -> None:
    import random

    random.seed(1)
    mlp = nn.MLP(3, [4, 4, 1])
    assert len(mlp.parameters()) == 41
    assert len(list(mlp.named_parameters())) == 41
    out = mlp([sg.Value(1.0), sg.Value(-2.0), sg.Value(0.5)])
    out.backward()
    assert any(p.grad != 0 for p in mlp.parameters())
    mlp.zero_grad()
    assert all(p.grad == 0 for p in mlp.parameters())


def test_parameter_and_register_buffer_errors() -> None:
    p = nn.Parameter(sg.Tensor(np.ones(2)))
    assert p.requires_grad and p.is_leaf
    m = nn.Module()
    with pytest.raises(TypeError, match="Tensor"):
        m.register_buffer("x", np.ones(2))  # type: ignore[arg-type]
    with pytest.raises(NotImplementedError, match="forward"):
        m(1)


def test_load_state_dict_strict_false_skips_and_reports_missing_names() -> None:
    bn = nn.BatchNorm1d(3, dtype="float64")
    state = {"weight": np.full(3, 2.0), "other": np.zeros(1)}
    with pytest.raises(KeyError, match="missing"):
        bn.load_state_dict(state)
    keys = bn.load_state_dict(state, strict=False)
    assert keys.missing_keys == ["bias", "running_mean", "running_var"]
    assert keys.unexpected_keys == ["other"]
    np.testing.assert_array_equal(bn.weight.numpy(), np.full(3, 2.0))
    assert bn.running_mean.label == "running_mean" and bn.running_var.label == "running_var"
