"""PyTorch's tensor-making functions and module-level function forms, with PyTorch's defaults
(float32 floats, int64 integers), checked against PyTorch where it is importable; inside traced
functions they are constants, or traced tensors for symbolic sizes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import symgrad as sg
import symgrad.nn.functional as F
from symgrad import Spec, Tensor

X = np.random.default_rng(3).standard_normal((3, 4))

MAKERS: list[tuple[str, Callable[[Any], Any]]] = [
    ("zeros", lambda t: t.zeros(2, 3)),
    ("zeros-tuple", lambda t: t.zeros((2, 3), dtype=t.float64)),
    ("ones", lambda t: t.ones([4])),
    ("ones-long", lambda t: t.ones(2, dtype=t.long)),
    ("full-float", lambda t: t.full((2, 2), 1.5)),
    ("full-int", lambda t: t.full((2,), 7)),
    ("full-bool", lambda t: t.full((2,), True)),
    ("arange", lambda t: t.arange(5)),
    ("arange-2", lambda t: t.arange(2, 9, 3)),
    ("arange-float", lambda t: t.arange(0, 1, 0.1)),
    ("arange-float-dtype", lambda t: t.arange(5, dtype=t.float64)),
    ("linspace", lambda t: t.linspace(-1, 1, 7)),
    ("eye", lambda t: t.eye(3)),
    ("eye-rect", lambda t: t.eye(2, 3, dtype=t.float64)),
    ("tensor-floats", lambda t: t.tensor([[1.0, 2.0]])),
    ("tensor-ints", lambda t: t.tensor([1, 2, 3])),
    ("tensor-bools", lambda t: t.tensor([True, False])),
    ("tensor-f64", lambda t: t.tensor(np.array([0.1, 0.2]))),
    ("zeros_like", lambda t: t.zeros_like(t.tensor(X))),
    ("ones_like-dtype", lambda t: t.ones_like(t.tensor(X), dtype=t.float32)),
    ("full_like", lambda t: t.full_like(t.tensor([1, 2]), 4)),
    ("stack", lambda t: t.stack([t.tensor(X), t.tensor(-X)], dim=1)),
    ("cat", lambda t: t.cat([t.tensor(X), t.tensor(X[:1])], dim=0)),
    ("cat-dim1", lambda t: t.cat((t.tensor(X), t.tensor(X)), 1)),
    ("tril-ones", lambda t: t.tril(t.ones(3, 3))),
    ("triu-1", lambda t: t.triu(t.tensor(X), 1)),
    ("sum", lambda t: t.sum(t.tensor(X), 0)),
    ("mean-dim", lambda t: t.mean(t.tensor(X), dim=1, keepdim=True)),
    ("max-dim", lambda t: t.max(t.tensor(X), 1).values),
    ("argmax", lambda t: t.argmax(t.tensor(X), dim=0)),
    ("var", lambda t: t.var(t.tensor(X), 1)),
    ("std", lambda t: t.std(t.tensor(X))),
    ("transpose", lambda t: t.transpose(t.tensor(X), 0, 1)),
    ("permute", lambda t: t.permute(t.tensor(X), (1, 0))),
    ("squeeze", lambda t: t.squeeze(t.tensor(X[:1]))),
    ("unsqueeze", lambda t: t.unsqueeze(t.tensor(X), 1)),
    ("flatten", lambda t: t.flatten(t.tensor(X))),
    ("cumsum", lambda t: t.cumsum(t.tensor(X), dim=1)),
    ("clamp", lambda t: t.clamp(t.tensor(X), min=0.0)),
    ("log10", lambda t: t.log10(t.tensor(np.abs(X)))),
    ("masked_fill", lambda t: t.masked_fill(t.tensor(X), t.tensor(X) > 0, 0.0)),
    ("one_hot", lambda t: t.nn.functional.one_hot(t.tensor([0, 3, 1]))),
    ("one_hot-n", lambda t: t.nn.functional.one_hot(t.tensor([0, 3, 1]), num_classes=5)),
    ("softmax-dim", lambda t: t.nn.functional.softmax(t.tensor(X), dim=0)),
    ("log_softmax-dim", lambda t: t.nn.functional.log_softmax(t.tensor(X), dim=1)),
]


def _import_symgrad() -> Any:
    import symgrad.nn.functional  # noqa: F401  (sg.nn.functional, as torch.nn.functional)

    return sg


@pytest.mark.parametrize(("name", "make"), MAKERS, ids=[n for n, _ in MAKERS])
def test_makers_and_function_forms_match_pytorch(name: str, make: Callable[[Any], Any]) -> None:
    torch = pytest.importorskip("torch")
    want = make(torch)
    got = make(_import_symgrad())
    assert got.shape == tuple(want.shape)
    assert got.dtype.name == str(want.dtype).removeprefix("torch."), (got.dtype, want.dtype)
    np.testing.assert_allclose(
        got.numpy(), want.numpy(), rtol=1e-6 if "32" in str(want.dtype) else 1e-12
    )


def test_default_float_dtype_is_float32_and_can_be_changed() -> None:
    assert sg.get_default_dtype() is sg.FLOAT32 and sg.zeros(2).dtype is sg.FLOAT32
    assert sg.Tensor([1.0]).dtype is sg.FLOAT64  # (symgrad's own constructor: NumPy's default)
    sg.set_default_dtype(sg.float64)
    try:
        assert sg.tensor([1.0]).dtype is sg.FLOAT64 and sg.ones(1).dtype is sg.FLOAT64
    finally:
        sg.set_default_dtype(sg.float32)
    with pytest.raises(sg.ArgumentError, match="expected float32 or float64, got int64"):
        sg.set_default_dtype(sg.int64)
    assert sg.float is sg.FLOAT32 and sg.bool is sg.BOOL and sg.long is sg.INT64  # type: ignore[attr-defined]


def test_requires_grad_on_makers_makes_leaves() -> None:
    w = sg.zeros(3, requires_grad=True)
    (w * Tensor(np.ones(3, np.float32))).sum().backward()
    np.testing.assert_array_equal(w.grad, np.ones(3))
    assert sg.ones(2, 2, requires_grad=True).is_leaf
    assert sg.zeros(Tensor(X).size()).shape == (3, 4)


def test_makers_inside_compiled_functions_static_and_symbolic() -> None:
    def fn(x: Any) -> Any:
        n = x.shape[0]
        z = sg.zeros(n, 4, dtype=sg.float64) + sg.ones_like(x) + sg.full_like(x, 2.0)
        mask = sg.tril(sg.ones(4, 4, dtype=sg.float64))
        return (z + x).sum(dim=1) + (x @ mask).sum(1) + sg.arange(n).double()

    for backend in ("numpy", "c"):
        f = sg.compile(fn, Spec(("n", 4)), backend=backend)
        for rows in (3, 6):
            a = np.random.default_rng(rows).standard_normal((rows, 4))
            want = (3.0 + a).sum(1) + (a @ np.tril(np.ones((4, 4)))).sum(1) + np.arange(rows)
            np.testing.assert_allclose(f(a), want, rtol=1e-12)


def test_one_hot_without_num_classes_while_tracing_says_to_pass_it() -> None:
    with pytest.raises(sg.ConcretizationError, match="pass num_classes="):
        sg.trace(lambda y: F.one_hot(y).sum(), Spec((3,), "int64"))
    with pytest.raises(sg.ArgumentError, match="num_classes must be an int >= 0"):
        F.one_hot(sg.tensor([1]), num_classes=-3)
