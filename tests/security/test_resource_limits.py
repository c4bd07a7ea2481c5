"""Absurd sizes fail with a clear error (what was expected, what was given) before anything is
allocated; gradcheck does not start element-wise checks that would take hours."""

from __future__ import annotations

import re
import time
import tracemalloc
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest

import symgrad as sg
from symgrad.check import cost as gradcheck_cost
from symgrad.ir.errors import ShapeError
from symgrad.ir.graph import Graph, evaluate, machine_memory
from symgrad.ops.source import ConstArray, make_constant, make_input

HUGE = 10**12


@contextmanager
def allocates_at_most(nbytes: int) -> Iterator[None]:
    """The block allocates (through Python's and NumPy's allocators) at most ``nbytes``."""
    tracemalloc.start()
    try:
        yield
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= nbytes, peak


@pytest.mark.parametrize(
    ("shape", "dtype", "match"),
    [
        ((HUGE,), "float64", r"Spec: shape \(1000000000000,\) needs 7\.3 TiB"),
        ((HUGE, "n"), "float32", r"expected at most \d+ elements, got 1000000000000"),
        ((10**6, 10**6), "bool", r"more than this machine's memory"),
        ((np.int64(HUGE),), "int64", r"got 1000000000000"),
        ((2**62, 2**62), "float64", r"needs [\d.]+ PiB"),
        ((-1, 3), "float64", r"expected dims >= 0, got -1 in \(-1, 3\)"),
        ((3.0,), "float64", r"expected shape entries to be ints >= 0 or str dim names, got 3\.0"),
        (("n", 2.5), "float64", r"got 2\.5 \(float\)"),
        ((np.float64(4),), "float64", r"got np\.float64\(4\.0\)|got 4\.0"),
        ((True,), "float64", r"got True \(bool\)"),
        (("n m",), "float64", r"expected symbolic dim names to be identifiers, got 'n m'"),
        ((None,), "float64", r"got None \(NoneType\)"),
        (object(), "float64", r"expected a shape"),
    ],
)
def test_absurd_specs_fail_clearly_before_allocating(shape: Any, dtype: str, match: str) -> None:
    with allocates_at_most(1 << 20), pytest.raises(ShapeError, match=match):
        sg.Spec(shape, dtype)


def test_the_limit_is_the_machine_memory() -> None:
    limit = machine_memory()
    assert limit > 1 << 20
    itemsize = 8
    fits = limit // itemsize
    assert sg.Spec((fits,)).shape == (fits,)  # a description only: nothing is allocated
    with pytest.raises(ShapeError, match=f"expected at most {fits} elements, got {fits + 1}"):
        sg.Spec((fits + 1,))
    assert sg.Spec((0, HUGE)).shape == (0, HUGE)  # no elements at all


def test_absurd_specs_fail_in_trace_compile_and_export_too(tmp_path: Any) -> None:
    def f(x: Any) -> Any:
        return (x * x).sum()

    for call in (
        lambda: sg.compile(f, sg.Spec((HUGE,))),
        lambda: sg.trace(f, sg.Spec((3, HUGE))),
        lambda: sg.export(f, tmp_path / "out", sg.Spec((HUGE,))),
    ):
        with allocates_at_most(1 << 22), pytest.raises(ShapeError, match="more than this machine"):
            call()
    assert not (tmp_path / "out").exists()


def test_a_constant_that_cannot_fit_fails_before_it_is_copied() -> None:
    view = np.broadcast_to(np.float64(1.0), (10**7, 10**7))  # 800 TB, 8 bytes in memory
    started = time.perf_counter()
    with allocates_at_most(1 << 20):
        with pytest.raises(ShapeError, match=r"constant: shape \(10000000, 10000000\) needs"):
            make_constant(view)
        with pytest.raises(ShapeError, match="more than this machine's memory"):
            ConstArray(view)
    assert time.perf_counter() - started < 5.0
    small = make_constant(np.broadcast_to(np.float64(2.0), (3, 4)))
    assert small.shape == (3, 4)


def test_a_model_closing_over_a_huge_constant_fails_at_once() -> None:
    """(The front end copies array operands with NumPy first, which refuses with its own
    MemoryError; tracemalloc counts NumPy's failed attempt, so only the time is measured.)"""
    view = np.broadcast_to(np.float64(1.0), (10**7, 10**7))
    W = sg.Tensor(np.ones(3), requires_grad=True)

    def f(x: Any) -> Any:
        return (x * W + view).sum()

    started = time.perf_counter()
    with pytest.raises((ShapeError, MemoryError)) as info:
        sg.trace(f, sg.Spec((3,)))
    assert re.search(r"(more than this machine's memory|Unable to allocate)", str(info.value))
    assert time.perf_counter() - started < 5.0


def test_the_interpreter_refuses_a_value_that_cannot_fit() -> None:
    """Symbolic dims are bound at run time: an outer product of n = 10**7 would need 800 TB."""
    x = make_input(("n",), "float64", name="x")
    outer = sg.Tensor._wrap(x, None, (), True)
    y = outer.reshape((-1, 1)) * outer.reshape((1, -1))
    graph = Graph([x], [y.node], ["x"])
    small = evaluate(list(graph.outputs), {x: np.arange(3.0)})
    assert isinstance(small, list)
    np.testing.assert_array_equal(small[0], np.outer(np.arange(3.0), np.arange(3.0)))
    big = np.zeros(10**7)
    with allocates_at_most(1 << 20), pytest.raises(ShapeError) as info:
        evaluate(list(graph.outputs), {x: big})
    msg = str(info.value)
    assert "mul (f64[n,n])" in msg and "(10000000, 10000000)" in msg
    assert "more than this machine's memory" in msg and "test_resource_limits.py" in msg


# -- gradcheck: element-wise checks that would take hours use projections ------------------------


def quadratic(x: Any, w: Any) -> Any:
    return ((x @ w).tanh() ** 2).sum()


def _slow_clock(step: float) -> Callable[[], float]:
    """A clock that advances ``step`` seconds per reading (every evaluation seems to take it)."""
    now = [0.0]

    def clock() -> float:
        now[0] += step
        return now[0]

    return clock


def test_gradcheck_switches_to_projections_when_elements_would_take_hours(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(gradcheck_cost, "clock", _slow_clock(2.0))  # 2 s per evaluation
    x = np.random.default_rng(0).standard_normal((40, 50))  # 2000 elements: 8000 s
    w = np.random.default_rng(1).standard_normal((50, 3))
    with pytest.warns(RuntimeWarning) as record:
        report = sg.gradcheck(quadratic, x, w, backend="numpy")
    msgs = sorted(str(r.message) for r in record)
    assert len(msgs) == 2
    assert msgs[0].startswith("gradcheck: input w on numpy: element by element would take")
    assert msgs[1].startswith("gradcheck: input x on numpy: element by element would take")
    assert report.ok
    by_name = {c.input: c for c in report.checks}
    assert by_name["x"].mode == "projection" and by_name["x"].checked == 3
    assert "about 2.2 h (2000 elements × 2 evaluations × 2.0 s)" in by_name["x"].reason
    # w (150 elements, 600 s) is also over the budget of 60 s
    assert by_name["w"].mode == "projection"
    text = str(report)
    assert "instead of element by element" in text and "would take about 2.2 h" in text


def test_gradcheck_stays_element_wise_when_it_is_cheap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gradcheck_cost, "clock", _slow_clock(0.001))  # 1 ms per evaluation
    x = np.random.default_rng(0).standard_normal((4, 5))
    w = np.random.default_rng(1).standard_normal((5, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = sg.gradcheck(quadratic, x, w, backend="numpy")
    assert report.ok and all(c.mode == "elementwise" and not c.reason for c in report.checks)
    assert "projection" not in str(report)


def test_the_budget_counts_the_inputs_checked_before() -> None:
    assert gradcheck_cost.projection_reason(100, 0.1, 0.0) == ""  # 20 s
    assert "more than the 60.0 s allowed" in gradcheck_cost.projection_reason(100, 0.1, 45.0)
    assert "more than 4096" in gradcheck_cost.projection_reason(5000, 0.0, 0.0)
    assert gradcheck_cost.duration_text(3 * 3600 + 360) == "3.1 h"


def test_projections_still_catch_a_wrong_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gradcheck_cost, "clock", _slow_clock(10.0))
    bad = sg.elementwise("sec_badcube", lambda x: x**3, derivative=lambda x: 2 * x**2)

    def f(x: Any) -> Any:
        return bad(x).sum()

    with pytest.warns(RuntimeWarning, match="random directions instead"):
        report = sg.gradcheck(f, np.linspace(0.5, 1.5, 30), backend="numpy")
    assert not report.ok and report.checks[0].mode == "projection"
    assert report.culprit is not None and report.culprit.site is not None
    assert report.culprit.site.label == "sec_badcube"
