"""``Value`` is a type of its own: a ``__slots__`` object (not a ``Tensor`` subclass) whose
operators type checkers and ``inspect`` can see, meeting the graph machinery through one
bridge (``Value._as_tensor``)."""

from __future__ import annotations

import inspect
import typing

import numpy as np

import symgrad as sg
from symgrad.frontend.tensor import Tensor, as_tensor
from symgrad.frontend.value import Value, owner
from symgrad.frontend.value_traced import TracedValue


def test_value_is_a_slots_type_and_no_tensor() -> None:
    assert not issubclass(Value, Tensor)
    assert not isinstance(Value(1.0), Tensor)
    assert "__slots__" in Value.__dict__
    v = Value(1.0) * 2.0
    assert not hasattr(v, "__dict__")
    for name in ("_v", "_a", "_b", "_code", "_k", "grad"):  # the fields the C tape sweep reads
        assert inspect.ismemberdescriptor(Value.__dict__[name]), name


def test_traced_values_are_values_and_tensors() -> None:
    t = sg.Tensor(np.array([1.0, 2.0]))
    e = t[0]
    assert type(e) is TracedValue and isinstance(e, Value) and isinstance(e, Tensor)
    assert issubclass(TracedValue, Value)  # a virtual subclass


def test_operators_are_visible_to_inspect_and_get_type_hints() -> None:
    for name in ("__add__", "__radd__", "__mul__", "__pow__", "__neg__", "__lt__", "tanh", "relu"):
        fn = getattr(Value, name)
        assert inspect.isfunction(fn) and fn.__name__ == name
        hints = typing.get_type_hints(fn)
        assert "return" in hints, name
        assert next(iter(inspect.signature(fn).parameters)) == "self"
    assert typing.get_type_hints(Value.__add__)["return"] == Value | Tensor


def test_one_bridge_to_the_graph() -> None:
    x = Value(2.0, label="x")
    y = x * 3.0
    ty = as_tensor(y)
    assert ty is y._as_tensor() and isinstance(ty, TracedValue)  # built once, then kept
    assert owner(ty) is y and owner(ty._parents[0]) is x
    assert ty.node is y.node and ty._parents[0].node.op == "input"
    ty.grad = 5.0  # the tensor's gradient is the Value's
    assert y.grad == 5.0
    x.data = 4.0  # a new version: a new tensor for x
    assert x._as_tensor() is not ty._parents[0]
    out = y * sg.Tensor(np.array(1.0))  # mixing: through the bridge
    out.backward()
    assert x.grad == 3.0 and y.grad == 6.0


def test_a_bridged_value_is_freed_by_reference_counting() -> None:
    import weakref

    warm = Value(1.0) * 2.0
    warm.backward()  # loads the tape module, which takes new Values out of the collector's sight
    v = Value(3.0)
    y = v * 2.0 + 1.0
    t = y._as_tensor()
    refs = [weakref.ref(v), weakref.ref(y), weakref.ref(t)]
    del v, y, t
    assert [r() for r in refs] == [None, None, None]  # no cycle between a Value and its tensor


def test_a_temporary_values_tensor_stands_for_itself() -> None:
    t = sg.Tensor(np.array([2.0]), requires_grad=True)
    out = (Value(3.0) * 2.0) * t[0]  # the eager product is gone once out is made
    out.backward()
    assert np.asarray(t.grad).tolist() == [6.0]
    product = out._parents[0]  # the tensor of the (freed) eager product
    assert owner(product) is product and out._prev[0] is product and product.grad == 2.0
