"""``x.T @ b`` in C reads ``x`` column-wise: the transposed copy is not printed (unless
something else reads it), and the product is bit-identical to NumPy's summation order."""

from __future__ import annotations

import numpy as np
import pytest

import symgrad as sg

pytestmark = pytest.mark.cc


def test_the_transpose_is_read_in_place(c_backend_ready: None) -> None:
    fn = sg.compile(lambda x, b: x.T @ b, sg.Spec((5, 3)), sg.Spec((5, 4)), backend="c")
    src = fn.source("forward")
    assert "transposed: read column-wise" in src
    assert "transpose  test_c_matmul_transpose.py" not in src  # no copy statement
    rng = np.random.default_rng(0)
    x, b = rng.standard_normal((5, 3)), rng.standard_normal((5, 4))
    np.testing.assert_allclose(fn(x, b), x.T @ b, rtol=1e-14)


def test_a_transpose_read_elsewhere_is_still_stored(c_backend_ready: None) -> None:
    def f(x, b):  # type: ignore[no-untyped-def]
        t = x.T
        return (t @ b).sum() + (t * 2.0).sum()

    fn = sg.compile(f, sg.Spec(("n", 3)), sg.Spec(("n", 4)), wrt=[0], backend="c")
    assert "transpose  test_c_matmul_transpose.py" in fn.source("forward")
    rng = np.random.default_rng(1)
    x, b = rng.standard_normal((7, 3)), rng.standard_normal((7, 4))
    out, (gx,) = fn(x, b)
    assert float(out) == pytest.approx((x.T @ b).sum() + 2 * x.sum(), rel=1e-12)
    np.testing.assert_allclose(gx, np.repeat(b.sum(1, keepdims=True), 3, 1) + 2.0, rtol=1e-12)
