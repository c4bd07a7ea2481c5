"""``symgrad.compile``: the contract of the compiled function on every backend."""

from __future__ import annotations

import numpy as np
import pytest

import symgrad as sg

BACKENDS = ["numpy", pytest.param("c", marks=pytest.mark.cc)]


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if name == "c":
        from symgrad.runtime.cc import compiler_available

        if not compiler_available():
            pytest.skip("no working C compiler")
        pytest.importorskip("symgrad.codegen.c.printer")
    return name


def layer(x: sg.Tensor, w: sg.Tensor) -> sg.Tensor:
    return (x @ w).tanh().sum()


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_forward_and_gradients_for_any_batch_size(backend: str) -> None:
    f = sg.compile(layer, sg.Spec(("n", 3)), sg.Spec((3, 2)), wrt=[0, 1], backend=backend)
    rng = np.random.default_rng(0)
    w = rng.standard_normal((3, 2))
    for n in (1, 4, 17):
        x = rng.standard_normal((n, 3))
        out, (gx, gw) = f(x, w)
        t = np.tanh(x @ w)
        np.testing.assert_allclose(out, t.sum(), rtol=1e-12)
        np.testing.assert_allclose(gw, x.T @ (1 - t * t), rtol=1e-12)
        np.testing.assert_allclose(gx, (1 - t * t) @ w.T, rtol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_without_wrt_returns_outputs(backend: str) -> None:
    f = sg.compile(lambda a, b: (a * b, a + b), sg.Spec((2,)), sg.Spec((2,)), backend=backend)
    prod, total = f(np.array([1.0, 2.0]), np.array([3.0, 4.0]))
    np.testing.assert_array_equal(prod, [3.0, 8.0])
    np.testing.assert_array_equal(total, [4.0, 6.0])
    single = sg.compile(lambda a: a * 2.0, sg.Spec((2,)), backend=backend)
    np.testing.assert_array_equal(single(np.array([1.0, 2.0])), [2.0, 4.0])


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_arguments_are_validated_with_clear_messages(backend: str) -> None:
    f = sg.compile(layer, sg.Spec(("n", 3)), sg.Spec((3, 2)), backend=backend)
    x, w = np.ones((4, 3)), np.ones((3, 2))
    with pytest.raises(sg.ArgumentError, match=r"w: expected shape \(3, 2\), got \(2, 3\)"):
        f(x, w.T.copy())
    with pytest.raises(sg.ArgumentError, match="x: expected float64, got float32"):
        f(x.astype(np.float32), w)
    with pytest.raises(sg.ArgumentError, match=r"takes 2 argument\(s\) \(x, w\), got 1"):
        f(x)
    g = sg.compile(lambda a, b: (a + b).sum(), sg.Spec(("n",)), sg.Spec(("n",)), backend=backend)
    with pytest.raises(sg.ArgumentError, match="symbolic dim 'n' is 3 here but 2 in a"):
        g(np.ones(2), np.ones(3))


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_captured_parameters_are_inputs_read_at_each_call(backend: str) -> None:
    model = sg.nn.Linear(3, 2, rng=0)
    f = sg.compile(
        lambda x: model(x).tanh().sum(),
        sg.Spec(("n", 3)),
        wrt=model.parameters(),
        backend=backend,
    )
    x = np.random.default_rng(1).standard_normal((5, 3))
    out1, (gw, gb) = f(x)
    assert gw.shape == (2, 3) and gb.shape == (2,)  # PyTorch's (out_features, in_features)
    model.weight.data = model.weight.data * 2.0  # a training step: no recompilation needed
    out2, _ = f(x)
    want = np.tanh(x @ model.weight.data.T + model.bias.data).sum()
    np.testing.assert_allclose(out2, want, rtol=1e-12)
    assert out1 != out2


def test_wrt_must_name_float_inputs_or_captured_leaves() -> None:
    with pytest.raises(sg.ArgumentError, match="out of range"):
        sg.compile(layer, sg.Spec((2, 3)), sg.Spec((3, 2)), wrt=5, backend="numpy")
    stranger = sg.Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(sg.ArgumentError, match="not used by the function"):
        sg.compile(layer, sg.Spec((2, 3)), sg.Spec((3, 2)), wrt=stranger, backend="numpy")
    with pytest.raises(sg.ArgumentError, match="only float inputs"):
        sg.compile(
            lambda i, x: x[i].sum(), sg.Spec((2,), "int64"), sg.Spec((3,)), wrt=0, backend="numpy"
        )
    with pytest.raises(sg.ShapeError, match="must be a float scalar"):
        sg.compile(lambda x: x * 2.0, sg.Spec((2,)), wrt=0, backend="numpy")


def test_memo_returns_the_same_compiled_function() -> None:
    a = sg.compile(layer, sg.Spec(("n", 3)), sg.Spec((3, 2)), wrt=1, backend="numpy")
    b = sg.compile(layer, sg.Spec(("n", 3)), sg.Spec((3, 2)), wrt=1, backend="numpy")
    c = sg.compile(layer, sg.Spec(("n", 3)), sg.Spec((3, 2)), wrt=0, backend="numpy")
    assert a is b and a is not c


def test_source_of_each_pass_and_the_joint_graph() -> None:
    f = sg.compile(layer, sg.Spec(("n", 3)), sg.Spec((3, 2)), wrt=1, backend="numpy")
    fwd, bwd = f.source("forward"), f.source("backward")
    assert fwd.startswith("def forward(x, w):") and "np.tanh(t0)" in fwd
    assert bwd.startswith("def backward(g_out, saved, x, w):") and "(vjp tanh)" in bwd
    assert "def backward" not in fwd and "test_jit.py" in bwd
    assert "g_out: f64[]" in str(f.graph)
    with pytest.raises(ValueError, match="forward"):
        f.source("sideways")
    g = sg.compile(layer, sg.Spec(("n", 3)), sg.Spec((3, 2)), backend="numpy")
    with pytest.raises(ValueError, match="without wrt"):
        g.source("backward")
