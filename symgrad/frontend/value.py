"""``Value``: micrograd's scalar. Eager arithmetic on Python floats, recorded as a light tape.

Owns: :class:`Value` and its traced twin :class:`TracedValue`, the eager tape (each result
keeps its float value, an op code from ``symgrad.ops.tape``, its Value operands and the constant
operand, and nothing else: no graph node, no source line) and ``Value.backward()``, which runs
the installed tape sweep (generated C, see ``symgrad.codegen.tape``; installed by the runtime)
and otherwise differentiates the graph built from the tape (:func:`materialise`, without
recursion) like any tensor's.

Two representations share the class name: an *eager* ``Value`` (made by ``Value(x)`` or by
arithmetic on eager Values and numbers) and a *traced* one (a symbolic scalar inside
``symgrad.compile``/``trace``, or a scalar mixed with a tensor), which is a node-backed
``Tensor`` like any other. An eager Value used where a node is needed (mixed with a tensor,
captured by a traced function, drawn) gets its node then, built from the tape.

The operator methods are in ``value_ops.py`` (installed on the class below).

May import: numpy, ``symgrad.ir``, ``symgrad.ops``, ``symgrad.frontend.tensor`` and
``symgrad.frontend.value_ops``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from symgrad.frontend import tensor as _tensor
from symgrad.frontend import value_ops
from symgrad.frontend.tensor import Tensor, _concrete_error
from symgrad.ir.dtypes import FLOAT64
from symgrad.ir.errors import ShapeError, TraceError
from symgrad.ir.node import Node
from symgrad.ir.opdef import apply, const, get_op
from symgrad.ir.provenance import Provenance
from symgrad.ops.source import make_input
from symgrad.ops.tape import LEAF, tape_ops

# (root) -> True when it ran the sweep; installed by the runtime (symgrad.runtime.tape)
TapeRunner = Callable[["Value"], bool]
_runner: TapeRunner | None = None


def set_tape_runner(fn: TapeRunner | None) -> None:
    """Choose how an eager Value's ``backward()`` runs (``None``: the node graph path)."""
    global _runner
    _runner = fn


def _as_float(data: Any, one_element: bool = False) -> float:
    """``data`` as a Python float: a number, a 0-d array or (``one_element``) any array of one
    element."""
    if isinstance(data, float | int) and not isinstance(data, bool):
        return float(data)
    arr = np.asarray(data.data if isinstance(data, Tensor) else data)
    if arr.size != 1 or (arr.ndim > 0 and not one_element):
        what = "Value.data must be a number" if one_element else "Value holds a scalar"
        raise ShapeError(f"{what}, got an array of shape {arr.shape}")
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"Value holds a number, got {arr.dtype} data")
    return float(arr.reshape(()))


class Value(Tensor):
    """A scalar, exactly like micrograd's ``Value``: ``.data`` and ``.grad`` are Python floats,
    every Value in a graph (leaves and intermediates) receives ``.grad`` on ``backward()``, and
    gradients accumulate until reset (``zero_grad()`` or ``v.grad = 0``)."""

    # An eager Value keeps its tape fields in the storage of Tensor's slots, under its own names
    # (see _SLOT_STORAGE below), so the object is no bigger than a Tensor: the tape walk reads
    # the fields of every Value of a 65k-Value graph. Type checkers see them as slots.
    if TYPE_CHECKING:
        __slots__ = ("_a", "_b", "_code", "_k", "_n", "_v")
    else:
        __slots__ = ()
    _always_retain = True

    _v: float  # the value
    _code: int  # the tape op (symgrad.ops.tape), LEAF for a leaf
    _a: Value  # the Value operands (unset when absent)
    _b: Value
    _k: float  # the constant operand (unset when absent)
    _n: Node | None  # the graph node, once built

    def __init__(self, data: Any, label: str = "", _children: Any = (), _op: str = "") -> None:
        self._v = _as_float(data)
        self._code = LEAF
        self.grad = 0.0
        if value_ops.untrack is not None:
            value_ops.untrack(self)
        if label:
            self.label = label

    @classmethod
    def _wrap(
        cls, node: Node, data: np.ndarray | None, parents: tuple[Tensor, ...], rg: bool
    ) -> Tensor:
        return Tensor._wrap.__func__(TracedValue, node, data, parents, rg)  # type: ignore[attr-defined]

    # -- the Tensor fields, derived from the tape -----------------------------------------------
    @property
    def node(self) -> Node:  # type: ignore[override]
        try:
            n: Node | None = self._n
        except AttributeError:
            n = None
        if n is None:
            n = materialise(self)
        return n

    @property
    def _data(self) -> np.ndarray:  # type: ignore[override]
        return np.array(self._v)

    @property
    def _parents(self) -> tuple[Tensor, ...]:  # type: ignore[override]
        return self._prev

    @property
    def _prev(self) -> tuple[Value, ...]:
        """The Values this one was computed from (micrograd's ``_prev``)."""
        arity = _ARITY[self._code]
        return () if arity == 0 else (self._a,) if arity == 1 else (self._a, self._b)

    @property
    def _op(self) -> str:
        """The op that made this Value, as micrograd names it ("" for a leaf)."""
        t = tape_ops()[self._code]
        if t.code == LEAF:
            return ""
        # micrograd's names: the symbol of a binary operator ("**2" with the constant exponent)
        # and "ReLU"
        s = get_op(t.name).surface
        if not (s.symbol and s.reflected):
            return "ReLU" if t.name == "relu" else t.name
        return f"{s.symbol}{self._k:g}" if s.symbol == "**" and t.form == "vk" else s.symbol

    @property
    def _pin(self) -> tuple[tuple[Node, np.ndarray | None], ...]:  # type: ignore[override]
        return tuple((p.node, p._data) for p in self._prev)

    @property
    def requires_grad(self) -> bool:  # type: ignore[override]
        return True

    @property
    def _retain(self) -> bool:  # type: ignore[override]
        return True

    @property
    def label(self) -> str:
        try:
            text: str = _LABEL.__get__(self)
        except AttributeError:
            return ""
        return text

    @label.setter
    def label(self, text: str) -> None:
        _LABEL.__set__(self, text)

    def retain_grad(self) -> Tensor:
        return self  # every Value keeps its gradient

    # an eager Value is a float64 scalar: no node needed to say so
    shape = property(lambda self: ())
    dtype = property(lambda self: FLOAT64)
    ndim = property(lambda self: 0)
    size = property(lambda self: 1)

    # -- micrograd's surface ---------------------------------------------------------------------
    @property
    def data(self) -> float:
        return self._v

    @data.setter
    def data(self, value: Any) -> None:
        if self._code != LEAF:
            raise TraceError(
                ".data can only be assigned to leaf Values (made by Value(...)); this one is the "
                "result of an op",
                Provenance.capture(),
            )
        v = _as_float(value, one_element=True)
        self._v = v
        self._n = None  # a new version: results computed before keep their values

    def numpy(self) -> np.ndarray:
        return np.array(self._v)

    def item(self) -> float:
        return self._v

    def __float__(self) -> float:
        return self._v

    def __bool__(self) -> bool:
        return bool(self._v)

    def __repr__(self) -> str:
        return f"Value(data={self._v}, grad={self.grad})"

    def __reduce__(self) -> tuple[Any, ...]:
        # copy.deepcopy(model) and pickle, as with micrograd's Values (the tape, not nodes)
        k = getattr(self, "_k", None)
        return (_rebuild, (self._v, self._code, self._prev, k, self.grad, self.label))

    def __eq__(self, o: object) -> bool:  # type: ignore[override]
        return self is o  # micrograd semantics: Values are compared (and hashed) by identity

    def __ne__(self, o: object) -> bool:  # type: ignore[override]
        return self is not o

    __hash__ = object.__hash__

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        # NumPy scalars and ufuncs meet eager Values as eager arithmetic (np.float64(2) * v)
        name = _tensor._UFUNCS.get(ufunc.__name__, "")
        methods = value_ops.UFUNC_METHODS
        fast = method == "__call__" and not kwargs and name in methods
        if fast and all(type(x) is Value or isinstance(x, value_ops.NUMBERS) for x in inputs):
            first, *rest = inputs
            if type(first) is Value:
                return getattr(first, methods[name][0])(*rest)
            return getattr(rest[0], methods[name][1])(first)
        return Tensor.__array_ufunc__(self, ufunc, method, *inputs, **kwargs)

    def backward(self, gradient: Any = None) -> None:
        if gradient is None and (_runner is None or not _runner(self)):
            Tensor.backward(self)
        elif gradient is not None:
            Tensor.backward(self, gradient)


def _rebuild(
    v: float, code: int, prev: tuple[Value, ...], k: float | None, grad: Any, label: str
) -> Value:
    """A Value from its tape fields (the inverse of ``Value.__reduce__``)."""
    r = Value(v, label)
    if code != LEAF:
        if len(prev) != _ARITY[code] or not all(type(p) is Value for p in prev):
            raise TypeError(f"a Value of tape op {code} needs {_ARITY[code]} Value operands")
        r._code = code
        r._a = prev[0]
        if len(prev) > 1:
            r._b = prev[1]
        if k is not None:
            r._k = float(k)
    r.grad = grad
    return r


value_ops.install(Value)

_LABEL = Tensor.__dict__["label"]
# Value field -> the Tensor slot whose storage holds it (TracedValue uses the slots as Tensor)
_SLOT_STORAGE = {
    "_v": "_data",
    "_a": "_parents",
    "_b": "_pin",
    "_code": "_retain",
    "_k": "requires_grad",
    "_n": "node",
}
for _field, _slot in _SLOT_STORAGE.items():
    setattr(Value, _field, Tensor.__dict__[_slot])
_ARITY = tuple(len(t.value_positions) for t in tape_ops())


def _node_of(v: Value) -> Node:
    if v._code == LEAF:
        return make_input((), FLOAT64, name=v.label)
    t = tape_ops()[v._code]
    operands = iter(p.node for p in v._prev)
    inputs = tuple(next(operands) if c == "v" else const(v._k, FLOAT64) for c in t.form)
    return apply(t.name, inputs)


def materialise(root: Value) -> Node:
    """The graph node of an eager Value, building the nodes of its tape (iteratively) first."""
    stack = [root]
    while stack:
        v = stack[-1]
        if getattr(v, "_n", None) is not None:
            stack.pop()
            continue
        pending = [p for p in v._prev if type(p) is Value and getattr(p, "_n", None) is None]
        if pending:
            stack.extend(pending)
            continue
        stack.pop()
        v._n = _node_of(v)
    n = root._n
    assert n is not None
    return n


class TracedValue(Value):
    """A node-backed scalar ``Value`` (symbolic inside a traced function, or the result of
    mixing a Value with a tensor): a ``Tensor`` of shape ``()`` with micrograd's ``.data``,
    ``.grad`` and identity comparison."""

    __slots__ = ()
    _code = -1
    node = Tensor.__dict__["node"]
    _data = Tensor.__dict__["_data"]
    _parents = Tensor.__dict__["_parents"]
    _pin = Tensor.__dict__["_pin"]
    requires_grad = Tensor.__dict__["requires_grad"]
    _retain = Tensor.__dict__["_retain"]
    label = _LABEL
    shape = Tensor.shape
    dtype = Tensor.dtype
    ndim = Tensor.ndim
    size = Tensor.size

    @property
    def _prev(self) -> tuple[Value, ...]:
        return tuple(p for p in self._parents if isinstance(p, Value))

    @property
    def _op(self) -> str:
        return "" if self.is_leaf else self.node.op

    @property
    def data(self) -> float:
        if self._data is None:
            raise _concrete_error(".data")
        return float(self._data)

    @data.setter
    def data(self, value: Any) -> None:
        arr = np.asarray(value, dtype=self.node.dtype.np)
        if arr.size != 1:
            raise ShapeError(f"Value.data must be a number, got an array of shape {arr.shape}")
        self._assign(np.array(arr.reshape(())))

    def numpy(self) -> np.ndarray:
        return Tensor.numpy(self)

    def item(self) -> float:
        return float(Tensor.item(self))

    def __float__(self) -> float:
        return Tensor.__float__(self)

    def __bool__(self) -> bool:
        return Tensor.__bool__(self)

    def retain_grad(self) -> Tensor:
        return self

    def __repr__(self) -> str:
        if self._data is None:
            return f"Value(<traced {self.dtype.short}>)"
        return f"Value(data={self.data}, grad={self.grad})"

    def backward(self, gradient: Any = None) -> None:
        Tensor.backward(self, gradient)


_tensor.register_scalar_classes(Value, TracedValue)
