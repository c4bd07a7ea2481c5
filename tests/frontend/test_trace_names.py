"""Captured parameters are named after where they sit in the user's objects."""

from __future__ import annotations

import numpy as np

import symgrad as sg
from symgrad.frontend.trace import trace


class _Layer:
    def __init__(self, nin: int, nout: int) -> None:
        self.w = sg.Tensor(np.ones((nin, nout)), requires_grad=True)
        self.b = sg.Tensor(np.zeros(nout), requires_grad=True)

    def __call__(self, x):  # type: ignore[no-untyped-def]
        return (x @ self.w + self.b).tanh()  # LAYER_LINE


class _Net:
    def __init__(self) -> None:
        self.layers = [_Layer(3, 4), _Layer(4, 1)]

    def __call__(self, x):  # type: ignore[no-untyped-def]
        for layer in self.layers:
            x = layer(x)
        return x


model = _Net()
fc1 = _Layer(3, 2)


def loss(x):  # type: ignore[no-untyped-def]
    return model(x).sum()


def test_parameters_named_after_their_module_path() -> None:
    # before: p0 ... p3 (unlabelled tensors)
    g = trace(loss, sg.Spec(("n", 3)))
    assert list(g.input_names) == ["x", "layers_0_w", "layers_0_b", "layers_1_w", "layers_1_b"]


def test_one_level_keeps_the_root_name() -> None:
    g = trace(lambda x: fc1(x).sum(), sg.Spec(("n", 3)))
    assert list(g.input_names) == ["x", "fc1_w", "fc1_b"]


def test_nodes_record_the_module_path() -> None:
    g = trace(loss, sg.Spec(("n", 3)))
    mods = {n.provenance.module for n in g.order if n.op == "tanh" and n.provenance}
    assert mods == {"model.layers[0]", "model.layers[1]"}
    f = sg.compile(loss, sg.Spec(("n", 3)), backend="numpy", opt=1)
    assert "[model.layers[1]]" in f.source("forward")


def test_unlabelled_leaves_outside_any_object_fall_back() -> None:
    t = sg.Tensor(np.ones(3), requires_grad=True)

    def h(x):  # type: ignore[no-untyped-def]
        return (x * t).sum()

    g = trace(h, sg.Spec((3,)))
    assert list(g.input_names) == ["x", "t"]  # the closure cell's name
