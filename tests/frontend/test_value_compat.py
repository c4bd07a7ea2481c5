"""micrograd's node protocol on Value: Value(data, _children, _op), per-node _backward, and
backward() through the user's own ops."""

from __future__ import annotations

import math

import pytest

import symgrad as sg
from symgrad import Value


def _tanh(self: Value) -> Value:
    """The micrograd lecture's own op: a node with children and a hand-written _backward."""
    t = (math.exp(2 * self.data) - 1) / (math.exp(2 * self.data) + 1)
    out = Value(t, (self,), "tanh")

    def _backward() -> None:
        self.grad += (1 - t**2) * out.grad

    out._backward = _backward
    return out


def test_constructor_order_and_fields() -> None:
    a, b = Value(2.0), Value(3.0)
    c = Value(5.0, (a, b), "+")
    assert c._prev == (a, b) and c._op == "+" and c.data == 5.0
    assert Value(1.0, label="x").label == "x" and Value(1.0, "y").label == "y"
    with pytest.raises(TypeError, match="eager Values"):
        Value(1.0, (2.0,), "+")


def test_stepping_through_backward_by_hand() -> None:
    # the lecture's manual backward pass: each node's _backward, in reverse order
    a, b, c, f = Value(2.0), Value(-3.0), Value(10.0), Value(-2.0)
    e = a * b
    d = e + c
    loss = d * f
    loss.grad = 1.0
    for node in (loss, d, e):
        node._backward()
    assert (a.grad, b.grad, c.grad, f.grad, e.grad) == (6.0, -4.0, -2.0, 4.0, -2.0)
    assert Value(1.0)._backward() is None  # a leaf's is a no-op


def test_backward_through_the_users_own_op_matches_symgrads() -> None:
    def neuron(op):  # type: ignore[no-untyped-def]
        x1, w1, x2, w2 = Value(2.0), Value(-3.0), Value(0.0), Value(1.0)
        b = Value(6.8813735870195432)
        op(x1 * w1 + x2 * w2 + b).backward()
        return [v.grad for v in (x1, w1, x2, w2, b)]

    mine = neuron(_tanh)
    builtin = neuron(lambda n: n.tanh())
    assert mine == pytest.approx(builtin, rel=1e-12)
    assert mine[0] == pytest.approx(-1.5)


def test_a_hand_made_node_cannot_enter_the_graph() -> None:
    o = _tanh(Value(0.5))
    with pytest.raises(sg.TraceError, match="_backward"):
        sg.Tensor([1.0]) * o
    with pytest.raises(TypeError, match="function"):
        o._backward = 3  # type: ignore[assignment]
