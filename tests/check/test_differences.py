"""gradcheck's tolerance scales with the gradient, and a step that leaves the function's domain
is told apart from a wrong rule (issue 20, finding 3)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import symgrad as sg
from symgrad.check.differences import central, tolerance

# a derivative wrong by 2x: d/dx x**2 is 2x, this says 4x
wsq = sg.elementwise("wsq_issue20", lambda x: x**2, derivative=lambda x: 4 * x)
X = np.array([0.3, -0.4, 0.5])


def small(x: Any) -> Any:
    return (wsq(x) * 1e-8).sum()


def large(x: Any) -> Any:
    return wsq(x).sum()


@pytest.mark.parametrize("fn", [small, large])
def test_a_wrong_rule_fails_whatever_the_gradient_magnitude(fn: Any) -> None:
    report = sg.gradcheck(fn, X, backend="numpy")
    assert not report.ok
    assert report.culprit is not None and report.culprit.kind == "rule"
    assert report.culprit.site is not None and report.culprit.site.label == "wsq_issue20"


def test_right_rules_of_small_gradients_pass() -> None:
    assert sg.gradcheck(lambda x: (x.tanh() * 1e-8).sum(), X, backend="numpy").ok
    assert sg.gradcheck(lambda x: (x * x * 1e-12).sum() + 1e6, X, backend="numpy").ok


def test_a_zero_gradient_of_a_large_function_passes() -> None:
    assert sg.gradcheck(lambda x: (x * 0.0).sum() + 1e8, X, backend="numpy").ok


def test_a_step_outside_the_domain_is_not_blamed_on_the_rule() -> None:
    x = np.array([1e-7, 0.5])
    report = sg.gradcheck(lambda t: t.log().sum(), x, backend="numpy")  # eps 1e-6 > 1e-7
    assert report.ok, str(report)
    (c,) = report.checks
    assert c.shrunk == 1 and c.outside == 0
    assert "smaller step" in str(report)


def test_no_step_inside_the_domain_says_so() -> None:
    # log(x - 0.5) at 1e-14 from the edge: even eps / 10**6 steps below it
    report = sg.gradcheck(lambda t: (t - 0.5).log().sum(), np.array([0.5 + 1e-14, 1.0]))
    assert not report.ok
    assert report.culprit is not None and report.culprit.kind == "domain"
    assert all(c.outside == 1 and c.failed == 0 for c in report.checks)
    text = str(report)
    assert "left the function's domain" in text and "try a smaller eps" in text
    assert "the VJP of log" not in text


@np.errstate(all="ignore")
def test_central_shrinks_the_step() -> None:
    hi, lo, h, inside = central(lambda h: (np.log(1e-7 + h), np.log(1e-7 - h)), 1e-6)
    assert inside and h <= 1e-8 and np.isfinite(hi) and np.isfinite(lo)
    *_, inside = central(lambda h: (np.log(h), np.log(-h)), 1e-6)
    assert not inside


def test_tolerance_is_relative_to_the_largest_gradient() -> None:
    g = np.array([1e-8, 2e-8])
    tol, scale = tolerance(g, g, 0.0, g * 0, g * 0, np.full(2, 1e-6), 1e-5, 0.0)
    assert scale == 2e-8 and np.allclose(tol, 2e-13)
