"""``OpDef.scalar`` (eager Value arithmetic on Python floats) gives the results of the op's
NumPy ``eval`` on float64, special values included."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import symgrad  # noqa: F401  (declares the ops)
from symgrad.ir.opdef import EvalContext, registry
from symgrad.ops.tape import tape_ops

SCALAR_OPS = sorted(n for n, op in registry().items() if op.scalar is not None)
EXACT = {"add", "sub", "mul", "div", "neg", "abs", "relu", "sqrt"}  # correctly rounded in both
floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 3.0, -2.5, 709.8, -745.2, 1e-310]),
)


def _eval(name: str, *xs: float) -> float:
    op = registry()[name]
    with np.errstate(all="ignore"):
        ctx = EvalContext({}, (), np.dtype(np.float64), {})
        return float(op.eval(ctx, *(np.asarray(x, dtype=np.float64) for x in xs)))


def _same(got: float, want: float, name: str) -> None:
    assert isinstance(got, float)
    if math.isnan(want):
        assert math.isnan(got)
    elif name == "pow" and want == 0:
        # NumPy computes x ** 0.5 as sqrt(x) (sqrt(-0.0) is -0.0); libm's pow, like the C
        # backend, gives +0.0 (C99 F.9.4.4)
        assert got == want
    elif name in EXACT or math.isinf(want) or want == 0:
        assert got == want and math.copysign(1, got) == math.copysign(1, want)
    else:  # libm against NumPy's vectorised functions: within a few ulp
        assert got == pytest.approx(want, rel=4e-16, abs=0)


def test_the_scalar_ops_are_the_tape_ops() -> None:
    assert set(SCALAR_OPS) == {t.name for t in tape_ops()[1:]}
    assert set(SCALAR_OPS) >= {"add", "sub", "mul", "div", "pow", "neg", "exp", "log", "tanh"}


@pytest.mark.parametrize("name", SCALAR_OPS)
@settings(max_examples=150, deadline=None)
@given(a=floats, b=floats)
def test_scalar_matches_numpy_eval(name: str, a: float, b: float) -> None:
    op = registry()[name]
    assert op.scalar is not None
    args = (a, b)[: op.arity]
    _same(op.scalar(*args), _eval(name, *args), name)
