"""Eager ``Value`` arithmetic: the operator methods that compute on Python floats and record
the tape, installed on the class by ``value.py`` (:func:`install`).

Owns: the methods' fast path (both operands eager Values, or an eager Value and a number: the
op's ``OpDef.scalar`` on floats, one new Value holding the value, the tape op code, the Value
operands and the constant) and its fallback (anything else goes through ``Tensor``'s node
machinery), comparisons of eager Values as Python bools, ``x ** 0`` as the constant 1, and the
hook that takes new Values out of the cycle collector's sight. May import: numpy,
``symgrad.ir``, ``symgrad.ops`` and ``symgrad.frontend.tensor``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import numpy as np

from symgrad.frontend.tensor import Tensor, _binary
from symgrad.ir.opdef import get_op
from symgrad.ops.tape import code_of

# The eager Value class (symgrad.frontend.value, which imports this module and passes itself to
# install): its instances are typed Any here, as the class is defined above this module.
Value = Any

NUMBERS = (float, int, np.floating, np.integer)
_new = object.__new__

# (value) -> None: takes a new eager Value out of the cycle collector's sight. Eager Values
# reference only older Values, numbers and graph nodes, so they never form a cycle, and the
# collector's scans of a 65k-Value graph would cost more than the arithmetic. Installed with
# the C tape module (symgrad.runtime.tape); None until then.
untrack: Callable[[Value], None] | None = None


def set_untrack(fn: Callable[[Value], None] | None) -> None:
    global untrack
    untrack = fn


# Python operator -> op; and op -> (method computing op(value, x), the reflected one)
BINARY = {"add": "add", "sub": "sub", "mul": "mul", "truediv": "div", "pow": "pow"}
UNARY = ("exp", "log", "tanh", "sigmoid", "relu", "sqrt", "abs")
UFUNC_METHODS = {
    **{n: (f"__{d}__", f"__r{d}__") for d, n in BINARY.items()},
    **{n: (n, n) for n in UNARY},
    "neg": ("__neg__", "__neg__"),
}


def binary_method(cls: type[Value], name: str, reflected: bool) -> Callable[[Value, Any], Tensor]:
    """``Value.__<name>__`` (or its reflected form): eager floats when the operands allow."""
    f = get_op(name).scalar
    assert f is not None
    vv, vk, kv = code_of(name, "vv"), code_of(name, "vk"), code_of(name, "kv")
    if reflected:  # o <op> self, where o is a number (a Value would have run its own method)

        def rmethod(self: Value, o: Any) -> Tensor:
            if type(self) is cls and isinstance(o, NUMBERS):
                k = float(o)
                r = _new(cls)
                r._v = f(k, self._v)
                r._a = self
                r._code = kv
                r._k = k
                r.grad = 0.0
                if untrack is not None:
                    untrack(r)
                return r
            return _binary(name, o, self)

        return rmethod

    def method(self: Value, o: Any) -> Tensor:
        if type(self) is cls:
            t = type(o)
            if t is cls:
                r = _new(cls)
                r._v = f(self._v, o._v)
                r._a = self
                r._b = o
                r._code = vv
                r.grad = 0.0
                if untrack is not None:
                    untrack(r)
                return r
            if t is float or t is int or isinstance(o, NUMBERS):
                k = float(o)
                r = _new(cls)
                r._v = f(self._v, k)
                r._a = self
                r._code = vk
                r._k = k
                r.grad = 0.0
                if untrack is not None:
                    untrack(r)
                return r
        return _binary(name, self, o)

    return method


def unary_method(cls: type[Value], name: str) -> Callable[[Value], Tensor]:
    f = get_op(name).scalar
    assert f is not None
    code = code_of(name, "v")

    def method(self: Value) -> Tensor:
        if type(self) is cls:
            r = _new(cls)
            r._v = f(self._v)
            r._a = self
            r._code = code
            r.grad = 0.0
            if untrack is not None:
                untrack(r)
            return r
        return Tensor._unary(self, name)

    return method


def compare_method(cls: type[Value], name: str) -> Callable[[Value, Any], Any]:
    """``<``, ``<=``, ``>``, ``>=`` of eager Values: a Python bool (comparisons have no
    gradient, so ``sorted(values)`` and ``max(values)`` work as on floats); a traced Value
    compares as a tensor (a bool node)."""
    py = getattr(operator, name)
    tensor_method = getattr(Tensor, f"__{name}__")

    def method(self: Value, o: Any) -> Any:
        if type(self) is cls:
            if type(o) is cls:
                return py(self._v, o._v)
            if isinstance(o, NUMBERS):
                return py(self._v, o)
        return tensor_method(self, o)

    return method


def install(cls: type[Value]) -> None:
    """Give the eager Value class its arithmetic."""
    for dunder, name in BINARY.items():
        setattr(cls, f"__{dunder}__", binary_method(cls, name, reflected=False))
        setattr(cls, f"__r{dunder}__", binary_method(cls, name, reflected=True))
    for name in UNARY:
        setattr(cls, name, unary_method(cls, name))
    cls.__neg__ = unary_method(cls, "neg")
    cls.__abs__ = cls.abs
    for name in ("lt", "le", "gt", "ge"):
        setattr(cls, f"__{name}__", compare_method(cls, name))
    pow_vk = cls.__pow__

    def pow_(self: Value, o: Any) -> Tensor:
        # x ** 0 is the constant 1 (no gradient, also at x == 0, where the rule's 0 * x ** -1
        # would be nan)
        if type(self) is cls and isinstance(o, NUMBERS) and o == 0:
            return cls(1.0)
        return pow_vk(self, o)

    cls.__pow__ = pow_
