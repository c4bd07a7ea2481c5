"""Operands keep the user's order in the optimised graph (canonical order is for hashing)."""

from __future__ import annotations

import numpy as np
import pytest

import symgrad as sg
from symgrad.frontend.trace import trace
from symgrad.ir.graph import evaluate
from symgrad.passes import optimize


def f(x, w, b):  # type: ignore[no-untyped-def]
    return (x * w + b) * (w * x)  # w * x is x * w: merged, printed as the first


@pytest.mark.parametrize("opt", [1, 2])
def test_commutative_operands_in_the_users_order(opt: int) -> None:
    g = trace(f, sg.Spec((3,)), sg.Spec((3,)), sg.Spec((3,)))
    x, w, b = g.inputs
    out = optimize(g, opt)
    (root,) = out.outputs
    left, right = root.inputs
    assert left.op == "add" and left.inputs[1] is b  # x*w + b, not b + x*w
    mul = left.inputs[0]
    assert mul.inputs == (x, w)  # the user's order, whatever the structural keys say
    assert right is mul  # still merged (CSE)
    args = [np.arange(3.0) + k for k in range(3)]
    got = evaluate(out.outputs, dict(zip(out.inputs, args, strict=True)))[0]
    want = evaluate(g.outputs, dict(zip(g.inputs, args, strict=True)))[0]
    np.testing.assert_array_equal(got, want)


def test_reversed_user_order_is_kept_too() -> None:
    g = trace(lambda x, w: w * x + x * 2.0, sg.Spec((3,)), sg.Spec((3,)))
    x, w = g.inputs
    out = optimize(g, 1)
    mul = out.outputs[0].inputs[0]
    assert mul.op == "mul" and mul.inputs == (w, x)
