"""The joint graph splits into a forward pass (outputs + saved values) and a backward pass."""

from __future__ import annotations

import numpy as np

import symgrad as sg
from symgrad.autodiff.joint import split
from symgrad.ir.graph import evaluate


def model(x: sg.Tensor, w: sg.Tensor) -> sg.Tensor:
    return (x @ w).tanh().sum()


def run(j, args):  # type: ignore[no-untyped-def]
    fwd = evaluate(list(j.forward.outputs), dict(zip(j.forward.inputs, args, strict=True)))
    n_out = len(j.outputs)
    outs, saved = fwd[:n_out], fwd[n_out:]
    seeds = [np.ones(o.shape) for o in outs]
    bwd_in = [*seeds, *saved, *args]
    grads = evaluate(list(j.backward.outputs), dict(zip(j.backward.inputs, bwd_in, strict=True)))
    return outs, grads


def test_split_matches_numpy_and_saves_tanh() -> None:
    g = sg.trace(model, sg.Spec(("n", 3)), sg.Spec((3, 2)))
    j = split(g, [0, 1])
    assert [n.op for n in j.saved] == ["tanh"]  # the backward pass reuses tanh's output
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((5, 3)), rng.standard_normal((3, 2))
    (out,), (gx, gw) = run(j, [x, w])
    t = np.tanh(x @ w)
    np.testing.assert_allclose(out, t.sum(), rtol=1e-12)
    np.testing.assert_allclose(gw, x.T @ (1 - t**2), rtol=1e-12)
    np.testing.assert_allclose(gx, (1 - t**2) @ w.T, rtol=1e-12)


def test_backward_text_is_readable() -> None:
    j = split(sg.trace(model, sg.Spec(("n", 3)), sg.Spec((3, 2))), [1])
    text = j.backward.text(provenance=True)
    assert text.startswith("graph(g_out: f64[], saved0: f64[n,2], x: f64[n,3], w: f64[3,2])")
    assert "(vjp tanh)" in text and "(vjp matmul)" in text
    assert "test_joint.py" in text


def test_independent_input_gets_zeros() -> None:
    g = sg.trace(lambda x, y: (x * 2.0).sum(), sg.Spec((3,)), sg.Spec((2,)))
    j = split(g, [0, 1])
    _, (gx, gy) = run(j, [np.ones(3), np.ones(2)])
    np.testing.assert_array_equal(gx, 2.0 * np.ones(3))
    np.testing.assert_array_equal(gy, np.zeros(2))


def test_joint_graph_hash_is_stable() -> None:
    a = split(sg.trace(model, sg.Spec(("n", 3)), sg.Spec((3, 2))), [0, 1])
    b = split(sg.trace(model, sg.Spec(("n", 3)), sg.Spec((3, 2))), [0, 1])
    assert a.graph.content_hash == b.graph.content_hash
    assert a.backward.content_hash == b.backward.content_hash
