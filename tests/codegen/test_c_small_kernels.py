"""C kernels that keep small results in registers: column sums (a bias gradient), matrix-vector
products (both orientations) and matrix products' leftover rows. Each result is summed in the
same order as the plain in-place loop, so the values are exactly a sequential sum's (a matrix
product's with a fused multiply-add per term on AVX2 machines)."""

from __future__ import annotations

import numpy as np
import pytest

import symgrad as sg
from symgrad.runtime.cc import compiler_available
from tests import sequential_sums

pytestmark = pytest.mark.cc


@pytest.fixture(autouse=True)
def _needs_cc() -> None:
    if not compiler_available():
        pytest.skip("no working C compiler")


def _sequential_rows(x: np.ndarray, op: str = "sum") -> np.ndarray:
    acc = np.full(x.shape[1], 0 if op == "sum" else -np.inf, dtype=x.dtype)
    for row in x:
        acc = acc + row if op == "sum" else np.where((row > acc) | np.isnan(row), row, acc)
    return acc


@pytest.mark.parametrize("cols", [1, 5, 16, 32, 33])
@pytest.mark.parametrize("dtype", ["float64", "float32", "int64"])
def test_column_sums(cols: int, dtype: str) -> None:
    rng = np.random.default_rng(cols)
    x = (rng.standard_normal((37, cols)) * 100).astype(dtype)
    f = sg.compile(lambda x: x.sum(0), sg.Spec(("n", cols), dtype), backend="c")
    # one column is one contiguous run: NumPy's pairwise summation, like x.sum(0)
    want = x.sum(0) if cols == 1 else _sequential_rows(x)
    np.testing.assert_array_equal(f(x), want)
    assert f(x[:0]).tolist() == [0] * cols  # no rows


def test_column_max_keeps_nan() -> None:
    x = np.array([[1.0, 2.0, 3.0], [np.nan, 5.0, -1.0], [0.0, np.inf, 2.0]])
    f = sg.compile(lambda x: x.max(axis=0), sg.Spec(("n", 3)), backend="c")
    np.testing.assert_array_equal(f(x), _sequential_rows(x, "max"))


@pytest.mark.parametrize(("m", "k"), [(3, 7), (8, 16), (13, 5), (100, 16), (40, 100)])
def test_matrix_vector_products(m: int, k: int) -> None:
    rng = np.random.default_rng(m * k)
    a, b = rng.standard_normal((m, k)), rng.standard_normal(k)
    want = np.zeros(m)
    for j in range(k):  # summed over k in order
        want = want + a[:, j] * b[j]
    f = sg.compile(lambda a, b: a @ b, sg.Spec((m, k)), sg.Spec((k,)), backend="c")
    np.testing.assert_array_equal(f(a, b), want)
    at = np.ascontiguousarray(a.T)  # the transposed operand is read column-wise
    g = sg.compile(lambda at, b: at.T @ b, sg.Spec((k, m)), sg.Spec((k,)), backend="c")
    np.testing.assert_array_equal(g(at, b), want)


@pytest.mark.parametrize(("m", "n"), [(2, 16), (11, 5), (3, 40), (7, 17)])
@pytest.mark.parametrize("b_transposed", [False, True])
def test_matrix_products_with_leftover_rows(m: int, n: int, b_transposed: bool) -> None:
    rng = np.random.default_rng(m + n)
    a, b = rng.standard_normal((m, 9)), rng.standard_normal((9, n))
    want = np.zeros((m, n))
    for j in range(9):
        want = want + np.outer(a[:, j], b[j])
    if b_transposed:  # (a @ y.T: y's rows are read column-wise, or copied into rows)
        f = sg.compile(lambda a, y: a @ y.T, sg.Spec((m, 9)), sg.Spec((n, 9)), backend="c")
        got = f(a, np.ascontiguousarray(b.T))
    else:
        f = sg.compile(lambda a, b: a @ b, sg.Spec((m, 9)), sg.Spec((9, n)), backend="c")
        got = f(a, b)
    # summed over k in order from 0: with separate products and sums (the portable tiles), or
    # with one fused multiply-add per term (the AVX2 tiles)
    assert sequential_sums.in_order(got, a, b), np.abs(got - want).max()
