"""Gradients of gradients: ``grad`` returns graph nodes, so it can be applied again."""

from __future__ import annotations

import numpy as np
import pytest

from symgrad.autodiff.vjp import grad, unbroadcast, vjp
from symgrad.ir import FLOAT64
from symgrad.ir.errors import ShapeError
from symgrad.ir.graph import evaluate
from symgrad.ir.opdef import apply
from symgrad.ops import api
from symgrad.ops.source import make_input

X = np.array([-1.7, -0.6, 0.0, 0.3, 1.1, 2.2])


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _sech2(x):
    return 1 / np.cosh(x) ** 2


CASES = {
    # name: (f as nodes, f'' by hand)
    "tanh(x)*x^3": (
        lambda x: apply("tanh", (x,)) * x**3.0,
        lambda x: -2 * _sech2(x) * np.tanh(x) * x**3 + 6 * x**2 * _sech2(x) + 6 * x * np.tanh(x),
    ),
    "sigmoid(x)": (
        lambda x: apply("sigmoid", (x,)),
        lambda x: _sigmoid(x) * (1 - _sigmoid(x)) * (1 - 2 * _sigmoid(x)),
    ),
    "x*exp(x)": (lambda x: x * apply("exp", (x,)), lambda x: (x + 2) * np.exp(x)),
    "log(1+x^2)": (
        lambda x: apply("log", (1.0 + x * x,)),
        lambda x: 2 * (1 - x**2) / (1 + x**2) ** 2,
    ),
    "sqrt(1+x^2)": (
        lambda x: apply("sqrt", (1.0 + x * x,)),
        lambda x: (1 + x**2) ** -1.5,
    ),
    "1/(2+x)": (lambda x: 1.0 / (2.0 + x), lambda x: 2 / (2 + x) ** 3),
    "x^2.5 of softplus": (
        lambda x: apply("log", (1.0 + apply("exp", (x,)),)) ** 2.5,
        None,  # checked against differences only
    ),
}


def _second_derivative(f):
    """d2/dx2 of the elementwise f on a vector: grad of sum(grad of sum(f))."""
    x = make_input((len(X),), "float64", name="x")
    (d1,) = grad(api.sum(f(x)), [x])
    (d2,) = grad(api.sum(d1), [x])  # f is elementwise: the Hessian is diagonal
    return x, d1, d2


@pytest.mark.parametrize("name", sorted(CASES))
def test_second_derivative_of_elementwise_functions(name):
    f, f2 = CASES[name]
    x, d1, d2 = _second_derivative(f)
    assert d1.shape == d2.shape == x.shape
    assert d2.dtype is FLOAT64
    (v2,) = evaluate([d2], {x: X})
    # differences of the first derivative, evaluated by symgrad itself
    eps = 1e-5
    (hi,) = evaluate([d1], {x: X + eps})
    (lo,) = evaluate([d1], {x: X - eps})
    np.testing.assert_allclose(v2, (hi - lo) / (2 * eps), rtol=1e-6, atol=1e-8)
    if f2 is not None:
        np.testing.assert_allclose(v2, f2(X), rtol=1e-10, atol=1e-12)


def test_first_derivatives_by_hand():
    f, _ = CASES["tanh(x)*x^3"]
    x, d1, _ = _second_derivative(f)
    (v1,) = evaluate([d1], {x: X})
    np.testing.assert_allclose(v1, _sech2(X) * X**3 + 3 * X**2 * np.tanh(X), rtol=1e-12)


def test_third_derivative_of_x_exp_x():
    x = make_input((len(X),), "float64", name="x")
    y = api.sum(x * apply("exp", (x,)))
    d = y
    for _ in range(3):
        (d,) = grad(d, [x])
        d = api.sum(d)
    (gx,) = grad(api.sum(grad(api.sum(grad(y, [x])[0]), [x])[0]), [x])
    v, vg = evaluate([d, gx], {x: X})
    np.testing.assert_allclose(vg, (X + 3) * np.exp(X), rtol=1e-12)
    assert v == pytest.approx(np.sum((X + 3) * np.exp(X)), rel=1e-12)


def test_mixed_partials_are_symmetric():
    x = make_input((), "float64", name="x")
    y = make_input((), "float64", name="y")
    f = x * x * y**3.0 + apply("tanh", (x * y,))
    gx, gy = grad(f, [x, y])
    (gxy,) = grad(gx, [y])
    (gyx,) = grad(gy, [x])
    env = {x: np.asarray(0.7), y: np.asarray(-1.3)}
    vxy, vyx = evaluate([gxy, gyx], env)
    xv, yv = 0.7, -1.3
    t = np.tanh(xv * yv)
    want = 6 * xv * yv**2 + (1 - t**2) - 2 * xv * yv * t * (1 - t**2)
    assert float(vxy) == pytest.approx(want, rel=1e-12)
    assert float(vyx) == pytest.approx(want, rel=1e-12)


def test_hessian_vector_product_of_a_quadratic_form():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((4, 4))
    a = make_input((4, 4), "float64", name="A")
    x = make_input((4,), "float64", name="x")
    v = make_input((4,), "float64", name="v")
    f = api.sum(x * api.matmul(a, x))  # x^T A x: Hessian A + A^T
    (g,) = grad(f, [x])
    (hv,) = grad(api.sum(g * v), [x])
    xv, vv = rng.standard_normal(4), rng.standard_normal(4)
    (out,) = evaluate([hv], {a: A, x: xv, v: vv})
    np.testing.assert_allclose(out, (A + A.T) @ vv, rtol=1e-12)


def test_second_derivative_through_softmax_cross_entropy():
    """d2/dlogits2 of logsumexp is diag(p) - p p^T (checked as a Hessian-vector product)."""
    z = make_input((5,), "float64", name="z")
    v = make_input((5,), "float64", name="v")
    (g,) = grad(api.logsumexp(z, axis=0), [z])
    (hv,) = grad(api.sum(g * v), [z])
    zv = np.array([0.3, -1.0, 2.0, 0.0, 1000.0])
    vv = np.array([1.0, 2.0, -1.0, 0.5, 0.25])
    (out,) = evaluate([hv], {z: zv, v: vv})
    p = np.exp(zv - zv.max())
    p /= p.sum()
    np.testing.assert_allclose(out, p * vv - p * (p @ vv), rtol=1e-10, atol=1e-12)


def test_grad_of_an_independent_input_is_zeros():
    x = make_input((3,), "float64", name="x")
    y = make_input((2, 2), "float64", name="y")
    gx, gy = grad(api.sum(x * 2.0), [x, y])
    vx, vy = evaluate([gx, gy], {x: np.ones(3), y: np.ones((2, 2))})
    np.testing.assert_array_equal(vx, [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(vy, np.zeros((2, 2)))
    # a constant derivative: the second derivative is a symbolic zero
    assert vjp([gx], [make_input((3,), "float64", name="g")], [x]) == [None]


def test_grad_needs_a_scalar():
    x = make_input((3,), "float64", name="x")
    with pytest.raises(ShapeError, match="scalar"):
        grad(x * 2.0, [x])


def test_unbroadcast():
    g = make_input((2, 3, 4), "float64", name="g")
    assert unbroadcast(g, (2, 3, 4)) is g
    for shape in [(3, 4), (4,), (3, 1), (1, 1, 4), (2, 1, 1), ()]:
        r = unbroadcast(g, shape)
        assert r.shape == shape
        gv = np.arange(24.0).reshape(2, 3, 4)
        (val,) = evaluate([r], {g: gv})
        lead = gv.ndim - len(shape)
        want = gv.sum(axis=tuple(range(lead)))
        want = want.sum(axis=tuple(i for i, d in enumerate(shape) if d == 1), keepdims=True)
        np.testing.assert_array_equal(val, want.reshape(shape))
    s = make_input((), "float64", name="s")
    up = unbroadcast(s, (2, 2))  # a scalar cotangent for a larger input is broadcast up
    np.testing.assert_array_equal(evaluate([up], {s: np.asarray(3.0)})[0], np.full((2, 2), 3.0))
    with pytest.raises(ShapeError):
        unbroadcast(g, (5, 4))


def test_vjp_sums_cotangents_of_a_node_used_many_times():
    x = make_input((2,), "float64", name="x")
    y = x * x + x * 3.0 + apply("exp", (x,))
    (gx,) = grad(api.sum(y), [x])
    xv = np.array([0.5, -1.0])
    (val,) = evaluate([gx], {x: xv})
    np.testing.assert_allclose(val, 2 * xv + 3 + np.exp(xv), rtol=1e-12)


def test_vjp_with_several_outputs_and_all_nodes():
    x = make_input((2,), "float64", name="x")
    a = apply("exp", (x,))
    b = x * 2.0
    ga = make_input((2,), "float64", name="ga")
    gb = make_input((2,), "float64", name="gb")
    (gx,) = vjp([a, b], [ga, gb], [x])
    xv, gav, gbv = np.array([0.1, 0.2]), np.array([1.0, -1.0]), np.array([3.0, 4.0])
    (val,) = evaluate([gx], {x: xv, ga: gav, gb: gbv})
    np.testing.assert_allclose(val, gav * np.exp(xv) + 2 * gbv, rtol=1e-12)
    every = vjp([a, b], [ga, gb], [x], all_nodes=True)
    assert isinstance(every, dict) and id(a) in every and id(x) in every
