"""``symgrad.compile(..., check_finite=True)``: NaN/inf in inputs are refused, and a non-finite
output or gradient names the first node that produced a non-finite value from finite inputs,
with its op and the user's file:line (docs/reliability.md, "check_finite")."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pytest

import symgrad as sg
from symgrad import Spec
from tests.reliability.conftest import BACKENDS

LOG_LINE = 0


def model(x: Any, w: Any) -> Any:
    h = (x @ w).tanh()
    global LOG_LINE
    LOG_LINE = sys._getframe().f_lineno + 1
    z = h.log()  # nan where h < 0
    return (z * z).sum()


X = np.array([[1.0, 2.0], [0.5, -1.0]])
W = np.eye(2)


@pytest.mark.parametrize("backend", BACKENDS)
def test_finite_calls_are_unchanged(backend: str) -> None:
    f = sg.compile(model, Spec(("n", 2)), Spec((2, 2)), wrt=1, backend=backend, check_finite=True)
    g = sg.compile(model, Spec(("n", 2)), Spec((2, 2)), wrt=1, backend=backend)
    x = np.abs(X)
    out, (gw,) = f(x, W)
    want, (want_gw,) = g(x, W)
    assert out == want and np.array_equal(gw, want_gw)
    assert f.check_finite and not g.check_finite


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_nan_output_names_the_node_that_made_it(backend: str) -> None:
    f = sg.compile(model, Spec(("n", 2)), Spec((2, 2)), wrt=1, backend=backend, check_finite=True)
    with pytest.raises(sg.NonFiniteError) as info:
        f(X, W)
    err = info.value
    msg = str(err)
    assert "the output is not finite (nan)" in msg
    assert "produced by log" in msg and "nan at index [1, 1]" in msg
    assert err.origin == "log"
    assert err.provenance is not None and err.provenance.line == LOG_LINE
    assert f"{err.provenance.file}:{LOG_LINE}: z = h.log()" in msg
    assert isinstance(err, FloatingPointError)
    # without the check the same call silently returns nan, like NumPy
    plain = sg.compile(model, Spec(("n", 2)), Spec((2, 2)), wrt=1, backend=backend)
    assert np.isnan(plain(X, W)[0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_non_finite_gradient_names_the_backward_rule(backend: str) -> None:
    def f(x: Any) -> Any:
        return (x.sqrt() * 0.0).sum()  # the value is 0, the gradient at 0 is 0 * inf = nan

    line = f.__code__.co_firstlineno + 1
    cf = sg.compile(f, Spec((3,)), wrt=0, backend=backend, check_finite=True)
    out, (g,) = cf(np.array([1.0, 4.0, 9.0]))
    assert out == 0.0 and np.array_equal(g, [0.0, 0.0, 0.0])
    with pytest.raises(sg.NonFiniteError) as info:
        cf(np.array([1.0, 0.0, 9.0]))
    msg = str(info.value)
    assert "the gradient with respect to x is not finite (nan at index [1])" in msg
    assert "in the backward pass (vjp sqrt)" in msg
    prov = info.value.provenance
    assert prov is not None and prov.line == line and prov.via == "vjp sqrt"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("bad", "word"), [(np.nan, "nan"), (np.inf, "inf"), (-np.inf, "-inf")])
def test_non_finite_inputs_are_named(backend: str, bad: float, word: str) -> None:
    f = sg.compile(model, Spec(("n", 2)), Spec((2, 2)), wrt=1, backend=backend, check_finite=True)
    x = np.abs(X)
    x[1, 0] = bad
    with pytest.raises(
        sg.NonFiniteError, match=rf"input x is not finite \({word} at index \[1, 0\]\)"
    ):
        f(x, W)
    f(np.abs(X), W)  # a finite call after a refused one works


def test_captured_parameters_are_checked_too() -> None:
    w = sg.Tensor(np.eye(2), requires_grad=True, label="w")
    f = sg.compile(lambda x: (x @ w).sum(), Spec((2,)), wrt=[w], check_finite=True)
    f(np.ones(2))
    w.data[0, 1] = np.inf
    with pytest.raises(sg.NonFiniteError, match=r"captured tensor w is not finite \(inf at"):
        f(np.ones(2))


def test_several_outputs_and_the_first_origin_in_order() -> None:
    def two(x: Any) -> Any:
        a = x.exp()  # overflows to inf for x = 1000
        b = a - a  # inf - inf = nan: downstream of the origin
        return x * 2.0, b.sum()

    line = two.__code__.co_firstlineno + 1
    f = sg.compile(two, Spec((2,)), backend="numpy", check_finite=True)
    _, s = f(np.array([1.0, 2.0]))
    assert s == 0.0
    with pytest.raises(sg.NonFiniteError) as info:
        f(np.array([1.0, 1000.0]))
    assert "output 1 is not finite (nan)" in str(info.value)
    assert info.value.origin == "exp"  # not sub, where the nan appears
    assert info.value.provenance is not None and info.value.provenance.line == line


def test_masked_non_finite_values_are_not_reported() -> None:
    # log(x) is -inf/nan where x <= 0, but where() discards those values: the output is finite
    f = sg.compile(
        lambda x: sg.where(x > 0, x.log(), 0.0).sum(),
        Spec((3,)),
        backend="numpy",
        check_finite=True,
    )
    assert f(np.array([1.0, 0.0, -1.0])) == 0.0


def test_integer_and_bool_arrays_are_not_checked() -> None:
    f = sg.compile(
        lambda x, i: x[i].sum(), Spec((3,)), Spec((2,), "int64"), backend="numpy", check_finite=True
    )
    assert f(np.array([1.0, 2.0, 3.0]), np.array([0, 2])) == 4.0
