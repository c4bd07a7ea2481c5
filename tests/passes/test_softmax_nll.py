"""Level 2 fuses softmax + pair-indexed NLL (forward and backward) into ``softmax_nll`` /
``softmax_nll_grad``, does row-wise work on gathered rows once per row, and keeps the values:
each form alone, the pass alone, the rules alone, special values, range errors, and random
logits (Hypothesis)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import symgrad as sg
from symgrad.autodiff.joint import split
from symgrad.ir.graph import Graph, evaluate
from symgrad.ir.opdef import apply, registry
from symgrad.ops import api
from symgrad.ops.source import make_input
from symgrad.passes import optimize, softmax_nll
from symgrad.passes.canonical import commutative_rule, structural_keys
from symgrad.passes.fold import fold
from symgrad.passes.rewrite import rewrite
from symgrad.passes.simplify import RULES as SIMPLIFY
from tests.test_bigram_training import loss_fn as bigram_loss
from tests.test_bigram_training import reference_step

BACKENDS = ["numpy", pytest.param("c", marks=pytest.mark.cc)]
C = 5


def _ar(z: sg.Tensor) -> sg.Tensor:
    return sg.arange(z.shape[0])


def _probs(z: sg.Tensor) -> sg.Tensor:
    e = z.exp()
    return e / e.sum(1, keepdims=True)


# the target's log-probability, written the ways users write it
FORMS: dict[str, Callable[[Any, Any], Any]] = {
    "log(probs[i, y])": lambda z, y: _probs(z)[_ar(z), y].log(),
    "log(probs)[i, y]": lambda z, y: _probs(z).log()[_ar(z), y],
    "log_softmax[i, y]": lambda z, y: sg.log_softmax(z, 1)[_ar(z), y],
    "log(softmax)[i, y]": lambda z, y: sg.softmax(z, 1).log()[_ar(z), y],
    "log(softmax[i, y])": lambda z, y: sg.softmax(z, 1)[_ar(z), y].log(),
    "cross_entropy": lambda z, y: -sg.cross_entropy(z, y),
}


def _joint(fn: Callable[..., Any], *specs: sg.Spec, wrt: list[int]) -> Graph:
    g = sg.trace(fn, *specs)
    return split(g, wrt).graph


def _ops(g: Graph) -> list[str]:
    return [n.op for n in g.order]


def _run(g: Graph, *arrays: Any) -> list[np.ndarray]:
    env = dict(zip(g.inputs, arrays, strict=True))
    out = evaluate(list(g.outputs), env)
    assert isinstance(out, list)
    return out


def _need(backend: str) -> None:
    if backend == "c":
        from symgrad.runtime.cc import compiler_available

        if not compiler_available():
            pytest.skip("no working C compiler")


def _form_loss(form: str) -> Callable[..., Any]:
    def loss(z, y):  # type: ignore[no-untyped-def]
        return -FORMS[form](z, y).mean()

    return loss


def _data(
    rng: np.random.Generator, n: int, scale: float = 2.0, low: int = -C
) -> tuple[np.ndarray, np.ndarray]:
    return scale * rng.standard_normal((n, C)), rng.integers(low, C, n)


def _low(form: str) -> int:
    """The least target of ``form``: cross_entropy's targets are classes in [0, C) (a negative
    one is refused), the lecture's indexing forms wrap negative indices like NumPy."""
    return 0 if form == "cross_entropy" else -C


@pytest.mark.parametrize("form", sorted(FORMS))
def test_each_form_is_fused_with_its_backward(form: str) -> None:
    g = _joint(_form_loss(form), sg.Spec(("n", C)), sg.Spec(("n",), "int64"), wrt=[0])
    opt = optimize(g, 2)
    ops = _ops(opt)
    assert "softmax_nll" in ops and "softmax_nll_grad" in ops, opt
    assert not {"exp", "log", "gather", "scatter_add"} & set(ops), opt  # nothing unfused left
    rng = np.random.default_rng(0)
    z, y = _data(rng, 40, low=_low(form))
    for got, want in zip(_run(opt, z, y, 1.0), _run(g, z, y, 1.0), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    assert "softmax_nll" not in _ops(optimize(g, 1))  # a level-2 rewrite


def _simplify(g: Graph) -> Callable[[Graph], Graph]:
    order = commutative_rule(structural_keys(g))
    rules = {
        name: [fold, *SIMPLIFY.get(name, ())] + ([order] if op.commutative else [])
        for name, op in registry().items()
    }
    return lambda h: rewrite(h, rules)


def test_the_fusion_pass_alone() -> None:
    g = _joint(_form_loss("log(probs[i, y])"), sg.Spec((7, C)), sg.Spec((7,), "int64"), wrt=[0])
    simplify = _simplify(g)
    simple = simplify(g)
    mapping: dict[int, Any] = {}
    fused = softmax_nll.fuse(simple, simplify, mapping)
    assert _ops(fused).count("softmax_nll") == 1 and "exp" not in _ops(fused)
    assert all(id(n) in mapping for n in simple.order)
    rng = np.random.default_rng(1)
    z, y = _data(rng, 7)
    for got, want in zip(_run(fused, z, y, 0.5), _run(g, z, y, 0.5), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    assert softmax_nll.fuse(fused, simplify) is fused  # nothing left to fuse: the same graph


def test_no_fusion_when_the_probabilities_have_other_users() -> None:
    def loss(z, y):  # type: ignore[no-untyped-def]
        p = _probs(z)
        return -p[_ar(z), y].log().mean() + (p * p).sum()  # p is needed anyway

    g = _joint(loss, sg.Spec((6, C)), sg.Spec((6,), "int64"), wrt=[0])
    assert "softmax_nll" not in _ops(optimize(g, 2))


def test_logits_with_other_users_still_fuse_the_backward() -> None:
    def loss(x, w, y):  # type: ignore[no-untyped-def]
        z = x @ w
        return sg.cross_entropy(z, y) + 0.1 * (z * z).mean()

    specs = [sg.Spec((8, 3)), sg.Spec((3, C)), sg.Spec((8,), "int64")]
    g = _joint(loss, *specs, wrt=[0, 1])
    opt = optimize(g, 2)
    assert "softmax_nll_grad" in _ops(opt) and "exp" not in _ops(opt)
    rng = np.random.default_rng(2)
    args = (rng.standard_normal((8, 3)), rng.standard_normal((3, C)), rng.integers(0, C, 8), 1.0)
    for got, want in zip(_run(opt, *args), _run(g, *args), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


def test_bigram_rows_are_done_once_per_row() -> None:
    specs = [sg.Spec((27, 27)), sg.Spec(("n",), "int64"), sg.Spec(("n",), "int64")]
    g = _joint(bigram_loss, *specs, wrt=[0])
    opt = optimize(g, 2)
    assert not [n for n in opt.order if n.shape == ("n", 27)], opt  # no (n, 27) temporaries
    assert "softmax_nll" not in _ops(opt)  # the 27 rows' log-sum-exp, gathered
    rng = np.random.default_rng(3)
    xs, ys = rng.integers(0, 27, 300), rng.integers(0, 27, 300)
    W = rng.standard_normal((27, 27))
    loss, gW = _run(opt, W, xs, ys, 1.0)
    want_loss, want_g = reference_step(W, xs, ys)
    assert float(loss) == pytest.approx(want_loss, rel=1e-12)
    np.testing.assert_allclose(gW, want_g, rtol=1e-10, atol=1e-14)


def test_rows_never_gathered_keep_a_zero_gradient_even_if_not_finite() -> None:
    def loss(w, xs, ys):  # type: ignore[no-untyped-def]
        return sg.cross_entropy(w[xs], ys)

    specs = [sg.Spec((4, 3)), sg.Spec(("n",), "int64"), sg.Spec(("n",), "int64")]
    g = _joint(loss, *specs, wrt=[0])
    opt = optimize(g, 2)
    assert "bincount" in _ops(opt) and "softmax_nll_grad" not in _ops(opt)
    w = np.arange(12.0).reshape(4, 3) / 7
    w[3] = [np.inf, np.nan, 1.0]  # row 3 is never gathered
    xs, ys = np.array([0, 1, 1, -2]), np.array([2, 0, 2, 1])
    got, want = _run(opt, w, xs, ys, 1.0), _run(g, w, xs, ys, 1.0)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    assert np.all(got[1][3] == 0) and np.isfinite(got[0])


@pytest.mark.parametrize(
    ("row", "expect"),
    [
        ([0.0, np.nan, 1.0, 2.0, 3.0], np.nan),  # NaN anywhere in the row
        ([0.0, np.inf, 1.0, 2.0, 3.0], np.nan),  # +inf in the row, as log_softmax
        ([-np.inf] * C, np.nan),  # every class impossible
        ([-np.inf, 0.0, 1.0, 2.0, 3.0], np.inf),  # the target impossible
        ([1e4, 0.0, 1.0, 2.0, 3.0], 0.0),  # exp would overflow: the fused form stays finite
    ],
)
def test_special_values(row: list[float], expect: float) -> None:
    g = _joint(_form_loss("log_softmax[i, y]"), sg.Spec((2, C)), sg.Spec((2,), "int64"), wrt=[0])
    opt = optimize(g, 2)
    z = np.array([row, [0.0, 1.0, 2.0, 3.0, 4.0]])
    y = np.array([0, 1])
    loss, grad = _run(opt, z, y, 1.0)
    other = np.log(np.exp(z[1] - 4).sum()) + 4 - 1.0
    np.testing.assert_allclose(2 * float(loss) - other, expect, atol=1e-12)
    assert np.all(np.isfinite(grad[1]))
    if np.isfinite(expect):
        ref_loss, ref_grad = _run(g, z, y, 1.0)
        np.testing.assert_allclose(loss, ref_loss, rtol=1e-12)
        np.testing.assert_allclose(grad, ref_grad, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("form", ["log(probs[i, y])", "cross_entropy"])
def test_target_out_of_range_is_the_same_error(backend: str, form: str) -> None:
    _need(backend)
    specs = [sg.Spec((3, C)), sg.Spec((3,), "int64")]
    errors = []
    for opt in (1, 2):
        f = sg.compile(_form_loss(form), *specs, wrt=0, backend=backend, opt=opt)
        ce = form == "cross_entropy"  # its targets are classes in [0, C), named as such
        big = r"cross_entropy: target 5 is out of range \[0, 5\)" if ce else "index 5 is out of "
        with pytest.raises(IndexError, match=big + r"range for a dim of size 5" * (not ce)) as e:
            f(np.zeros((3, C)), np.array([0, 5, 1]))
        errors.append(str(e.value))
        with pytest.raises(IndexError, match=r"target -1 is out of range" if ce else "index -6"):
            f(np.zeros((3, C)), np.array([0, -1 if ce else -6, 1]))
    assert errors[0] == errors[1] or form == "cross_entropy"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_compiled_steps_agree_with_level_zero(backend: str, dtype: str) -> None:
    _need(backend)

    def mlp(x, w, b, y):  # type: ignore[no-untyped-def]
        return sg.cross_entropy((x @ w).tanh() + b, y)

    specs = [sg.Spec(("n", 6), dtype), sg.Spec((6, C), dtype), sg.Spec((C,), dtype)]
    specs.append(sg.Spec(("n",), "int64"))
    rng = np.random.default_rng(4)
    args = [rng.standard_normal(s) for s in [(37, 6), (6, C), (C,)]]
    args = [a.astype(dtype) for a in args] + [rng.integers(0, C, 37)]
    tol = 1e-12 if dtype == "float64" else 2e-5
    f0 = sg.compile(mlp, *specs, wrt=[0, 1, 2], backend=backend, opt=0)
    f2 = sg.compile(mlp, *specs, wrt=[0, 1, 2], backend=backend, opt=2)
    assert "softmax_nll_grad" in _ops(f2.graph)
    (l0, g0), (l2, g2) = f0(*args), f2(*args)
    np.testing.assert_allclose(l2, l0, rtol=tol)
    for a, b in zip(g2, g0, strict=True):
        assert a.dtype == np.dtype(dtype)
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize(
    ("rule", "build"),
    [
        ("sum_neg", lambda x: api.sum(-x, 1)),
        ("mul_neg", lambda x: (-x) * x),
        ("div_neg", lambda x: (-x) / (x + 3.0)),
        ("reshape_neg", lambda x: api.reshape(-x, (12,))),
        ("neg_broadcast", lambda x: -api.broadcast_to(api.sum(x), (2, 3))),
    ],
)
def test_sign_rules_alone(rule: str, build: Callable[[Any], Any]) -> None:
    x = make_input((4, 3), "float64", "x")
    g = Graph([x], [build(x)])
    out = rewrite(g, {k: v for k, v in softmax_nll.RULES.items() if v[0].__name__ == rule})
    top = "broadcast_to" if rule == "neg_broadcast" else "neg"  # the sign moves out (or in)
    assert out.outputs[0].op == top and out.content_hash != g.content_hash
    a = np.random.default_rng(5).standard_normal((4, 3))
    np.testing.assert_array_equal(_run(out, a)[0], _run(g, a)[0])  # exact: signs only


def test_unshift_alone_keeps_the_values_bit_for_bit() -> None:
    z = make_input((6, C), "float64", "z")
    y = make_input((6,), "int64", "y")
    g_ = make_input((6,), "float64", "g")
    shifted = z - api.max(z, 1, keepdims=True)
    nll = apply("softmax_nll", (shifted, y))
    grad = apply("softmax_nll_grad", (shifted, y, g_))
    g = Graph([z, y, g_], [nll, grad])
    out = rewrite(g, {k: [softmax_nll.unshift] for k in ("softmax_nll", "softmax_nll_grad")})
    assert "max" not in _ops(out) and "sub" not in _ops(out)
    rng = np.random.default_rng(7)
    zv = 3 * rng.standard_normal((6, C))
    zv[1, 2], zv[2, 0], zv[3] = np.inf, np.nan, -np.inf
    args = (zv, rng.integers(-C, C, 6), rng.standard_normal(6))
    with np.errstate(invalid="ignore"):  # inf - inf in the shifted rows
        pairs = list(zip(_run(out, *args), _run(g, *args), strict=True))
    for a, b in pairs:
        np.testing.assert_array_equal(a, b)


def test_row_rules_alone() -> None:
    w = make_input((4, 3), "float64", "w")
    r = make_input(("n",), "int64", "r")
    y = make_input(("n",), "int64", "y")
    g_ = make_input(("n",), "float64", "g")
    z = apply("gather", (w, r))
    nll = apply("softmax_nll", (z, y))
    grad = apply("scatter_add", (apply("softmax_nll_grad", (z, y, g_)), r), {"shape": (4, 3)})
    g = Graph([w, r, y, g_], [nll, grad])
    rules = {"softmax_nll": [softmax_nll.nll_of_rows], "scatter_add": [softmax_nll.grad_of_rows]}
    out = rewrite(g, rules)
    assert "softmax_nll" not in _ops(out) and "softmax_nll_grad" not in _ops(out)
    rng = np.random.default_rng(6)
    args = (rng.standard_normal((4, 3)), rng.integers(-4, 3, 50), rng.integers(-3, 3, 50))
    args += (rng.standard_normal(50),)
    for a, b in zip(_run(out, *args), _run(g, *args), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    form=st.sampled_from(sorted(FORMS)),
    n=st.integers(1, 9),
    scale=st.sampled_from([0.1, 3.0, 30.0]),
    seed=st.integers(0, 2**31),
)
def test_level_two_keeps_the_values(form: str, n: int, scale: float, seed: int) -> None:
    def loss(x, w, y):  # type: ignore[no-untyped-def]
        return -FORMS[form](x @ w, y).mean() + 0.01 * (w * w).sum()

    specs = [sg.Spec(("n", 3)), sg.Spec((3, C)), sg.Spec(("n",), "int64")]
    g = _joint(loss, *specs, wrt=[0, 1])
    opt = optimize(g, 2)
    assert "softmax_nll" in _ops(opt)
    rng = np.random.default_rng(seed)
    args = (scale * rng.standard_normal((n, 3)), rng.standard_normal((3, C)))
    args += (rng.integers(_low(form), C, n), 1.0)
    want = _run(g, *args)
    if not all(np.all(np.isfinite(v)) for v in want):  # exp overflowed in the unfused form
        assert all(np.all(np.isfinite(v)) for v in _run(opt, *args))
        return
    for got, exp in zip(_run(opt, *args), want, strict=True):
        np.testing.assert_allclose(got, exp, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_special_values_compiled(backend: str, dtype: str) -> None:
    _need(backend)

    def per_row(z, y):  # type: ignore[no-untyped-def]
        return -sg.log_softmax(z, 1)[_ar(z), y]

    specs = [sg.Spec((6, C), dtype), sg.Spec((6,), "int64")]
    f = sg.compile(lambda z, y: per_row(z, y).sum(), *specs, wrt=0, backend=backend, opt=2)
    assert "softmax_nll" in _ops(f.graph)
    z = np.array(
        [
            [0.0, np.nan, 1.0, 2.0, 3.0],
            [np.nan, 0.0, 1.0, 2.0, 3.0],
            [0.0, np.inf, 1.0, 2.0, 3.0],
            [-np.inf] * C,
            [-np.inf, 0.0, 1.0, 2.0, 3.0],
            [1e4, 0.0, 1.0, 2.0, -1e4],
        ],
        dtype=dtype,
    )
    y = np.array([0, 2, 0, 1, 0, 1])
    loss, (grad,) = f(z, y)
    ref = sg.compile(per_row, *specs, backend="numpy", opt=0)(z, y)
    want = np.array([np.nan, np.nan, np.nan, np.nan, np.inf, 1e4], dtype=dtype)
    np.testing.assert_array_equal(np.isnan(ref), np.isnan(want))  # the unfused, stable form
    assert np.isnan(loss)
    assert np.all(np.isnan(grad[:4])) and np.all(np.isfinite(grad[4:]))
    p = np.exp(z[4, 1:] - 3.0) / np.exp(z[4, 1:] - 3.0).sum()
    np.testing.assert_allclose(grad[4], [-1.0, *p], rtol=1e-6)
    np.testing.assert_allclose(grad[5], [1.0, -1.0, 0.0, 0.0, 0.0], atol=1e-30)
