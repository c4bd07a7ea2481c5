"""symgrad.frontend.trace_state: every trace puts the user's objects back; module state a plain
trace would drop is named in a warning."""

from __future__ import annotations

import tempfile

import numpy as np
import pytest

import symgrad as sg
from symgrad import nn


class Cache:
    def __init__(self) -> None:
        self.w = sg.Tensor(np.ones(3), requires_grad=True)

    def __call__(self, x: sg.Tensor) -> sg.Tensor:
        self.out = x * self.w  # the makemore layers keep their output for plots
        return self.out


def test_a_trace_leaves_no_traced_tensor_in_the_model() -> None:
    layer = Cache()
    f = sg.compile(lambda x: layer(x).sum(), sg.Spec((3,)), backend="numpy")
    assert not hasattr(layer, "out")
    assert f(np.ones(3)) == pytest.approx(3.0)
    layer(sg.Tensor(np.ones(3)))  # eager use afterwards is plain eager
    assert layer.out._data is not None
    sg.trace(lambda x: layer(x).sum(), sg.Spec((3,)))
    assert layer.out._data is not None  # the eager value from before, put back


def test_training_mode_batchnorm_in_a_plain_trace_warns_and_exports() -> None:
    model = nn.Sequential(nn.Linear(3, 4, rng=0), nn.BatchNorm1d(4, dtype="float64"))
    before = model[1].running_mean
    both = r"BatchNorm1d\.running_mean, BatchNorm1d\.running_var.*compile_step"
    with pytest.warns(UserWarning, match=both):
        sg.compile(lambda x: model(x).sum(), sg.Spec((5, 3)), backend="numpy")
    assert model[1].running_mean is before and before._data is not None
    with tempfile.TemporaryDirectory() as tmp, pytest.warns(UserWarning, match="put back"):
        sg.export(model, tmp, sg.Spec((5, 3)), name="bn")  # (it said: "not among its inputs")
    model.eval()
    with tempfile.TemporaryDirectory() as tmp:
        sg.export(model, tmp, sg.Spec(("n", 3)), name="bn")
