"""``Tensor``: operator overloading that records graph nodes (and, when every input has data,
computes the value eagerly, like micrograd). The scalar ``Value`` lives in ``value.py``.

Owns: the core of the traced object (its fields, construction, metadata, the declarations of
its operators, NumPy ufuncs) and applying an op to tensors (:func:`_run`, :func:`_binary`: the
operands as nodes, eager evaluation, the class of the result; an eager ``Value`` operand
enters through its one bridge, ``Value._as_tensor``, see :func:`as_tensor`). The rest of the
class is in its base classes: ``tensor_data`` (data and conversions), ``tensor_shape`` (shape,
movement, casts), ``tensor_reduce`` (reductions) and ``tensor_index`` (indexing); evaluating a
new node is ``tensor_eval``; ``backward()`` and NumPy functions are installed by
``symgrad.frontend.backward`` and ``numpy_interop``, the operators by ``surface``.
May import: numpy, ``symgrad.ir``, ``symgrad.ops`` and the ``tensor_*`` modules.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from symgrad.frontend.grad_mode import GRAD
from symgrad.frontend.tensor_data import DataMethods
from symgrad.frontend.tensor_eval import eager_value, to_array
from symgrad.frontend.tensor_index import Indexing
from symgrad.frontend.tensor_inplace import InplaceMethods
from symgrad.frontend.tensor_reduce import Reductions
from symgrad.frontend.tensor_setitem import ItemAssignment
from symgrad.frontend.tensor_shape import ShapeMethods
from symgrad.frontend.tensor_torch import TorchMethods
from symgrad.ir.dtypes import DType, as_dtype
from symgrad.ir.errors import DTypeError, TraceError, UnsupportedError
from symgrad.ir.node import Node, Shape
from symgrad.ir.opdef import apply, as_node, registry
from symgrad.ir.provenance import Provenance
from symgrad.ir.symdim import SymDim, user_shape
from symgrad.ops import api_torch
from symgrad.ops.api import detach
from symgrad.ops.source import make_constant, make_input

Operand = Any  # Tensor | Value | float | int | np.ndarray


class Tensor(
    DataMethods,
    InplaceMethods,
    ShapeMethods["Tensor"],
    Reductions["Tensor"],
    Indexing["Tensor"],
    ItemAssignment,
    TorchMethods["Tensor"],
):
    """A traced array. ``Tensor(data, requires_grad=False)`` makes a leaf with concrete data."""

    __slots__ = (
        "__weakref__",
        "_data",
        "_parents",
        "_pin",
        "_retain",
        "_rg",  # requires_grad (a property of InplaceMethods: assignment is checked)
        "grad",
        "label",
        "node",
    )
    __array_priority__ = 1000.0
    _always_retain = False  # scalar Values: every Value keeps its gradient (micrograd)

    node: Node
    _data: np.ndarray | None

    def __init__(
        self, data: Any, requires_grad: bool = False, dtype: Any = None, label: str = ""
    ) -> None:
        arr = to_array(data.data if isinstance(data, Tensor) else data, dtype)
        if requires_grad and not as_dtype(arr.dtype).is_float:
            raise DTypeError(
                f"requires_grad=True for {arr.dtype} data: only floating-point tensors can "
                "require gradients. Give float data or dtype= a float dtype",
                Provenance.capture(),
            )
        self._data = arr
        # (the provenance from the caller's frame: the frames below it are this package's)
        self.node = make_input(arr.shape, arr.dtype, label, Provenance.capture(sys._getframe(1)))
        self.grad: Any = None
        self._rg = bool(requires_grad)
        self._parents: tuple[Tensor, ...] = ()
        # (node, data) of each parent when this tensor was computed: a leaf whose .data is
        # assigned later gets a new node, and backward still finds the version used here
        self._pin: tuple[tuple[Node, np.ndarray | None], ...] = ()
        self._retain = False
        self.label = label

    @classmethod
    def _wrap(
        cls, node: Node, data: np.ndarray | None, parents: tuple[Tensor, ...], rg: bool
    ) -> Tensor:
        if parents and not (rg and GRAD.enabled):
            rg = False  # no gradient history: PyTorch's leaf (see symgrad.frontend.grad_mode)
            if data is not None and cls is Tensor and not GRAD.tracing:
                node, parents = make_input(node.shape, node.dtype, "", node.provenance), ()
            elif not GRAD.enabled and node.dtype.is_float:
                node = detach(node)  # traced under no_grad: no gradient flows through it
        t = object.__new__(cls)
        t.node = node
        t._data = data
        t.grad = 0.0 if cls._always_retain else None
        t._rg = rg
        t._parents = parents
        t._pin = tuple([(p.node, p._data) for p in parents])
        t._retain = False
        t.label = ""
        return t

    def _assign(self, arr: np.ndarray) -> None:
        """Give a leaf new data. The leaf gets a new graph node (a new version), so results
        computed from the old data keep their values and their own gradients."""
        if self._parents or self.node.op != "input" or self._data is None:
            raise TraceError(
                ".data can only be assigned to leaf tensors with data (made by Tensor(...) or "
                "Value(...)); this one is the result of an op or a traced argument. Use "
                ".detach() for a new leaf",
                Provenance.capture(),
            )
        prov = Provenance.capture(sys._getframe(1))  # (from the caller's frame, as in __init__)
        self.node = make_input(arr.shape, self.node.dtype, self.label, prov)
        self._data = arr

    def _new_version(self) -> None:
        """A new node for this leaf's data, updated in place (see ``DataMethods.data``)."""
        node = self.node
        self.node = make_input(node.shape, node.dtype, self.label, node.provenance)

    # -- metadata -------------------------------------------------------------------------------
    @property
    def shape(self) -> Shape:
        """The dims: ints, and for a traced tensor ``SymDim``\\ s (int-like symbolic dims)."""
        s = self.node.shape
        if self._data is None and self.node.is_symbolic:
            return user_shape(s)
        return s

    @property
    def dtype(self) -> DType:
        return self.node.dtype

    @property
    def ndim(self) -> int:
        return self.node.ndim

    @property
    def is_leaf(self) -> bool:
        return not self._parents

    def retain_grad(self) -> Tensor:
        self._retain = True
        return self

    __hash__ = object.__hash__

    # -- operators and elementwise methods: installed from the op registry (each op's
    # ``Surface``) by ``symgrad.frontend.surface``; declared here for type checkers
    # (tests/frontend/test_surface.py checks the two lists agree)
    if TYPE_CHECKING:

        def __add__(self, o: Operand) -> Tensor: ...
        def __radd__(self, o: Operand) -> Tensor: ...
        def __sub__(self, o: Operand) -> Tensor: ...
        def __rsub__(self, o: Operand) -> Tensor: ...
        def __mul__(self, o: Operand) -> Tensor: ...
        def __rmul__(self, o: Operand) -> Tensor: ...
        def __truediv__(self, o: Operand) -> Tensor: ...
        def __rtruediv__(self, o: Operand) -> Tensor: ...
        def __pow__(self, o: Operand) -> Tensor: ...
        def __rpow__(self, o: Operand) -> Tensor: ...
        def __matmul__(self, o: Operand) -> Tensor: ...
        def __rmatmul__(self, o: Operand) -> Tensor: ...
        def __neg__(self) -> Tensor: ...
        def __abs__(self) -> Tensor: ...
        def __lt__(self, o: Operand) -> Tensor: ...
        def __le__(self, o: Operand) -> Tensor: ...
        def __gt__(self, o: Operand) -> Tensor: ...
        def __ge__(self, o: Operand) -> Tensor: ...
        def __eq__(self, o: object) -> Tensor: ...  # type: ignore[override]
        def __ne__(self, o: object) -> Tensor: ...  # type: ignore[override]
        def exp(self) -> Tensor: ...
        def log(self) -> Tensor: ...
        def tanh(self) -> Tensor: ...
        def sigmoid(self) -> Tensor: ...
        def relu(self) -> Tensor: ...
        def sqrt(self) -> Tensor: ...
        def abs(self) -> Tensor: ...

    def __pos__(self) -> Tensor:
        return self

    def _unary(self, name: str) -> Tensor:
        d = self._data
        if self.__class__ is Tensor and d is not None:  # the eager hot path
            return _eager_apply(name, (self,), {self.node: d})
        return _run(lambda x: apply(name, (x,)), self)

    def _apply(self, build: Callable[..., Node], *others: Any, indexing: bool = False) -> Tensor:
        """The op ``build(self.node, *their nodes)`` on this tensor and ``others`` (tensors,
        eager Values or arrays); ``indexing``: an element of this tensor (a ``Value`` when
        this tensor is 1-D)."""
        return _run(build, self, *others, _result=_result_class_index(self) if indexing else None)

    # -- NumPy interoperability: ufuncs on tensors map to symgrad ops -------------------------
    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        name = _UFUNCS.get(ufunc.__name__)
        if method != "__call__" or name is None or kwargs:
            what = f"numpy.{ufunc.__name__}" + ("" if method == "__call__" else f".{method}")
            extra = f" with {', '.join(sorted(kwargs))}=" if kwargs and name else ""
            raise UnsupportedError(
                f"{what}{extra} is not supported on symgrad tensors: symgrad cannot record it "
                f"in the graph. Use a symgrad op instead (NumPy ufuncs that map to one: "
                f"{', '.join(sorted(_UFUNCS))}); see docs/ops.md",
                Provenance.capture(),
            )
        if len(inputs) == 1:
            return _run(lambda x: apply(name, (x,)), inputs[0])
        return _HOOKS.binary(name, *inputs)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        return _HOOKS.array_function(func, args, kwargs)

    # -- reverse mode ------------------------------------------------------------------------------
    def backward(self, gradient: Any = None) -> None:
        _HOOKS.backward(self, gradient)


class _Hooks:
    """What Tensor does through modules above this one: the backward pass
    (``symgrad.frontend.backward``), NumPy functions (``symgrad.frontend.numpy_interop``) and
    binary ufuncs with dtype promotion (``symgrad.frontend.surface``). Each installs itself
    here when imported; ``symgrad.frontend`` imports them."""

    def __init__(self) -> None:
        self.backward: Callable[[Tensor, Any], None] = _not_installed
        self.array_function: Callable[[Any, Any, Any], Any] = _not_installed
        self.binary: Callable[[str, Any, Any], Tensor] = _not_installed


def _not_installed(*args: Any) -> Any:
    raise RuntimeError("symgrad.frontend was imported partially: import symgrad first")


_HOOKS = _Hooks()


def _ufunc_table() -> dict[str, str]:
    """NumPy ufunc name -> op, from the ops' surfaces."""
    return {u: name for name, op in registry().items() for u in op.surface.ufuncs}


_UFUNCS = _ufunc_table()  # importing symgrad.ops (above) declared the built-in ops


# The scalar classes, defined in symgrad/frontend/value.py (which imports this module): the
# eager ``Value`` (not a Tensor: it meets tensors through its bridge, ``Value._as_tensor``) and
# the node-backed ``TracedValue`` that scalar results of ops on Values are made of.
_VALUE: Any = type(None)
_TRACED_VALUE: type[Tensor] = Tensor


def register_scalar_classes(value: type, traced: type[Tensor]) -> None:
    global _VALUE, _TRACED_VALUE
    _VALUE, _TRACED_VALUE = value, traced


def as_tensor(x: Any) -> Tensor:
    """``x`` as a tensor: a Tensor itself, an eager ``Value``'s tensor in the graph (through
    its bridge), else a new leaf holding ``x`` (numbers, lists, arrays) as data."""
    if isinstance(x, Tensor):
        return x
    if x.__class__ is _VALUE:
        return x._as_tensor()
    return Tensor(x)


def lift(x: Any) -> Any:
    """``x`` unchanged, or for an eager ``Value`` its tensor in the graph."""
    return x._as_tensor() if x.__class__ is _VALUE else x


# -- op application -----------------------------------------------------------------------------
def _operand_node(x: Any, like: Node) -> Node:
    if isinstance(x, Tensor):
        return x.node
    if isinstance(x, SymDim):  # x / T while tracing: the size, known at run time
        return api_torch.dim_node(x, like)
    if isinstance(x, np.ndarray | list | tuple):
        return make_constant(to_array(x))
    return as_node(x, like)


def _eager_operand(x: Any) -> Tensor | None:
    """An array operand of an eager op as a leaf with data (None for numbers and Tensors).

    In eager code, arrays the user passes (a minibatch, its index arrays) change from step to
    step: as leaves they are inputs of the generated backward code, so its cache key does not
    depend on their values (as constants, every new batch was a new graph and a new compile).
    While tracing they stay constants of the traced function (``_operand_node``)."""
    if isinstance(x, np.ndarray | list | tuple):
        return Tensor(x)
    return None


def _binary(name: str, a: Any, b: Any) -> Tensor:
    if a.__class__ is _VALUE:
        a = a._as_tensor()
    if b.__class__ is _VALUE:
        b = b._as_tensor()
    ca, cb = a.__class__, b.__class__
    if ca is Tensor:  # the eager hot paths: plain Tensors with data, and Python numbers
        da = a._data
        if da is not None:
            if cb is Tensor:
                db = b._data
                if db is not None:
                    return _eager_apply(name, (a, b), {a.node: da, b.node: db})
            elif cb in _NUMBERS:
                x = a.node
                return _eager_apply(name, (a,), {x: da}, (x, as_node(b, x)))
    elif cb is Tensor and ca in _NUMBERS:
        db = b._data
        if db is not None:
            y = b.node
            return _eager_apply(name, (b,), {y: db}, (as_node(a, y), y))
    ta, tb = isinstance(a, Tensor), isinstance(b, Tensor)
    if ta and tb:
        if a._data is None or b._data is None:
            return _traced(name, a, b, a, b)
        return _run(lambda x, y: apply(name, (x, y)), a, b)
    if ta:
        if b.__class__ in _NUMBERS and a._data is None:
            return _traced(name, a, b, a, None)
        leaf = _eager_operand(b) if a._data is not None else None
        if leaf is not None:
            return _run(lambda x, y: apply(name, (x, y)), a, leaf, _result=_scalar_class(a))
        return _run(lambda x: apply(name, (x, _operand_node(b, x))), a)
    if tb:
        if a.__class__ in _NUMBERS and b._data is None:
            return _traced(name, a, b, b, None)
        leaf = _eager_operand(a) if b._data is not None else None
        if leaf is not None:
            return _run(lambda x, y: apply(name, (x, y)), leaf, b, _result=_scalar_class(b))
        return _run(lambda y: apply(name, (_operand_node(a, y), y)), b)
    raise TypeError(f"{name}: expected at least one symgrad tensor")


_NUMBERS = frozenset({float, int})


def _scalar_class(t: Tensor) -> type[Tensor]:
    """The class of a 0-d result of an op on ``t`` and an array (what ``_run`` gives it)."""
    return _TRACED_VALUE if isinstance(t, _TRACED_VALUE) else Tensor


def _traced(name: str, a: Any, b: Any, t0: Tensor, t1: Tensor | None) -> Tensor:
    """``_run`` of a binary op whose result is traced (a tensor operand without data): what
    ``_run`` does, without its eager-evaluation checks. ``a`` and ``b`` are the operands (a
    Python number for one of them when ``t1`` is None), ``t0`` and ``t1`` the tensors among
    them, in order. (Most ops of a trace: every scalar operation of micrograd-style code.)"""
    try:
        if t1 is not None:
            node = apply(name, (a.node, b.node))
        elif a is t0:
            x = a.node
            node = apply(name, (x, as_node(b, x)))
        else:
            y = b.node
            node = apply(name, (as_node(a, y), y))
    except TraceError as e:
        if e.provenance is None:
            raise type(e)(e.bare_message, Provenance.capture()) from None
        raise
    if t1 is None:
        parents: tuple[Tensor, ...] = (t0,)
        cls = _TRACED_VALUE if node.shape == () and isinstance(t0, _TRACED_VALUE) else Tensor
        rg = node.dtype.is_float and t0._rg
    else:
        parents = (t0, t1)
        scalar_values = isinstance(t0, _TRACED_VALUE) and isinstance(t1, _TRACED_VALUE)
        cls = _TRACED_VALUE if node.shape == () and scalar_values else Tensor
        rg = node.dtype.is_float and (t0._rg or t1._rg)
    return _WRAP(cls, node, None, parents, rg)


_WRAP = Tensor._wrap.__func__  # type: ignore[attr-defined]


def _eager_apply(
    name: str,
    tensors: tuple[Tensor, ...],
    env: dict[Node, Any],
    nodes: tuple[Node, ...] | None = None,
) -> Tensor:
    """``_run`` of ``apply(name, nodes)`` on plain Tensors (not Values) that all have data,
    ``env`` their values by node, ``nodes`` the op's inputs (by default the tensors' nodes;
    else with scalar constants among them): what ``_run`` does, without its general checks.
    (Called by ``_binary`` and ``Tensor._unary`` only: see the provenance below.)"""
    try:
        # (the provenance from the frame that called _binary or _unary: the walk skips fewer
        # of this package's frames than from inside apply)
        prov = Provenance.capture(sys._getframe(2))
        if nodes is None:
            nodes = tuple([t.node for t in tensors])
        node = apply(name, nodes, None, prov)
        data = eager_value(node, env)
    except TraceError as e:
        if e.provenance is None:
            raise type(e)(e.bare_message, Provenance.capture()) from None
        raise
    return _WRAP(Tensor, node, data, tensors, _requires_grad(node, tensors))


def _requires_grad(node: Node, tensors: Any) -> bool:
    """Whether the result ``node`` of ops on ``tensors`` takes part in backward: a float
    result of any input that requires grad (an explicit loop: this runs for every eager op)."""
    if node.dtype.is_float:
        for t in tensors:
            if t._rg:
                return True
    return False


def _result_class_index(x: Tensor) -> type[Tensor]:
    # elements of a 1-D float tensor are Values, so micrograd-style scalar code can consume
    # them; those of an integer or bool tensor are 0-d tensors (``.item()`` an int, as PyTorch)
    if (x.ndim == 1 and x.node.dtype.is_float) or isinstance(x, _TRACED_VALUE):
        return _TRACED_VALUE
    return type(x)


def _run(build: Callable[..., Node], *args: Any, _result: type[Tensor] | None = None) -> Tensor:
    """Build the node for ``build(*nodes)`` and, when every input has data, evaluate it."""
    # (explicit loops, no generators: this runs for every eager op of every training step)
    tensors = [a if isinstance(a, Tensor) else as_tensor(a) for a in args]
    eager = True
    env: dict[Node, Any] = {}
    for t in tensors:
        d = t._data
        if d is None:
            eager = False
            break
        env[t.node] = d
    try:
        node = build(*[t.node for t in tensors])
        data = eager_value(node, env) if eager else None
    except TraceError as e:
        # errors raised outside ``apply`` (argument checks, eager evaluation) get the user's line
        if e.provenance is None:
            raise type(e)(e.bare_message, Provenance.capture()) from None
        raise
    cls: type[Tensor] = Tensor
    if node.shape == ():
        if _result is not None:
            cls = _result
        elif all(isinstance(t, _TRACED_VALUE) for t in tensors):
            cls = _TRACED_VALUE
    return cls._wrap(node, data, tuple(tensors), _requires_grad(node, tensors))
