"""Optional OpenMP (``SYMGRAD_OPENMP=1``): large elementwise loops get a ``parallel for`` that
is taken only from ``PARALLEL_MIN`` elements; small loops stay serial; results are unchanged."""

from __future__ import annotations

import numpy as np
import pytest

import symgrad as sg
from symgrad.ops.c.loops import PARALLEL_MIN
from symgrad.runtime import cc


def _f(x):  # type: ignore[no-untyped-def]
    return ((x * 2.0).exp() + 1.0).log().sum()


def test_openmp_is_off_by_default(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("SYMGRAD_OPENMP", raising=False)
    assert "-fopenmp" not in cc.default_flags()
    monkeypatch.setenv("SYMGRAD_OPENMP", "1")
    assert "-fopenmp" in cc.default_flags()
    assert "-fopenmp" not in cc.without_native(cc.default_flags())


@pytest.mark.cc
def test_large_loops_run_in_parallel_and_agree(monkeypatch, c_backend_ready: None) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SYMGRAD_OPENMP", "1")
    big = sg.compile(_f, sg.Spec((PARALLEL_MIN * 2,)), backend="c")
    small = sg.compile(_f, sg.Spec((64,)), backend="c")
    sym = sg.compile(_f, sg.Spec(("n",)), backend="c")
    assert "#pragma omp parallel for\n" in big.source()
    assert "#pragma omp" not in small.source()
    assert f"#pragma omp parallel for if(n >= {PARALLEL_MIN})" in sym.source()
    x = np.linspace(-1, 1, PARALLEL_MIN * 2)
    want = np.log(np.exp(2 * x) + 1).sum()
    assert float(big(x)) == pytest.approx(want, rel=1e-12)
    assert float(sym(x)) == pytest.approx(want, rel=1e-12)
    assert float(sym(x[:64])) == pytest.approx(float(small(x[:64])), rel=1e-15)
