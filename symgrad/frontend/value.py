"""``Value``: micrograd's scalar. Eager arithmetic on Python floats, recorded as a light tape.

Owns: :class:`Value`, its traced twin :class:`TracedValue`, the eager tape (each result keeps
its float value, an op code from ``symgrad.ops.tape``, its Value operands and the constant
operand, and nothing else: no graph node, no source line), ``Value.backward()``, which runs the
installed tape sweep (generated C, see ``symgrad.codegen.tape``; installed by the runtime) and
otherwise differentiates the Value's graph like any tensor's, and the one bridge between the
two worlds, ``Value._as_tensor``.

A ``Value`` is a ``__slots__`` object of its own, not a ``Tensor``. Where it meets the graph
machinery (mixed with a tensor, captured by a traced function, drawn, its ``.node`` asked for)
it goes through ``_as_tensor``: its tensor in the graph, a :class:`TracedValue` built from the
tape (for all the Values behind it, iteratively) and kept until a leaf's ``.data`` changes,
whose ``.grad`` is the Value's own. Scalar results of ops on such tensors, and symbolic scalars
inside ``symgrad.compile``/``trace``, are ``TracedValue``\\ s: node-backed tensors of shape
``()`` with micrograd's ``.data``, ``.grad`` and identity comparison, registered as virtual
subclasses of ``Value`` (``isinstance(x, Value)`` holds for every micrograd scalar).

The operators are in ``value_ops.py`` (installed on the class below and declared in it for
type checkers), the tensor methods (``sum``, ``reshape``, ...) in ``value_methods.py``.
May import: numpy, ``symgrad.ir``, ``symgrad.ops`` and ``symgrad.frontend`` below it
(``tensor``, ``value_traced``, ``value_ops``, ``value_methods``).
"""

from __future__ import annotations

import weakref
from abc import ABCMeta
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np

from symgrad.frontend import value_compat as compat
from symgrad.frontend import value_ops
from symgrad.frontend.tensor import _UFUNCS, Tensor, register_scalar_classes
from symgrad.frontend.value_methods import TensorMethods
from symgrad.frontend.value_traced import TracedValue
from symgrad.ir.dtypes import FLOAT64, DType
from symgrad.ir.errors import ConcretizationError, ShapeError, TraceError
from symgrad.ir.node import Node
from symgrad.ir.opdef import apply, const, get_op
from symgrad.ir.provenance import Provenance
from symgrad.ops.source import make_input
from symgrad.ops.tape import LEAF, tape_ops

# (root) -> True when it ran the sweep; installed by the runtime (symgrad.runtime.tape)
TapeRunner = Callable[["Value"], bool]
_runner: TapeRunner | None = None

# what eager arithmetic takes (anything else, a tensor, is the tensor's reflected operator)
Number: TypeAlias = "Value | float | int | np.floating | np.integer"


def set_tape_runner(fn: TapeRunner | None) -> None:
    """Choose how an eager Value's ``backward()`` runs (``None``: the node graph path)."""
    global _runner
    _runner = fn


def _as_float(data: Any, one_element: bool = False) -> float:
    """``data`` as a Python float: a number, a 0-d array or (``one_element``) any array of one
    element."""
    if isinstance(data, float | int) and not isinstance(data, bool):
        return float(data)
    if isinstance(data, Tensor) and data._data is None:
        raise ConcretizationError(
            "Value(x) of a traced tensor: a Value is a new leaf holding a number, and x has no "
            "number while a function is being traced (compiled). Use x itself (it already "
            "carries gradients), or make the Value outside the traced function",
            Provenance.capture(),
        )
    arr = np.asarray(data.data if isinstance(data, Tensor) else data)
    if arr.size != 1 or (arr.ndim > 0 and not one_element):
        what = "Value.data must be a number" if one_element else "Value holds a scalar"
        raise ShapeError(f"{what}, got an array of shape {arr.shape}")
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"Value holds a number, got {arr.dtype} data")
    return float(arr.reshape(()))


class Value(TensorMethods, metaclass=ABCMeta):
    """A scalar, exactly like micrograd's ``Value``: ``.data`` and ``.grad`` are Python floats,
    every Value in a graph (leaves and intermediates) receives ``.grad`` on ``backward()``, and
    gradients accumulate until reset (``zero_grad()`` or ``v.grad = 0``)."""

    # The tape fields (the C tape sweep reads _v, _a, _b, _code, _k and grad where these slots
    # live, see symgrad.runtime.tape); the operands and the constant are unset when absent.
    __slots__ = (
        "__weakref__",
        "_a",
        "_b",
        "_code",
        "_custom",
        "_k",
        "_label",
        "_tensor",
        "_v",
        "grad",
    )
    __array_priority__ = 1000.0

    _v: float  # the value
    _code: int  # the tape op (symgrad.ops.tape), LEAF for a leaf
    _a: Value  # the Value operands
    _b: Value
    _k: float  # the constant operand
    _label: str
    _tensor: TracedValue | None  # the Value's tensor in the graph, once built (_as_tensor)
    grad: Any

    def __init__(self, data: Any, _children: Any = (), _op: str = "", label: str = "") -> None:
        """micrograd's constructor: ``Value(data, _children=(), _op='', label='')``. A node made
        with ``_children`` is the user's own op: give it a ``_backward`` (micrograd's protocol).
        (``Value(data, "name")`` is still a label, symgrad's older spelling.)"""
        self._v = _as_float(data)
        self._code = LEAF
        self.grad = 0.0
        if value_ops.untrack is not None:
            value_ops.untrack(self)
        if _children.__class__ is str:
            label, _children = _children, ()
        if label:
            self._label = label
        if _children or _op:
            kids = tuple(_children)
            if not all(type(k) is Value for k in kids):
                raise TypeError(
                    "Value(data, _children, _op): the children must be eager Values, got "
                    + ", ".join(type(k).__name__ for k in kids)
                )
            self._custom = compat.Custom(kids, str(_op))
            compat.COUNT.made += bool(kids)

    def _as_tensor(self) -> Tensor:
        """The bridge: this Value as a tensor of the graph machinery (a ``TracedValue`` whose
        node is built from the tape, whose parents are the tensors of the Values it was
        computed from and whose ``.grad`` is this Value's), built once per version."""
        try:
            t = self._tensor
        except AttributeError:
            t = None
        return t if t is not None else _bridge(self)

    # -- operators and elementwise methods: installed from the op registry by value_ops
    # (eager floats when the operands allow); declared here for type checkers
    # (tests/frontend/test_surface.py checks the two lists agree)
    if TYPE_CHECKING:

        def __add__(self, o: Number) -> Value: ...
        def __radd__(self, o: Number) -> Value: ...
        def __sub__(self, o: Number) -> Value: ...
        def __rsub__(self, o: Number) -> Value: ...
        def __mul__(self, o: Number) -> Value: ...
        def __rmul__(self, o: Number) -> Value: ...
        def __truediv__(self, o: Number) -> Value: ...
        def __rtruediv__(self, o: Number) -> Value: ...
        def __pow__(self, o: Number) -> Value: ...
        def __rpow__(self, o: Number) -> Value: ...
        def __matmul__(self, o: Any) -> Tensor: ...
        def __rmatmul__(self, o: Any) -> Tensor: ...
        def __neg__(self) -> Value: ...
        def __abs__(self) -> Value: ...
        def __lt__(self, o: Number) -> bool: ...
        def __le__(self, o: Number) -> bool: ...
        def __gt__(self, o: Number) -> bool: ...
        def __ge__(self, o: Number) -> bool: ...
        def exp(self) -> Value: ...
        def log(self) -> Value: ...
        def tanh(self) -> Value: ...
        def sigmoid(self) -> Value: ...
        def relu(self) -> Value: ...
        def sqrt(self) -> Value: ...
        def abs(self) -> Value: ...

    def __pos__(self) -> Value:
        return self

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
        self._tensor = None  # a new version: results computed before keep their values

    @property
    def label(self) -> str:
        try:
            return self._label
        except AttributeError:
            return ""

    @label.setter
    def label(self, text: str) -> None:
        self._label = text

    @property
    def _prev(self) -> tuple[Value, ...]:
        """The Values this one was computed from (micrograd's ``_prev``)."""
        arity = _ARITY[self._code]
        if arity == 0:
            c = getattr(self, "_custom", None)
            return () if c is None else c.kids
        return (self._a,) if arity == 1 else (self._a, self._b)

    @property
    def _backward(self) -> Callable[[], None]:
        """micrograd's per-node backward: adds this node's contribution (``self.grad`` times
        the local derivatives) to its children's ``.grad``; assignable for the user's ops."""
        c = getattr(self, "_custom", None)
        if c is not None and c.fn is not None:
            return c.fn
        return compat.local_backward(self)

    @_backward.setter
    def _backward(self, fn: Callable[[], None]) -> None:
        if not callable(fn):
            raise TypeError(f"_backward must be a function, got {type(fn).__name__}")
        c = getattr(self, "_custom", None)
        if c is None:
            c = self._custom = compat.Custom((), "")
        c.fn = fn

    @property
    def _op(self) -> str:
        """The op that made this Value, as micrograd names it ("" for a leaf)."""
        t = tape_ops()[self._code]
        if t.code == LEAF:
            c = getattr(self, "_custom", None)
            return "" if c is None else c.op
        # micrograd's names: the symbol of a binary operator ("**2" with the constant exponent)
        # and "ReLU"
        s = get_op(t.name).surface
        if not (s.symbol and s.reflected):
            return "ReLU" if t.name == "relu" else t.name
        return f"{s.symbol}{self._k:g}" if s.symbol == "**" and t.form == "vk" else s.symbol

    def backward(self, gradient: Any = None) -> None:
        if gradient is None and compat.has_custom(self):
            compat.sweep(self)  # the user's own ops: micrograd's sweep of _backward closures
            return
        if gradient is not None or _runner is None or not _runner(self):
            self._as_tensor().backward(gradient)

    def retain_grad(self) -> Value:
        return self  # every Value keeps its gradient

    # -- a float64 scalar, described like a tensor -------------------------------------------------
    @property
    def node(self) -> Node:
        """The Value's graph node (of its tensor in the graph)."""
        return self._as_tensor().node

    @property
    def _data(self) -> np.ndarray:
        return np.array(self._v)

    shape = property(lambda self: ())
    dtype: DType = property(lambda self: FLOAT64)  # type: ignore[assignment]
    ndim = property(lambda self: 0)
    size = property(lambda self: 1)
    requires_grad = property(lambda self: True)
    is_leaf = property(lambda self: self._code == LEAF)

    def numpy(self) -> np.ndarray:
        return np.array(self._v)

    def item(self) -> float:
        return self._v

    def __float__(self) -> float:
        return self._v

    def __int__(self) -> int:
        return int(self._v)

    def __bool__(self) -> bool:
        return bool(self._v)

    def __repr__(self) -> str:
        return f"Value(data={self._v}, grad={self.grad})"

    def __reduce__(self) -> tuple[Any, ...]:
        # copy.deepcopy(model) and pickle, as with micrograd's Values (the tape, not nodes)
        k = getattr(self, "_k", None)
        return (_rebuild, (self._v, self._code, self._prev, k, self.grad, self.label))

    def __eq__(self, o: object) -> bool:
        return self is o  # micrograd semantics: Values are compared (and hashed) by identity

    def __ne__(self, o: object) -> bool:
        return self is not o

    __hash__ = object.__hash__

    # -- NumPy interoperability ------------------------------------------------------------------
    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        # NumPy scalars and ufuncs meet eager Values as eager arithmetic (np.float64(2) * v)
        name = _UFUNCS.get(ufunc.__name__, "")
        methods = value_ops.UFUNC_METHODS
        fast = method == "__call__" and not kwargs and name in methods
        if fast and all(type(x) is Value or isinstance(x, value_ops.NUMBERS) for x in inputs):
            first, *rest = inputs
            if type(first) is Value:
                return getattr(first, methods[name][0])(*rest)
            return getattr(rest[0], methods[name][1])(first)
        return self._as_tensor().__array_ufunc__(ufunc, method, *inputs, **kwargs)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        return self._as_tensor().__array_function__(func, types, args, kwargs)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.asarray(self._v, dtype=dtype)


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
_ARITY = tuple(len(t.value_positions) for t in tape_ops())


class _Bridged(TracedValue):
    """An eager Value's tensor in the graph (``Value._as_tensor``): its ``.grad`` and
    ``.label`` are the Value's, its data and node are those of the Value's version it was built
    from. It refers to the Value weakly (the Value holds it, and the C tape takes eager Values
    out of the cycle collector's sight, so a cycle would never be freed); once the Value is
    gone (a temporary), the tensor stands for itself, with a gradient of its own."""

    __slots__ = ("_grad", "_ref")
    _ref: weakref.ref[Value]
    _grad: Any

    @property
    def grad(self) -> Any:
        v = self._ref()
        return self._grad if v is None else v.grad

    @grad.setter
    def grad(self, g: Any) -> None:
        v = self._ref()
        if v is None:
            self._grad = g
        else:
            v.grad = g

    @property
    def label(self) -> str:
        v = self._ref()
        return "" if v is None else v.label

    @label.setter
    def label(self, text: str) -> None:
        v = self._ref()
        if v is not None:
            v.label = text

    def _owner(self) -> Any:
        v = self._ref()
        return self if v is None else v


def owner(t: Tensor) -> Tensor | Value:
    """The object the user holds for graph tensor ``t``: the eager Value it stands for (while
    that lives), or ``t`` itself."""
    return t._owner() if isinstance(t, TracedValue) else t


def _tensor_of(v: Value) -> _Bridged:
    """The tensor of ``v``, whose operands' tensors exist."""
    custom = getattr(v, "_custom", None)
    if custom is not None and custom.kids:
        raise TraceError(
            f"a Value made by your own op code (Value(data, _children, {custom.op!r}) with a "
            "hand-written _backward) cannot enter symgrad's graph (compile, trace, gradcheck, "
            "mixing with a Tensor): symgrad cannot differentiate Python closures. Write the op "
            "with symgrad's operations (or declare it with symgrad.elementwise)",
            Provenance.capture(),
        )
    if v._code == LEAF:
        parents: tuple[Tensor, ...] = ()
        node = make_input((), FLOAT64, name=v.label)
    else:
        t = tape_ops()[v._code]
        parents = tuple(p._as_tensor() for p in v._prev)
        operands = iter(p.node for p in parents)
        inputs = tuple(next(operands) if c == "v" else const(v._k, FLOAT64) for c in t.form)
        node = apply(t.name, inputs)
    b = object.__new__(_Bridged)
    b._ref = weakref.ref(v)
    b._grad = 0.0
    b.node = node
    b._data = np.array(v._v)
    b._rg = True
    b._parents = parents
    b._pin = tuple([(p.node, p._data) for p in parents])
    b._retain = True
    return b


def _bridge(root: Value) -> TracedValue:
    """``root._as_tensor()`` when it is not built: the tensors of the Values behind it first
    (iteratively: a tape may be 65k Values deep)."""
    stack = [root]
    while stack:
        v = stack[-1]
        if getattr(v, "_tensor", None) is not None:
            stack.pop()
            continue
        pending = [p for p in v._prev if getattr(p, "_tensor", None) is None]
        if pending:
            stack.extend(pending)
            continue
        stack.pop()
        v._tensor = _tensor_of(v)
    t = root._tensor
    assert t is not None
    return t


def materialise(root: Value) -> Node:
    """The graph node of an eager Value, building the tensors of its tape (iteratively) first."""
    return root._as_tensor().node


Value.register(TracedValue)
register_scalar_classes(Value, TracedValue)
