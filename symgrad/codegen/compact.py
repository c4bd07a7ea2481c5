"""Scalar-graph compaction: thousands of scalar statements become a few vector statements.

Owns: :func:`compact`, which finds the scalar elementwise statements of a scheduled function
(micrograd-style models traced from ``Value`` code: every node a scalar), and when there are
many (:data:`THRESHOLD`) replaces them by a :class:`~symgrad.codegen.program.Region`. A region
keeps every value in one array per dtype (``V``, one slot per value) and groups its statements
by *level* (the length of the longest path from the region's inputs) and op: the statements of
one group are independent of each other, so a group is one vector statement ``V[out] = op(V[a],
V[b])`` over index tables. A 200,000-node scalar graph becomes a few thousand such loops instead
of 200,000 lines of straight-line code; the index tables travel as one int64 array constant (not
in the source). Small scalar graphs (the lecture's neuron) stay straight-line and readable.

Backend-neutral: the NumPy and C printers both print a Region.
"""

from __future__ import annotations

from collections import Counter
from operator import attrgetter

import numpy as np

from symgrad.codegen.program import ElementLoad, Function, Group, Program, Region, Stmt
from symgrad.ir.node import Node, _freeze_value
from symgrad.ir.opdef import Kind, get_op, op_label
from symgrad.ir.provenance import Provenance
from symgrad.ops.movement import element_of
from symgrad.ops.source import make_constant

#: The number of scalar elementwise statements from which a function is compacted.
THRESHOLD = 2000


class _Slots:
    """The slots of a region's values (one counter per dtype) and where the values computed
    outside it come from: literals, loads (parameters, earlier statements) or picks (``x[i,
    j]`` read straight from ``x``). Keyed by the nodes themselves (they hash by identity: no
    ``id()`` per lookup in the loop over every statement)."""

    def __init__(self, stmt_nodes: set[Node]) -> None:
        self.stmt_nodes = stmt_nodes  # the function's statements (those before the region)
        self.slots: dict[Node, int] = {}  # node -> slot in the V array of its dtype
        self.n_slots: dict[str, int] = {}
        self.loads: list[Node] = []
        self.literals: list[Node] = []
        self.picks: dict[int, list[tuple[int, int]]] = {}  # id(array) -> (slot, flat offset)
        self.arrays: dict[int, Node] = {}
        self.picked: set[int] = set()  # the slice/reshape statements replaced by picks

    def outside(self, n: Node) -> int:
        """The slot of ``n``, a value the region reads from outside (new: not slotted yet)."""
        k = self.slots[n] = self.n_slots.get(n.dtype.name, 0)
        self.n_slots[n.dtype.name] = k + 1
        pick = _element(n, self.stmt_nodes)
        if pick is not None:  # x[i, j]: read straight from x
            src, offset, chain = pick
            self.arrays[id(src)] = src
            self.picks.setdefault(id(src), []).append((k, offset))
            self.picked.update(id(c) for c in chain)
        else:
            (self.literals if n.op == "const" else self.loads).append(n)
        return k


def compact(prog: Program, fn: Function, threshold: int = THRESHOLD) -> Region | None:
    """Compact ``fn`` in place (its statements lose the region's) when it has at least
    ``threshold`` scalar elementwise statements whose dependencies allow one region; returns
    the region (also stored as ``fn.region``), or None when ``fn`` is left as it is."""
    # One pass over the statements (in order: inputs first) finds the members (scalar results
    # of scalar inputs), their levels, the statements that must run after the region (they
    # read its values, directly or not), gives every value a slot and groups the members.
    # (the dicts and sets are keyed by the nodes themselves, which hash by identity)
    outside: list[Stmt] = []  # the other statements
    outside_nodes: set[Node] = set()  # (what _element needs to know: only inputs are asked)
    elementwise: dict[str, bool] = {}  # op kinds, looked up once per op
    members: list[Node] = []
    after: set[Node] = set()
    level: dict[Node, int] = {}  # member -> 1 + the deepest level among its inputs
    vals = _Slots(outside_nodes)
    slots, n_slots = vals.slots, vals.n_slots
    # (level, op, attrs, input dtypes, dtype) -> (members, their slots, their inputs' slots)
    by_key: dict[tuple[object, ...], tuple[list[Node], list[int], list[list[int]]]] = {}
    attr_keys: dict[int, tuple[object, ...]] = {}  # id(attrs dict) -> its frozen items
    level_of, slot_of = level.get, slots.get
    new_slot = vals.outside
    for s in fn.stmts:  # (the loop of large graphs: kept short)
        n = s.node
        ins = n.inputs
        member = False
        if n.shape == ():
            ew = elementwise.get(n.op)
            if ew is None:
                ew = elementwise[n.op] = get_op(n.op).kind is Kind.ELEMENTWISE
            if ew:
                member = True
                for i in ins:
                    if i.shape != ():
                        member = False
                        break
        if not member:
            outside.append(s)
            outside_nodes.add(n)
            for i in ins:
                if i in level or i in after:
                    after.add(n)
                    break
            continue
        deepest = 0
        if len(ins) == 2:
            a, b = ins
            da, db = level_of(a), level_of(b)
            if da is None:
                if a in after:
                    return None  # a region value needs a later statement: no single region
            elif da > deepest:
                deepest = da
            if db is None:
                if b in after:
                    return None
            elif db > deepest:
                deepest = db
            sa = slot_of(a)
            ka = sa if sa is not None else new_slot(a)
            sb = slot_of(b)
            kb = sb if sb is not None else new_slot(b)
            dts: tuple[str, ...] = (a.dtype.name, b.dtype.name)
        else:
            in_slots: list[int] = []
            for i in ins:
                d = level_of(i)
                if d is None:
                    if i in after:
                        return None
                elif d > deepest:
                    deepest = d
                k = slot_of(i)
                in_slots.append(k if k is not None else new_slot(i))
            dts = tuple([i.dtype.name for i in ins])
        level[n] = deepest + 1
        members.append(n)
        dt = n.dtype.name
        k = slots[n] = n_slots.get(dt, 0)
        n_slots[dt] = k + 1
        attrs = n.attrs
        akey: tuple[object, ...] = ()
        if attrs:
            akey = attr_keys.get(id(attrs)) or ()
            if not akey:
                akey = attr_keys[id(attrs)] = tuple(
                    (a, _freeze_value(v)) for a, v in sorted(attrs.items())
                )
        gkey = (deepest + 1, n.op, akey, dts, dt)
        group = by_key.get(gkey)
        if group is None:
            group = by_key[gkey] = ([], [], [[] for _ in ins])
        group[0].append(n)
        group[1].append(k)
        if len(ins) == 2:
            first, second = group[2]
            first.append(ka)
            second.append(kb)
        else:
            for lst, k in zip(group[2], in_slots, strict=True):
                lst.append(k)
    if len(members) < max(threshold, 1):
        return None
    table: list[int] = []
    groups: list[Group] = []
    element_loads: list[ElementLoad] = []
    where = _Where()
    for key in sorted(by_key, key=lambda k: (k[0], str(k[1:]))):
        nodes, outs, in_lists = by_key[key]
        out = len(table)
        table += outs
        positions = []
        for lst in in_lists:
            positions.append(len(table))
            table += lst
        lines = where(nodes)
        groups.append(Group(nodes[0], level[nodes[0]], len(nodes), out, positions, lines))
    for src_id, pairs in vals.picks.items():
        start = len(table)
        table += [k for k, _ in pairs] + [off for _, off in pairs]
        element_loads.append(ElementLoad(vals.arrays[src_id], len(pairs), start))
    later = [s for s in outside if s.node in after]
    needed = {i for s in later for i in s.node.inputs} | set(fn.outputs)
    stores = [n for n in members if n in needed]
    # the picked elements' slice/reshape statements go when nothing that stays reads them (a
    # kept reshape keeps its slice)
    dropped = set(vals.picked)
    while True:
        kept = [s for s in outside if id(s.node) not in dropped]
        read = {id(i) for s in kept for i in s.node.inputs} | {id(o) for o in fn.outputs}
        if not dropped & read:
            break
        dropped -= read
    table_node = _constant(prog, np.asarray(table, dtype=np.int64))
    pre = [s for s in outside if s.node not in after and id(s.node) not in dropped]
    fn.stmts = pre + later
    region = Region(
        at=len(pre),
        nodes=members,
        slots=dict(zip(map(id, slots), slots.values(), strict=True)),
        n_slots=dict(n_slots),
        loads=vals.loads,
        literals=vals.literals,
        stores=stores,
        groups=groups,
        table=table_node,
        picks=element_loads,
    )
    fn.region = region
    return region


def _element(node: Node, stmts: set[Node]) -> tuple[Node, int, tuple[Node, ...]] | None:
    """``(x, flat offset, statements)`` when ``node`` is one element of ``x`` picked with
    static indices (:func:`symgrad.ops.movement.element_of`) by statements of this function
    (``stmts``; a parameter that happens to be such an element is not), else None."""
    found = element_of(node)
    if found is None or not all(n in stmts for n in found[2]):
        return None
    return found


class _Where:
    """``where(nodes)``: the three commonest ``file:line (rule)`` texts of a group's statements,
    with counts, for its comment. Counted per provenance object first (a group holds thousands
    of statements of a few model lines; the nodes, and so their provenance objects, outlive
    this), then merged by text, in order of first appearance."""

    def __init__(self) -> None:
        self._memo: dict[tuple[int, str], str] = {}

    def __call__(self, nodes: list[Node]) -> list[tuple[str, int]]:
        provs = list(map(_provenance, nodes))
        first = dict(zip(map(id, provs), provs, strict=True))
        texts: Counter[str] = Counter()
        for pid, count in Counter(map(id, provs)).items():
            texts[self.text(first[pid], nodes[0].op)] += count
        return texts.most_common(3)

    def text(self, p: Provenance | None, op: str) -> str:
        if p is None:
            return op_label(op)
        text = self._memo.get((id(p), op))
        if text is None:
            kind, _, of = p.via.partition(" ")
            via = f" ({kind} {op_label(of)})" if of else ""
            text = self._memo[id(p), op] = f"{p.short}{via}"
        return text


_inputs = attrgetter("inputs")
_provenance = attrgetter("provenance")


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
