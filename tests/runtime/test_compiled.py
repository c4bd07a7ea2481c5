"""``CompiledFunction`` results are the caller's own arrays on every backend (issue 20, 2).

The NumPy backend's generated code returns whatever NumPy gives: ``x * 1.0`` folds to ``x``,
reshapes and transposes are views, and the gradient of a sum is one read-only broadcast shared
by every input. Writing into a result must never change an argument, a constant, another output
or a later call's result, and every result must be writable, as on the C backend.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import symgrad as sg

BACKENDS = ["numpy", pytest.param("c", marks=pytest.mark.cc)]
FORWARDS: dict[str, Callable[[Any], Any]] = {
    "x*1.0": lambda a: a * 1.0,
    "x+0.0": lambda a: a + 0.0,
    "reshape": lambda a: a.reshape(3, 2),
    "transpose": lambda a: a.T,
    "row": lambda a: a[0],
    "identity": lambda a: a,
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("form", sorted(FORWARDS))
def test_a_result_never_aliases_the_input(backend: str, form: str) -> None:
    x = np.arange(6.0).reshape(2, 3)
    keep = x.copy()
    f = sg.compile(FORWARDS[form], sg.Spec((2, 3)), backend=backend)
    r = f(x)
    assert r.flags.writeable and not np.shares_memory(r, x)
    r[...] = -7.0
    np.testing.assert_array_equal(x, keep)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradients_are_distinct_writable_arrays(backend: str) -> None:
    f = sg.compile(
        lambda a, b: (a * 0.0 + b * 0.0).sum(),
        sg.Spec((2, 3)),
        sg.Spec((2, 3)),
        backend=backend,
        wrt=[0, 1],
    )
    x = np.ones((2, 3))
    _, (ga, gb) = f(x, x + 1)
    assert ga is not gb and not np.shares_memory(ga, gb)
    assert ga.flags.writeable and gb.flags.writeable
    ga += 5.0
    np.testing.assert_array_equal(gb, 0.0)
    _, (ga2, _) = f(x, x + 1)  # a later call is not changed by writing into an earlier result
    np.testing.assert_array_equal(ga2, 0.0)


def test_check_finite_results_are_fresh_too() -> None:
    x = np.arange(6.0).reshape(2, 3)
    f = sg.compile(lambda a: a * 1.0, sg.Spec((2, 3)), backend="numpy", check_finite=True)
    assert not np.shares_memory(f(x), x)
