"""Symbolic dims behave like ints where the answer does not depend on their size (issue 17,
item 5), and say clearly where it does."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest

import symgrad as sg
from symgrad import Spec
from symgrad.ir.symdim import SymDim, plain_dim

T, B = SymDim("T"), SymDim("B")


def test_a_symdim_is_still_its_name() -> None:
    assert T == "T" and T == "T" and hash(T) == hash("T") and isinstance(T, str)
    assert {"T": 1}[T] == 1 and f"{T}" == "T" and str(T) == "T" and repr(T) == "'T'"
    assert plain_dim(T).__class__ is str and plain_dim(3) == 3


def test_arithmetic_with_ints_and_dims() -> None:
    assert str(T - 1) == "T - 1" and str(T + 1 - 1) == "T" and (T + 1) - 1 == T
    assert T - T == 0 and (T - T).__class__ is int and T * 0 == 0
    assert str(2 * T) == "2 * T" and str(T * B) == "B * T" and T * B == B * T
    assert str(1 - T) == "-T + 1" and str(-T) == "-T" and +T is T
    assert (4 * T) // 2 == 2 * T and T // T == 1
    assert (T * 3 + B) - (2 * T + B) == T
    assert pickle.loads(pickle.dumps(T - 1)) == T - 1


def test_comparisons_where_decidable() -> None:
    assert T == T and T != T + 1 and T + 1 > T and T < T + 2 and T >= T and T <= T
    assert T >= 0 and T > -1 and not T < 0 and -T <= 0 and T + 1 != 0


@pytest.mark.parametrize(
    ("what", "fn"),
    [
        ("T == 3", lambda: T == 3),
        ("T < 3", lambda: T < 3),
        ("T > B", lambda: T > B),
        ("bool(T)", lambda: bool(T)),
        ("T // 2", lambda: T // 2),
    ],
)
def test_undecidable_questions_raise_one_clear_error(what: str, fn: Any) -> None:
    with pytest.raises(sg.ConcretizationError) as info:
        fn()
    msg = str(info.value)
    assert msg.startswith(what) and "depends on the size a symbolic dim takes at run time" in msg
    assert "control flow" not in msg


@pytest.mark.parametrize(
    ("what", "fn"),
    [
        ("len()", lambda: len(T)),
        ("range()", lambda: range(T)),
        ("int()", lambda: int(T)),
        ("range()", lambda: [0, 1][T]),
    ],
)
def test_python_ints_of_a_symdim_are_refused_with_one_message(what: str, fn: Any) -> None:
    with pytest.raises(sg.ConcretizationError) as info:
        fn()
    msg = str(info.value)
    assert msg.startswith(what) and "'T' is a symbolic dim" in msg and msg.count("symbolic") <= 2
    assert "control flow" not in msg  # (one message, not two glued together)


def _trace(fn: Any, *specs: Spec) -> Any:
    return sg.trace(fn, *specs)


def test_traced_shapes_hold_symdims_that_slice_reshape_and_make_tensors() -> None:
    seen: dict[str, Any] = {}

    def fn(x: Any) -> Any:
        b, t, c = x.shape
        seen["dims"] = (b, t, c)
        y = x[:, :t] + x[:, 0:t:1]
        z = y.reshape(b, t, c) + y.view(b, -1, c)
        pos = sg.arange(t).double()[:, None] + sg.zeros(t, c, dtype=sg.float64)
        return (z + pos).sum() + (x / t).sum() * 0.0 + (t - t)

    graph = _trace(fn, Spec(("B", "T", 3)))
    b, t, c = seen["dims"]
    assert isinstance(b, SymDim) and isinstance(t, SymDim) and c == 3
    a = np.random.default_rng(0).standard_normal((2, 5, 3))
    (got,) = sg.ir.graph.evaluate(list(graph.outputs), {graph.inputs[0]: a})  # type: ignore[misc]
    want = (4 * a).sum() + (np.arange(5)[:, None] + np.zeros((5, 3))).sum() * 2
    assert got == pytest.approx(want)


def test_compiled_function_with_symdim_arithmetic_runs_on_new_sizes() -> None:
    def fn(x: Any) -> Any:
        n = x.shape[0]
        assert n - 1 + 1 == n  # decidable: no error
        return x[:n].sum(0) / sg.arange(n).double().sum()

    f = sg.compile(fn, Spec(("n", 3)), backend="numpy")
    for rows in (2, 7):
        a = np.ones((rows, 3))
        np.testing.assert_allclose(f(a), a.sum(0) / np.arange(rows).sum())


@pytest.mark.parametrize(
    ("fn", "match"),
    [
        (lambda x: x[:, : x.shape[1] - 1], r"can only be sliced whole .* got the slice :T - 1"),
        (lambda x: x.reshape(x.shape[0] * x.shape[1]), r"the size 'B \* T' is computed"),
        (lambda x: sg.zeros(x.shape[1] + 1), r"the size 'T \+ 1' is computed"),
        (lambda x: x[:, 0], r"integer index into symbolic dim 'T'"),
        (lambda x: sg.ones(4, 4)[: x.shape[1]], r"static size 4\) has the symbolic bound 'T'"),
    ],
)
def test_what_a_shape_cannot_hold_is_a_shape_error_on_the_users_line(fn: Any, match: str) -> None:
    with pytest.raises(sg.ShapeError, match=match) as info:
        _trace(fn, Spec(("B", "T")))
    assert info.value.provenance is not None and "test_symdim.py" in info.value.provenance.file


def test_len_of_a_symbolic_first_dim_is_one_clear_message() -> None:
    with pytest.raises(sg.ConcretizationError) as info:
        _trace(lambda x: len(x) * x, Spec(("n", 3)))
    msg = str(info.value).splitlines()[0]
    assert msg.startswith("len() of a tensor whose first dim is the symbolic 'n'")
    assert "x.shape[0]" in msg and "control flow" not in msg and "which needs" not in msg


def test_a_tensor_scaled_by_a_symdim_records_the_size() -> None:
    def fn(x: Any) -> Any:
        n = x.shape[0]
        return x.sum(0) / n + x.mean(0) * (n - 1) + (2 * n) * x.amax(0)

    for backend in ("numpy", "c"):
        f = sg.compile(fn, Spec(("n", 3)), backend=backend)
        for rows in (2, 5):
            a = np.arange(rows * 3, dtype=np.float64).reshape(rows, 3)
            want = a.sum(0) / rows + a.mean(0) * (rows - 1) + 2 * rows * a.max(0)
            np.testing.assert_allclose(f(a), want)


def test_float_arithmetic_on_a_symdim_says_what_to_do() -> None:
    with pytest.raises(TypeError, match=r"T \* 0.5: a symbolic dim does integer arithmetic"):
        T * 0.5
    with pytest.raises(TypeError, match=r"use the dim with the tensor \(x / T"):
        1.0 / T


def test_a_causal_mask_from_a_symbolic_dim() -> None:
    def fn(x: Any) -> Any:
        t = x.shape[1]
        mask = sg.tril(sg.ones(t, t, dtype=sg.float64))
        att = (x @ x.transpose(-2, -1)).masked_fill(mask == 0, float("-inf"))
        return att.softmax(dim=-1).sum() + sg.arange(0, t).double().sum()

    f = sg.compile(fn, Spec(("B", "T", 2)), backend="numpy")
    for t in (3, 5):
        a = np.random.default_rng(t).standard_normal((2, t, 2))
        assert f(a) == pytest.approx(2 * t + t * (t - 1) / 2)
    with pytest.raises(sg.ShapeError, match=r"tril\(ones\(T, T\)\)"):
        sg.trace(lambda x: sg.ones(8, 8)[: x.shape[1]].sum(), Spec(("B", "T")))
    with pytest.raises(sg.ShapeError, match=r"only arange\(T\) and arange\(0, T\)"):
        sg.trace(lambda x: sg.arange(1, x.shape[1]).sum(), Spec(("B", "T")))
