"""The one node type of every symgrad graph: frozen, interned (hash-consed).

Owns: :class:`Node`, :class:`Provenance`, shapes (tuples of ints and symbolic str dims) and the
intern table. Structurally equal nodes are the same object, so equal subexpressions are shared by
construction and node equality is identity. Provenance (the user's file:line) is carried along but
is not part of a node's identity: the first creation site is kept.

May import: the standard library, ``symgrad.ir.dtypes`` and ``symgrad.ir.errors``; the operator
sugar on Node looks ops up in ``symgrad.ir.opdef`` at call time.
"""

from __future__ import annotations

import linecache
import os
import sys
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any, ClassVar

from symgrad.ir.dtypes import DType

Dim = int | str
Shape = tuple[Dim, ...]

_PKG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where in the user's code a node was created; ``via`` says which rule made it (e.g.
    ``"vjp tanh"`` for nodes of a backward pass, which carry their forward node's location)."""

    file: str
    line: int
    function: str
    via: str = ""

    @staticmethod
    def capture(frame: FrameType | None = None) -> Provenance | None:
        """The innermost stack frame outside the symgrad package (None if there is none), or
        the provenance set by :func:`provenance_override`."""
        if _OVERRIDE:
            return _OVERRIDE[-1]
        f: FrameType | None = frame if frame is not None else sys._getframe(1)
        while f is not None:
            fn = f.f_code.co_filename
            if not fn.startswith(_PKG_DIR):
                return Provenance(fn, f.f_lineno, f.f_code.co_name)
            f = f.f_back
        return None

    @property
    def source(self) -> str:
        """The text of the user's line (stripped), or "" when unavailable."""
        return linecache.getline(self.file, self.line).strip()

    @property
    def short(self) -> str:
        return f"{os.path.basename(self.file)}:{self.line}"

    def describe(self) -> str:
        src = self.source
        return f"{self.file}:{self.line}" + (f": {src}" if src else "")


_OVERRIDE: list[Provenance | None] = []
_SHARED_SOURCES = frozenset({"input", "const", "constant"})  # by uid, by value, by content


@contextmanager
def provenance_override(p: Provenance | None) -> Iterator[None]:
    """Attribute every node created inside the block to ``p`` (used for derived nodes)."""
    _OVERRIDE.append(p)
    try:
        yield
    finally:
        _OVERRIDE.pop()


def _freeze_value(v: Any) -> Any:
    # floats are keyed by their exact bits so that 0.0 and -0.0 stay distinct nodes
    if isinstance(v, float):
        return ("f", v.hex())
    if isinstance(v, tuple):
        return tuple(_freeze_value(x) for x in v)
    return v


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

    _table: ClassVar[weakref.WeakValueDictionary[tuple[Any, ...], Node]] = (
        weakref.WeakValueDictionary()
    )

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
        """Return the unique node with these contents (provenance is not part of identity)."""
        if attrs:
            akey: tuple[Any, ...] = tuple((k, _freeze_value(attrs[k])) for k in sorted(attrs))
        else:
            akey = ()
        key: tuple[Any, ...] = (op, tuple(map(id, inputs)), akey, shape, dtype.name)
        if not inputs and op not in _SHARED_SOURCES and provenance is not None:
            # arange, dimsize: one node per creation site, so that a graph's
            # provenance never points into another, unrelated model that built the same thing
            key += (provenance.file, provenance.line)
        node = cls._table.get(key)
        if node is not None:
            return node
        node = object.__new__(cls)
        osa = object.__setattr__
        osa(node, "op", op)
        osa(node, "inputs", inputs)
        osa(node, "attrs", attrs)
        osa(node, "shape", shape)
        osa(node, "dtype", dtype)
        osa(node, "provenance", provenance)
        cls._table[key] = node
        return node

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

    # -- arithmetic sugar, so VJP rules read like maths ------------------------------------
    def _bin(self, name: str, other: Any, reflected: bool = False) -> Node:
        from symgrad.ir.opdef import apply, as_node

        o = as_node(other, like=self)
        return apply(name, (o, self) if reflected else (self, o))

    def __add__(self, o: Any) -> Node:
        return self._bin("add", o)

    def __radd__(self, o: Any) -> Node:
        return self._bin("add", o, True)

    def __sub__(self, o: Any) -> Node:
        return self._bin("sub", o)

    def __rsub__(self, o: Any) -> Node:
        return self._bin("sub", o, True)

    def __mul__(self, o: Any) -> Node:
        return self._bin("mul", o)

    def __rmul__(self, o: Any) -> Node:
        return self._bin("mul", o, True)

    def __truediv__(self, o: Any) -> Node:
        return self._bin("div", o)

    def __rtruediv__(self, o: Any) -> Node:
        return self._bin("div", o, True)

    def __pow__(self, o: Any) -> Node:
        return self._bin("pow", o)

    def __matmul__(self, o: Any) -> Node:
        return self._bin("matmul", o)

    def __neg__(self) -> Node:
        from symgrad.ir.opdef import apply

        return apply("neg", (self,))

    @property
    def T(self) -> Node:
        from symgrad.ir.opdef import apply

        perm = tuple(reversed(range(self.ndim)))
        return apply("transpose", (self,), {"perm": perm})

    def iter_inputs(self) -> Iterator[Node]:
        return iter(self.inputs)


def live_node_count() -> int:
    """How many nodes the intern table holds (for tests and memory reports)."""
    return len(Node._table)
