"""Level 2 aggregates by value: batch sums and scatter-adds whose terms depend on the examples
only through small-range indices become weighted sums over a table of counts
(``symgrad/passes/aggregate.py``). Each rule alone, what it refuses, unused cells holding NaN
or inf, range errors on every backend, the bigram step against level 1, and random expressions
(Hypothesis)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import symgrad as sg
from symgrad.autodiff.joint import split
from symgrad.ir.errors import IndexRangeError
from symgrad.ir.graph import Graph, evaluate
from symgrad.ir.node import Node
from symgrad.ir.opdef import apply, const
from symgrad.ops import api
from symgrad.ops.source import make_constant, make_input
from symgrad.passes import aggregate, optimize
from symgrad.passes.rewrite import rewrite
from tests.test_bigram_training import loss_fn as bigram_loss
from tests.test_bigram_training import reference_step

BACKENDS = ["numpy", pytest.param("c", marks=pytest.mark.cc)]
SUM = {"sum": [aggregate.sum_by_value]}
SCATTER = {"scatter_add": [aggregate.scatter_by_value]}
N = 60  # examples (more than the cells of the tables below)


def _ops(g: Graph) -> list[str]:
    return [n.op for n in g.order]


def _run(g: Graph, *arrays: Any) -> list[np.ndarray]:
    out = evaluate(list(g.outputs), dict(zip(g.inputs, arrays, strict=True)))
    assert isinstance(out, list)
    return out


def _need(backend: str) -> None:
    if backend == "c":
        from symgrad.runtime.cc import compiler_available

        if not compiler_available():
            pytest.skip("no working C compiler")


def _keys(n: Any = "n") -> tuple[Node, Node]:
    return make_input((n,), "int64", "r"), make_input((n,), "int64", "y")


def _gather(m: Node, *idx: Node) -> Node:
    return apply("gather", (m, *idx))


def _check(g: Graph, out: Graph, args: list[Any], rtol: float = 1e-12) -> None:
    for got, want in zip(_run(out, *args), _run(g, *args), strict=True):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-12)


# -- each rule alone ------------------------------------------------------------------------------


def test_a_sum_of_pair_gathers_becomes_counts_times_the_table() -> None:
    m = make_input((4, 3), "float64", "m")
    r, y = _keys()
    g = Graph([m, r, y], [api.sum(_gather(m, r, y))])
    out = rewrite(g, SUM)
    assert "gather" not in _ops(out) and _ops(out).count("bincount") == 1, out
    rng = np.random.default_rng(0)
    args = [rng.standard_normal((4, 3)), rng.integers(-4, 4, N), rng.integers(-3, 3, N)]
    _check(g, out, args)


def test_the_bigram_forward_shape_lse_rows_minus_picked() -> None:
    w = make_input((5, 5), "float32", "w")
    r, y = _keys()
    lse = api.logsumexp(w, 1)
    per_example = _gather(lse, r) - _gather(w, r, y)
    g = Graph([w, r, y], [api.mean(per_example)])
    out = rewrite(g, SUM)
    assert "gather" not in _ops(out)
    (counts,) = [n for n in out.order if n.op == "bincount"]
    assert counts.inputs == (r, y) and counts.shape == (5, 5)  # the pairs' grid, in this order
    rng = np.random.default_rng(1)
    args = [rng.standard_normal((5, 5)).astype(np.float32), rng.integers(0, 5, 300)]
    args.append(rng.integers(-5, 5, 300))
    _check(g, out, args, rtol=2e-6)  # float32: the sum is reordered


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axes", [(0,), (0, 1)])
def test_rows_with_trailing_axes(axes: tuple[int, ...], keepdims: bool) -> None:
    w = make_input((6, 4), "float64", "w")
    v = make_input((4,), "float64", "v")
    r, _ = _keys()
    x = apply("tanh", (_gather(w, r) * v,)) + 1.0  # (n, 4): a row per example, then elementwise
    g = Graph([w, v, r], [api.sum(x, axes, keepdims)])
    out = rewrite(g, SUM)
    assert "gather" not in _ops(out) and out.outputs[0].shape == g.outputs[0].shape
    rng = np.random.default_rng(2)
    _check(g, out, [rng.standard_normal((6, 4)), rng.standard_normal(4), rng.integers(-6, 6, N)])


def test_a_uniform_scatter_becomes_counts_times_the_cotangent() -> None:
    g0 = make_input((), "float64", "g")
    r, y = _keys()
    u = api.broadcast_to(api.reshape(g0, (1,)), ("n",))  # a mean's backward
    g = Graph([g0, r, y], [apply("scatter_add", (u, r, y), {"shape": (4, 3)})])
    out = rewrite(g, SCATTER)
    assert "scatter_add" not in _ops(out) and "bincount" in _ops(out)
    rng = np.random.default_rng(3)
    _check(g, out, [np.float64(-0.37), rng.integers(-4, 4, N), rng.integers(0, 3, N)])


def test_a_scatter_of_gathered_values_sums_the_other_keys() -> None:
    m = make_input((4, 3), "float64", "m")
    r, y = _keys()
    h = apply("exp", (_gather(m, r, y),)) * 2.0  # per example, but only through (r, y)
    g = Graph([m, r, y], [apply("scatter_add", (h, r), {"shape": (4,)})])
    out = rewrite(g, SCATTER)
    assert "scatter_add" not in _ops(out) and "gather" not in _ops(out)
    (counts,) = [n for n in out.order if n.op == "bincount"]
    assert counts.inputs == (r, y)  # the scatter's key first, then the one summed out
    rng = np.random.default_rng(4)
    _check(g, out, [rng.standard_normal((4, 3)), rng.integers(-4, 4, N), rng.integers(0, 3, N)])


def _positive(x: Node) -> Node:
    return apply("gt", (x, const(0.0, x.dtype)))


def test_uniform_constants_and_broadcast_keys() -> None:
    m = make_input((3, 4), "float64", "m")
    r = make_input((5, 1), "int64", "r")
    y = make_input((8,), "int64", "y")
    ones = make_constant(np.full((5, 8), 1.5))  # a folded constant, equal for every example
    g = Graph([m, r, y], [api.sum(_gather(m, r, y) * ones), api.sum(_positive(_gather(m, r, y)))])
    out = rewrite(g, SUM)
    assert "gather" not in _ops(out) and out.outputs[1].dtype is sg.INT64  # bools are counted
    rng = np.random.default_rng(5)
    args = [rng.standard_normal((3, 4)), rng.integers(-3, 3, (5, 1)), rng.integers(-4, 4, 8)]
    _check(g, out, args)


# -- what is left alone ---------------------------------------------------------------------------


def _refused(build: Callable[[Node, Node, Node, Node], Node]) -> None:
    m = make_input((4, 4), "float64", "m")
    wgt = make_input(("n",), "float64", "wgt")
    r, y = _keys()
    g = Graph([m, wgt, r, y], [build(m, wgt, r, y)])
    assert rewrite(g, {**SUM, **SCATTER}).content_hash == g.content_hash


@pytest.mark.parametrize(
    "build",
    [
        # a per-example weight: the terms depend on more than the indices
        lambda m, w, r, y: api.sum(_gather(m, r, y) * w),
        lambda m, w, r, y: apply("scatter_add", (w, r), {"shape": (4,)}),
        # not a sum over the batch
        lambda m, w, r, y: api.sum(_gather(m, r), 1),
        # the diagonal M[r, r]
        lambda m, w, r, y: api.sum(_gather(m, r, r)),
        # one key indexing dims of two sizes
        lambda m, w, r, y: api.sum(_gather(m, r, y) + _gather(api.reshape(m, (16,)), r)),
        # an index used as a value
        lambda m, w, r, y: api.sum(_gather(m, r, y) * apply("cast", (y,), {"dtype": "float64"})),
    ],
    ids=["weight", "scatter-weight", "not-batch", "diagonal", "two-ranges", "index-value"],
)
def test_left_alone(build: Callable[[Node, Node, Node, Node], Node]) -> None:
    _refused(build)


def test_left_alone_when_the_grid_is_large_or_the_batch_small() -> None:
    big = make_input((300, 300), "float64", "big")
    r, y = _keys()
    g = Graph([big, r, y], [api.sum(_gather(big, r, y))])  # 90,000 cells > MAX_CELLS
    assert rewrite(g, SUM).content_hash == g.content_hash
    m = make_input((4, 3), "float64", "m")
    r7, y7 = _keys(7)  # 7 examples, 12 cells: per example is cheaper
    g = Graph([m, r7, y7], [api.sum(_gather(m, r7, y7))])
    assert rewrite(g, SUM).content_hash == g.content_hash
    r12, y12 = _keys(12)
    g = Graph([m, r12, y12], [api.sum(_gather(m, r12, y12))])
    assert "bincount" in _ops(rewrite(g, SUM))


# -- values: unused cells, range errors -----------------------------------------------------------


def test_cells_no_example_hits_contribute_exactly_zero() -> None:
    def loss(w, xs, ys):  # type: ignore[no-untyped-def]
        return -sg.log_softmax(w[xs], 1)[sg.arange(xs.shape[0]), ys].mean() + 0.0 * w[0, 0]

    specs = [sg.Spec((4, 3)), sg.Spec(("n",), "int64"), sg.Spec(("n",), "int64")]
    g = split(sg.trace(loss, *specs), [0]).graph
    opt = optimize(g, 2)
    assert "bincount" in _ops(opt) and "gather" not in _ops(opt), opt
    w = np.arange(12.0).reshape(4, 3) / 7
    w[3] = [np.inf, np.nan, 1.0]  # row 3 is never used
    w[1, 2] = np.nan  # nor is the pair (1, 2)... but row 1 is: its softmax is NaN
    xs = np.array([0, 2, 2, -2, 0, 0] * 3)
    ys = np.array([2, 0, -1, 1, 1, 0] * 3)
    loss_v, grad = _run(opt, w, xs, ys, 1.0)
    want_loss, want_grad = _run(g, w, xs, ys, 1.0)
    np.testing.assert_allclose(loss_v, want_loss, rtol=1e-12)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-12, atol=1e-15)
    assert np.isfinite(loss_v) and np.all(grad[3] == 0) and np.all(grad[1] == 0)


def _pair_sum(backend: str, opt: int) -> Any:
    def f(w, xs, ys):  # type: ignore[no-untyped-def]
        return (w[xs, ys] * 2.0).sum()

    specs = [sg.Spec((4, 3)), sg.Spec(("n",), "int64"), sg.Spec(("n",), "int64")]
    return sg.compile(f, *specs, backend=backend, opt=opt)


@pytest.mark.parametrize("backend", BACKENDS)
def test_indices_out_of_range_are_the_same_error(backend: str) -> None:
    _need(backend)
    f1, f2 = _pair_sum(backend, 1), _pair_sum(backend, 2)
    assert "bincount" in _ops(f2.graph) and "gather" not in _ops(f2.graph)
    w = np.ones((4, 3))
    good = np.zeros(20, dtype=np.int64)
    for xs, ys, bad in [(good, good + 3, 3), (good - 5, good, -5), (good, good - 4, -4)]:
        errors = []
        for f in (f1, f2):
            with pytest.raises(IndexRangeError, match=f"index {bad} is out of range") as e:
                f(w, xs, ys)
            errors.append(str(e.value))
        assert errors[0] == errors[1]
    xs = np.array([1, -1, 3, 0] * 5)
    ys = np.array([0, 2, -3, 1] * 5)
    assert float(f2(w * 0.5, xs, ys)) == pytest.approx(float(f1(w * 0.5, xs, ys)), rel=1e-12)
    empty = np.zeros(0, dtype=np.int64)
    assert float(f2(w, empty, empty)) == 0.0  # no examples: an empty count table


def test_the_reference_interpreter_raises_too() -> None:
    r, y = _keys()
    c = apply("bincount", (r, y), {"shape": (4, 3)})
    with pytest.raises(IndexRangeError, match="indexing: index 3 is out of range"):
        evaluate([c], {r: np.array([0, 1]), y: np.array([1, 3])})


# -- the bigram ---------------------------------------------------------------------------------


def test_the_bigram_counts_once_and_keeps_no_per_example_floats() -> None:
    specs = [sg.Spec((27, 27)), sg.Spec(("n",), "int64"), sg.Spec(("n",), "int64")]
    g = split(sg.trace(bigram_loss, *specs), [0]).graph
    opt = optimize(g, 2)
    ops = _ops(opt)
    assert ops.count("bincount") == 1 and not {"gather", "scatter_add"} & set(ops), opt
    per_example = [n for n in opt.order if "n" in n.shape]
    assert {n.op for n in per_example} <= {"input", "class_index"}, opt  # the indices only
    rng = np.random.default_rng(6)
    xs, ys = rng.integers(0, 27, 3000), rng.integers(0, 27, 3000)
    xs[xs == 5] = 6  # row 5 unused
    W = rng.standard_normal((27, 27))
    loss, gW = _run(opt, W, xs, ys, 1.0)
    want_loss, want_g = reference_step(W, xs, ys)
    assert float(loss) == pytest.approx(want_loss, rel=1e-12)
    np.testing.assert_allclose(gW, want_g, rtol=1e-10, atol=1e-14)
    level_one = _run(optimize(g, 1), W, xs, ys, 1.0)[1]
    np.testing.assert_array_equal(gW[5], level_one[5])  # only the regulariser's


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_bigram_step_agrees_with_level_one_in_float32(backend: str, names_path: Any) -> None:
    _need(backend)
    from tests.test_bigram_training import pairs

    xs, ys = pairs(names_path, 3000)
    w0 = np.random.default_rng(2147483647).standard_normal((27, 27)).astype(np.float32)
    losses, weights = [], []
    for opt in (1, 2):
        W = sg.Tensor(w0.copy(), requires_grad=True)

        def loss(xs, ys):  # type: ignore[no-untyped-def]
            probs = sg.softmax(sg.one_hot(xs, 27, dtype="float32") @ W, 1)  # noqa: B023
            return -probs[sg.arange(xs.shape[0]), ys].log().mean() + 0.01 * (W**2).mean()  # noqa: B023

        step = sg.compile_step(
            loss, xs, ys, optimizer=sg.optim.SGD([W], lr=50.0), backend=backend, opt=opt
        )
        losses.append([step(xs, ys) for _ in range(10)])
        weights.append(W.data.copy())
        if opt == 2:
            assert "bincount" in _ops(step.graph)
            text = step.source()
            assert "+= 1;" in text if backend == "c" else "_bincount(" in text
    np.testing.assert_allclose(losses[1], losses[0], rtol=2e-5)
    np.testing.assert_allclose(weights[1], weights[0], rtol=2e-4, atol=2e-5)


# -- random expressions (Hypothesis) -------------------------------------------------------------

UNARY = ["exp", "tanh", "neg", "abs"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.integers(1, 5),
    cols=st.integers(1, 4),
    n=st.integers(20, 40),
    unary=st.sampled_from(UNARY),
    form=st.sampled_from(["pair", "row+pair", "rows", "scatter", "scatter-pair"]),
    dtype=st.sampled_from(["float64", "float32"]),
    seed=st.integers(0, 2**31),
)
def test_aggregation_keeps_the_values(
    rows: int, cols: int, n: int, unary: str, form: str, dtype: str, seed: int
) -> None:
    m = make_input((rows, cols), dtype, "m")
    v = make_input((rows,), dtype, "v")
    s = make_input((), dtype, "s")
    r, y = _keys()
    pair = apply(unary, (_gather(m, r, y),))
    if form == "pair":
        out = api.sum(pair * s)
    elif form == "row+pair":
        out = api.mean(_gather(v, r) - pair + s)
    elif form == "rows":
        out = api.sum(apply(unary, (_gather(m, r),)) * s, 0)
    elif form == "scatter":
        u = api.broadcast_to(api.reshape(s, (1,)), ("n",))
        out = apply("scatter_add", (u, r, y), {"shape": (rows, cols)})
    else:
        out = apply("scatter_add", (pair * s + _gather(v, r), y), {"shape": (cols,)})
    g = Graph([m, v, s, r, y], [out])
    opt = optimize(g, 2)
    assert "bincount" in _ops(opt) and "gather" not in _ops(opt), opt
    rng = np.random.default_rng(seed)
    args = [rng.standard_normal((rows, cols)).astype(dtype), rng.standard_normal(rows)]
    args = [args[0], args[1].astype(dtype), np.asarray(rng.standard_normal(), dtype=dtype)]
    args += [rng.integers(-rows, rows, n), rng.integers(-cols, cols, n)]
    tol = 1e-10 if dtype == "float64" else 1e-4
    for got, want in zip(_run(opt, *args), _run(g, *args), strict=True):
        assert got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def test_const_scalar_cotangent_stays_scalar() -> None:
    r, y = _keys()
    u = api.broadcast_to(const(0.25, sg.FLOAT32), ("n",))
    node = apply("scatter_add", (u, r, y), {"shape": (3, 3)})
    out = aggregate.scatter_by_value(node)
    assert out is not None and out.shape == (3, 3) and out.dtype is sg.FLOAT32
