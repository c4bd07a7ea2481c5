"""The eager ``Value``: arithmetic on Python floats recorded as a tape, micrograd's attributes,
NumPy scalars, mixing with tensors, nodes built on demand and arrays for compiled steps."""

from __future__ import annotations

import math

import numpy as np
import pytest

import symgrad as sg
from symgrad.frontend.value import TracedValue, Value, materialise
from symgrad.frontend.value_nodes import LeafArrays
from symgrad.ir.errors import ShapeError, TraceError


@pytest.mark.parametrize(
    "number", [2, 2.0, np.float64(2.0), np.int64(2), np.float32(2.0), True], ids=repr
)
def test_numbers_on_either_side_stay_eager(number: object) -> None:
    v = Value(3.0)
    for r, want in [
        (v + number, 5.0),
        (number + v, 5.0),
        (v - number, 1.0),
        (number - v, -1.0),
        (v * number, 6.0),
        (number * v, 6.0),
        (v / number, 1.5),
        (number / v, 2 / 3),
        (v**number, 9.0),
        (number**v, 8.0),
    ]:
        if number is True:
            want = {5.0: 4.0, 1.0: 2.0, -1.0: -2.0, 6.0: 3.0, 1.5: 3.0, 9.0: 3.0, 8.0: 1.0}.get(
                want, 1 / 3 if want == 2 / 3 else want
            )
        assert type(r) is Value and isinstance(r.data, float)
        assert r.data == pytest.approx(want, rel=1e-15)


def test_numpy_ufuncs_on_values_stay_eager() -> None:
    v = Value(0.5)
    for r, want in [
        (np.exp(v), math.exp(0.5)),
        (np.tanh(v), math.tanh(0.5)),
        (np.negative(v), -0.5),
        (np.add(1.0, v), 1.5),
        (np.power(v, 2), 0.25),
    ]:
        assert type(r) is Value and r.data == want


def test_micrograd_attributes() -> None:
    a, b = Value(2.0, label="a"), Value(-3.0, label="b")
    c = a * b
    c.label = "c"
    d = c.relu() + a**2
    assert (a._op, c._op, d._op, (a**2)._op) == ("", "*", "+", "**2")
    assert c._prev == (a, b) and a._prev == ()
    assert set(d._prev[0]._prev) == {c}
    assert (a.label, c.label, d.label) == ("a", "c", "")
    assert repr(c) == "Value(data=-6.0, grad=0.0)"
    assert a == a and a != b and len({a, a, b}) == 2  # identity, as in micrograd
    assert float(a) == 2.0 and a.item() == 2.0 and bool(Value(0.0)) is False


def test_bad_data_is_refused_with_what_was_given() -> None:
    with pytest.raises(ShapeError, match=r"shape \(2,\)"):
        Value([1.0, 2.0])
    with pytest.raises(TypeError, match="<U1"):
        Value("x")
    v = Value(1.0) + 1
    with pytest.raises(TraceError, match="leaf"):
        v.data = 2.0
    leaf = Value(1.0)
    leaf.data = np.array([4.0])  # one element: accepted
    assert leaf.data == 4.0


def test_x_to_the_zero_is_a_constant_with_no_gradient() -> None:
    x = Value(0.0)
    y = x**0
    assert y.data == 1.0 and y._prev == ()
    (y * x).backward()
    assert x.grad == 1.0  # from the product only; 0 * 0 ** -1 would have made it nan


def test_mixing_with_tensors_gives_traced_values_with_gradients() -> None:
    t = sg.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    v = Value(3.0)
    w = v * 2.0  # eager
    out = w * t[0] + t[1]
    assert isinstance(out, Value) and type(out) is TracedValue
    out.backward()
    assert v.grad == 2.0 and w.grad == 1.0
    np.testing.assert_array_equal(t.grad, [6.0, 1.0])


def test_nodes_are_built_on_demand_without_recursion() -> None:
    x = Value(1.0, label="x")
    s = x
    for _ in range(50_000):
        s = s + 1.0
    node = materialise(s)
    assert node.op == "add" and s.node is node
    assert x.node.op == "input" and x.node.attrs["name"] == "x"
    before = x.node
    x.data = 2.0  # a new version gets a new input node
    assert x.node is not before


def test_traced_function_captures_eager_values() -> None:
    w = Value(3.0, label="w")
    f = sg.compile(lambda x: x * w + w**2, sg.Spec(()), backend="numpy")
    assert float(f(2.0)) == 15.0
    w.data = 1.0  # read at every call
    assert float(f(2.0)) == 3.0


def test_leaf_arrays_stand_for_values_and_write_back() -> None:
    a, b = Value(1.0), Value(2.0)
    t = sg.Tensor(np.ones(3))
    arrays = LeafArrays([a, t, b])
    got = arrays.arrays()
    assert [x.shape for x in got] == [(), (3,), ()] and float(got[2]) == 2.0
    got[0][...] = 10.0
    got[2][...] = 20.0
    arrays.store()
    assert (a.data, b.data) == (10.0, 20.0)
    b.data = 7.0  # picked up at the next call
    assert float(arrays.arrays()[2]) == 7.0


def test_values_copy_and_pickle_like_micrograds() -> None:
    import copy
    import pickle
    import random

    random.seed(1)
    model = sg.nn.MLP(2, [3, 1])
    snapshot = copy.deepcopy(model)  # a common way to keep the best weights
    for p in model.parameters():
        p.data += 1.0
    assert all(
        a.data == b.data - 1.0
        for a, b in zip(snapshot.parameters(), model.parameters(), strict=True)
    )
    x = Value(2.0, label="x")
    y = (x * 3.0 + x).tanh()
    y.backward()
    z = pickle.loads(pickle.dumps(y))
    assert (z.data, z._op, z.grad, z._prev[0]._prev[1].label) == (y.data, "tanh", 1.0, "x")
    z.backward()  # the copy is a tape of its own
    assert z._prev[0]._prev[1].grad == pytest.approx(2 * x.grad)
    assert x.grad == pytest.approx(4 * (1 - math.tanh(8.0) ** 2))


def test_comparisons_of_eager_values_are_bools() -> None:
    a, b = Value(1.0), Value(2.0)
    assert (a < b, a <= 1, b > 3.0, b >= np.float64(2.0)) == (True, True, False, True)
    assert max([b, a], key=lambda v: v.data) is b and sorted([b, a]) == [a, b]
    t = sg.Tensor(np.array([1.0, 5.0]))
    traced = t[0] < t[1]  # a Value from a tensor compares as a tensor
    assert isinstance(traced, sg.Tensor) and bool(traced)
