"""PyTorch's ``gather(dim, index)``, ``prod(dim)``, ``sort``/``argsort``/``topk`` on tensors
(issue 17): values, indices and gradients against PyTorch (float64 to 1e-9 relative, float32
to 1e-4), ``symgrad.gradcheck`` on losses using each (NumPy and C), compiled code agreeing with
eager code, the product's gradient at zeros, stable ties, and the errors for bad arguments."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import symgrad as sg

RNG = np.random.default_rng(17)
X = RNG.standard_normal((4, 6))
IDX0 = RNG.integers(0, 4, (3, 6))  # gather along dim 0: fewer rows than X
IDX1 = RNG.integers(0, 6, (4, 2))  # along dim 1
W = np.linspace(-1.0, 1.0, 6)


def _np(x: Any) -> np.ndarray:
    return x.detach().numpy() if hasattr(x, "detach") and hasattr(x, "numpy") else np.asarray(x)


PROGRAMS: dict[str, Callable[[Any, Any], Any]] = {
    "gather0": lambda lib, x: (x.gather(0, lib.tensor(IDX0)) ** 2).sum(),
    "gather1": lambda lib, x: (lib.gather(x, 1, lib.tensor(IDX1)) * 3.0).tanh().sum(),
    "prod": lambda lib, x: x.prod(1).sum() + lib.prod(x[:2, :3]) + x.prod(0, keepdim=True).sum(),
    "sort": lambda lib, x: (x.sort(1).values * lib.tensor(W)).sum(),
    "sort_desc0": lambda lib, x: (x.sort(0, descending=True)[0] ** 3).sum(),
    "topk": lambda lib, x: (x.topk(3).values * lib.tensor(W[:3])).sum(),
    "topk_smallest": lambda lib, x: lib.topk(x, 2, dim=0, largest=False).values.exp().sum(),
}


@pytest.mark.parametrize(("dtype", "rtol"), [("float64", 1e-9), ("float32", 1e-4)])
@pytest.mark.parametrize("name", list(PROGRAMS))
def test_values_and_gradients_match_pytorch(name: str, dtype: str, rtol: float) -> None:
    torch = pytest.importorskip("torch")
    out = {}
    for lib in (torch, sg):
        x = lib.tensor(X.astype(dtype), requires_grad=True)
        loss = PROGRAMS[name](lib, x)
        loss.backward()
        out[lib] = (loss.item(), _np(x.grad))
    assert out[sg][0] == pytest.approx(out[torch][0], rel=rtol)
    assert out[sg][1].dtype == np.dtype(dtype)
    scale = float(np.abs(out[torch][1]).max())  # (float32: 1 - tanh² cancels near ±1)
    np.testing.assert_allclose(out[sg][1], out[torch][1], rtol=rtol, atol=rtol * scale)


def test_indices_match_pytorch() -> None:
    torch = pytest.importorskip("torch")
    t, s = torch.tensor(X), sg.tensor(X)
    for dim in (0, 1, -1):
        for desc in (False, True):
            want, got = t.sort(dim, descending=desc), s.sort(dim, descending=desc)
            np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy())
            np.testing.assert_array_equal(got.values.numpy(), want.values.numpy())
            np.testing.assert_array_equal(
                s.argsort(dim, descending=desc).numpy(), t.argsort(dim, descending=desc).numpy()
            )
    for k, dim, largest in [(1, 1, True), (4, 1, False), (2, 0, True), (6, -1, True)]:
        want, got = t.topk(k, dim, largest), s.topk(k, dim, largest)
        np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy())
        np.testing.assert_array_equal(got.values.numpy(), want.values.numpy())
    assert got.indices.dtype == sg.int64
    ints = np.array([[3, 1, 2], [0, 5, -4]])
    np.testing.assert_array_equal(
        sg.tensor(ints).sort(1).values.numpy(), torch.tensor(ints).sort(1).values.numpy()
    )
    np.testing.assert_array_equal(
        sg.tensor(ints).prod(1).numpy(), torch.tensor(ints).prod(1).numpy()
    )


def test_ties_keep_their_order_and_nan_sorts_last() -> None:
    x = sg.tensor(np.array([2.0, 1.0, 2.0, np.nan, 1.0]))
    assert x.argsort().tolist() == [1, 4, 0, 2, 3]
    assert x.argsort(descending=True).tolist() == [0, 2, 1, 4, 3]  # (NaN last here too)
    assert x.topk(2).indices.tolist() == [0, 2]
    b = sg.tensor(np.array([True, False, True]))
    assert b.argsort().tolist() == [1, 0, 2] and b.argsort(descending=True).tolist() == [0, 2, 1]


def test_the_products_gradient_is_exact_at_zeros() -> None:
    torch = pytest.importorskip("torch")
    a = np.array([[2.0, 0.0, 3.0, -1.5], [0.0, 4.0, 0.0, 1.0], [1.0, 2.0, 3.0, 4.0]])
    grads = []
    for lib in (torch, sg):
        x = lib.tensor(a, requires_grad=True)
        (x.prod(1) * lib.tensor(np.array([1.0, 2.0, 3.0]))).sum().backward()
        grads.append(_np(x.grad))
    np.testing.assert_array_equal(grads[1], grads[0])
    assert grads[1][0].tolist() == [0.0, -9.0, 0.0, 0.0]  # one zero: only it gets a gradient
    assert grads[1][1].tolist() == [0.0, 0.0, 0.0, 0.0]  # two zeros: none


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_gradcheck_passes(name: str) -> None:
    report = sg.gradcheck(lambda x: PROGRAMS[name](sg, x), X)
    assert report.ok, report


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_compiled_code_matches_eager_code(name: str) -> None:
    x = sg.tensor(X, requires_grad=True)
    want = PROGRAMS[name](sg, x)
    want.backward()
    fn = sg.compile(lambda x: PROGRAMS[name](sg, x), sg.Spec(X.shape), wrt=[0], backend="numpy")
    value, (grad,) = fn(X)
    assert float(value) == pytest.approx(want.item(), rel=1e-12)
    np.testing.assert_allclose(grad, x.grad, rtol=1e-12, atol=1e-15)


def test_eager_gathers_on_new_indices_compile_once() -> None:
    x = sg.tensor(X, requires_grad=True)
    before = sg.eager_stats().backward_plans
    for k in range(4):
        idx = np.random.default_rng(k).integers(0, 6, (4, 3))
        x.grad = None
        (x.gather(1, sg.tensor(idx)) ** 2).sum().backward()
        want = np.zeros_like(X)
        np.add.at(want, (np.arange(4)[:, None], idx), 2 * X[np.arange(4)[:, None], idx])
        np.testing.assert_allclose(x.grad, want, rtol=1e-12)
    assert sg.eager_stats().backward_plans == before + 1  # the index is an input, not a constant


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda x: x.gather(1, sg.tensor(np.array([0, 1]))), sg.ShapeError, "as many dims"),
        (lambda x: x.gather(1, sg.tensor(np.zeros((5, 1), np.int64))), sg.ShapeError, "larger"),
        (lambda x: x.gather(1, sg.tensor(np.zeros((4, 1)))), sg.DTypeError, "int64"),
        (lambda x: x.gather(2, sg.tensor(np.zeros((4, 1), np.int64))), sg.ShapeError, "dim 2"),
        (lambda x: x.gather(1, sg.tensor(np.full((4, 1), 6))), sg.IndexRangeError, "6"),
        (lambda x: x.topk(7), sg.ShapeError, "k = 7 is larger"),
        (lambda x: x.topk(-1), sg.ShapeError, "non-negative"),
        (lambda x: x.sort(3), sg.ShapeError, "out of range"),
    ],
)
def test_bad_arguments_say_what_is_wrong(call: Any, exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match) as info:
        call(sg.tensor(X))
    assert "test_torch_gather_sort.py" in str(info.value)
