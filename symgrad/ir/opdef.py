"""The op record and the registry: each op is declared exactly once, as one :class:`OpDef`.

Owns: :class:`OpDef` (evaluation, shape/dtype rule, VJP rule, emissions, traits), the registry,
:func:`apply` (the only way an op becomes a node: it runs the shape rule and attaches the user's
provenance), scalar constants, and the op catalogue text. May import: numpy, the standard library
and the rest of ``symgrad.ir``. The op declarations themselves live in ``symgrad.ops``.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from symgrad.ir.dtypes import BOOL, FLOAT64, INT64, DType
from symgrad.ir.errors import DTypeError, ShapeError, TraceError
from symgrad.ir.node import Node, Shape, attrs_key, install_operator, install_sugar
from symgrad.ir.provenance import Provenance


class Kind(enum.Enum):
    SOURCE = "source"  # no inputs: input, const, arange, ...
    ELEMENTWISE = "elementwise"
    REDUCE = "reduce"
    MOVEMENT = "movement"
    INDEX = "index"
    LINALG = "linalg"
    SCAN = "scan"  # running values along an axis: cumsum


@dataclass(frozen=True, slots=True)
class Surface:
    """How users reach an op. Every front end builds its operators and methods from these
    fields (``Node``'s here in ``symgrad.ir``, ``Tensor``'s and ``Value``'s in
    ``symgrad.frontend``, NumPy ufunc dispatch, the module-level functions, graph pictures):
    adding an op with a surface adds it everywhere at once."""

    operator: str = ""  # Python operator method stem: "add" -> __add__ (unary ops: __neg__)
    reflected: bool = False  # also the reflected method (__radd__)
    method: str = ""  # Tensor and Value method ("tanh" -> x.tanh())
    function: str = ""  # module-level function (symgrad.tanh, symgrad.functional.tanh)
    ufuncs: tuple[str, ...] = ()  # NumPy ufuncs that run the op on tensors
    symbol: str = ""  # infix (binary) or prefix (unary) symbol: "+", "**", "-"
    ordering: bool = False  # an order comparison (<, <=, >, >=): eager Values give bools


NO_SURFACE = Surface()


@dataclass(frozen=True, slots=True)
class SurfaceMethod:
    """One method a front end defines for an op: ``x.<name>(o)`` is ``op(x, o)`` (``form``
    "binary"), ``op(o, x)`` ("reflected") or ``op(x)`` ("unary")."""

    name: str
    op: str
    form: str


def surface_methods(op: OpDef) -> list[SurfaceMethod]:
    """The operator and named methods of ``op``'s surface, e.g. ``__add__`` and ``__radd__``
    for ``add``, ``__neg__`` for ``neg``, ``tanh`` for ``tanh``, ``__abs__`` and ``abs``."""
    s = op.surface
    out: list[SurfaceMethod] = []
    unary = op.arity == 1
    if s.operator:
        out.append(SurfaceMethod(f"__{s.operator}__", op.name, "unary" if unary else "binary"))
        if s.reflected:
            out.append(SurfaceMethod(f"__r{s.operator}__", op.name, "reflected"))
    if s.method:
        out.append(SurfaceMethod(s.method, op.name, "unary" if unary else "binary"))
    return out


class EvalContext(NamedTuple):
    """What an op's ``eval`` may need besides its input arrays. (A named tuple: one is made for
    every node evaluated, and a frozen dataclass costs several times as much to build.)"""

    attrs: Mapping[str, Any]
    shape: tuple[int, ...]  # the node's output shape, symbolic dims resolved
    dtype: np.dtype[Any]
    dims: Mapping[str, int]  # bindings of symbolic dims


# (inputs, attrs) -> (shape, dtype); raises TraceError subclasses on bad input
InferFn = Callable[[tuple[Node, ...], dict[str, Any]], tuple[Shape, DType]]
EvalFn = Callable[..., Any]  # (ctx: EvalContext, *arrays) -> ndarray
VjpFn = Callable[..., tuple[Node | None, ...]]  # (g, out, *inputs, **attrs) -> cotangents


@dataclass(frozen=True)
class OpDef:
    """Everything every layer needs to know about one op.

    ``vjp`` returns one cotangent node (in the *output's* broadcast shape is fine: the autodiff
    driver sums broadcast axes away) or ``None`` per input. Ops that are not differentiable
    (integer or boolean results) must say so with ``differentiable=False``; an op that is
    differentiable but has no ``vjp`` fails the registry sweep.
    """

    name: str
    kind: Kind
    arity: int | None  # None: variadic
    eval: EvalFn
    infer: InferFn
    vjp: VjpFn | None = None
    differentiable: bool = True
    doc: str = ""
    # lowerings per backend, keyed "<backend>" (any dtype), or "<backend>:<family>" ("c:int")
    # or "<backend>:<dtype>" ("c:float32") where the code differs by the operands' dtype (see
    # :meth:`lowering`): an expression template (a str), or for C a statement lowering, a
    # function ``(emitter, node, out) -> lines`` (see symgrad.ops.c.emitter); "c-check" is the
    # check an alias op makes before it is read as its operand
    emit: Mapping[str, Any] = field(default_factory=dict)
    # the result has the elements of the first operand in the same order: a backend may alias
    # the operand's buffer instead of copying it (reshape, detach, class_index)
    alias: bool = False
    # the operands a node of this op reads through without them being materialised (matmul
    # reads ``x.T`` from ``x``): node -> those operand statements (maybe none)
    absorbs: Callable[[Node], tuple[Node, ...]] | None = None
    # the module-level helper routines a backend's lowering calls, by backend (NumPy:
    # ``templates/numpy/_helpers.py.j2`` prints each once, in its order)
    helpers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # the lowering's helper takes the model line as its last argument (checks name it)
    reports_site: bool = False
    surface: Surface = NO_SURFACE
    # where the op is not differentiable, for gradcheck (symgrad.check.localise): "zero" (at 0
    # of its operand: relu, abs), "ties" (where its two operands are equal: maximum, the
    # comparisons) or "reduced ties" (several maximal elements of a reduction: max)
    kinks: str = ""
    commutative: bool = False
    # for elementwise ops declared from SymPy: the expression builder, see autodiff.derive
    sympy_fn: Callable[..., Any] | None = None
    # for scalar elementwise ops: the op on Python floats, with the IEEE results of ``eval`` on
    # float64 (eager ``Value`` arithmetic; see symgrad/ops/scalar.py)
    scalar: Callable[..., float] | None = None
    # how people see the op in generated code, reports and drawings when its registry name is
    # generated (ops declared with ``symgrad.elementwise``); "" means the registry name
    label: str = ""

    def __repr__(self) -> str:
        return f"OpDef({self.name!r}, {self.kind.value})"

    def lowering(self, backend: str, dtype: DType) -> Any:
        """The op's lowering for ``backend`` on operands of ``dtype``: the most specific of
        ``"<backend>:<dtype name>"``, ``"<backend>:<dtype family>"`` and ``"<backend>"``, or
        None when the op declares none (the printer then reports it)."""
        emit = self.emit
        for key in (f"{backend}:{dtype.name}", f"{backend}:{dtype.family}", backend):
            found = emit.get(key)
            if found is not None:
                return found
        return None


def lowering_of(node: Node, backend: str) -> Any:
    """``node``'s lowering for ``backend``, chosen by its operands' dtype (the last operand's:
    ``where``'s first is the bool condition); NotImplementedError when the op declares none."""
    dt = node.inputs[-1].dtype if node.inputs else node.dtype
    found = _REGISTRY[node.op].lowering(backend, dt)
    if found is None:
        raise NotImplementedError(f"op {node.op!r} has no {backend} lowering for {dt}")
    return found


_REGISTRY: dict[str, OpDef] = {}


def register(op: OpDef) -> OpDef:
    """Add ``op`` to the registry; a second declaration of the same name is an error. The
    operators and methods of its surface (when differentiable) become ``Node``'s too, so that
    VJP rules read like maths (``g * out``, ``x.sqrt()``)."""
    if op.name in _REGISTRY:
        raise ValueError(f"op {op.name!r} is already declared")
    _REGISTRY[op.name] = op
    if op.differentiable:
        for m in surface_methods(op):
            install_operator(m.name, m.op, m.form)
    return op


def registry() -> Mapping[str, OpDef]:
    """All declared ops, by name (importing ``symgrad`` declares the built-in ones)."""
    return _REGISTRY


def get_op(name: str) -> OpDef:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(
            f"no op named {name!r}; declared ops: {', '.join(sorted(_REGISTRY))}"
        ) from None


def op_label(name: str) -> str:
    """How an op is shown to people: its ``label`` when it has one, else its registry name."""
    op = _REGISTRY.get(name)
    return op.label if op is not None and op.label else name


def fmt_shape(shape: Shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def apply(
    name: str,
    inputs: tuple[Node, ...],
    attrs: dict[str, Any] | None = None,
    provenance: Provenance | None = None,
) -> Node:
    """Create (or find) the node ``name(*inputs, **attrs)``, checking shapes and dtypes.
    ``provenance``: the new node's, when the caller has captured it already (by default
    :meth:`Provenance.capture`)."""
    op = _REGISTRY[name]
    a = attrs if attrs is not None else {}
    if inputs.__class__ is not tuple:
        inputs = tuple(inputs)
    if op.arity is not None and len(inputs) != op.arity:
        raise TraceError(
            f"{name}: expected {op.arity} inputs, got {len(inputs)}", Provenance.capture()
        )
    if op.kind is Kind.ELEMENTWISE and inputs:
        for i in inputs:
            if i.op != "const":
                break
        else:
            return _fold(op, inputs, a)
    akey = attrs_key(a)
    infer = op.infer
    key = _infer_key(infer, akey, inputs)
    found = _INFERRED.get(key) if key is not None else None
    if found is None:
        try:
            found = infer(inputs, a)
        except TraceError as e:
            if e.provenance is None:
                raise type(e)(f"{name}: {e.bare_message}", Provenance.capture()) from None
            raise
        if key is not None:
            if len(_INFERRED) >= _INFERRED_LIMIT:
                _INFERRED.clear()
            _INFERRED[key] = found
    shape, dtype = found
    if provenance is None:
        provenance = Provenance.capture()
    return Node.make_keyed(name, inputs, a, akey, shape, dtype, provenance)


# The shape rule's results, by (rule, attributes' key, input shapes and dtypes): an eager loop
# applies the same ops to new nodes of the same types every step. Only rules declared by symgrad
# itself (in ``symgrad.ops``: they read nothing but the input types and the attributes, except
# for the contents of array constants, whose applications are not cached) are memoised; a rule
# declared elsewhere may read anything and runs every time.
_INFERRED: dict[tuple[Any, ...], tuple[Shape, DType]] = {}
_INFERRED_LIMIT = 50_000
_PURE_INFER: dict[InferFn, bool] = {}
_PURE_MODULES = ("symgrad.ops.", "symgrad.sympy_ops.")


def _infer_key(infer: InferFn, akey: tuple[Any, ...], inputs: tuple[Node, ...]) -> Any:
    """The memo key of ``infer`` on these inputs, or None when the result is not memoised."""
    pure = _PURE_INFER.get(infer)
    if pure is None:
        module = getattr(infer, "__module__", None) or ""
        pure = _PURE_INFER[infer] = module.startswith(_PURE_MODULES)
    if not pure:
        return None
    parts: list[Any] = [infer, akey]
    for i in inputs:
        if i.op == "constant":  # (gather, one_hot, bincount check a constant's contents)
            return None
        parts.append(i.shape)
        parts.append(i.dtype.name)
    return tuple(parts)


def _fold(op: OpDef, inputs: tuple[Node, ...], attrs: dict[str, Any]) -> Node:
    """Evaluate an elementwise op of scalar constants at trace time."""
    _shape, dtype = op.infer(inputs, attrs)
    args = [np.asarray(i.attrs["value"], dtype=i.dtype.np) for i in inputs]
    with np.errstate(all="ignore"):
        val = op.eval(EvalContext(attrs, (), dtype.np, {}), *args)
    return const(np.asarray(val).item(), dtype)


# -- constants -----------------------------------------------------------------------------
def const(value: float | int | bool, dtype: DType) -> Node:
    """A scalar constant of the given dtype."""
    if dtype is BOOL:
        v: float | int | bool = bool(value)
    elif dtype is INT64:
        v = int(value)
    else:
        v = float(np.asarray(value, dtype=dtype.np))  # round to the dtype (float32 constants)
    return Node.make("const", (), {"value": v, "dtype": dtype.name}, (), dtype)


def as_node(x: Any, like: Node) -> Node:
    """A Node as is, or a Python number as a constant with ``like``'s dtype (weak typing)."""
    if isinstance(x, Node):
        return x
    if isinstance(x, bool | int | float | np.number):
        dt = like.dtype
        if isinstance(x, float | np.floating) and not dt.is_float:
            dt = FLOAT64
        return const(x.item() if isinstance(x, np.number) else x, dt)
    raise TypeError(f"expected a graph node or a Python number, got {type(x).__name__}")


install_sugar(apply, as_node)  # Node's operators build nodes with these


# -- shape helpers shared by op declarations -----------------------------------------------
def broadcast_shapes(*shapes: Shape) -> Shape:
    """NumPy broadcasting over ints and symbolic dims ("n" broadcasts only with "n" and 1)."""
    nd = max((len(s) for s in shapes), default=0)
    out: list[int | str] = []
    for i in range(nd):
        dims = {s[len(s) - nd + i] for s in shapes if len(s) - nd + i >= 0}
        dims.discard(1)
        if not dims:
            out.append(1)
        elif len(dims) == 1:
            out.append(dims.pop())
        else:
            shown = " and ".join(fmt_shape(s) for s in shapes)
            sym = any(isinstance(d, str) for d in dims)
            hint = " (symbolic dims only broadcast against the same name or 1)" if sym else ""
            raise ShapeError(f"cannot broadcast shapes {shown}{hint}")
    return tuple(out)


def unify_dtypes(name: str, nodes: tuple[Node, ...]) -> DType:
    """The common dtype of the inputs; mixing dtypes needs an explicit cast."""
    dts = {n.dtype for n in nodes}
    if len(dts) == 1:
        return dts.pop()
    given = ", ".join(f"{n.dtype}{fmt_shape(n.shape)}" for n in nodes)
    raise DTypeError(
        f"inputs have different dtypes ({given}); cast explicitly, e.g. x.astype('float32')"
    )


def resolve_shape(shape: Shape, dims: Mapping[str, int]) -> tuple[int, ...]:
    try:
        return tuple(d if isinstance(d, int) else dims[d] for d in shape)
    except KeyError as e:
        raise TraceError(f"symbolic dim {e.args[0]!r} is not bound by any input") from None


def shape_size(shape: Shape) -> int | None:
    """The number of elements, or None when a dim is symbolic."""
    ints = [d for d in shape if isinstance(d, int)]
    return math.prod(ints) if len(ints) == len(shape) else None
