"""``Tensor.__setitem__`` (``frontend/tensor_setitem.py``): item assignment as PyTorch's eager
code writes it, checked against PyTorch where it applies (issue 17)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import symgrad
from symgrad.ir.errors import TraceError, UnsupportedError

W = np.arange(12.0).reshape(3, 4) / 7


def _both(program: Any) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    torch = pytest.importorskip("torch")
    return program(symgrad), program(torch)


def _rows_zeroed(torch: Any) -> dict[str, np.ndarray]:
    a = torch.tensor(W, requires_grad=True)
    x = a * 2.0
    x[0] = 0.0  # a constant into a result with history
    x[1:, 1:3] -= 1.0
    x[torch.tensor([1, 2]), torch.tensor([3, 0])] *= 0.5
    (x * torch.tensor(W)).sum().backward()
    return {"x": x.detach().numpy(), "a": np.asarray(a.grad)}


def _value_with_grad(torch: Any) -> dict[str, np.ndarray]:
    v = torch.tensor([1.0, 2.0], requires_grad=True)
    x = torch.zeros(3, 4, dtype=torch.float64)
    x[1, 1:3] += v * 3  # x needs no grad, v does: x joins the graph
    x[2, 0] = v[1]
    (x * torch.tensor(W)).sum().backward()
    return {"x": x.detach().numpy(), "v": np.asarray(v.grad)}


@pytest.mark.parametrize("program", [_rows_zeroed, _value_with_grad])
def test_item_assignment_matches_pytorch(program: Any) -> None:
    ours, theirs = _both(program)
    for k, want in theirs.items():
        np.testing.assert_allclose(ours[k], want, rtol=1e-12, err_msg=k)


def test_assignment_into_a_plain_tensor_gives_a_new_leaf_and_keeps_old_results() -> None:
    x = symgrad.zeros(2, 3)
    before = x * 2
    x[1, range(3)] = symgrad.tensor([1.0, 2.0, 3.0])
    x[0, x[1] > 1.5] = -1.0  # a boolean tensor as the index
    assert x.tolist() == [[0.0, -1.0, -1.0], [1.0, 2.0, 3.0]]
    assert before.tolist() == [[0.0] * 3] * 2
    assert x.is_leaf and not x.requires_grad


def test_a_zero_d_integer_tensor_indexes_as_an_int() -> None:
    dC = symgrad.zeros(5, 2)
    ix = symgrad.tensor([[4, 1]])
    dC[ix[0, 0]] += symgrad.tensor([1.0, 2.0])
    assert dC[4].tolist() == [1.0, 2.0]


def test_a_leaf_that_requires_grad_is_refused_outside_no_grad() -> None:
    p = symgrad.tensor(W, requires_grad=True)
    with pytest.raises(TraceError, match=r"requires grad.*no_grad") as e:
        p[0, 0] = 1.0
    assert "test_tensor_setitem.py" in str(e.value)
    with symgrad.no_grad():
        p[0, 0] = 1.0
    assert p[0, 0].item() == 1.0 and p.is_leaf and p.requires_grad


def test_twice_named_elements_with_a_value_that_requires_grad_are_refused() -> None:
    v = symgrad.tensor([1.0, 2.0], requires_grad=True)
    x = symgrad.zeros(4)
    with pytest.raises(UnsupportedError, match="naming an element twice"):
        x[symgrad.tensor([1, 1])] = v


def test_errors_name_the_shape_and_index() -> None:
    x = symgrad.zeros(2, 3)
    with pytest.raises(IndexError, match="out of bounds"):
        x[5] = 1.0
    with pytest.raises(ValueError, match=r"into shape \(2, 3\)"):
        x[0] = symgrad.tensor([1.0, 2.0])


def test_a_traced_tensor_cannot_be_assigned_into() -> None:
    def f(x: Any) -> Any:
        x[0] = 1.0
        return x.sum()

    with pytest.raises(UnsupportedError, match=r"traced tensor.*torch.where"):
        symgrad.compile(f, symgrad.Spec((3,)))


def test_an_in_place_update_with_an_operand_that_requires_grad_joins_the_graph() -> None:
    def program(torch: Any) -> dict[str, np.ndarray]:
        v = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64, requires_grad=True)
        a = torch.zeros(3, dtype=torch.float64)
        a += v * 2  # a needs no grad, v does: a becomes the result (PyTorch: a.requires_grad)
        a *= v
        (a * torch.tensor([1.0, 10.0, 100.0], dtype=torch.float64)).sum().backward()
        return {"a": a.detach().numpy(), "v": np.asarray(v.grad), "rg": np.array(a.requires_grad)}

    ours, theirs = _both(program)
    for k, want in theirs.items():
        np.testing.assert_allclose(ours[k], want, rtol=1e-12, err_msg=k)
