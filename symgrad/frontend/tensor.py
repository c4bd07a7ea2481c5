"""``Tensor``: operator overloading that records graph nodes (and, when every input has data,
computes the value eagerly, like micrograd). Its scalar case ``Value`` lives in ``value.py``.

Owns: the traced object, its operators and methods, eager evaluation of new nodes, and
``backward()`` (which builds the backward graph symbolically with ``symgrad.autodiff`` and runs
it). May import: numpy, ``symgrad.ir``, ``symgrad.ops``, ``symgrad.autodiff``.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from symgrad.ir.dtypes import FLOAT32, FLOAT64, INT64, DType, as_dtype
from symgrad.ir.errors import ConcretizationError, ShapeError, TraceError, UnsupportedError
from symgrad.ir.graph import check_memory, machine_memory, toposort, type_str
from symgrad.ir.node import Node, Shape
from symgrad.ir.opdef import EvalContext, apply, as_node, get_op, registry
from symgrad.ir.provenance import Provenance
from symgrad.ops import api
from symgrad.ops.source import make_constant, make_input

Operand = Any  # Tensor | float | int | np.ndarray


def _concrete_error(what: str) -> ConcretizationError:
    return ConcretizationError(
        f"{what} needs the value of a symbolic (traced) tensor. Tracing records one graph for "
        "every input, so Python control flow must not depend on traced values: use "
        "symgrad.where(cond, a, b) for data-dependent choices",
        Provenance.capture(),
    )


class Tensor:
    """A traced array. ``Tensor(data, requires_grad=False)`` makes a leaf with concrete data."""

    __slots__ = (
        "__weakref__",
        "_data",
        "_parents",
        "_pin",
        "_retain",
        "grad",
        "label",
        "node",
        "requires_grad",
    )
    __array_priority__ = 1000.0
    _always_retain = False  # Value: every Value keeps its gradient (micrograd)

    node: Node
    _data: np.ndarray | None

    def __init__(
        self, data: Any, requires_grad: bool = False, dtype: Any = None, label: str = ""
    ) -> None:
        arr = _to_array(data, dtype)
        if requires_grad and not as_dtype(arr.dtype).is_float:
            raise TypeError(f"only floating-point tensors can require gradients, got {arr.dtype}")
        self._data = arr
        # (the provenance from the caller's frame: the frames below it are this package's)
        self.node = make_input(arr.shape, arr.dtype, label, Provenance.capture(sys._getframe(1)))
        self.grad: Any = None
        self.requires_grad = requires_grad
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
        t = object.__new__(cls)
        t.node = node
        t._data = data
        t.grad = 0.0 if cls._always_retain else None
        t.requires_grad = rg
        t._parents = parents
        t._pin = tuple([(p.node, p._data) for p in parents])
        t._retain = False
        t.label = ""
        return t

    # -- data and metadata --------------------------------------------------------------------
    @property
    def data(self) -> Any:
        if self._data is None:
            raise _concrete_error(".data")
        return self._data

    @data.setter
    def data(self, value: Any) -> None:
        arr = np.asarray(value, dtype=self.node.dtype.np)
        self._assign(np.array(arr, copy=True) if arr is value else arr)

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

    @property
    def shape(self) -> Shape:
        return self.node.shape

    @property
    def dtype(self) -> DType:
        return self.node.dtype

    @property
    def ndim(self) -> int:
        return self.node.ndim

    @property
    def size(self) -> int | None:
        from symgrad.ir.opdef import shape_size

        return shape_size(self.node.shape)

    @property
    def is_leaf(self) -> bool:
        return not self._parents

    def numpy(self) -> np.ndarray:
        """The data as an array of the tensor's dtype (also for a float32 ``Value``, whose
        ``.data`` is a Python float)."""
        if self._data is None:
            raise _concrete_error(".numpy()")
        return np.asarray(self._data)

    def item(self) -> float:
        d = self.data
        if d.size != 1:
            raise ShapeError(f"item() needs a tensor with one element, got shape {d.shape}")
        return d.item()

    def retain_grad(self) -> Tensor:
        self._retain = True
        return self

    def detach(self) -> Tensor:
        return _run(api.detach, self)

    def __repr__(self) -> str:
        dims = ",".join(str(d) for d in self.shape)
        if self._data is None:
            return f"Tensor(<traced {self.dtype.short}[{dims}]>)"
        return f"Tensor({np.array2string(self._data, threshold=20)}, dtype={self.dtype})"

    # -- Python protocol: refuse to concretise traced values -----------------------------------
    def __bool__(self) -> bool:
        if self._data is None:
            raise _concrete_error("bool() (an if/while condition or and/or)")
        return bool(self._data)

    def __float__(self) -> float:
        if self._data is None:
            raise _concrete_error("float()")
        return float(self._data)

    def __int__(self) -> int:
        if self._data is None:
            raise _concrete_error("int()")
        return int(self._data)

    def __index__(self) -> int:
        if self._data is None:
            raise _concrete_error("use as a Python index (range(), list indexing, ...)")
        if self._data.size != 1 or self.dtype.is_float or self.dtype.name == "bool":
            raise TypeError(
                f"only an integer tensor with one element can be used as an index, got "
                f"{self.dtype}{tuple(self.shape)}"
            )
        return int(self._data)

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d tensor")
        d = self.shape[0]
        if isinstance(d, str):
            raise _concrete_error(
                f"len() of a tensor whose first dim is symbolic ({d!r}); "
                "use x.shape[0] instead, which"
            )
        return d

    def __iter__(self) -> Iterator[Tensor]:
        for i in range(len(self)):
            yield self[i]

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

    def astype(self, dtype: Any) -> Tensor:
        return _run(lambda x: api.cast(x, dtype), self)

    def float(self) -> Tensor:
        """Convert to float32 (PyTorch's ``.float()``)."""
        return self.astype(FLOAT32)

    def double(self) -> Tensor:
        return self.astype(FLOAT64)

    # -- reductions and movement ----------------------------------------------------------------
    def sum(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return _run(lambda x: api.sum(x, axis, keepdims), self)

    def mean(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return _run(lambda x: api.mean(x, axis, keepdims), self)

    def max(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return _run(lambda x: api.max(x, axis, keepdims), self)

    def reshape(self, *shape: Any) -> Tensor:
        shp = shape[0] if len(shape) == 1 and isinstance(shape[0], tuple | list) else shape
        return _run(lambda x: api.reshape(x, shp), self)

    view = reshape

    def transpose(self, *axes: Any) -> Tensor:
        ax = axes[0] if len(axes) == 1 and isinstance(axes[0], tuple | list) else axes
        return _run(lambda x: api.transpose(x, ax or None), self)

    @property
    def T(self) -> Tensor:
        return self.transpose()

    def __getitem__(self, key: Any) -> Tensor:
        if self.node.shape:  # x[idx] with one integer array (an embedding lookup): one gather
            idx = _eager_index(key) if self._data is not None else key
            if isinstance(idx, Tensor) and idx.dtype is INT64:
                return _run(api.gather, self, idx, _result=_result_class_index(self))
        tensors: list[Tensor] = []
        items = key if isinstance(key, tuple) else (key,)
        if self._data is not None:  # eager: index arrays are data (see _eager_operand)
            items = tuple(_eager_index(k) for k in items)
        for k in items:
            if isinstance(k, Tensor):
                tensors.append(k)

        def build(x: Node, *idx: Node) -> Node:
            it = iter(idx)
            mapped = tuple(next(it) if isinstance(k, Tensor) else k for k in items)
            return api.index(x, mapped if isinstance(key, tuple) else mapped[0])

        return _run(build, self, *tensors, _result=_result_class_index(self))

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
        return _binary(name, *inputs)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        return _HOOKS.array_function(func, args, kwargs)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        if self._data is None:
            raise TypeError(
                "a traced symgrad tensor cannot be converted to a NumPy array inside a traced "
                "function; use symgrad ops on it instead"
            )
        return np.asarray(self._data, dtype=dtype)

    # -- reverse mode ------------------------------------------------------------------------------
    def backward(self, gradient: Any = None) -> None:
        _HOOKS.backward(self, gradient)


class _Hooks:
    """What Tensor does through modules above this one: the backward pass
    (``symgrad.frontend.backward``) and NumPy functions (``symgrad.frontend.numpy_interop``).
    Each installs itself here when imported; ``symgrad.frontend`` imports both."""

    def __init__(self) -> None:
        self.backward: Callable[[Tensor, Any], None] = _not_installed
        self.array_function: Callable[[Any, Any, Any], Any] = _not_installed


def _not_installed(*args: Any) -> Any:
    raise RuntimeError("symgrad.frontend was imported partially: import symgrad first")


_HOOKS = _Hooks()


def _ufunc_table() -> dict[str, str]:
    """NumPy ufunc name -> op, from the ops' surfaces."""
    return {u: name for name, op in registry().items() for u in op.surface.ufuncs}


_UFUNCS = _ufunc_table()  # importing symgrad.ops (above) declared the built-in ops


# The scalar classes, defined in symgrad/frontend/value.py (which imports this module): ``Value``
# and the node-backed ``TracedValue`` that scalar results of node-level ops are made of.
_VALUE: type[Tensor] = Tensor
_TRACED_VALUE: type[Tensor] = Tensor


def register_scalar_classes(value: type[Tensor], traced: type[Tensor]) -> None:
    global _VALUE, _TRACED_VALUE
    _VALUE, _TRACED_VALUE = value, traced


# -- op application -----------------------------------------------------------------------------
def _to_array(data: Any, dtype: Any = None) -> np.ndarray:
    if isinstance(data, Tensor):
        data = data.data
    if dtype is None and data.__class__ is np.ndarray and data.dtype in _KEPT_DTYPES:
        return np.array(data)  # (an eager leaf: an array of a dtype kept as it is)
    if dtype is not None:
        return np.array(data, dtype=as_dtype(dtype).np)
    arr = np.array(data)
    if arr.dtype.kind == "f":
        return arr if arr.dtype.itemsize in (4, 8) else arr.astype(np.float64)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    if arr.dtype.kind == "b":
        return arr
    raise TypeError(f"expected numbers or an array of them, got {arr.dtype} data")


_KEPT_DTYPES = frozenset(np.dtype(t) for t in ("float32", "float64", "int64", "bool"))


def _operand_node(x: Any, like: Node) -> Node:
    if isinstance(x, Tensor):
        return x.node
    if isinstance(x, np.ndarray):
        return make_constant(_to_array(x))
    if isinstance(x, list | tuple):
        return make_constant(_to_array(x))
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


def _eager_index(k: Any) -> Any:
    """An integer index array of an eager ``x[...]`` as a leaf (see :func:`_eager_operand`);
    other keys (slices, ints, arrays of other dtypes, refused by ``api.index``) unchanged."""
    if isinstance(k, np.ndarray | list) and np.asarray(k).dtype.kind in "iu":
        return Tensor(k)
    return k


def _binary(name: str, a: Any, b: Any) -> Tensor:
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
        # (an eager Value always has data: its _data would build an array just to say so)
        if (a.__class__ is not _VALUE and a._data is None) or (
            b.__class__ is not _VALUE and b._data is None
        ):
            return _traced(name, a, b, a, b)
        return _run(lambda x, y: apply(name, (x, y)), a, b)
    if ta:
        if b.__class__ in _NUMBERS and a.__class__ is not _VALUE and a._data is None:
            return _traced(name, a, b, a, None)
        leaf = _eager_operand(b) if a.__class__ is _VALUE or a._data is not None else None
        if leaf is not None:
            return _run(lambda x, y: apply(name, (x, y)), a, leaf, _result=_scalar_class(a))
        return _run(lambda x: apply(name, (x, _operand_node(b, x))), a)
    if tb:
        if a.__class__ in _NUMBERS and b.__class__ is not _VALUE and b._data is None:
            return _traced(name, a, b, b, None)
        leaf = _eager_operand(a) if b.__class__ is _VALUE or b._data is not None else None
        if leaf is not None:
            return _run(lambda x, y: apply(name, (x, y)), leaf, b, _result=_scalar_class(b))
        return _run(lambda y: apply(name, (_operand_node(a, y), y)), b)
    raise TypeError(f"{name}: expected at least one symgrad tensor")


_NUMBERS = frozenset({float, int})


def _scalar_class(t: Tensor) -> type[Tensor]:
    """The class of a 0-d result of an op on ``t`` and an array (what ``_run`` gives it)."""
    return _TRACED_VALUE if isinstance(t, _VALUE) else Tensor


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
        cls = _TRACED_VALUE if node.shape == () and isinstance(t0, _VALUE) else Tensor
        rg = node.dtype.is_float and t0.requires_grad
    else:
        parents = (t0, t1)
        scalar_values = isinstance(t0, _VALUE) and isinstance(t1, _VALUE)
        cls = _TRACED_VALUE if node.shape == () and scalar_values else Tensor
        rg = node.dtype.is_float and (t0.requires_grad or t1.requires_grad)
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
        data = _eager(node, env)
    except TraceError as e:
        if e.provenance is None:
            raise type(e)(e.bare_message, Provenance.capture()) from None
        raise
    rg = False
    if node.dtype.is_float:
        for t in tensors:
            if t.requires_grad:
                rg = True
                break
    return _WRAP(Tensor, node, data, tensors, rg)


def _result_class_index(x: Tensor) -> type[Tensor]:
    # elements of any 1-D tensor are Values, so micrograd-style scalar code can consume them
    return _TRACED_VALUE if x.ndim == 1 else type(x)


def _run(build: Callable[..., Node], *args: Tensor, _result: type[Tensor] | None = None) -> Tensor:
    """Build the node for ``build(*nodes)`` and, when every input has data, evaluate it."""
    # (explicit loops, no generators: this runs for every eager op of every training step)
    tensors = [a if isinstance(a, Tensor) else Tensor(a) for a in args]
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
        data = _eager(node, env) if eager else None
    except TraceError as e:
        # errors raised outside ``apply`` (argument checks, eager evaluation) get the user's line
        if e.provenance is None:
            raise type(e)(e.bare_message, Provenance.capture()) from None
        raise
    cls: type[Tensor] = Tensor
    if node.shape == ():
        if _result is not None:
            cls = _result
        elif all(isinstance(t, _VALUE) for t in tensors):
            cls = _TRACED_VALUE
    rg = False
    if node.dtype.is_float:
        for t in tensors:
            if t.requires_grad:
                rg = True
                break
    return cls._wrap(node, data, tuple(tensors), rg)


def _eager(node: Node, env: dict[Node, Any]) -> np.ndarray:
    """The value of a new node from the values of its tensor inputs."""
    got = env.get(node)
    if got is not None:
        return got
    for i in node.inputs:
        if i not in env and i.op != "const":
            break
    else:
        with np.errstate(all="ignore"):
            return _value(node, env)
    # a composite (cross_entropy, softmax, ...): its nodes in order, like the interpreter
    vals = dict(env)
    with np.errstate(all="ignore"):
        for n in toposort([node], stop=vals):
            if n not in vals and n.op != "const":
                vals[n] = _value(n, vals)
    return vals[node]


def _value(node: Node, vals: dict[Node, Any]) -> np.ndarray:
    """``node``'s value from the values of its inputs (scalar constants may be missing)."""
    args = [vals[i] if i in vals else np.asarray(i.attrs["value"], i.dtype.np) for i in node.inputs]
    shape: Any = node.shape  # (static: eager values exist only for static shapes)
    npdt = node.dtype.np
    if math.prod(shape) * npdt.itemsize > machine_memory():  # before allocating it
        check_memory(shape, npdt.itemsize, f"{node.op} ({type_str(node)})", node.provenance)
    val = get_op(node.op).eval(EvalContext(node.attrs, shape, npdt, _NO_DIMS), *args)
    if val.__class__ is not np.ndarray:
        val = np.asarray(val)
    return val if val.dtype is npdt or val.dtype == npdt else val.astype(npdt)


_NO_DIMS: Mapping[str, int] = MappingProxyType({})  # (eager shapes are static)
