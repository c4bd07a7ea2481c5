"""The Program: what every backend printer consumes.

Owns: :class:`Stmt` (``target = <node>`` with its provenance text), :class:`Function` (the
ordered statements of one generated function, its parameters, outputs and in-place results),
:class:`Program` (one or two functions plus the module-level tables), the compacted
statements of a function (:class:`Region`, :class:`Group`, :class:`ElementLoad`; built by
:mod:`symgrad.codegen.compact`) and :func:`describe` (the
provenance text of a statement: op, file:line, the user's source line).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from symgrad.ir.node import Node
from symgrad.ir.opdef import op_label
from symgrad.ops.source import ConstArray


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


@dataclass
class Stmt:
    """``target = <node>``; ``where`` is the provenance text (raw: printers escape it)."""

    target: str
    node: Node
    where: str


@dataclass
class Function:
    name: str
    params: list[tuple[str, Node]]
    dims: list[tuple[str, str, int]]  # (dim variable, parameter, axis)
    stmts: list[Stmt]
    outputs: list[Node]
    n_results: int  # the first n_results outputs are results; the rest are saved values
    # (output index, parameter index): results written into that parameter's array (updated in
    # place: the caller's buffer) after everything else, instead of being returned
    inplace: list[tuple[int, int]] = field(default_factory=list)
    # scalar statements compacted into vector statements (backends.compact), run before
    # stmts[region.at]; None for most functions
    region: Region | None = None

    def returned(self) -> list[int]:
        """Indices of the outputs the function returns (all but the in-place ones)."""
        done = {k for k, _ in self.inplace}
        return [k for k in range(len(self.outputs)) if k not in done]


@dataclass
class Program:
    """Everything a backend prints: one or two functions and the module-level tables."""

    forward: Function
    backward: Function | None
    graph_hash: str
    names: dict[int, str]  # id(node) -> variable name, over both functions
    dim_vars: dict[str, str]  # symbolic dim -> variable name
    consts: list[ConstArray] = field(default_factory=list)
    const_index: dict[int, int] = field(default_factory=dict)  # id(node) -> index in consts
    input_names: list[str] = field(default_factory=list)

    def operand(self, node: Node) -> str:
        """The variable (or constant-table reference) holding ``node``'s value."""
        return self.names[id(node)]


_DESCRIBED: dict[tuple[str, str, int, str, str], str] = {}


def describe(node: Node) -> str:
    """``op  file:line  source text`` (and ``vjp <op>`` for derived nodes)."""
    p = node.provenance
    if p is None:
        return op_label(node.op)
    key = (node.op, p.file, p.line, p.via, p.module)
    text = _DESCRIBED.get(key)
    if text is None:
        if len(_DESCRIBED) > 100_000:
            _DESCRIBED.clear()
        text = _DESCRIBED[key] = _describe(node)
    return text


def _describe(node: Node) -> str:
    p = node.provenance
    assert p is not None
    label = op_label(node.op)
    via = f" ({rule_label(p.via)})" if p.via else ""
    module = f" [{p.module}]" if p.module else ""
    src = p.source
    return f"{label}{via}  {p.short}{module}" + (f"  {src}" if src else "")


def rule_label(via: str) -> str:
    """``vjp tanh`` with the op's printed name (``vjp my_cube`` for a declared op); a
    rewrite's label (``fused softmax-NLL``) as it is."""
    kind, _, of = via.partition(" ")
    return f"{kind} {op_label(of)}" if kind == "vjp" and of else via
