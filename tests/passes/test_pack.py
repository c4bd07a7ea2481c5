"""Packed parameters (symgrad/passes/pack.py, compile_step at opt=2): micrograd's moons step in
the README's column form and in micrograd's per-example loop takes one array per layer matrix,
reads like its tensor form, stays small, and moves every Value as the unpacked step does."""

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
from symgrad.frontend.trace import Spec, trace
from symgrad.frontend.value_nodes import LeafArrays, ValuePack
from symgrad.ir.graph import evaluate
from symgrad.passes.pack import pack_parameters
from symgrad.passes.reroll import reroll

ALPHA = 1e-4


def _moons(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1337)
    t = np.linspace(0, np.pi, n // 2)
    X = np.concatenate([np.c_[np.cos(t), np.sin(t)], np.c_[1 - np.cos(t), 0.5 - np.sin(t)]])
    X += 0.1 * rng.standard_normal(X.shape)
    return X, np.repeat([-1.0, 1.0], n // 2)


def _model(seed: int = 1337, sizes: tuple[int, ...] = (16, 16, 1)) -> sg.nn.MLP:
    random.seed(seed)
    return sg.nn.MLP(2, list(sizes))


def column_form(model: sg.nn.MLP) -> Callable[..., Any]:
    def loss(X: Any, y: Any) -> Any:  # the README's moons loss
        scores = model([X[:, 0], X[:, 1]])
        data_loss = (1 + -y * scores).relu().mean()
        reg_loss = ALPHA * sum(p * p for p in model.parameters())
        return data_loss + reg_loss

    return loss


def per_example_form(model: sg.nn.MLP) -> Callable[..., Any]:
    def loss(X: Any, y: Any) -> Any:  # micrograd's demo loss, a loop over the examples
        inputs = [[X[i, 0], X[i, 1]] for i in range(X.shape[0])]
        scores = list(map(model, inputs))
        losses = [(1 + -y[i] * si).relu() for i, si in enumerate(scores)]
        data_loss = sum(losses) * (1.0 / len(losses))
        return data_loss + ALPHA * sum(p * p for p in model.parameters())

    return loss


FORMS = {"column": column_form, "per-example": per_example_form}
NAMES = "layers_0_w, layers_0_b, layers_1_w, layers_1_b, layers_2_w, layers_2_b"


@pytest.mark.parametrize("form", FORMS)
def test_the_moons_step_numpy_code_is_its_tensor_form(form: str) -> None:
    """≤ 300 lines of NumPy, one array per layer matrix and bias (named after the layer),
    one product per layer forward, one statement per packed parameter's update."""
    X, y = _moons(100)
    model = _model()
    sgd = sg.optim.SGD(model.parameters(), lr=0.1)
    step = sg.compile_step(FORMS[form](model), X, y, optimizer=sgd, backend="numpy")
    src = step.source()
    assert src.count("\n") <= 300
    assert f"def forward(X, y, {NAMES}, hyper0):" in src
    assert re.search(r"= X @ t\d+ +# matmul", src)  # X @ layers_0_w.T (NumPy: a transpose)
    assert re.search(r"= t\d+ \+ layers_0_b +# add", src)
    updates = re.findall(r"^ +t\d+ = (\w+) - t\d+ +# sub", src, re.M)
    assert sorted(updates) == sorted(NAMES.split(", "))
    assert src.count("[...] = ") == 6  # each pack written back in place


@pytest.mark.parametrize("form", FORMS)
def test_the_moons_step_c_code_stays_under_1500_lines(form: str) -> None:
    X, y = _moons(100)
    model = _model()
    sgd = sg.optim.SGD(model.parameters(), lr=0.1)
    step = sg.compile_step(FORMS[form](model), X, y, optimizer=sgd, backend="c")
    if step.backend != "c":
        pytest.skip("no C compiler")
    src = step.source()
    assert src.count("\n") <= 1500
    assert "layers_1_w" in src and "params_" not in src
    # two steps, the Values moved by the C tape module: as the NumPy step moves them
    losses = [step(X, y) for _ in range(2)]
    assert step._captures.io is not None
    twin = _model()
    sgd2 = sg.optim.SGD(twin.parameters(), lr=0.1)
    ref = sg.compile_step(FORMS[form](twin), X, y, optimizer=sgd2, backend="numpy")
    np.testing.assert_allclose(losses, [ref(X, y) for _ in range(2)], rtol=1e-12)
    got = [p.data for p in model.parameters()]
    np.testing.assert_allclose(got, [p.data for p in twin.parameters()], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("form", FORMS)
def test_every_value_moves_as_in_the_step_without_rerolling(form: str) -> None:
    """opt=2 (re-rolled, packed) against opt=1 (the scalar graph): the same losses and the same
    new data for every Value after three steps, so the same gradients (to rounding)."""
    X, y = _moons(12)
    runs = []
    for opt in (1, 2):
        model = _model(5)
        sgd = sg.optim.SGD(model.parameters(), lr=0.7)
        step = sg.compile_step(FORMS[form](model), X, y, optimizer=sgd, backend="numpy", opt=opt)
        losses = [step(X, y) for _ in range(3)]
        runs.append((losses, [p.data for p in model.parameters()]))
    (l1, p1), (l2, p2) = runs
    np.testing.assert_allclose(l2, l1, rtol=1e-12)
    np.testing.assert_allclose(p2, p1, rtol=1e-12, atol=1e-15)


def test_optimisers_with_state_keep_one_input_per_value() -> None:
    """SGD with momentum keeps a buffer per parameter: the step is not packed, and still
    re-rolled and correct."""
    X, y = _moons(12)
    runs = []
    for opt in (1, 2):
        model = _model(3, (4, 1))
        sgd = sg.optim.SGD(model.parameters(), lr=0.3, momentum=0.9)
        step = sg.compile_step(column_form(model), X, y, optimizer=sgd, backend="numpy", opt=opt)
        runs.append([step(X, y) for _ in range(3)] + [p.data for p in model.parameters()])
        if opt == 2:
            assert "layers_0_w" not in step.source()
    np.testing.assert_allclose(runs[1], runs[0], rtol=1e-12, atol=1e-15)


def test_a_value_read_outside_its_layer_is_an_element_of_its_pack() -> None:
    """A packed parameter also used as a scalar (here: an extra term on one weight) reads its
    element of the pack; values agree with the graph as traced."""
    X, y = _moons(8)
    model = _model(7)
    base = column_form(model)
    w = model.layers[0].neurons[2].w[1]
    graph = trace(lambda X, y: base(X, y) + w.tanh(), Spec.of(X), Spec.of(y))
    rolled = reroll(graph)
    params = list(graph.inputs[2:])
    got = pack_parameters(rolled, params, 2)
    assert got is not None
    packed, packs = got
    assert [pk.name for pk in packs] == NAMES.split(", ")
    assert [pk.shape for pk in packs] == [(16, 2), (16,), (16, 16), (16,), (1, 16), (1,)]
    assert sum(1 for n in packed.order if n.op == "slice" and n.inputs[0] is packs[0].node) == 1
    assert list(packed.input_names[2:]) == [pk.name for pk in packs]
    env: dict[Any, Any] = {graph.inputs[0]: X, graph.inputs[1]: y}
    vals = {p: np.float64(0.1 * k - 0.3) for k, p in enumerate(params)}
    env.update(vals)
    penv: dict[Any, Any] = {packed.inputs[0]: X, packed.inputs[1]: y}
    for pk in packs:
        penv[pk.node] = np.array([vals[m] for m in pk.members]).reshape(pk.shape)
    want = evaluate(list(graph.outputs), env)[0]
    np.testing.assert_allclose(evaluate(list(packed.outputs), penv)[0], want, rtol=1e-12)


def test_graphs_without_gathers_do_not_pack() -> None:
    v = sg.Value(0.5)
    graph = trace(lambda x: (x * v).tanh(), Spec(()))
    assert pack_parameters(graph, list(graph.inputs[1:]), 1) is None


def test_leaf_arrays_hand_a_pack_out_as_one_view_and_store_it_back() -> None:
    vs = [sg.Value(float(k)) for k in range(6)]
    lone = sg.Value(9.0)
    arrays = LeafArrays([ValuePack(vs, (2, 3), "w"), lone])
    packed, scalar = arrays.arrays()
    np.testing.assert_array_equal(packed, [[0, 1, 2], [3, 4, 5]])
    assert scalar.shape == () and float(scalar) == 9.0
    packed[1, 2] = -1.0  # what the generated step does in place
    scalar[...] = 2.0
    arrays.store()
    assert vs[5].data == -1.0 and lone.data == 2.0
    with pytest.raises(ValueError, match=r"shape \(2, 2\) needs 4 Values, got 6"):
        ValuePack(vs, (2, 2), "w")


def test_the_c_tape_module_moves_leaf_values_as_the_python_loops_do() -> None:
    """LeafArrays.io (the C tape module's load and store, used by a C step of a micrograd
    model): the same buffer, the same data written back, each Value a new version."""
    from symgrad.runtime import tape

    io = tape.leaf_io()
    if io is None:
        pytest.skip("no C compiler")
    vs = [sg.Value(0.5 * k) for k in range(5)]
    vs[1]._as_tensor()  # (a tensor of the old version: store() drops it)
    arrays = LeafArrays([ValuePack(vs[:4], (2, 2), "w"), vs[4]])
    arrays.io = io
    packed, scalar = arrays.arrays()
    np.testing.assert_array_equal(packed, [[0.0, 0.5], [1.0, 1.5]])
    assert float(scalar) == 2.0
    packed *= -1.0
    scalar[...] = 7.25
    arrays.store()
    assert [v.data for v in vs] == [-0.0, -0.5, -1.0, -1.5, 7.25]
    assert all(v._tensor is None for v in vs) and type(vs[0].data) is float
    load, store = io
    with pytest.raises(TypeError, match="item 1 is not a Value"):
        load([vs[0], 1.0], np.zeros(2))
    with pytest.raises(TypeError, match="float64 buffer of 2 elements"):
        store([vs[0], vs[1]], np.zeros(1))
    with pytest.raises(TypeError, match="float64 buffer"):
        store([vs[0]], np.zeros(1, dtype=np.float32))


@settings(max_examples=5, deadline=None)
@given(
    n=st.integers(3, 8),
    nouts=st.lists(st.integers(6, 12), min_size=1, max_size=2),
    act=st.sampled_from(["relu", "tanh"]),
    column=st.booleans(),
    seed=st.integers(0, 10**6),
)
def test_packed_steps_move_every_value_as_unpacked_ones(
    n: int, nouts: list[int], act: str, column: bool, seed: int
) -> None:
    """Any layer sizes and activations: the packed step (opt=2) and the scalar one (opt=1)
    give the same losses and the same new data for every Value."""
    rng = np.random.default_rng(seed)
    X, y = rng.standard_normal((n, 2)), np.where(rng.random(n) > 0.5, 1.0, -1.0)
    runs = []
    for opt in (1, 2):
        random.seed(seed)
        model = sg.nn.MLP(2, [*nouts, 1], act=act)
        loss = (column_form if column else per_example_form)(model)
        sgd = sg.optim.SGD(model.parameters(), lr=0.2)
        step = sg.compile_step(loss, X, y, optimizer=sgd, backend="numpy", opt=opt)
        runs.append([step(X, y) for _ in range(2)] + [p.data for p in model.parameters()])
        if opt == 2:  # the models that re-roll (large enough scalar graphs) are packed
            graph = trace(loss, Spec.of(X), Spec.of(y))
            rolled = reroll(graph) is not graph
            assert (
                "def forward(X, y, layers_0_w, layers_0_b, layers_1_w" in step.source()
            ) == rolled
    np.testing.assert_allclose(runs[1], runs[0], rtol=1e-11, atol=1e-14)
