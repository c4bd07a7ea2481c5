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


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("spec", [(3,), ("n",)])
def test_masked_arrays_are_refused(backend: str, spec: tuple[Any, ...]) -> None:
    f = sg.compile(lambda a: (a * 2.0).sum(), sg.Spec(spec), backend=backend)
    masked = np.ma.masked_array([1.0, 2.0, 3.0], mask=[0, 1, 0])
    with pytest.raises(sg.ArgumentError, match="a: masked arrays are not supported"):
        f(masked)
    assert f(masked.filled(0.0)) == 8.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_big_endian_array_is_named_by_its_numpy_dtype(backend: str) -> None:
    f = sg.compile(lambda a: (a * 2.0).sum(), sg.Spec((3,)), backend=backend)
    with pytest.raises(sg.ArgumentError, match=r"^a: expected float64, got >f8$"):
        f(np.array([1.0, 2.0, 3.0], dtype=">f8"))


@pytest.mark.cc
def test_running_out_of_scratch_memory_names_the_size() -> None:
    f = sg.compile(
        lambda x: ((x[:, None] * x[None, :]).exp() @ x.reshape(-1, 1)).sum(),
        sg.Spec(("n",)),
        backend="c",
    )
    with pytest.raises(MemoryError, match=r"cannot allocate 8796\d+ bytes .* of scratch memory"):
        f(np.ones(2**20))  # an n x n float64 intermediate: 8 TiB


@pytest.mark.cc
def test_scratch_memory_too_big_to_count_is_a_memory_error() -> None:
    f = sg.compile(
        lambda x: (
            (x[:, None, None] * x[None, :, None] * x[None, None, :]).exp() @ x.reshape(-1, 1)
        ).sum(),
        sg.Spec(("n",)),
        backend="c",
    )
    # an n x n x n float64 intermediate with n = 2**22: 2**69 bytes, more than size_t counts
    with pytest.raises(MemoryError, match=r"larger than the address space \(its element count"):
        f(np.ones(2**22))
