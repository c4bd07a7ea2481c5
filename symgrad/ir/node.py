"""The one node type of every symgrad graph: frozen, interned (hash-consed).

Owns: :class:`Node`, shapes (tuples of ints and symbolic str dims) and the
intern table. Structurally equal nodes are the same object, so equal subexpressions are shared by
construction and node equality is identity. Provenance (the user's file:line) is carried along but
is not part of a node's identity: the first creation site is kept.

May import: the standard library, ``symgrad.ir.dtypes`` and ``symgrad.ir.provenance``. The
operator sugar on Node builds nodes through the op registry, which installs itself here
(:func:`install_sugar`) when ``symgrad.ir.opdef`` is imported: the registry sits above the node.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from symgrad.ir.dtypes import DType
from symgrad.ir.provenance import Provenance, merged

Dim = int | str
Shape = tuple[Dim, ...]

_SHARED_SOURCES = frozenset({"input", "const", "constant"})  # by uid, by value, by content


def _freeze_value(v: Any) -> Any:
    # floats are keyed by their exact bits so that 0.0 and -0.0 stay distinct nodes
    if isinstance(v, float):
        return ("f", v.hex())
    if isinstance(v, tuple):
        return tuple([_freeze_value(x) for x in v])
    return v


# attribute values that are their own key (``_freeze_value`` returns them unchanged)
_SELF_KEYED = frozenset({int, str, bool, type(None)})


def attrs_key(attrs: dict[str, Any]) -> tuple[Any, ...]:
    """The attributes' part of a node's intern key: ``(name, frozen value)`` pairs sorted by
    name (what :func:`_freeze_value` makes of each value), built without a generator or a
    recursive call for the common values (ints, strings, tuples of them: a shape, an axis)."""
    if not attrs:
        return ()
    out = []
    for k in sorted(attrs):
        v = attrs[k]
        c = v.__class__
        if c in _SELF_KEYED:
            out.append((k, v))
        elif c is tuple:
            for x in v:
                if x.__class__ not in _SELF_KEYED:
                    out.append((k, _freeze_value(v)))
                    break
            else:
                out.append((k, v))
        else:
            out.append((k, _freeze_value(v)))
    return tuple(out)


class Node:
    """An immutable graph node. Create nodes with :meth:`Node.make` (or op application), never
    directly: ``make`` returns the existing node when an equal one is alive."""

    __slots__ = ("__weakref__", "attrs", "dtype", "inputs", "op", "provenance", "shape")

    op: str
    inputs: tuple[Node, ...]
    attrs: dict[str, Any]
    shape: Shape
    dtype: DType
    provenance: Provenance | None

    # key -> weak reference to the live node (see _Ref: an entry goes when its node dies)
    _table: ClassVar[dict[tuple[Any, ...], _Ref]] = {}

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Node is immutable")

    @classmethod
    def make(
        cls,
        op: str,
        inputs: tuple[Node, ...],
        attrs: dict[str, Any],
        shape: Shape,
        dtype: DType,
        provenance: Provenance | None = None,
    ) -> Node:
        """Return the unique node with these contents (provenance is not part of identity: a
        node found again keeps its sites and gains ``provenance``'s, see
        :func:`symgrad.ir.provenance.merged`)."""
        if inputs.__class__ is not tuple:
            inputs = tuple(inputs)
        return _make_keyed(op, inputs, attrs, attrs_key(attrs), shape, dtype, provenance)

    @classmethod
    def make_keyed(
        cls,
        op: str,
        inputs: tuple[Node, ...],
        attrs: dict[str, Any],
        akey: tuple[Any, ...],
        shape: Shape,
        dtype: DType,
        provenance: Provenance | None = None,
    ) -> Node:
        """:meth:`make` for a caller that has the attributes' key already (``attrs_key(attrs)``,
        e.g. to key a cache of its own); ``inputs`` must be a tuple."""
        # _key, inline (make is on the path of every node a trace, a VJP or a pass builds)
        key: tuple[Any, ...] = (op, inputs, akey, shape, dtype.name)
        if not inputs and op not in _SHARED_SOURCES and provenance is not None:
            key += (provenance.file, provenance.line)
        table = Node._table
        ref = table.get(key)
        if ref is not None:
            found = ref()
            if found is not None:
                if inputs and provenance is not found.provenance and provenance is not None:
                    # made again elsewhere: the node keeps every site that made it (forward
                    # sites first), so a statement can cite the operation it computes.
                    # Provenance is not identity: this changes no key and no value
                    _set_provenance(found, merged(found.provenance, provenance))
                return found
        node = object.__new__(cls)
        _set_op(node, op)  # the slots' own setters (__setattr__ refuses)
        _set_inputs(node, inputs)
        _set_attrs(node, attrs)
        _set_shape(node, shape)
        _set_dtype(node, dtype)
        _set_provenance(node, provenance)
        ref = _Ref(node, _forget)
        ref.key = key
        table[key] = ref
        return node

    @classmethod
    def find(
        cls,
        op: str,
        inputs: tuple[Node, ...],
        attrs: dict[str, Any],
        shape: Shape,
        dtype: DType,
        provenance: Provenance | None = None,
    ) -> Node | None:
        """The live node that :meth:`make` would return for these contents, or None (then
        ``make`` would create one)."""
        ref = cls._table.get(_key(op, tuple(inputs), attrs, shape, dtype, provenance))
        return ref() if ref is not None else None

    # -- small conveniences ---------------------------------------------------------------
    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def is_symbolic(self) -> bool:
        return any(isinstance(d, str) for d in self.shape)

    def __repr__(self) -> str:
        dims = ",".join(str(d) for d in self.shape)
        return f"<Node {self.op} {self.dtype.short}[{dims}] at {id(self):#x}>"

    # -- arithmetic sugar, so VJP rules read like maths: the registry installs the operators
    # of every differentiable op with a surface (``install_operator``); declared here for
    # type checkers (tests/ir/test_node.py checks the two lists agree)
    if TYPE_CHECKING:

        def __add__(self, o: Any) -> Node: ...
        def __radd__(self, o: Any) -> Node: ...
        def __sub__(self, o: Any) -> Node: ...
        def __rsub__(self, o: Any) -> Node: ...
        def __mul__(self, o: Any) -> Node: ...
        def __rmul__(self, o: Any) -> Node: ...
        def __truediv__(self, o: Any) -> Node: ...
        def __rtruediv__(self, o: Any) -> Node: ...
        def __pow__(self, o: Any) -> Node: ...
        def __rpow__(self, o: Any) -> Node: ...
        def __matmul__(self, o: Any) -> Node: ...
        def __rmatmul__(self, o: Any) -> Node: ...
        def __neg__(self) -> Node: ...
        def __abs__(self) -> Node: ...
        def exp(self) -> Node: ...
        def log(self) -> Node: ...
        def tanh(self) -> Node: ...
        def sigmoid(self) -> Node: ...
        def relu(self) -> Node: ...
        def sqrt(self) -> Node: ...
        def abs(self) -> Node: ...

    @property
    def T(self) -> Node:
        perm = tuple(reversed(range(self.ndim)))
        return _SUGAR.apply(_SUGAR.transpose, (self,), {"perm": perm})

    def iter_inputs(self) -> Iterator[Node]:
        return iter(self.inputs)


class _Sugar:
    """How Node's operators build nodes; :func:`install_sugar` fills it in."""

    def __init__(self) -> None:
        self.apply: Callable[[str, tuple[Node, ...], dict[str, Any] | None], Node] = _unready
        self.as_node: Callable[[Any, Node], Node] = _unready
        self.transpose = ""  # the op of ``.T``


def _unready(*args: Any) -> Node:
    raise RuntimeError("Node arithmetic needs the op registry: import symgrad.ir.opdef first")


_SUGAR = _Sugar()


def install_sugar(
    apply: Callable[[str, tuple[Node, ...], dict[str, Any] | None], Node],
    as_node: Callable[[Any, Node], Node],
) -> None:
    """Called once by the op registry: Node's operators build nodes with ``apply(name,
    inputs, attrs)``; ``as_node(value, like)`` lifts Python scalars."""
    _SUGAR.apply = apply
    _SUGAR.as_node = as_node


def install_transpose(op: str) -> None:
    """``node.T`` is ``op`` with the axes reversed (declared by the transpose op)."""
    _SUGAR.transpose = op


def install_operator(method: str, op: str, form: str) -> None:
    """Give Node the operator or method ``method`` (``"__add__"``, ``"tanh"``): ``op`` applied to
    the node and the other operand (``form`` "binary"), to the other operand and the node
    ("reflected"), or to the node alone ("unary")."""

    def binary(self: Node, o: Any) -> Node:
        return _SUGAR.apply(op, (self, _SUGAR.as_node(o, self)), None)

    def reflected(self: Node, o: Any) -> Node:
        return _SUGAR.apply(op, (_SUGAR.as_node(o, self), self), None)

    def unary(self: Node) -> Node:
        return _SUGAR.apply(op, (self,), None)

    fn = {"binary": binary, "reflected": reflected, "unary": unary}[form]
    fn.__name__ = fn.__qualname__ = method
    setattr(Node, method, fn)


# the setters of Node's slots: faster than object.__setattr__ by name, and make is on the path
# of every node a trace, a VJP or a pass builds
_set_op = Node.__dict__["op"].__set__
_set_inputs = Node.__dict__["inputs"].__set__
_set_attrs = Node.__dict__["attrs"].__set__
_set_shape = Node.__dict__["shape"].__set__
_set_dtype = Node.__dict__["dtype"].__set__
_set_provenance = Node.__dict__["provenance"].__set__
_make_keyed = Node.make_keyed


def _key(
    op: str,
    inputs: tuple[Node, ...],
    attrs: dict[str, Any],
    shape: Shape,
    dtype: DType,
    provenance: Provenance | None,
) -> tuple[Any, ...]:
    """A node's key in the intern table."""
    akey = attrs_key(attrs)
    # the inputs themselves, not their ids: a Node hashes and compares by identity, and a
    # live node keeps its inputs alive anyway
    key: tuple[Any, ...] = (op, inputs, akey, shape, dtype.name)
    if not inputs and op not in _SHARED_SOURCES and provenance is not None:
        # arange, dimsize: one node per creation site, so that a graph's
        # provenance never points into another, unrelated model that built the same thing
        key += (provenance.file, provenance.line)
    return key


class _Ref(weakref.ref[Node]):
    """A weak reference to an interned node that remembers its table key (what
    ``weakref.WeakValueDictionary`` does with ``KeyedRef``, without its Python-level
    constructor: interning is on the path of every node a trace, a VJP or a pass builds)."""

    __slots__ = ("key",)
    key: tuple[Any, ...]


def _forget(ref: _Ref) -> None:
    """Drop a dead node's entry (unless the key was interned again since)."""
    table = Node._table
    if table.get(ref.key) is ref:
        del table[ref.key]


def live_node_count() -> int:
    """How many nodes the intern table holds (for tests and memory reports)."""
    return len(Node._table)
