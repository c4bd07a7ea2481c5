"""Graph: content hash, the text form, iterative topological order, the reference interpreter."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import symgrad
from symgrad import Spec, Value
from symgrad.autodiff.vjp import grad
from symgrad.ir import FLOAT64, Graph
from symgrad.ir.errors import ArgumentError, TraceError
from symgrad.ir.graph import bind_dims, evaluate, toposort
from symgrad.ir.opdef import apply, get_op
from symgrad.ops import api
from symgrad.ops.source import make_input

REPO_ROOT = Path(__file__).resolve().parents[2]


def _here() -> int:
    return sys._getframe(1).f_lineno + 1


def _mlp_graph(order: str, names=("x", "w")) -> Graph:
    """tanh(x @ w).sum(axis=1) + 0.5 * x.sum(1), built in two different orders."""
    x = make_input(("n", 3), "float64", name=names[0])
    w = make_input((3, 2), "float64", name=names[1])
    if order == "forward":
        h = apply("tanh", (api.matmul(x, w),))
        s = api.sum(x, 1) * 0.5
    else:
        s = api.sum(x, 1) * 0.5
        h = apply("tanh", (api.matmul(x, w),))
    return Graph([x, w], [api.sum(h, 1) + s])


# -- content hash ----------------------------------------------------------------------------------


def test_content_hash_ignores_creation_order_names_and_ids():
    g1 = _mlp_graph("forward")
    g2 = _mlp_graph("reverse", names=("a", "b"))
    assert g1.inputs[0] is not g2.inputs[0]
    assert g1.outputs[0] is not g2.outputs[0]
    assert g1.content_hash == g2.content_hash
    assert len(g1.content_hash) == 64 and int(g1.content_hash, 16) >= 0


def test_content_hash_with_interleaved_creation():
    xa = make_input((4,), "float64", name="k1")
    xb = make_input((4,), "float64", name="k2")
    ea = apply("exp", (xa,))
    tb = apply("tanh", (xb,))  # graph b starts with its other branch
    ta = apply("tanh", (xa,))
    eb = apply("exp", (xb,))
    ga = Graph([xa], [ea * ta])
    gb = Graph([xb], [eb * tb])
    assert ga.content_hash == gb.content_hash
    assert ga.text(False) != gb.text(False)  # the input names differ ...
    assert ga.text(False).replace("k1", "k2") == gb.text(False)  # ... and nothing else


def _variants() -> dict[str, Graph]:
    def g(build, shape=(4,), dtype="float64", n_inputs=1):
        ins = [make_input(shape, dtype, name=f"i{k}") for k in range(n_inputs)]
        return Graph(ins, [build(*ins)])

    return {
        "base": g(lambda x: apply("exp", (x,)) * 2.0),
        "other_op": g(lambda x: apply("tanh", (x,)) * 2.0),
        "other_const": g(lambda x: apply("exp", (x,)) * 3.0),
        "negative_zero": g(lambda x: apply("exp", (x,)) * -0.0),
        "positive_zero": g(lambda x: apply("exp", (x,)) * 0.0),
        "other_shape": g(lambda x: apply("exp", (x,)) * 2.0, shape=(5,)),
        "symbolic": g(lambda x: apply("exp", (x,)) * 2.0, shape=("n",)),
        "float32": g(lambda x: apply("exp", (x,)) * 2.0, dtype="float32"),
        "swapped": g(lambda x: 2.0 * apply("exp", (x,))),
        "sum0": g(lambda x: api.sum(x, 0, keepdims=True), shape=(2, 3)),
        "sum1": g(lambda x: api.sum(x, 1, keepdims=True), shape=(2, 3)),
        "two_inputs_ab": g(lambda a, b: a - b, n_inputs=2),
        "two_inputs_ba": g(lambda a, b: b - a, n_inputs=2),
        "array_const": g(lambda x: x + symgrad.ops.source.make_constant(np.arange(4.0))),
        "array_const2": g(lambda x: x + symgrad.ops.source.make_constant(np.arange(4.0) + 1)),
    }


def test_different_graphs_have_different_hashes():
    hashes = {name: g.content_hash for name, g in _variants().items()}
    assert len(set(hashes.values())) == len(hashes), hashes


def test_content_hash_is_the_same_in_another_process():
    script = textwrap.dedent(
        """
        import symgrad
        from symgrad import Spec
        f = lambda x, w: (x @ w).tanh().sum() * 0.5 + symgrad.logsumexp(x).sum()
        print(symgrad.trace(f, Spec(("n", 3)), Spec((3, 2))).content_hash)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=str(REPO_ROOT),
    ).stdout.strip()

    def f(x, w):
        return (x @ w).tanh().sum() * 0.5 + symgrad.logsumexp(x).sum()

    assert out == symgrad.trace(f, Spec(("n", 3)), Spec((3, 2))).content_hash


# -- the text form ---------------------------------------------------------------------------------


def test_text_form_exact():
    line = _here()
    g = symgrad.trace(lambda x, w: (x @ w).tanh().sum() * 0.5, Spec(("n", 3)), Spec((3, 2)))
    assert g.text(provenance=False) == textwrap.dedent(
        """\
        graph(x: f64[n,3], w: f64[3,2]) -> (f64[],) {
          %0: f64[n,2] = matmul x w
          %1: f64[n,2] = tanh %0
          %2: f64[] = sum[axis=(0, 1), keepdims=False] %1
          %3: f64[] = mul %2 0.5:f64
          return %3
        }"""
    )
    where = f"# test_graph.py:{line}"
    assert str(g) == textwrap.dedent(
        f"""\
        graph(x: f64[n,3], w: f64[3,2]) -> (f64[],) {{
          %0: f64[n,2] = matmul x w                        {where}
          %1: f64[n,2] = tanh %0                           {where}
          %2: f64[] = sum[axis=(0, 1), keepdims=False] %1  {where}
          %3: f64[] = mul %2 0.5:f64                       {where}
          return %3
        }}"""
    )


def test_text_has_one_typed_line_per_node_and_is_deterministic():
    texts, strs = [], []
    for order in ("forward", "reverse", "forward"):
        g = _mlp_graph(order)
        texts.append(g.text(provenance=False))
        strs.append(str(g))
        body = g.text(False).splitlines()[1:-2]
        computed = [n for n in g.order if n.op not in ("input", "const")]
        assert len(body) == len(computed)
        for stmt in body:
            lhs, rhs = stmt.split(" = ", 1)
            assert lhs.strip().startswith("%") and ": f64[" in lhs
            assert rhs.split("[")[0].split(" ")[0] in symgrad.ir.registry()
    assert texts[0] == texts[1] == texts[2]
    assert strs[0] == strs[2]  # same construction, same lines: the same text, byte for byte
    assert strs[0] != strs[1]  # the provenance comments tell the two constructions apart


def test_text_of_multiple_outputs_and_dtypes():
    x = make_input((3,), "float32", name="x")
    i = make_input((2,), "int64", name="i")
    g = Graph([x, i], [apply("gather", (x, i)), apply("gt", (x, apply("neg", (x,))))])
    text = g.text(provenance=False)
    assert text.splitlines()[0] == "graph(x: f32[3], i: i64[2]) -> (f32[2], bool[3]) {"
    assert text.splitlines()[-2] == "  return %0, %2"
    assert repr(g) == "<Graph 2 inputs, 2 outputs, 5 nodes>"


def test_graph_refuses_an_undeclared_input():
    x = make_input((3,), "float64", name="x")
    y = make_input((3,), "float64", name="stray")
    with pytest.raises(TraceError, match="stray"):
        Graph([x], [x + y])


# -- iterative algorithms on deep graphs -----------------------------------------------------------

DEPTH = 20000


def test_deep_value_chain_traces_differentiates_and_evaluates():
    assert sys.getrecursionlimit() < DEPTH  # a recursive walk would fail
    start = time.perf_counter()
    x = Value(0.5)
    s = x
    for _ in range(DEPTH):
        s = s + x
    assert s.data == pytest.approx(0.5 * (DEPTH + 1))
    s.backward()
    assert x.grad == DEPTH + 1
    g = Graph([x.node], [s.node])
    assert len(g) == DEPTH + 1  # the input and the adds
    (val,) = evaluate([s.node], {x.node: np.asarray(2.0)})
    assert val == 2.0 * (DEPTH + 1)
    assert len(g.content_hash) == 64
    assert len(g.text(False).splitlines()) == DEPTH + 3
    # a generous bound: this is a smoke check for accidental quadratic behaviour, not a benchmark
    assert time.perf_counter() - start < 60


def test_deep_node_chain_vjp_and_traced_function():
    x = make_input((2,), "float64", name="x")
    y = x
    for _ in range(DEPTH):
        y = apply("add", (y, x))
    (gx,) = grad(api.sum(y), [x])
    (val,) = evaluate([gx], {x: np.array([1.0, 2.0])})
    np.testing.assert_array_equal(val, [DEPTH + 1, DEPTH + 1])
    order = toposort([y])
    assert order[0] is x and order[-1] is y and len(order) == DEPTH + 1

    def f(v):
        for _ in range(DEPTH):
            v = v + 1.0
        return v

    tg = symgrad.trace(f, Spec(()))
    (out,) = evaluate(list(tg.outputs), {tg.inputs[0]: np.asarray(0.0)})
    assert out == DEPTH


# -- toposort, evaluate, bind_dims -----------------------------------------------------------------


def test_toposort_lists_inputs_before_users_once():
    x = make_input((2,), "float64", name="x")
    a = apply("exp", (x,))
    b = a * a + x
    order = toposort([b, a])
    assert len(order) == len(set(map(id, order)))
    pos = {id(n): k for k, n in enumerate(order)}
    for n in order:
        for i in n.inputs:
            assert pos[id(i)] < pos[id(n)]
    assert toposort([b], stop={a}).count(x) == 1  # x is still reached through b's other input
    assert x not in toposort([a * 2.0], stop={a})


def test_evaluate_with_symbolic_dims_and_keep():
    x = make_input(("n", 2), "float64", name="x")
    y = api.mean(x, 0) + api.sum(apply("cast", (api.arange("n"),), {"dtype": "float64"}))
    xs = np.arange(6.0).reshape(3, 2)
    (val,) = evaluate([y], {x: xs})
    np.testing.assert_allclose(val, xs.mean(0) + 3.0)
    allv = evaluate([y], {x: xs}, keep=True)
    assert isinstance(allv, dict) and len(allv) >= 5
    assert allv[x] is xs
    (val5,) = evaluate([y], {x: np.ones((5, 2))})
    np.testing.assert_allclose(val5, 1.0 + 10.0)


def test_evaluate_casts_to_the_node_dtype():
    x = make_input((3,), "float32", name="x")
    (val,) = evaluate([apply("sigmoid", (x,)) * 2.0], {x: np.zeros(3, np.float32)})
    assert val.dtype == np.float32
    np.testing.assert_array_equal(val, [1.0, 1.0, 1.0])


def test_evaluate_of_an_environment_node_returns_it():
    x = make_input((2,), "float64", name="x")
    y = apply("exp", (x,))
    fake = np.array([7.0, 8.0])
    (val,) = evaluate([y * 2.0], {y: fake})  # y's value is given: x is never needed
    np.testing.assert_array_equal(val, [14.0, 16.0])


def test_bind_dims_checks_rank_static_dims_and_consistency():
    a = make_input(("n", 3), "float64", name="a")
    b = make_input(("n",), "float64", name="b")
    assert bind_dims([a, b], [np.ones((4, 3)), np.ones(4)]) == {"n": 4}
    with pytest.raises(ArgumentError, match="expected shape"):
        bind_dims([a], [np.ones(4)])
    with pytest.raises(ArgumentError, match=r"expected shape \(n, 3\), got \(4, 2\)"):
        bind_dims([a], [np.ones((4, 2))])
    with pytest.raises(ArgumentError, match="'n' is 5 here but 4 in a"):
        bind_dims([a, b], [np.ones((4, 3)), np.ones(5)])


def test_every_node_of_a_real_graph_re_infers_its_own_type():
    """Each node's op rule, given the node's inputs and attrs, re-derives the node's shape and
    dtype: rewriting passes can rebuild any node with ``apply(n.op, inputs, n.attrs)``."""
    lin = symgrad.nn.Linear(3, 2, rng=0)

    def f(x, y):
        h = lin(x).tanh()
        ce = symgrad.cross_entropy(h * 2.0 + 1, y)
        return ce + (h.max(axis=1) ** 2).mean() + h[:, ::-1].sum() + (h.sigmoid() / 3).sum()

    g = symgrad.trace(f, Spec(("n", 3)), Spec(("n",), "int64"))
    grads = grad(g.outputs[0], list(g.inputs[2:]) + [g.inputs[0]])
    nodes = toposort(list(g.outputs) + grads)
    assert {"const", "gather", "scatter_add", "max", "detach", "unslice"} <= {n.op for n in nodes}
    for n in nodes:
        assert get_op(n.op).infer(n.inputs, n.attrs) == (n.shape, n.dtype), n
    assert all(n.dtype is FLOAT64 for n in grads)
