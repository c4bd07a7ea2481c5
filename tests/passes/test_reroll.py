"""Re-rolling micrograd-form scalar graphs (symgrad/passes/reroll.py): the structure found, the
gradients of every Value unchanged (to rounding), and the fall-back to the graph as traced."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import symgrad as sg
from symgrad.autodiff.vjp import vjp
from symgrad.frontend.trace import Spec, trace
from symgrad.ir.graph import Graph, evaluate
from symgrad.ir.opdef import const
from symgrad.passes.reroll import reroll

ALPHA = 1e-4


def _data(n: int, nin: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, nin)), np.where(rng.random(n) > 0.5, 1.0, -1.0)


def _model(nin: int, nouts: list[int], act: str, seed: int) -> sg.nn.MLP:
    random.seed(seed)
    return sg.nn.MLP(nin, nouts, act=act)


def per_example_loss(model: sg.nn.MLP, nin: int) -> Callable[..., Any]:
    """micrograd's loss: a Python loop over the examples, scalars everywhere."""

    def loss(X: Any, y: Any) -> Any:
        inputs = [[X[i, k] for k in range(nin)] for i in range(X.shape[0])]
        scores = list(map(model, inputs))
        losses = [(1 + -y[i] * si).relu() for i, si in enumerate(scores)]
        reg = ALPHA * sum(p * p for p in model.parameters())
        return sum(losses) * (1.0 / len(losses)) + reg

    return loss


def column_loss(model: sg.nn.MLP, nin: int) -> Callable[..., Any]:
    """The README's column form: Value weights times column Tensors."""

    def loss(X: Any, y: Any) -> Any:
        scores = model([X[:, k] for k in range(nin)])
        reg = ALPHA * sum(p * p for p in model.parameters())
        return (1 + -y * scores).relu().mean() + reg

    return loss


def _loss_and_grads(graph: Graph, env: dict[Any, Any]) -> np.ndarray:
    loss = graph.outputs[0]
    params = list(graph.inputs[2:])
    cmap = vjp([loss], [const(1.0, loss.dtype)], params, all_nodes=True)
    assert isinstance(cmap, dict)
    outs = [loss] + [cmap.get(id(p), const(0.0, p.dtype)) for p in params]
    return np.array([float(np.asarray(v)) for v in evaluate(outs, env)])


def _check(loss_fn: Callable[..., Any], X: np.ndarray, y: np.ndarray, layers: int) -> Graph:
    graph = trace(loss_fn, Spec.of(X), Spec.of(y))
    rolled = reroll(graph)
    assert rolled is not graph
    assert rolled.inputs == graph.inputs
    ops = [n.op for n in rolled.order]
    assert ops.count("matmul") == layers  # one product per layer, whatever the batch
    assert len(rolled.order) < len(graph.order)
    env: dict[Any, Any] = {graph.inputs[0]: X, graph.inputs[1]: y}
    rng = np.random.default_rng(len(graph.inputs))
    for p in graph.inputs[2:]:
        env[p] = np.float64(rng.uniform(-1, 1))
    want, got = _loss_and_grads(graph, env), _loss_and_grads(rolled, env)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    return rolled


@pytest.mark.parametrize("form", [per_example_loss, column_loss])
def test_micrograd_moons_model_rerolls_with_the_same_gradients(form: Any) -> None:
    X, y = _data(12, 2, 0)
    model = _model(2, [16, 16, 1], "relu", 0)
    rolled = _check(form(model, 2), X, y, layers=3)
    shapes = {n.shape for n in rolled.order if n.op == "matmul"}
    assert shapes == {(12, 16), (12, 1)}  # the batch is the rows: X @ W.T, not per example


@settings(max_examples=8, deadline=None)
@given(
    n=st.integers(2, 9),
    nin=st.integers(1, 4),
    nouts=st.lists(st.integers(2, 6), min_size=0, max_size=2),  # (a width-1 layer is a Value)
    act=st.sampled_from(["relu", "tanh"]),
    column=st.booleans(),
    seed=st.integers(0, 10**6),
)
def test_any_layer_sizes_and_activations(
    n: int, nin: int, nouts: list[int], act: str, column: bool, seed: int
) -> None:
    nouts = [*nouts, 1]
    X, y = _data(n, nin, seed)
    model = _model(nin, nouts, act, seed)
    loss_fn = (column_loss if column else per_example_loss)(model, nin)
    graph = trace(loss_fn, Spec.of(X), Spec.of(y))
    if sum(1 for node in graph.order if node.shape == ()) < 200:
        assert reroll(graph) is graph  # small scalar graphs stay as written
        return
    _check(loss_fn, X, y, layers=len(nouts))


def test_small_scalar_graphs_are_left_alone() -> None:
    """The lecture's neuron stays straight-line scalar code."""
    x2, w1, w2, b = (sg.Value(v) for v in (0.0, -3.0, 1.0, 6.88))
    graph = trace(lambda x1: (x1 * w1 + x2 * w2 + b).tanh(), Spec(()))
    assert reroll(graph) is graph


def test_scalar_graphs_without_neurons_fall_back_unchanged() -> None:
    """A large scalar graph of another shape (a product chain, no sums of weighted inputs) is
    returned as traced, for the compaction to handle."""
    vals = [sg.Value(1.0 + 1e-3 * k) for k in range(300)]

    def f(x: Any) -> Any:
        out = x
        for v in vals:
            out = (out * v).tanh()
        return out

    graph = trace(f, Spec(()))
    assert reroll(graph) is graph


def test_sums_that_do_not_vectorise_keep_their_terms() -> None:
    """Terms of a sum with different computations are added as they were."""
    vals = [sg.Value(0.1 * k) for k in range(300)]

    def f(x: Any) -> Any:
        kinds = [lambda u: u.tanh(), lambda u: u.exp(), lambda u: u * u]
        return sum(kinds[k % 3](x * v) for k, v in enumerate(vals))

    graph = trace(f, Spec(()))
    rolled = reroll(graph)
    env = {p: np.float64(0.01 * k + 0.5) for k, p in enumerate(graph.inputs)}
    want = evaluate(list(graph.outputs), env)[0]
    got = evaluate(list(rolled.outputs), env)[0]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert sum(1 for n in rolled.order if n.op == "sum") == 3  # one reduction per kind of term


def test_compile_step_on_per_example_code_trains_like_the_unrolled_step() -> None:
    """compile_step at opt=2 re-rolls; every parameter follows the same trajectory as at opt=1
    (no re-rolling), to rounding, and the step's code is matrix products whose size does not
    depend on the number of examples."""
    trajectories = []
    lines = []
    for opt, n in ((1, 10), (2, 10), (2, 20)):
        X, y = _data(n, 2, 3)
        model = _model(2, [8, 8, 1], "relu", 5)
        sgd = sg.optim.SGD(model.parameters(), lr=0.5)
        step = sg.compile_step(
            per_example_loss(model, 2), X, y, optimizer=sgd, backend="numpy", opt=opt
        )
        losses = [step(X, y) for _ in range(3)]
        trajectories.append((losses, [p.data for p in model.parameters()]))
        source = step.source()
        assert (" @ " in source) == (opt == 2)
        if opt == 2:  # the SGD updates of a layer's parameters are one vector statement
            assert len(re.findall(r"^ +t\d+ = .* - .*# sub ", source, re.M)) < 10
        lines.append(len(re.findall(r"^ +t\d+ = ", source, re.M)))  # statements
    (l1, p1), (l2, p2), _ = trajectories
    np.testing.assert_allclose(l2, l1, rtol=1e-12)
    np.testing.assert_allclose(p2, p1, rtol=1e-12, atol=1e-14)
    assert abs(lines[1] - lines[2]) <= 1  # twice the examples, the same code (up to a constant)


def test_the_readme_column_form_with_a_symbolic_batch() -> None:
    """The README's moons step (``Spec(("n", 2))``): three products, whatever ``n`` is, and the
    same losses as the step compiled without re-rolling."""
    X, y = _data(7, 2, 11)
    runs = []
    for opt in (1, 2):
        model = _model(2, [16, 16, 1], "relu", 1337)
        sgd = sg.optim.SGD(model.parameters(), lr=1.0)
        step = sg.compile_step(
            column_loss(model, 2),
            sg.Spec(("n", 2)),
            sg.Spec(("n",)),
            optimizer=sgd,
            backend="numpy",
            opt=opt,
        )
        runs.append([step(X, y) for _ in range(3)] + [step(X[:5], y[:5])])
        assert step.source().count(" @ ") == (0 if opt == 1 else 3 + 5)  # forward, backward
    np.testing.assert_allclose(runs[1], runs[0], rtol=1e-12)
