"""A graph is a tuple of input nodes and a tuple of output nodes; everything between is implied.

Owns: :class:`Graph` (iterative topological order, use counts, content hash, the jaxpr-like text
form via ``str(graph)``), the reference interpreter :func:`evaluate`, the NumPy node-by-node
oracle for every backend, and the memory limit (:func:`check_memory`): no array that would need
more bytes than the machine has is allocated -- specs, constants and every value the interpreter
computes are checked first. May import: numpy, the standard library and the rest of
``symgrad.ir``.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import math
import os
from collections.abc import Container, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from symgrad.ir.errors import ArgumentError, ShapeError, TraceError
from symgrad.ir.node import Node
from symgrad.ir.opdef import EvalContext, get_op, resolve_shape
from symgrad.ir.provenance import Provenance

FORMAT_VERSION = 1


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector inside the block (restored after it).

    Compiling a graph traced from scalar code allocates millions of objects (nodes, tuples,
    dicts) that reference counting frees -- graphs are acyclic -- and each of the collector's
    passes walks all of them: about a fifth of such a compile. After the block, the objects
    allocated since the last collection go straight to the oldest generation (what a compile
    keeps lives as long as its compiled function), so that the next young collection does not
    walk them all at once; every object stays collectable. (Not when the program has frozen
    objects itself: ``gc.freeze`` is the program's to use.)
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if gc.get_freeze_count() == 0:
            gc.freeze()  # the young generations -> the permanent one
            gc.unfreeze()  # -> the oldest generation
        if was_enabled:
            gc.enable()


def toposort(outputs: Iterable[Node], stop: Container[Node] = ()) -> list[Node]:
    """Every node reachable from ``outputs``, inputs before users (iterative: no recursion).

    Nodes in ``stop`` are listed but their inputs are not followed. The order is that of a
    depth-first walk visiting each node's inputs in order (a node after all its inputs).
    """
    order: list[Node] = []
    # nodes themselves, not their ids: a Node hashes and compares by identity (in C, without
    # the int objects id() makes), and this walk visits every node of large graphs
    seen: set[Node] = set()
    add = seen.add
    emit = order.append
    for root in outputs:
        if root in seen:
            continue
        add(root)
        if not root.inputs or root in stop:
            emit(root)
            continue
        # (node, iterator over its inputs not yet looked at); leaves are emitted at once
        stack: list[tuple[Node, Iterator[Node]]] = [(root, iter(root.inputs))]
        push, pop = stack.append, stack.pop
        while stack:
            node, pending = stack[-1]
            for child in pending:
                if child not in seen:
                    add(child)
                    if child.inputs and child not in stop:
                        push((child, iter(child.inputs)))
                        break
                    emit(child)
            else:
                pop()
                emit(node)
    return order


def _fmt_attr(v: Any) -> str:
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, tuple):
        return "(" + ", ".join(_fmt_attr(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    return str(v)


def type_str(node: Node) -> str:
    return f"{node.dtype.short}[{','.join(str(d) for d in node.shape)}]"


@functools.cache
def machine_memory() -> int:
    """The machine's physical memory in bytes (1 TiB when the platform does not say)."""
    try:
        n = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        n = -1
    return int(n) if n > 0 else 1 << 40


def _bytes_text(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def check_memory(
    shape: Sequence[Any], itemsize: int, what: str, provenance: Provenance | None = None
) -> None:
    """Raise :class:`ShapeError` before allocating when an array of ``shape`` (symbolic dims
    counted as 1) with elements of ``itemsize`` bytes would need more than the machine's
    memory; the message says what was expected and what was given."""
    count = math.prod(d for d in shape if d.__class__ is not str)
    limit = machine_memory()
    if count * itemsize <= limit:
        return
    raise ShapeError(
        f"{what}: shape {_fmt_dims(shape)} needs {_bytes_text(count * itemsize)} "
        f"({count} elements of {itemsize} bytes), more than this machine's memory "
        f"({_bytes_text(limit)}); expected at most {limit // itemsize} elements, got {count}",
        provenance,
    )


class Graph:
    """Inputs (in parameter order) and outputs; immutable.

    Inputs are usually ``input`` nodes, but any node can be an input: the graph is then the
    region between them and the outputs (a backward pass takes the forward values it saved).
    """

    __slots__ = ("_hash", "_order", "input_names", "inputs", "outputs")

    def __init__(
        self,
        inputs: Sequence[Node],
        outputs: Sequence[Node],
        input_names: Sequence[str] | None = None,
    ) -> None:
        self.inputs: tuple[Node, ...] = tuple(inputs)
        self.outputs: tuple[Node, ...] = tuple(outputs)
        names = list(input_names) if input_names is not None else []
        if not names:
            names = [n.attrs.get("name") or f"in{i}" for i, n in enumerate(self.inputs)]
        self.input_names: tuple[str, ...] = tuple(names)
        self._order: list[Node] | None = None
        self._hash: str | None = None
        known = {id(n) for n in self.inputs}
        for n in self.order:
            if n.op == "input" and id(n) not in known:
                raise TraceError(
                    f"graph uses an input that is not among its inputs: {n.attrs.get('name')!r}"
                )

    @classmethod
    def known(
        cls,
        inputs: Sequence[Node],
        outputs: Sequence[Node],
        input_names: Sequence[str],
        like: Graph,
    ) -> Graph:
        """A graph with ``like``'s inputs and outputs (the same node objects) under new names
        (the rewrite engine, when nothing changed): its order is ``like``'s, not walked again."""
        if tuple(inputs) != like.inputs or tuple(outputs) != like.outputs:
            raise ValueError("Graph.known: the inputs or outputs differ from the known graph")
        graph = cls.__new__(cls)
        graph.inputs = like.inputs
        graph.outputs = like.outputs
        graph.input_names = tuple(input_names)
        graph._order = like.order
        graph._hash = like._hash
        return graph

    @property
    def order(self) -> list[Node]:
        """All nodes in topological order (inputs first, in parameter order)."""
        if self._order is None:
            boundary = set(self.inputs)
            body = toposort(self.outputs, stop=boundary)
            self._order = list(self.inputs) + [n for n in body if n not in boundary]
        return self._order

    def __len__(self) -> int:
        return len(self.order)

    def names(self) -> dict[int, str]:
        """Deterministic display names: inputs by name, other nodes %0, %1, ... in order."""
        out: dict[int, str] = {}
        for n, nm in zip(self.inputs, self.input_names, strict=True):
            out[id(n)] = nm
        k = 0
        for n in self.order:
            if id(n) in out or n.op == "const":
                continue
            out[id(n)] = f"%{k}"
            k += 1
        return out

    def _operand(self, n: Node, names: dict[int, str]) -> str:
        if n.op == "const":
            return f"{_fmt_attr(n.attrs['value'])}:{n.dtype.short}"
        return names[id(n)]

    def text(self, provenance: bool = True) -> str:
        """The typed text form, one line per node (``str(graph)`` is this with provenance)."""
        names = self.names()
        params = ", ".join(f"{names[id(n)]}: {type_str(n)}" for n in self.inputs)
        outs = ", ".join(type_str(n) for n in self.outputs)
        lines = [f"graph({params}) -> ({outs}{',' if len(self.outputs) == 1 else ''}) {{"]
        body: list[tuple[str, str]] = []
        boundary = set(self.inputs)
        for n in self.order:
            if n in boundary or n.op == "const":
                continue
            attrs = ""
            shown = {k: v for k, v in n.attrs.items() if k not in ("uid",)}
            if shown:
                attrs = (
                    "[" + ", ".join(f"{k}={_fmt_attr(v)}" for k, v in sorted(shown.items())) + "]"
                )
            args = " ".join(self._operand(i, names) for i in n.inputs)
            stmt = f"  {names[id(n)]}: {type_str(n)} = {n.op}{attrs}" + (f" {args}" if args else "")
            where = ""
            if provenance and n.provenance:
                via = n.provenance.via
                where = n.provenance.short + (f" ({via})" if via else "")
            body.append((stmt, where))
        width = max((len(s) for s, _ in body), default=0)
        for stmt, where in body:
            lines.append(f"{stmt.ljust(width)}  # {where}" if where else stmt)
        rets = ", ".join(self._operand(o, names) for o in self.outputs)
        lines.append(f"  return {rets}")
        lines.append("}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text(provenance=True)

    def __repr__(self) -> str:
        return f"<Graph {len(self.inputs)} inputs, {len(self.outputs)} outputs, {len(self)} nodes>"

    @property
    def content_hash(self) -> str:
        """sha256 of the structure: independent of object ids, creation order and provenance.

        Inputs are identified by position (and dtype/shape), not by name or identity.
        """
        if self._hash is None:
            self._hash = self._content_hash()
        return self._hash

    def _content_hash(self) -> str:
        # (every node of large graphs: the dicts are keyed by the nodes themselves, which hash
        # by identity, and the text of each line's op and type is memoised)
        h = hashlib.sha256(f"symgrad-graph-v{FORMAT_VERSION}\n".encode())
        order = self.order
        # a node's position (the last, for an input listed twice: as the loop below had it)
        idx = dict(zip(order, map(str, range(len(order))), strict=True))
        pos = {n: i for i, n in enumerate(self.inputs)}
        tails: dict[tuple[Any, ...], str] = {}  # (shape, dtype) -> "):<type>\n"
        heads: dict[Any, str] = {}  # op, or (op, id(attrs dict)) -> "<op>[<attrs>]("
        lines: list[str] = []
        emit = lines.append
        for n in order:
            attrs = n.attrs
            if attrs:
                p = pos.get(n)
                if p is not None:
                    emit(f"input {p}:{type_str(n)}\n")
                    continue
                hkey: Any = (n.op, id(attrs))  # (attrs dicts are shared by rebuilt nodes)
                head = heads.get(hkey)
                if head is None:
                    shown = {a: v for a, v in attrs.items() if a != "uid"}
                    items = ",".join(f"{a}={_hash_attr(v)}" for a, v in sorted(shown.items()))
                    head = heads[hkey] = f"{n.op}[{items}]("
            else:
                if n in pos:
                    emit(f"input {pos[n]}:{type_str(n)}\n")
                    continue
                head = heads.get(n.op)
                if head is None:
                    head = heads[n.op] = f"{n.op}[]("
            tkey = (n.shape, n.dtype.name)  # (a DType hashes in Python)
            tail = tails.get(tkey)
            if tail is None:
                tail = tails[tkey] = f"):{type_str(n)}\n"
            ins = n.inputs
            if len(ins) == 2:
                a, b = ins
                emit(head + idx[a] + "," + idx[b] + tail)
            elif len(ins) == 1:
                emit(head + idx[ins[0]] + tail)
            else:
                emit(head + ",".join([idx[i] for i in ins]) + tail)
        h.update("".join(lines).encode())
        h.update(("out " + ",".join(idx[o] for o in self.outputs)).encode())
        return h.hexdigest()


def _hash_attr(v: Any) -> str:
    if isinstance(v, float):
        return v.hex()
    if isinstance(v, tuple):
        return "(" + ",".join(_hash_attr(x) for x in v) + ")"
    if hasattr(v, "digest"):
        return str(v.digest)
    return repr(v)


# -- the reference interpreter ---------------------------------------------------------------
def bind_dims(
    nodes: Sequence[Node], arrays: Sequence[Any], names: Sequence[str] | None = None
) -> dict[str, int]:
    """Bind symbolic dims from concrete arrays, checking rank, static dims and consistency."""
    dims: dict[str, int] = {}
    where: dict[str, str] = {}
    for k, (n, a) in enumerate(zip(nodes, arrays, strict=True)):
        shp = np.shape(a)
        want = n.shape
        if len(shp) != len(want):
            _shape_error(n, k, names, shp)
        for d, s in zip(want, shp, strict=True):
            if d.__class__ is str:
                if d in dims:
                    if dims[d] != s:
                        nm = names[k] if names is not None else _name(n, k)
                        raise ArgumentError(
                            f"{nm}: symbolic dim {d!r} is {s} here but {dims[d]} in {where[d]} "
                            f"(expected shape {_fmt_dims(want)}, got {tuple(shp)})"
                        )
                else:
                    dims[d] = s
                    where[d] = names[k] if names is not None else _name(n, k)
            elif d != s:
                _shape_error(n, k, names, shp)
    return dims


def _name(n: Node, k: int) -> str:
    return str(n.attrs.get("name") or f"input {k}")


def _fmt_dims(shape: Sequence[Any]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _shape_error(n: Node, k: int, names: Sequence[str] | None, shp: tuple[int, ...]) -> None:
    nm = names[k] if names is not None else _name(n, k)
    raise ArgumentError(f"{nm}: expected shape {_fmt_dims(n.shape)}, got {tuple(shp)}")


def evaluate(
    outputs: Sequence[Node],
    env: Mapping[Node, Any],
    dims: Mapping[str, int] | None = None,
    keep: bool = False,
) -> list[Any] | dict[Node, Any]:
    """Evaluate ``outputs`` node by node with NumPy, given values for the leaf nodes in ``env``.

    Symbolic dims are bound from the shapes of the ``input`` values unless ``dims`` is given.
    Intermediate values are freed after their last use unless ``keep`` (then a dict of every
    node's value is returned instead of the list of outputs).
    """
    order = toposort(outputs, stop=env)
    vals: dict[Node, Any] = dict(env)
    if dims is None:
        ins = [n for n in order if n.op == "input"]
        missing = [n for n in ins if n not in vals]
        if missing:
            raise TraceError(
                "no value given for input(s) "
                + ", ".join(repr(n.attrs.get("name") or "?") for n in missing)
            )
        dims = bind_dims(ins, [vals[n] for n in ins])
    uses: dict[Node, int] = {}
    if not keep:
        for n in order:
            for i in n.inputs:
                uses[i] = uses.get(i, 0) + 1
        for o in outputs:
            uses[o] = uses.get(o, 0) + 1
    for n in order:
        if n in vals:
            continue
        op = get_op(n.op)
        shape = resolve_shape(n.shape, dims)
        npdt = n.dtype.np
        if math.prod(shape) * npdt.itemsize > machine_memory():  # before allocating it
            check_memory(shape, npdt.itemsize, f"{n.op} ({type_str(n)})", n.provenance)
        ctx = EvalContext(n.attrs, shape, npdt, dims)
        val = op.eval(ctx, *(vals[i] for i in n.inputs))
        val = np.asarray(val)
        if val.dtype != npdt:
            val = val.astype(npdt)
        if val.shape != shape:
            raise AssertionError(
                f"op {n.op!r} evaluated to shape {val.shape}, its shape rule says {shape}"
            )
        vals[n] = val
        if not keep:
            for i in n.inputs:
                uses[i] -= 1
                if uses[i] == 0 and i not in env:
                    del vals[i]
    if keep:
        return vals
    return [vals[o] for o in outputs]
