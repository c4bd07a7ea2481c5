"""Bad model code fails at trace time with a symgrad error that names the op, what was expected
and what was given, and points at the user's line (docs/reliability.md, "Bad input: tracing").

Each case is a one-line lambda, so the provenance of the error must be that lambda's line.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import symgrad as sg
from symgrad import Spec, Tensor

A = Tensor(np.ones((3, 2)))
B = Tensor(np.ones((2, 3)))
F32 = Tensor(np.ones(3, dtype=np.float32))
F64 = Tensor(np.ones(3))
I64 = Tensor(np.arange(3))
MASK = Tensor(np.ones(4) > 0)

# (id, code, error type, substrings of the message)
SHAPE_CASES: list[tuple[str, Callable[[], Any], type[Exception], list[str]]] = [
    ("elementwise", lambda: A + B, sg.ShapeError, ["add", "(3, 2)", "(2, 3)"]),
    ("elementwise-pow", lambda: A**B, sg.ShapeError, ["pow", "(3, 2)", "(2, 3)"]),
    ("maximum", lambda: sg.maximum(A, B), sg.ShapeError, ["maximum", "(3, 2)", "(2, 3)"]),
    ("where", lambda: sg.where(MASK, A, A), sg.ShapeError, ["where", "(4,)", "(3, 2)"]),
    ("reduce-axis", lambda: A.sum(axis=3), sg.ShapeError, ["axis 3", "rank 2"]),
    ("max-axis", lambda: A.max(axis=-3), sg.ShapeError, ["axis -3", "rank 2"]),
    ("mean-axis", lambda: A.mean(axis=2), sg.ShapeError, ["axis 2", "rank 2"]),
    ("reshape", lambda: A.reshape(4, 2), sg.ShapeError, ["reshape", "(3, 2)", "(4, 2)"]),
    ("transpose", lambda: A.transpose((0, 0)), sg.ShapeError, ["transpose", "(0, 0)", "(3, 2)"]),
    ("concatenate", lambda: sg.concatenate([A, B]), sg.ShapeError, ["(3, 2)", "(2, 3)"]),
    ("concatenate-axis", lambda: sg.concatenate([A, A], axis=2), sg.ShapeError, ["axis 2"]),
    ("stack", lambda: sg.stack([A, B]), sg.ShapeError, ["stack", "(3, 2)", "(2, 3)"]),
    ("matmul", lambda: A @ A, sg.ShapeError, ["matmul", "(3, 2) @ (3, 2)", "2 != 3"]),
    ("matmul-0d", lambda: Tensor(np.array(1.0)) @ A, sg.ShapeError, ["matmul", "rank"]),
    ("index-too-many", lambda: A[0, 0, 0], sg.ShapeError, ["too many indices", "(3, 2)"]),
    ("index-out-of-bounds", lambda: A[3], sg.ShapeError, ["index 3", "size 3"]),
    ("gather-out-of-range", lambda: A[np.array([0, 5])], sg.IndexRangeError, ["5", "size 3"]),
    (
        "one-hot-out-of-range",
        lambda: sg.one_hot(np.array([0, 3]), 3),
        sg.IndexRangeError,
        ["3", "[0, 3)"],
    ),
    ("one-hot-negative", lambda: sg.one_hot(np.array([-1]), 3), sg.IndexRangeError, ["-1"]),
    ("one-hot-classes", lambda: sg.one_hot(np.array([1]), 0), sg.ShapeError, ["num_classes", "0"]),
    (
        "cross-entropy",
        lambda: sg.cross_entropy(A, np.array([0, 1])),
        sg.ShapeError,
        ["targets", "(3,)", "(2,)"],
    ),
    ("softmax-axis", lambda: sg.softmax(A, axis=2), sg.ShapeError, ["axis 2"]),
    ("slice-step-zero", lambda: A[::0], sg.ShapeError, ["step cannot be zero"]),
]

DTYPE_CASES: list[tuple[str, Callable[[], Any], type[Exception], list[str]]] = [
    # (elementwise ops promote mixed dtypes as PyTorch does: tests/frontend/test_promote.py;
    # matmul refuses a mix, as PyTorch's does)
    (
        "f32-f64-matmul",
        lambda: F32 @ F64,
        sg.DTypeError,
        ["matmul", "float32", "float64", "astype"],
    ),
    ("int-float-matmul", lambda: I64 @ F64, sg.DTypeError, ["matmul", "int64", "float64", "cast"]),
    ("int-tanh", lambda: I64.tanh(), sg.DTypeError, ["tanh", "int64", "astype"]),
    ("int-mean", lambda: I64.mean(), sg.DTypeError, ["mean", "int64"]),
    ("float-index-array", lambda: A[np.array([0.0, 1.0])], sg.DTypeError, ["int64", "float64"]),
    ("float-index-list", lambda: A[[0.5]], sg.DTypeError, ["int64", "float64"]),
    ("float-index-tensor", lambda: A[F64], sg.DTypeError, ["int64", "float64"]),
    ("float-index-scalar", lambda: A[1.0], sg.DTypeError, ["1.0", "float", "int"]),
    ("float-slice", lambda: A[0.5:2], sg.DTypeError, ["slice", "integers"]),
    ("bool-mask", lambda: A[Tensor(np.ones(3) > 0)], sg.DTypeError, ["mask", "where"]),
    ("one-hot-float", lambda: sg.one_hot(np.array([1.0]), 3), sg.DTypeError, ["int64", "float64"]),
    (
        "cross-entropy-float-targets",
        lambda: sg.cross_entropy(A, np.array([0.0, 1.0, 1.0])),
        sg.DTypeError,
        ["int64", "float64"],
    ),
]

NUMPY_CASES: list[tuple[str, Callable[[], Any], type[Exception], list[str]]] = [
    ("ufunc", lambda: np.sin(F64), sg.UnsupportedError, ["numpy.sin", "not supported"]),
    ("ufunc-method", lambda: np.add.reduce(F64), sg.UnsupportedError, ["numpy.add.reduce"]),
    ("ufunc-kwarg", lambda: np.exp(F64, where=True), sg.UnsupportedError, ["numpy.exp", "where"]),
]


def _check(
    fn: Callable[[], Any], exc: type[Exception], parts: list[str], line: int | None = None
) -> None:
    with pytest.raises(exc) as info:
        fn()
    msg = str(info.value)
    for part in parts:
        assert part in msg, f"{part!r} not in {msg!r}"
    err = info.value
    assert isinstance(err, sg.SymgradError), f"{type(err).__name__} is not a SymgradError"
    where = getattr(err, "provenance", None)
    assert where is not None, f"no file:line in {msg!r}"
    assert os.path.samefile(where.file, __file__)
    assert where.line == (line or fn.__code__.co_firstlineno), (where.line, msg)
    assert f"{where.file}:{where.line}" in msg  # the user's file:line ...
    assert where.source and where.source in msg  # ... and the text of that line


@pytest.mark.parametrize(
    ("fn", "exc", "parts"), [pytest.param(*c[1:], id=c[0]) for c in SHAPE_CASES]
)
def test_incompatible_shapes_for_every_op_family(
    fn: Callable[[], Any], exc: type[Exception], parts: list[str]
) -> None:
    _check(fn, exc, parts)


@pytest.mark.parametrize(
    ("fn", "exc", "parts"), [pytest.param(*c[1:], id=c[0]) for c in DTYPE_CASES]
)
def test_dtype_mixing_and_float_indices(
    fn: Callable[[], Any], exc: type[Exception], parts: list[str]
) -> None:
    _check(fn, exc, parts)


@pytest.mark.parametrize(
    ("fn", "exc", "parts"), [pytest.param(*c[1:], id=c[0]) for c in NUMPY_CASES]
)
def test_unsupported_numpy_ufuncs_are_named(
    fn: Callable[[], Any], exc: type[Exception], parts: list[str]
) -> None:
    _check(fn, exc, parts)


def test_shape_errors_with_symbolic_dims_name_the_dims() -> None:
    cases = [
        (lambda x, y: x + y, (Spec(("n", 2)), Spec(("m", 2))), ["(n, 2)", "(m, 2)", "symbolic"]),
        (lambda x, y: x @ y, (Spec(("n", 2)), Spec(("m", 2))), ["(n, 2) @ (m, 2)"]),
        (lambda x: x.reshape(3, -1), (Spec(("n", 2)),), ["(n, 2)", "(3, -1)"]),
        (lambda x: x[0], (Spec(("n",)),), ["symbolic dim 'n'"]),
        (lambda x: x[1:], (Spec(("n",)),), ["symbolic dim 'n'"]),
    ]
    for fn, specs, parts in cases:
        line = fn.__code__.co_firstlineno  # the model's line, not the trace call's
        _check(lambda fn=fn, specs=specs: sg.trace(fn, *specs), sg.ShapeError, parts, line)


# -- Python control flow on traced values ---------------------------------------------------


def _branchy(x: Tensor) -> Tensor:
    if x.sum() > 0:  # the line the error must quote
        return x
    return -x


def _looping(x: Tensor) -> Tensor:
    while x.max() > 1.0:  # a while loop on a traced value
        x = x / 2.0
    return x


def _short_circuit(x: Tensor) -> Tensor:
    return (x.sum() > 0) and x  # type: ignore[return-value]


def _python_index(x: Tensor, k: Tensor) -> Tensor:
    return x * [1.0, 2.0, 3.0][k]  # type: ignore[index]


def _range(x: Tensor, k: Tensor) -> Tensor:
    return x * len(range(k))  # type: ignore[call-overload]


@pytest.mark.parametrize(
    ("fn", "specs", "source"),
    [
        (_branchy, [Spec((3,))], "if x.sum() > 0:"),
        (_looping, [Spec((3,))], "while x.max() > 1.0:"),
        (_short_circuit, [Spec((3,))], "return (x.sum() > 0) and x"),
        (_python_index, [Spec((3,)), Spec((), "int64")], "[1.0, 2.0, 3.0][k]"),
        (_range, [Spec((3,)), Spec((), "int64")], "len(range(k))"),
        (lambda x: float(x) * x, [Spec(())], "float(x)"),
        (lambda x: int(x) * x, [Spec(())], "int(x)"),
        (lambda x: x.data * x, [Spec((2,))], "x.data"),
        (lambda x: x * x.item(), [Spec(())], "x.item()"),
    ],
)
def test_control_flow_on_traced_values_explains_and_suggests_where(
    fn: Callable[..., Any], specs: list[Spec], source: str
) -> None:
    with pytest.raises(sg.ConcretizationError) as info:
        sg.trace(fn, *specs)
    msg = str(info.value)
    assert "symbolic (traced)" in msg
    assert "control flow must not depend on traced values" in msg
    assert "symgrad.where" in msg
    assert source in msg  # the user's line is quoted
    assert info.value.provenance is not None
    assert os.path.samefile(info.value.provenance.file, __file__)


def test_where_is_the_data_independent_replacement() -> None:
    def fixed(x: Tensor) -> Tensor:
        return sg.where(x.sum() > 0, x, -x)

    graph = sg.trace(fixed, Spec((3,)))
    for x in (np.array([1.0, 2.0, -0.5]), np.array([-1.0, -2.0, 0.5])):
        (got,) = sg.ir.graph.evaluate(list(graph.outputs), {graph.inputs[0]: x})  # type: ignore[misc]
        np.testing.assert_array_equal(got, x if x.sum() > 0 else -x)


def test_eager_tensors_have_values_so_control_flow_works() -> None:
    t = Tensor(np.array([1.0, -2.0]))
    assert bool(t.sum() < 0) and [10, 20, 30][Tensor(np.array(2))] == 30
    assert len(range(Tensor(np.array(3)))) == 3
    with pytest.raises(TypeError, match="integer tensor"):
        [1, 2][Tensor(np.array(1.0))]  # a float is no index, eager or not


# -- NumPy functions on traced tensors -----------------------------------------------------


@pytest.mark.parametrize(
    ("fn", "name"),
    [
        (lambda x: np.sort(x), "numpy.sort"),
        (lambda x: np.cumprod(x), "numpy.cumprod"),
        (lambda x: np.linalg.norm(x), "numpy.linalg.norm"),
        (lambda x: np.sum(x, dtype=np.float32), "numpy.sum"),
        (lambda x: np.clip(x, 0, 1), "numpy.clip"),
    ],
)
def test_unsupported_numpy_functions_on_traced_tensors_are_named(
    fn: Callable[[Tensor], Any], name: str
) -> None:
    with pytest.raises(sg.UnsupportedError) as info:
        sg.trace(fn, Spec((3,)))
    msg = str(info.value)
    assert name.split(".")[-1] in msg and "not supported on traced symgrad tensors" in msg
    assert "docs/ops.md" in msg
    assert isinstance(info.value, TypeError)  # what NumPy users expect from a bad call
    assert info.value.provenance is not None
    assert info.value.provenance.line == fn.__code__.co_firstlineno


@pytest.mark.parametrize(
    ("fn", "want"),
    [
        (lambda x: np.sum(x), lambda a: np.sum(a)),
        (lambda x: np.mean(x, axis=0), lambda a: np.mean(a, axis=0)),
        (lambda x: np.max(x, axis=1, keepdims=True), lambda a: np.max(a, axis=1, keepdims=True)),
        (lambda x: np.reshape(x, (3, 2)), lambda a: np.reshape(a, (3, 2))),
        (lambda x: np.transpose(x), lambda a: np.transpose(a)),
        (lambda x: np.concatenate([x, x], axis=1), lambda a: np.concatenate([a, a], axis=1)),
        (lambda x: np.stack([x, x]), lambda a: np.stack([a, a])),
        (lambda x: np.where(x > 0, x, 0.0), lambda a: np.where(a > 0, a, 0.0)),
        (lambda x: np.exp(x) * np.tanh(x), lambda a: np.exp(a) * np.tanh(a)),
    ],
)
def test_numpy_functions_with_a_symgrad_op_are_recorded(
    fn: Callable[[Any], Any], want: Callable[[np.ndarray], Any]
) -> None:
    a = np.array([[0.5, -1.0, 2.0], [1.5, 0.0, -0.25]])
    graph = sg.trace(fn, Spec((2, 3)))
    (got,) = sg.ir.graph.evaluate(list(graph.outputs), {graph.inputs[0]: a})  # type: ignore[misc]
    np.testing.assert_allclose(got, want(a))
    eager = fn(Tensor(a))
    assert isinstance(eager, Tensor)  # eager tensors stay tensors (gradients flow)
    np.testing.assert_allclose(eager.data, want(a))


def test_numpy_functions_on_eager_tensors_without_a_symgrad_op_compute_on_data() -> None:
    t = Tensor(np.array([3.0, 1.0, 2.0]))
    out = np.sort(t)
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, [1.0, 2.0, 3.0])
    assert np.allclose(t, [3.0, 1.0, 2.0])
