"""Numerical hazards behave like NumPy and PyTorch on every path (eager, compiled NumPy,
compiled C): IEEE results for log(0), exp overflow and division by zero, no warnings, stable
composites that never overflow; float32 models stay float32 end to end and their gradients
match the float64 reference within the documented tolerance (docs/reliability.md, "Numerics").
"""

from __future__ import annotations

import functools
import operator
import re
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import symgrad as sg
from symgrad import Spec, Tensor
from tests.reliability.conftest import BACKENDS

#: the documented float32 tolerance: max |g32 - g64| <= F32_RTOL * max |g64| (and the same for
#: the loss), for models of up to a few thousand operations with O(1) values
F32_RTOL = 1e-5

INF, NAN = np.inf, np.nan


@pytest.fixture(autouse=True)
def _no_warnings() -> Iterator[None]:
    # PyTorch does not warn on log(0) or 1/0, and neither does symgrad (NumPy would)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# (name, function of one tensor, input, expected value, expected gradient of sum)
HAZARDS: list[tuple[str, Callable[[Any], Any], list[float], list[float], list[float]]] = [
    ("log(0)", lambda x: x.log(), [0.0, 1.0], [-INF, 0.0], [INF, 1.0]),
    ("log(<0)", lambda x: x.log(), [-1.0], [NAN], [-1.0]),
    ("exp-overflow", lambda x: x.exp(), [1000.0, -1000.0], [INF, 0.0], [INF, 0.0]),
    ("div-by-zero", lambda x: 1.0 / x, [0.0, -0.0], [INF, -INF], [-INF, -INF]),
    ("zero-by-zero", lambda x: x / x, [0.0], [NAN], [NAN]),
    ("sqrt(0)", lambda x: x.sqrt(), [0.0, 4.0], [0.0, 2.0], [INF, 0.25]),
    ("sqrt(<0)", lambda x: x.sqrt(), [-1.0], [NAN], [NAN]),
    ("tanh-saturates", lambda x: x.tanh(), [1000.0, -1000.0], [1.0, -1.0], [0.0, 0.0]),
    ("sigmoid-stable", lambda x: x.sigmoid(), [1000.0, -1000.0], [1.0, 0.0], [0.0, 0.0]),
    ("relu-at-0", lambda x: x.relu(), [0.0, 1.0], [0.0, 1.0], [0.0, 1.0]),
    ("pow-0^-1", lambda x: x**-1.0, [0.0], [INF], [-INF]),
    ("nan-propagates", lambda x: x * 2.0, [NAN], [NAN], [2.0]),
]


def _assert_ieee_equal(got: Any, want: Any) -> None:
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    ok = ~np.isnan(want)
    np.testing.assert_allclose(got[ok], want[ok], rtol=1e-6)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(
    ("fn", "x", "value", "grad"), [pytest.param(*h[1:], id=h[0]) for h in HAZARDS]
)
def test_hazards_eagerly(
    fn: Callable[[Any], Any], x: list[float], value: list[float], grad: list[float], dtype: str
) -> None:
    t = Tensor(np.array(x, dtype=dtype), requires_grad=True)
    y = fn(t)
    _assert_ieee_equal(y.data, value)
    assert y.data.dtype == np.dtype(dtype)
    y.sum().backward()
    _assert_ieee_equal(t.grad, grad)
    assert t.grad.dtype == np.dtype(dtype)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_hazards_compiled(backend: str, dtype: str) -> None:
    fns = [h[1] for h in HAZARDS]
    specs = [Spec((len(h[2]),), dtype) for h in HAZARDS]
    xs = [np.array(h[2], dtype=dtype) for h in HAZARDS]

    def values(*vs: Any) -> tuple[Any, ...]:
        return tuple(fn(v) for fn, v in zip(fns, vs, strict=True))

    def total(*vs: Any) -> Any:
        # the sum of every hazard's sum: the gradient for each input is its own hazard's
        return functools.reduce(operator.add, (fn(v).sum() for fn, v in zip(fns, vs, strict=True)))

    got = sg.compile(values, *specs, backend=backend)(*xs)
    _, grads = sg.compile(total, *specs, wrt=list(range(len(xs))), backend=backend)(*xs)
    for (name, _, _, value, grad), y, g in zip(HAZARDS, got, grads, strict=True):
        assert y.dtype == np.dtype(dtype) and g.dtype == np.dtype(dtype), name
        _assert_ieee_equal(y, value)
        _assert_ieee_equal(g, grad)


# -- stable composites -------------------------------------------------------------------------

LOGITS = np.array([[1000.0, 0.0, -1000.0], [-1000.0, -1000.0, -1000.0], [88.0, 89.0, 90.0]])


def _composites(x: Any) -> tuple[Any, ...]:
    y = np.array([0, 1, 2])
    return (
        sg.softmax(x, -1),
        sg.log_softmax(x, -1),
        sg.logsumexp(x, -1),
        sg.cross_entropy(x, y),
    )


def _reference(x: np.ndarray) -> tuple[np.ndarray, ...]:
    """Stable float64 references, as torch.softmax/log_softmax/logsumexp/cross_entropy give."""
    m = x.max(-1, keepdims=True)
    lse = np.log(np.exp(x - m).sum(-1, keepdims=True)) + m
    logp = x - lse
    return np.exp(logp), logp, lse[:, 0], -logp[np.arange(3), [0, 1, 2]].mean()


@pytest.mark.parametrize("backend", ["eager", *BACKENDS])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_composites_never_overflow(backend: str, dtype: str) -> None:
    x = LOGITS.astype(dtype)
    if backend == "eager":
        got = [t.data for t in _composites(Tensor(x))]
    else:
        got = list(sg.compile(_composites, Spec((3, 3), dtype), backend=backend)(x))
    tol = 1e-12 if dtype == "float64" else 1e-6
    for g, want in zip(got, _reference(LOGITS), strict=True):
        assert np.all(np.isfinite(g)) and np.asarray(g).dtype == np.dtype(dtype)
        np.testing.assert_allclose(g, want, rtol=tol, atol=tol)
    probs = got[0]
    assert probs[0].tolist() == [1.0, 0.0, 0.0]  # exactly, as in PyTorch
    np.testing.assert_allclose(probs[1], [1 / 3] * 3, rtol=tol)


@pytest.mark.parametrize("backend", ["eager", *BACKENDS])
@pytest.mark.parametrize("target", [0, 2])
def test_cross_entropy_with_extreme_logits_has_finite_gradients(backend: str, target: int) -> None:
    x = np.array([[1000.0, 0.0, -1000.0]])
    y = np.array([target])
    if backend == "eager":
        t = Tensor(x, requires_grad=True)
        loss_t = sg.cross_entropy(t, y)
        loss_t.backward()
        loss, grad = loss_t.item(), t.grad
    else:
        f = sg.compile(sg.cross_entropy, Spec((1, 3)), Spec((1,), "int64"), wrt=0, backend=backend)
        loss, (grad,) = f(x, y)
    assert loss == (0.0 if target == 0 else 2000.0)  # exactly -log_softmax[target]
    want = np.array([[1.0, 0.0, 0.0]]) - np.eye(3)[[target]]  # softmax - one_hot
    np.testing.assert_array_equal(grad, want)


# -- float32 end to end ----------------------------------------------------------------------


def _mlp(x: Any, w1: Any, b1: Any, w2: Any, y: Any) -> Any:
    h = (x @ w1 + b1).tanh()
    logits = h @ w2
    return sg.cross_entropy(logits, y) + 1e-3 * (w1 * w1).mean() + sg.sigmoid(h).mean() * 0.5


def _specs(dtype: str) -> list[Spec]:
    return [Spec(("n", 6), dtype), Spec((6, 16), dtype), Spec((16,), dtype), Spec((16, 4), dtype)]


def _data(rng: np.random.Generator) -> list[np.ndarray]:
    return [
        rng.standard_normal((32, 6)),
        rng.standard_normal((6, 16)) * 0.5,
        rng.standard_normal(16) * 0.1,
        rng.standard_normal((16, 4)) * 0.5,
    ]


@pytest.mark.parametrize("backend", BACKENDS)
def test_float32_stays_float32_in_generated_code(backend: str) -> None:
    f = sg.compile(_mlp, *_specs("float32"), Spec(("n",), "int64"), wrt=[1, 2, 3], backend=backend)
    src = f.source("all")
    generated = src if backend == "numpy" else f.source("forward") + f.source("backward")
    forbidden = r"float64|\bdouble\b" if backend == "c" else r"float64|astype\(np\.float"
    assert not re.search(forbidden, generated), re.findall(rf".*(?:{forbidden}).*", generated)[:5]
    rng = np.random.default_rng(1)
    arrays = [a.astype(np.float32) for a in _data(rng)]
    loss, grads = f(*arrays, rng.integers(0, 4, 32))
    assert np.asarray(loss).dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads)
    for node in f.graph.order:  # and no float64 value anywhere in the graph
        assert node.dtype.name != "float64", node


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_float32_gradients_match_the_float64_reference(backend: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    data = _data(rng)
    y = rng.integers(0, 4, 32)
    f64 = sg.compile(
        _mlp, *_specs("float64"), Spec(("n",), "int64"), wrt=[1, 2, 3], backend=backend
    )
    f32 = sg.compile(
        _mlp, *_specs("float32"), Spec(("n",), "int64"), wrt=[1, 2, 3], backend=backend
    )
    l64, g64 = f64(*data, y)
    l32, g32 = f32(*[a.astype(np.float32) for a in data], y)
    assert abs(float(l32) - float(l64)) <= F32_RTOL * abs(float(l64))
    for a, b in zip(g32, g64, strict=True):
        assert np.abs(a.astype(np.float64) - b).max() <= F32_RTOL * np.abs(b).max()


def test_eager_float32_stays_float32() -> None:
    w = Tensor(np.ones((3, 2), dtype=np.float32), requires_grad=True)
    x = Tensor(np.ones((4, 3), dtype=np.float32))
    loss = sg.cross_entropy((x @ w * 0.5 + 1.0).tanh(), np.array([0, 1, 1, 0])) / 3.0
    assert loss.dtype == sg.FLOAT32 and loss.data.dtype == np.float32
    loss.backward()
    assert w.grad.dtype == np.float32
