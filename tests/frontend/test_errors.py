"""Bad input gets a symgrad error that names the op, what was expected and what was given, and
the user's file:line."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

import symgrad
from symgrad import Spec, Tensor


def _here() -> int:
    """The line number of the caller's next line."""
    return sys._getframe(1).f_lineno + 1


def _assert_points_here(err: symgrad.TraceError, line: int) -> None:
    assert err.provenance is not None, f"no file:line in {err}"
    assert os.path.samefile(err.provenance.file, __file__)
    assert err.provenance.line == line
    assert f"{err.provenance.file}:{line}" in str(err)


def test_incompatible_shapes_name_op_shapes_and_line():
    a, b = Tensor(np.ones((3, 2))), Tensor(np.ones((2, 3)))
    with pytest.raises(symgrad.ShapeError) as info:
        line = _here()
        a + b
    msg = str(info.value)
    assert msg.startswith("add:")
    assert "(3, 2)" in msg and "(2, 3)" in msg
    _assert_points_here(info.value, line)
    assert "a + b" in msg  # the source line is quoted
    assert isinstance(info.value, ValueError)  # ShapeError is a TraceError is a ValueError


def test_float_index_array_is_a_dtype_error():
    W = Tensor(np.ones((3, 2)))
    with pytest.raises(symgrad.DTypeError) as info:
        line = _here()
        W[np.array([0.5])]
    msg = str(info.value)
    assert "int64" in msg and "float" in msg
    _assert_points_here(info.value, line)


def test_float_index_tensor_is_a_dtype_error():
    W = Tensor(np.ones((3, 2)))
    with pytest.raises(symgrad.DTypeError, match="int64"):
        W[Tensor(np.array([0.0, 1.0]))]


def test_inconsistent_symbolic_dims_name_the_dims():
    with pytest.raises(symgrad.ShapeError) as info:
        line = _here()
        symgrad.trace(lambda a, b: a + b, Spec(("n",)), Spec(("m",)))
    msg = str(info.value)
    assert "(n,)" in msg and "(m,)" in msg
    assert "symbolic" in msg
    _assert_points_here(info.value, line)


def test_matmul_inner_dim_mismatch():
    a, b = Tensor(np.ones((3, 2))), Tensor(np.ones((4, 5)))
    with pytest.raises(symgrad.ShapeError) as info:
        line = _here()
        a @ b
    msg = str(info.value)
    assert msg.startswith("matmul:")
    assert "(3, 2)" in msg and "(4, 5)" in msg and "2 != 4" in msg
    _assert_points_here(info.value, line)


def test_symbolic_matmul_mismatch():
    with pytest.raises(symgrad.ShapeError, match=r"\(n, 3\) @ \(4, 2\)"):
        symgrad.trace(lambda x, w: x @ w, Spec(("n", 3)), Spec((4, 2)))


def test_mixing_float32_and_float64_in_matmul_suggests_a_cast():
    # (elementwise ops promote as PyTorch does; its matmul refuses a mix, and so does symgrad's)
    a = Tensor(np.ones(3, dtype=np.float32))
    b = Tensor(np.ones(3))
    with pytest.raises(symgrad.DTypeError) as info:
        line = _here()
        a @ b
    msg = str(info.value)
    assert "float32" in msg and "float64" in msg
    assert "cast" in msg and "astype" in msg
    _assert_points_here(info.value, line)
    assert isinstance(info.value, TypeError)


def test_python_numbers_adopt_the_tensor_dtype():
    a = Tensor(np.ones(3, dtype=np.float32))
    assert (a * 2.5 + 1).dtype == symgrad.FLOAT32  # weak typing: no error, no promotion


def test_python_if_on_a_traced_tensor():
    def f(x):
        if x.sum() > 0:
            return x
        return -x

    with pytest.raises(symgrad.ConcretizationError) as info:
        symgrad.trace(f, Spec((3,)))
    msg = str(info.value)
    assert "where" in msg
    assert "if x.sum() > 0" in msg  # points at the offending line
    assert info.value.provenance.function == "f"


@pytest.mark.parametrize("conversion", [float, int, bool])
def test_concretizing_a_traced_value(conversion):
    with pytest.raises(symgrad.ConcretizationError):
        symgrad.trace(lambda x: conversion(x) and x, Spec(()))


def test_traced_data_and_numpy_conversion_are_refused():
    with pytest.raises(symgrad.ConcretizationError, match=r"\.data"):
        symgrad.trace(lambda x: x.data, Spec((2,)))
    with pytest.raises(TypeError, match="traced"):
        symgrad.trace(lambda x: np.asarray(x), Spec((2,)))


def test_backward_inside_trace_is_refused():
    def f(x):
        y = (x * x).sum()
        y.backward()
        return y

    with pytest.raises(symgrad.ConcretizationError, match="backward"):
        symgrad.trace(f, Spec((2,)))


def test_bool_on_eager_tensors_works():
    t = Tensor(np.array([1.0, -2.0]))
    assert bool(t.sum() < 0)
    assert not bool(t.max() < 0)
    hits = 0
    if t[0] > 0:  # an eager tensor has a value, so Python control flow is fine
        hits += 1
    assert hits == 1
    assert float(t.sum()) == -1.0
    assert int(Tensor(np.array(3))) == 3


def test_numpy_ufunc_without_symgrad_op_is_a_type_error():
    with pytest.raises(TypeError, match=r"numpy\.sin"):
        np.sin(Tensor(np.ones(3)))


def test_supported_numpy_ufuncs_dispatch_to_symgrad():
    t = Tensor(np.array([0.5, 2.0]), requires_grad=True)
    y = np.exp(t) + np.multiply(t, 3.0)
    assert isinstance(y, Tensor)
    np.testing.assert_allclose(y.data, np.exp([0.5, 2.0]) + 3 * np.array([0.5, 2.0]))
    y.sum().backward()
    np.testing.assert_allclose(t.grad, np.exp([0.5, 2.0]) + 3)


def test_one_hot_out_of_range():
    with pytest.raises(IndexError) as info:
        line = _here()
        symgrad.one_hot(np.array([0, 27]), 27)
    assert isinstance(info.value, symgrad.SymgradError)
    assert "27" in str(info.value) and "one_hot" in str(info.value)
    _assert_points_here(info.value, line)
    with pytest.raises(IndexError):
        symgrad.one_hot(np.array([-1]), 27)


def test_index_out_of_range():
    W = Tensor(np.ones((3, 2)))
    with pytest.raises(IndexError, match="5"):
        W[np.array([0, 5])]
    with pytest.raises(IndexError):
        W[np.array([-4])]
    assert W[np.array([-3])].shape == (1, 2)  # NumPy's negative indices are fine
    with pytest.raises(symgrad.ShapeError, match="out of bounds"):
        W[3]


def test_reshape_to_a_wrong_size():
    t = Tensor(np.ones(6))
    with pytest.raises(symgrad.ShapeError) as info:
        line = _here()
        t.reshape(4, 2)
    msg = str(info.value)
    assert "(6,)" in msg and "(4, 2)" in msg
    _assert_points_here(info.value, line)


def test_reshape_with_minus_one_that_does_not_divide():
    t = Tensor(np.ones(6))
    with pytest.raises(symgrad.ShapeError) as info:
        line = _here()
        t.reshape(-1, 4)
    msg = str(info.value)
    assert "reshape" in msg and "(6,)" in msg and "4" in msg
    _assert_points_here(info.value, line)
    assert t.reshape(-1, 3).shape == (2, 3)
    with pytest.raises(symgrad.ShapeError, match="-1"):
        t.reshape(-1, -1)


def test_reshape_with_minus_one_for_a_size_computed_from_symbolic_dims():
    """GPT's ``logits.view(-1, C)`` of an (n, T, C) tensor traced with a symbolic batch dim."""

    lines = []

    def loss(x):
        lines.append(_here())
        return x.view(-1, 27).sum()

    with pytest.raises(symgrad.ShapeError) as info:
        symgrad.trace(loss, Spec(("n", 8, 27)))
    msg = str(info.value)
    assert "cannot reshape (n, 8, 27) to (-1, 27): the -1 would be n * 8" in msg
    assert "trace with concrete sizes" in msg
    _assert_points_here(info.value, lines[0])  # the user's view() line
    assert symgrad.trace(lambda x: x.view(-1, 8, 27).sum(), Spec(("n", 8, 27))) is not None
    with pytest.raises(symgrad.ShapeError) as info:
        symgrad.trace(lambda x: x.view(-1, 5).sum(), Spec(("n", 8, 27)))
    assert "would be" not in str(info.value)  # it does not divide: the plain message


def test_reduction_axis_out_of_range():
    with pytest.raises(symgrad.ShapeError, match="axis 2"):
        Tensor(np.ones((2, 3))).sum(axis=2)


def test_cross_entropy_shape_mismatch():
    with pytest.raises(symgrad.ShapeError, match="targets"):
        symgrad.cross_entropy(Tensor(np.zeros((4, 3))), np.array([0, 1]))


def test_backward_needs_a_scalar_or_a_gradient():
    t = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(symgrad.ShapeError, match="scalar"):
        (t * 2).backward()
    (t * 2).backward(gradient=np.array([1.0, 0.0, 2.0]))
    np.testing.assert_array_equal(t.grad, [2.0, 0.0, 4.0])


def test_backward_without_any_gradient_leaf():
    with pytest.raises(symgrad.ShapeError, match="requires"):
        Tensor(np.ones(3)).sum().backward()


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(TypeError, match="floating"):
        Tensor(np.arange(3), requires_grad=True)


def test_trace_must_return_tensors():
    with pytest.raises(symgrad.TraceError, match="must return symgrad tensors"):
        symgrad.trace(lambda x: 3.0, Spec((2,)))


def test_evaluating_with_inconsistent_symbolic_dims_is_an_argument_error():
    from symgrad.ir.graph import evaluate

    g = symgrad.trace(lambda a, b: a * b, Spec(("n",)), Spec(("n",)))
    with pytest.raises(symgrad.ArgumentError, match="'n'"):
        evaluate(list(g.outputs), dict(zip(g.inputs, [np.ones(2), np.ones(3)], strict=True)))


def test_value_of_a_traced_tensor_says_what_happened_not_control_flow() -> None:
    def fn(x):  # type: ignore[no-untyped-def]
        return symgrad.Value(x) * 2.0

    with pytest.raises(symgrad.ConcretizationError) as info:
        symgrad.compile(fn, Spec(()), backend="numpy")
    msg = str(info.value)
    assert msg.startswith("Value(x) of a traced tensor") and "control flow" not in msg
    assert "Use x itself" in msg and info.value.provenance is not None
    assert info.value.provenance.line == fn.__code__.co_firstlineno + 1
