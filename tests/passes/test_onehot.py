"""Level 2 rewrites ``one_hot(i) @ W`` into a row gather and its backward into a scatter-add,
keeping one_hot's range check and the values."""

from __future__ import annotations

import numpy as np
import pytest

import symgrad as sg
from symgrad.autodiff.joint import split
from symgrad.passes.onehot import RULES
from symgrad.passes.rewrite import rewrite
from tests.test_bigram_training import loss_fn, reference_step

BACKENDS = ["numpy", pytest.param("c", marks=pytest.mark.cc)]


def _compile(backend: str, opt: int):  # type: ignore[no-untyped-def]
    if backend == "c":
        from symgrad.runtime.cc import compiler_available

        if not compiler_available():
            pytest.skip("no working C compiler")
    specs = [sg.Spec((27, 27)), sg.Spec(("n",), "int64"), sg.Spec(("n",), "int64")]
    return sg.compile(loss_fn, *specs, wrt=0, backend=backend, opt=opt)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bigram_at_level_two_gathers_and_matches(backend: str) -> None:
    f = _compile(backend, 2)
    ops = [n.op for n in f.graph.order]
    # the gather and the scatter-add are then aggregated by value (passes/aggregate.py)
    assert "one_hot" not in ops and "class_index" in ops and "bincount" in ops
    rng = np.random.default_rng(0)
    xs, ys = rng.integers(0, 27, 500), rng.integers(0, 27, 500)
    W = rng.standard_normal((27, 27))
    loss, (gW,) = f(W, xs, ys)
    want_loss, want_g = reference_step(W, xs, ys)
    assert float(loss) == pytest.approx(want_loss, rel=1e-12)
    np.testing.assert_allclose(gW, want_g, rtol=1e-10, atol=1e-14)
    assert "one_hot" in [n.op for n in _compile(backend, 1).graph.order]


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_range_check_of_one_hot_survives_the_rewrite(backend: str) -> None:
    f = _compile(backend, 2)
    W = np.zeros((27, 27))
    with pytest.raises(IndexError, match=r"class -1 is out of range \[0, 27\)"):
        f(W, np.array([-1, 2]), np.array([1, 2]))
    with pytest.raises(IndexError, match=r"class 27 is out of range"):
        f(W, np.array([27, 2]), np.array([1, 2]))


def test_the_rules_alone_gather_and_scatter() -> None:
    specs = [sg.Spec((27, 27)), sg.Spec(("n",), "int64"), sg.Spec(("n",), "int64")]
    g = split(sg.trace(loss_fn, *specs), [0]).graph
    ops = [n.op for n in rewrite(g, RULES).order]
    assert "matmul" not in ops and "gather" in ops and "scatter_add" in ops


def _lecture_loss(W, xs, ys):  # type: ignore[no-untyped-def]
    # makemore part 1 as written: a float64 one-hot, then .float(), then the product
    xenc = sg.one_hot(xs, 27).float()
    counts = (xenc @ W).exp()
    probs = counts / counts.sum(1, keepdims=True)
    return -probs[sg.arange(xs.shape[0]), ys].log().mean()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_cast_one_hot_product_is_a_gather_at_the_default_level(backend: str) -> None:
    if backend == "c":
        from symgrad.runtime.cc import compiler_available

        if not compiler_available():
            pytest.skip("no working C compiler")
    specs = [sg.Spec((27, 27), "float32"), sg.Spec(("n",), "int64"), sg.Spec(("n",), "int64")]
    fast = sg.compile(_lecture_loss, *specs, wrt=0, backend=backend)  # the default level
    slow = sg.compile(_lecture_loss, *specs, wrt=0, backend=backend, opt=1)
    ops = {n.op for n in fast.graph.order}
    assert not ops & {"one_hot", "matmul"}, ops  # (a cast remains: the counts' int64 → f32)
    assert {"one_hot", "matmul", "cast"} <= {n.op for n in slow.graph.order}
    rng = np.random.default_rng(1)
    xs, ys = rng.integers(0, 27, 2000), rng.integers(0, 27, 2000)
    W = rng.standard_normal((27, 27)).astype(np.float32)
    (l1, (g1,)), (l2, (g2,)) = fast(W, xs, ys), slow(W, xs, ys)
    assert float(l1) == pytest.approx(float(l2), rel=1e-5)
    np.testing.assert_allclose(g1, g2, rtol=1e-4, atol=1e-7)


def test_the_cast_rule_keeps_the_indices_and_takes_the_dtype() -> None:
    from symgrad.ir.dtypes import FLOAT32
    from symgrad.ops import api
    from symgrad.ops.source import make_input
    from symgrad.passes.onehot import cast_hot

    i = make_input((5,), "int64", "i")
    hot = api.one_hot(i, 4)
    out = cast_hot(api.cast(hot, "float32"))
    assert out is not None and out.op == "one_hot" and out.dtype is FLOAT32
    assert out.inputs == (i,) and out.attrs["num_classes"] == 4
