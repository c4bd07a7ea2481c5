"""Mixed dtypes promote as in PyTorch (issue 17): a float64 tensor with a float32 one gives
float64, ints with floats give the float, Python numbers and 0-d tensors do not widen a
dimensioned float tensor, integer true division gives the default float dtype. Checked against
PyTorch where it is installed (dtypes, values, gradients and their dtypes), and through
``symgrad.compile``; ``matmul`` keeps refusing a mix (as PyTorch does)."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import symgrad as sg
from symgrad.frontend.promote import result_dtype

KINDS = ["float32", "float64", "int64", "bool", "float32-0d", "float64-0d", "int64-0d"]
OPS: dict[str, Callable[[Any, Any], Any]] = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "truediv": operator.truediv,
    "lt": operator.lt,
    "maximum": lambda a, b: a.maximum(b) if hasattr(a, "maximum") else None,
}


def _array(kind: str) -> np.ndarray:
    dt, _, zero = kind.partition("-")
    base = np.array([1.5, -2.0, 3.0]) if dt != "bool" else np.array([True, False, True])
    arr = base.astype(dt) if dt != "int64" else np.array([2, -3, 4])
    return arr[0] if zero else arr


def _pairs() -> list[tuple[str, str]]:
    return [(a, b) for a in KINDS for b in KINDS if a != b and "bool" not in (a, b)] + [
        ("bool", "float32"),
        ("int64", "bool"),
    ]


@pytest.mark.parametrize("op", list(OPS))
@pytest.mark.parametrize(("ka", "kb"), _pairs())
def test_mixed_operands_give_pytorchs_dtype_and_values(ka: str, kb: str, op: str) -> None:
    torch = pytest.importorskip("torch")
    if op == "sub" and "bool" in (ka, kb):
        pytest.skip("PyTorch refuses `-` on a bool tensor")
    a, b = _array(ka), _array(kb)
    if op == "maximum":
        want = torch.maximum(torch.tensor(a), torch.tensor(b))
        got = sg.maximum(sg.tensor(a), sg.tensor(b))
    else:
        want = OPS[op](torch.tensor(a), torch.tensor(b))
        got = OPS[op](sg.tensor(a), sg.tensor(b))
    assert str(got.dtype) == str(want.dtype).removeprefix("torch."), (ka, kb, op)
    np.testing.assert_allclose(got.data, want.numpy(), rtol=1e-6)


@pytest.mark.parametrize("kind", ["float32", "int64", "bool"])
@pytest.mark.parametrize("number", [0.5, 2, np.float64(0.25), True])
def test_python_numbers_do_not_widen_a_tensor(kind: str, number: Any) -> None:
    torch = pytest.importorskip("torch")
    if kind == "bool" and type(number) is int:
        pytest.skip("bool tensor with an int: symgrad keeps bool (see the README's table)")
    got = sg.tensor(_array(kind)) * number
    want = torch.tensor(_array(kind)) * number
    assert str(got.dtype) == str(want.dtype).removeprefix("torch.")
    np.testing.assert_allclose(got.data, want.numpy())


def test_gradients_flow_through_the_promotion_with_each_leafs_dtype() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    x64, w32 = rng.standard_normal((4, 3)), rng.standard_normal(3).astype(np.float32)
    results = {}
    for lib in (torch, sg):
        x = lib.tensor(x64, requires_grad=True)
        w = lib.tensor(w32, requires_grad=True)
        loss = (lib.tanh(x * w) / (w + 3.0)).sum() + (w * 2.0).sum()
        loss.backward()
        results[lib] = (loss, x.grad, w.grad)
    tl, tx, tw = results[torch]
    sl, sx, sw = results[sg]
    assert sl.dtype == sg.float64 and sl.item() == pytest.approx(tl.item(), rel=1e-9)
    assert sx.dtype == np.float64 and sw.dtype == np.float32  # each leaf's own dtype
    np.testing.assert_allclose(sx, tx.numpy(), rtol=1e-9)
    np.testing.assert_allclose(sw, tw.numpy(), rtol=1e-6)


def test_compiled_code_promotes_like_eager_code() -> None:
    x64 = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])
    w32 = np.array([0.3, -0.2, 0.1], dtype=np.float32)

    def f(x: Any, w: Any) -> Any:
        return ((x * w).tanh() + w).sum()

    eager_x = sg.Tensor(x64, requires_grad=True)
    eager_w = sg.Tensor(w32, requires_grad=True)
    want = f(eager_x, eager_w)
    want.backward()
    fn = sg.compile(f, sg.Spec((2, 3), "float64"), sg.Spec((3,), "float32"), wrt=[0, 1])
    value, (gx, gw) = fn(x64, w32)
    assert float(value) == pytest.approx(want.item(), rel=1e-12)
    np.testing.assert_allclose(gx, eager_x.grad, rtol=1e-12)
    np.testing.assert_allclose(gw, eager_w.grad, rtol=1e-6)
    assert gw.dtype == np.float32


def test_arrays_count_as_tensors_and_in_place_updates_keep_the_dtype() -> None:
    w = sg.zeros(3)  # float32
    assert (w + np.ones(3)).dtype == sg.float64  # a float64 array is a float64 tensor
    assert (np.ones(3) * w).dtype == sg.float64
    with sg.no_grad():
        w += sg.tensor(np.full(3, 0.1))  # float64 into float32: stored as float32 (PyTorch)
    assert w.dtype == sg.float32 and w.is_leaf
    np.testing.assert_allclose(w.data, np.full(3, 0.1, np.float32))


def test_matmul_still_refuses_a_mix_as_pytorch_does() -> None:
    a = sg.tensor(np.ones((2, 3)))
    b = sg.tensor(np.ones((3, 2), np.float32))
    with pytest.raises(sg.DTypeError, match="different dtypes") as info:
        a @ b
    assert "test_promote.py" in str(info.value)  # the user's line


@pytest.mark.parametrize(
    ("operands", "want"),
    [
        ((np.ones(2, np.float32), np.ones(2)), "float64"),
        ((np.ones(2, np.float32), np.float64(1.0)), "float32"),
        ((np.ones(2, np.int64), 1.0), "float32"),
        ((np.array(1.0), np.ones(2, np.int64)), "float64"),
        ((np.array(True), 2), "int64"),
    ],
)
def test_the_rule(operands: tuple[Any, Any], want: str) -> None:
    assert str(result_dtype(*operands)) == want


def test_where_promotes_its_branches() -> None:
    torch = pytest.importorskip("torch")
    cond = np.array([True, False, True])
    a32, b64 = np.array([1.0, 2.0, 3.0], np.float32), np.array([-1.0, -2.0, -3.0])
    want = torch.where(torch.tensor(cond), torch.tensor(a32), torch.tensor(b64))
    x = sg.tensor(a32, requires_grad=True)
    got = sg.where(sg.tensor(cond), x, sg.tensor(b64))
    assert got.dtype == sg.float64 and str(want.dtype) == "torch.float64"
    np.testing.assert_array_equal(got.data, want.numpy())
    got.sum().backward()
    np.testing.assert_array_equal(x.grad, np.array([1.0, 0.0, 1.0], np.float32))
    assert sg.where(sg.tensor(cond), sg.arange(3), 0.5).dtype == sg.float32  # as PyTorch
