"""The C runtime's matrix product (``templates/c/_runtime.c.j2`` and ``_gemm.c.j2``): the four
transpose forms read in place, edge sizes around the register tiles and cache blocks, float32
and float64, one thread and two (the same bits either way), batched products, and the packed
kernel in an exported library (``make check``, no allocation)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import symgrad as sg

pytestmark = pytest.mark.cc


@pytest.fixture(autouse=True)
def _needs_cc() -> None:
    from symgrad.runtime.cc import compiler_available

    if not compiler_available():
        pytest.skip("no working C compiler")


def product(ta: bool, tb: bool) -> Any:
    def f(x: Any, y: Any) -> Any:
        return (x.T if ta else x) @ (y.T if tb else y)

    return f


def operands(m: int, k: int, n: int, ta: bool, tb: bool, dtype: str, seed: int) -> Any:
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    return a, b


def reference(a: np.ndarray, b: np.ndarray, ta: bool, tb: bool) -> np.ndarray:
    x, y = (a.T if ta else a), (b.T if tb else b)
    return np.asarray(x.astype(np.float64) @ y.astype(np.float64))


def assert_close(got: np.ndarray, want: np.ndarray, k: int, dtype: str) -> None:
    eps = np.finfo(dtype).eps
    scale = np.sqrt(max(k, 1)) * 4 * eps
    np.testing.assert_allclose(got, want, rtol=0, atol=scale * max(1.0, np.abs(want).max()))


FORMS = [(False, False), (True, False), (False, True), (True, True)]
SHAPES = [  # (m, k, n): below, at and past the tiles (6-12 rows, 8-32 columns) and blocks
    (1, 7, 33),
    (7, 33, 1),
    (33, 1, 257),
    (257, 33, 7),
    (13, 257, 300),
    (300, 129, 257),  # packed: b exceeds the inlined tiles' budget
    (145, 385, 481),  # one past each block size (MC, KC, NC) of float32
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("ta", "tb"), FORMS)
@pytest.mark.parametrize(("m", "k", "n"), SHAPES)
def test_product_matches_numpy(m: int, k: int, n: int, ta: bool, tb: bool, dtype: str) -> None:
    a, b = operands(m, k, n, ta, tb, dtype, seed=m * 7 + k * 3 + n)
    fn = sg.compile(product(ta, tb), sg.Spec(a.shape, dtype), sg.Spec(b.shape, dtype), backend="c")
    got = np.asarray(fn(a, b))
    assert got.dtype == np.dtype(dtype) and got.shape == (m, n)
    assert_close(got, reference(a, b, ta, tb), k, dtype)


@pytest.mark.parametrize(("ta", "tb"), FORMS)
def test_transposes_are_read_in_place(ta: bool, tb: bool) -> None:
    fn = sg.compile(product(ta, tb), sg.Spec((40, 40)), sg.Spec((40, 40)), backend="c")
    src = fn.source("forward")
    assert ("left operand is" in src) == ta and ("right operand is" in src) == tb
    assert "transpose  test_c_gemm.py" not in src  # no copy statement


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("ta", "tb"), FORMS)
def test_threads_give_the_same_bits(
    ta: bool, tb: bool, dtype: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    m, k, n = 389, 301, 517  # ~60 M multiply-adds: split between threads
    a, b = operands(m, k, n, ta, tb, dtype, seed=5)
    fn = sg.compile(product(ta, tb), sg.Spec(a.shape, dtype), sg.Spec(b.shape, dtype), backend="c")
    results = []
    for threads in ("1", "2", "3"):
        monkeypatch.setenv("SYMGRAD_NUM_THREADS", threads)  # read at each large product
        results.append(np.asarray(fn(a, b)).copy())
    assert_close(results[0], reference(a, b, ta, tb), k, dtype)
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_symbolic_sizes_and_bad_thread_counts(dtype: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fn = sg.compile(
        lambda x, y: x @ y.T, sg.Spec(("m", "k"), dtype), sg.Spec(("n", "k"), dtype), backend="c"
    )
    for value in ("0", "-3", "many", ""):
        monkeypatch.setenv("SYMGRAD_NUM_THREADS", value)  # ignored: every core
        for m, k, n in ((3, 5, 2), (260, 70, 390), (64, 0, 100)):
            a, b = operands(m, k, n, False, True, dtype, seed=m + k + n)
            assert_close(np.asarray(fn(a, b)), reference(a, b, False, True), k, dtype)


def test_non_finite_values_reach_only_their_rows_and_columns() -> None:
    m, k, n = 50, 400, 70  # packed (b transposed); edge tiles in both directions
    a, b = operands(m, k, n, False, True, "float64", seed=2)
    a[3, 10] = np.inf
    b[65, 7] = np.nan
    fn = sg.compile(product(False, True), sg.Spec(a.shape), sg.Spec(b.shape), backend="c")
    got, want = np.asarray(fn(a, b)), a @ b.T
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    finite = np.isfinite(want)
    np.testing.assert_allclose(got[finite], want[finite], rtol=1e-12, atol=1e-11)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_batched_products_and_their_gradients(dtype: str) -> None:
    rng = np.random.default_rng(3)
    q = rng.standard_normal((2, 130, 96)).astype(dtype)
    kk = rng.standard_normal((2, 300, 96)).astype(dtype)

    def loss(x: Any, y: Any) -> Any:  # attention scores, (2, 130, 300)
        return ((x @ y.transpose((0, 2, 1))) ** 2).sum()

    fn = sg.compile(
        loss, sg.Spec(q.shape, dtype), sg.Spec(kk.shape, dtype), wrt=[0, 1], backend="c"
    )
    val, (gq, gk) = fn(q, kk)
    s = q.astype(np.float64) @ kk.astype(np.float64).transpose(0, 2, 1)
    tol = 1e-10 if dtype == "float64" else 2e-3
    np.testing.assert_allclose(float(val), (s**2).sum(), rtol=tol)
    np.testing.assert_allclose(gq, 2 * s @ kk, rtol=tol, atol=tol * np.abs(2 * s @ kk).max())
    gk_want = 2 * s.transpose(0, 2, 1) @ q
    np.testing.assert_allclose(gk, gk_want, rtol=tol, atol=tol * np.abs(gk_want).max())


def test_an_exported_library_packs_on_the_stack(tmp_path: Path) -> None:
    if shutil.which("make") is None:
        pytest.skip("no make")
    rng = np.random.default_rng(4)
    w = sg.Tensor(rng.standard_normal((300, 260)))
    x = rng.standard_normal((70, 260))
    d = sg.export(lambda v: v @ w.T, tmp_path, x, backend="c", name="wide")
    source = (d / "wide.c").read_text()
    assert "_wide_fwd_kernel_gemm_f64(" in source and "malloc(" not in source
    r = subprocess.run(
        ["make", "-C", str(d), "all", "check"], capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "warning" not in r.stderr and "self-test passed" in r.stdout
