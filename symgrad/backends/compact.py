"""Scalar-graph compaction: thousands of scalar statements become a few vector statements.

Owns: :func:`compact`, which finds the scalar elementwise statements of a scheduled function
(micrograd-style models traced from ``Value`` code: every node a scalar), and when there are
many (:data:`THRESHOLD`) replaces them by a :class:`Region`. A region keeps every value in one
array per dtype (``V``, one slot per value) and groups its statements by *level* (the length of
the longest path from the region's inputs) and op: the statements of one group are independent
of each other, so a group is one vector statement ``V[out] = op(V[a], V[b])`` over index tables.
A 200,000-node scalar graph becomes a few thousand such loops instead of 200,000 lines of
straight-line code; the index tables travel as one int64 array constant (not in the source).
Small scalar graphs (the lecture's neuron) stay straight-line and readable.

Backend-neutral: the NumPy and C printers both print a Region. May import: numpy, ``symgrad.ir``,
``symgrad.ops`` and ``symgrad.backends`` (schedule).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from symgrad.backends.schedule import Function, Program, op_label
from symgrad.ir.node import Node, _freeze_value
from symgrad.ir.opdef import Kind, get_op
from symgrad.ops.source import make_constant

#: The number of scalar elementwise statements from which a function is compacted.
THRESHOLD = 2000


@dataclass
class Group:
    """``count`` statements of one op at one level: ``V[table[out + j]] = op(V[table[ins[0] +
    j]], ...)`` for ``j < count``. ``node`` is one of them (op, attributes, dtypes)."""

    node: Node
    level: int
    count: int
    out: int
    ins: list[int]
    lines: list[tuple[str, int]]  # the commonest model lines of its statements, with counts


@dataclass
class ElementLoad:
    """``count`` elements of ``array`` copied in: ``V[table[at + j]] = array[table[at + count
    + j]]`` (a slot, then a flat offset)."""

    array: Node
    count: int
    at: int


@dataclass
class Region:
    """The compacted statements of a function, run before ``stmts[at]``."""

    at: int
    nodes: list[Node]
    slots: dict[int, int]  # id(node) -> slot in the V array of its dtype
    n_slots: dict[str, int]  # dtype name -> slots of its V array
    loads: list[Node]  # values from outside (parameters, statements): copied in first
    literals: list[Node]  # scalar literals (``const`` nodes)
    stores: list[Node]  # region values needed outside (results, later statements): copied out
    groups: list[Group]
    table: Node  # the int64 index table (an array constant of the program)
    picks: list[ElementLoad]  # elements read straight from arrays (``x[i, j]``)


def _scalar_elementwise(node: Node) -> bool:
    return (
        node.shape == ()
        and get_op(node.op).kind is Kind.ELEMENTWISE
        and all(i.shape == () for i in node.inputs)
    )


def compact(prog: Program, fn: Function, threshold: int = THRESHOLD) -> Region | None:
    """Compact ``fn`` in place (its statements lose the region's) when it has at least
    ``threshold`` scalar elementwise statements whose dependencies allow one region; returns
    the region (also stored as ``fn.region``), or None when ``fn`` is left as it is."""
    members = [s.node for s in fn.stmts if _scalar_elementwise(s.node)]
    if len(members) < max(threshold, 1):
        return None
    inside = {id(n) for n in members}
    stmt_ids = {id(s.node) for s in fn.stmts}
    after: set[int] = set()  # statements that read region values (directly or not)
    for s in fn.stmts:
        n = s.node
        if id(n) in inside:
            if any(id(i) in after for i in n.inputs):
                return None  # a region value needs a later statement: no single region
            continue
        if any(id(i) in inside or id(i) in after for i in n.inputs):
            after.add(id(n))
    level: dict[int, int] = {}
    for n in members:
        level[id(n)] = 1 + max((level.get(id(i), 0) for i in n.inputs), default=0)
    slots: dict[int, int] = {}
    n_slots: Counter[str] = Counter()
    loads: list[Node] = []
    literals: list[Node] = []
    picks: dict[int, list[tuple[int, int]]] = {}  # id(array) -> (slot, flat offset) pairs
    arrays: dict[int, Node] = {}
    picked: set[int] = set()  # the slice/reshape statements replaced by picks

    def slot(n: Node) -> int:
        k = slots.get(id(n))
        if k is None:
            k = slots[id(n)] = n_slots[n.dtype.name]
            n_slots[n.dtype.name] += 1
            if id(n) in inside:
                return k
            pick = _element(n, stmt_ids)
            if pick is not None:  # x[i, j]: read straight from x
                src, offset = pick
                arrays[id(src)] = src
                picks.setdefault(id(src), []).append((k, offset))
                picked.update({id(n), id(n.inputs[0])} if n.op == "reshape" else {id(n)})
            else:
                (literals if n.op == "const" else loads).append(n)
        return k

    by_key: dict[tuple[object, ...], list[Node]] = {}
    for n in members:
        for i in n.inputs:
            slot(i)
        slot(n)
        attrs = tuple((k, _freeze_value(v)) for k, v in sorted(n.attrs.items()))
        dts = tuple(i.dtype.name for i in n.inputs)
        by_key.setdefault((level[id(n)], n.op, attrs, dts, n.dtype.name), []).append(n)
    table: list[int] = []
    groups: list[Group] = []
    element_loads: list[ElementLoad] = []
    for key in sorted(by_key, key=lambda k: (k[0], str(k[1:]))):
        nodes = by_key[key]
        out = len(table)
        table += [slots[id(n)] for n in nodes]
        ins = []
        for j in range(len(nodes[0].inputs)):
            ins.append(len(table))
            table += [slots[id(n.inputs[j])] for n in nodes]
        lines = Counter(_where(n) for n in nodes).most_common(3)
        groups.append(Group(nodes[0], level[id(nodes[0])], len(nodes), out, ins, lines))
    for src_id, pairs in picks.items():
        start = len(table)
        table += [k for k, _ in pairs] + [off for _, off in pairs]
        element_loads.append(ElementLoad(arrays[src_id], len(pairs), start))
    later = [s for s in fn.stmts if id(s.node) in after]
    needed = {id(i) for s in later for i in s.node.inputs} | {id(o) for o in fn.outputs}
    stores = [n for n in members if id(n) in needed]
    # the picked elements' slice/reshape statements go when nothing that stays reads them (a
    # kept reshape keeps its slice)
    dropped = set(picked)
    while True:
        kept = [s for s in fn.stmts if id(s.node) not in inside and id(s.node) not in dropped]
        read = {id(i) for s in kept for i in s.node.inputs} | {id(o) for o in fn.outputs}
        if not dropped & read:
            break
        dropped -= read
    table_node = _constant(prog, np.asarray(table, dtype=np.int64))
    pre = [
        s
        for s in fn.stmts
        if id(s.node) not in inside and id(s.node) not in after and id(s.node) not in dropped
    ]
    fn.stmts = pre + later
    region = Region(
        at=len(pre),
        nodes=members,
        slots=slots,
        n_slots=dict(n_slots),
        loads=loads,
        literals=literals,
        stores=stores,
        groups=groups,
        table=table_node,
        picks=element_loads,
    )
    fn.region = region
    return region


def _element(node: Node, stmts: set[int]) -> tuple[Node, int] | None:
    """``(x, flat offset)`` when ``node`` is one element of ``x`` picked with static indices
    (``x[i, j]`` traces to a slice, usually reshaped to a scalar) by statements of this
    function (``stmts``: ids; a parameter that happens to be such an element is not), else
    None."""
    sl = node.inputs[0] if node.op == "reshape" and node.inputs else node
    if id(node) not in stmts or id(sl) not in stmts:
        return None
    if sl.op != "slice" or sl.shape.count(1) != len(sl.shape):
        return None
    x = sl.inputs[0]
    if not all(isinstance(d, int) for d in x.shape):
        return None
    offset, stride = 0, 1
    for d, (start, _, _) in reversed(list(zip(x.shape, sl.attrs["index"], strict=True))):
        if not isinstance(start, int):
            return None
        offset += start * stride
        stride *= int(d)
    return x, offset


_WHERE: dict[tuple[str, str, int, str], str] = {}


def _where(node: Node) -> str:
    p = node.provenance
    if p is None:
        return op_label(node.op)
    key = (node.op, p.file, p.line, p.via)
    text = _WHERE.get(key)
    if text is None:
        kind, _, of = p.via.partition(" ")
        via = f" ({kind} {op_label(of)})" if of else ""
        text = _WHERE[key] = f"{p.short}{via}"
    return text


def _constant(prog: Program, array: np.ndarray) -> Node:
    node = make_constant(array)
    if id(node) not in prog.const_index:
        k = len(prog.consts)
        prog.consts.append(node.attrs["value"])
        prog.const_index[id(node)] = k
        prog.names[id(node)] = f"_C[{k}]"
    return node


def describe(group: Group) -> str:
    """The comment of a group: op, count, level and the model lines it comes from."""
    label = op_label(group.node.op)
    lines = ", ".join(f"{w} ×{c}" if c > 1 else w for w, c in group.lines)
    more = sum(c for _, c in group.lines)
    rest = f", ... ×{group.count - more}" if group.count > more else ""
    return f"level {group.level}: {label} ×{group.count}  {lines}{rest}"
