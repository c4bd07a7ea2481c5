"""Eager ``Value`` arithmetic: the operator methods that compute on Python floats and record
the tape, installed on the class by ``value.py`` (:func:`install`; ``Value`` declares them for
type checkers, and ``tests/frontend/test_surface.py`` checks the two lists agree).

Owns: the methods' fast path (both operands eager Values, or an eager Value and a number: the
op's ``OpDef.scalar`` on floats, one new Value holding the value, the tape op code, the Value
operands and the constant) and its fallback (anything else: the op on the Value's tensor in the
graph, ``Value._as_tensor``), the methods of ops without a scalar function (always that
fallback), comparisons of eager Values as Python bools, ``x ** 0`` as the constant 1, and the
hook that takes new Values out of the cycle collector's sight. May import: numpy,
``symgrad.ir``, ``symgrad.ops`` and ``symgrad.frontend.tensor``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import numpy as np

from symgrad.frontend.tensor import Tensor, _binary
from symgrad.ir.opdef import OpDef, SurfaceMethod, get_op, registry, surface_methods
from symgrad.ops.tape import code_of

# The eager Value class (symgrad.frontend.value, which imports this module and passes itself to
# install): its instances are typed Any here, as the class is defined above this module.
Value = Any

NUMBERS = (float, int, np.floating, np.integer)
_new = object.__new__

# (value) -> None: takes a new eager Value out of the cycle collector's sight. Eager Values
# reference only older Values, numbers and graph tensors, so they never form a cycle, and the
# collector's scans of a 65k-Value graph would cost more than the arithmetic. Installed with
# the C tape module (symgrad.runtime.tape); None until then.
untrack: Callable[[Value], None] | None = None

# the names install() gave the class (every surface method the class does not define itself)
INSTALLED: list[str] = []


def set_untrack(fn: Callable[[Value], None] | None) -> None:
    global untrack
    untrack = fn


def _scalar_ops() -> list[OpDef]:
    """The ops eager Values compute on floats: a surface, a scalar function and tape codes."""
    return [op for op in registry().values() if op.scalar is not None and surface_methods(op)]


# NumPy ufunc's op -> (method computing op(value, x), the reflected one), for Value's fast
# path of NumPy scalars meeting Values
def _ufunc_methods() -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    for op in _scalar_ops():
        by_form = {m.form: m.name for m in surface_methods(op)}
        first = by_form.get("binary", by_form.get("unary", ""))
        out[op.name] = (first, by_form.get("reflected", first))
    return out


UFUNC_METHODS = _ufunc_methods()


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
            return _binary(name, o, self._as_tensor())

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
        return _binary(name, self._as_tensor(), o)

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
        return self._as_tensor()._unary(name)

    return method


def compare_method(stem: str, name: str) -> Callable[[Value, Any], Any]:
    """``<``, ``<=``, ``>``, ``>=`` of eager Values (the ops with ``Surface.ordering``; ``stem``
    the Python operator's): a Python bool (comparisons have no gradient, so ``sorted(values)``
    and ``max(values)`` work as on floats); anything else compares as a tensor (a bool node)."""
    py = getattr(operator, stem)

    def method(self: Value, o: Any) -> Any:
        if type(o) is type(self):
            return py(self._v, o._v)
        if isinstance(o, NUMBERS):
            return py(self._v, o)
        return _binary(name, self._as_tensor(), o)

    return method


def graph_method(m: SurfaceMethod) -> Callable[..., Tensor]:
    """The method ``m`` of an op without a scalar function: the op on the Value's tensor."""
    name = m.op
    if m.form == "unary":
        return lambda self: self._as_tensor()._unary(name)
    if m.form == "reflected":
        return lambda self, o: _binary(name, o, self._as_tensor())
    return lambda self, o: _binary(name, self._as_tensor(), o)


def _method(cls: type[Value], op: OpDef, m: SurfaceMethod) -> tuple[Callable[..., Any], Any]:
    """The method ``m`` of ``op`` and its return annotation."""
    if op.surface.ordering:
        return compare_method(op.surface.operator, op.name), bool | Tensor
    if op.scalar is None:
        return graph_method(m), Tensor
    if m.form == "unary":
        return unary_method(cls, op.name), cls | Tensor
    return binary_method(cls, op.name, reflected=m.form == "reflected"), cls | Tensor


def install(cls: type[Value]) -> None:
    """Give the eager Value class its operators and methods: every surface method of every op
    (``==`` and ``!=``, which the class defines as identity, stay the class's)."""
    own = set(vars(cls))
    for op in registry().values():
        for m in surface_methods(op):
            if m.name in own:
                continue
            fn, returns = _method(cls, op, m)
            fn.__name__ = m.name
            fn.__qualname__ = f"{cls.__name__}.{m.name}"
            fn.__doc__ = op.doc
            fn.__annotations__ = {} if m.form == "unary" else {"o": Any}
            fn.__annotations__["return"] = returns
            setattr(cls, m.name, fn)
            INSTALLED.append(m.name)
    pow_vk = cls.__pow__

    def pow_(self: Value, o: Any) -> Tensor:
        # x ** 0 is the constant 1 (no gradient, also at x == 0, where the rule's 0 * x ** -1
        # would be nan)
        if type(self) is cls and isinstance(o, NUMBERS) and o == 0:
            return cls(1.0)
        return pow_vk(self, o)

    for attr in ("__name__", "__qualname__", "__doc__", "__annotations__"):
        setattr(pow_, attr, getattr(pow_vk, attr))
    cls.__pow__ = pow_
