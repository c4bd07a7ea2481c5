"""Canonical operand order for commutative ops, so ``a·b`` and ``b·a`` become one node.

Owns: a structural key per node (computed bottom-up, independent of ids and creation order:
graph inputs are keyed by position) and the rule that sorts the two operands of commutative ops
by it, constants last (``x * 2.0`` rather than ``2.0 * x``). Hash-consing then merges the
duplicates: that is common-subexpression elimination. May import: ``symgrad.ir``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from symgrad.ir.graph import Graph
from symgrad.ir.node import Node
from symgrad.ir.opdef import Kind, registry
from symgrad.passes.rewrite import OperandOrder, Rule, rebuild


class StructuralKeys:
    """``keys(node)``: a digest of ``node``'s structure, memoised by id (the memo keeps the
    nodes it knows alive, so an id is never reused for another node). Graph inputs are keyed
    by position."""

    def __init__(self, graph: Graph) -> None:
        self.memo: dict[int, str] = {id(n): f"in{k}" for k, n in enumerate(graph.inputs)}
        self._alive: list[Node] = list(graph.inputs)
        self._attrs: dict[int, str] = {}  # id(attrs dict) -> its text (rebuilt nodes share it)

    def __call__(self, n: Node) -> str:
        memo = self.memo
        k = memo.get(id(n))
        if k is not None:
            return k
        try:  # the common case: the inputs are known (nodes are met inputs first)
            args = [memo[id(i)] for i in n.inputs]
        except KeyError:
            self._fill(n)
            return memo[id(n)]
        k = memo[id(n)] = self._digest(n, args)
        self._alive.append(n)
        return k

    def _fill(self, n: Node) -> None:
        """Key ``n`` and every input it needs, inputs first (iterative: deep graphs)."""
        memo = self.memo
        stack = [n]
        while stack:
            top = stack[-1]
            todo = [i for i in top.inputs if id(i) not in memo]
            if todo:
                stack.extend(todo)
                continue
            stack.pop()
            if id(top) not in memo:
                memo[id(top)] = self._digest(top, [memo[id(i)] for i in top.inputs])
                self._alive.append(top)

    def _digest(self, top: Node, args: list[str]) -> str:
        attrs = top.attrs
        if attrs:
            text = self._attrs.get(id(attrs))
            if text is None:
                text = ",".join(f"{a}={v!r}" for a, v in sorted(attrs.items()) if a != "uid")
                self._attrs[id(attrs)] = text
        else:
            text = ""
        return hashlib.sha1(f"{top.op}[{text}]({','.join(args)})".encode()).hexdigest()[:16]


def structural_keys(graph: Graph) -> Callable[[Node], str]:
    """A function giving each node a digest of its structure (memoised)."""
    return StructuralKeys(graph)


class _Order(OperandOrder):
    """Sorts the two operands of commutative nodes by structural key, constants last."""

    def __init__(self, key: Callable[[Node], str]) -> None:
        self.key = key
        self.memo = key.memo if isinstance(key, StructuralKeys) else {}
        self.ops = registry()

    def swaps(self, a: Node, b: Node) -> bool:
        a_const = a.op == "const"
        if a_const != (b.op == "const"):  # constants last
            return a_const
        memo = self.memo
        ka = memo.get(id(a)) or self.key(a)
        kb = memo.get(id(b)) or self.key(b)
        return kb < ka

    def __call__(self, n: Node) -> Node | None:
        ins = n.inputs
        if len(ins) != 2:
            return None
        op = self.ops[n.op]
        if not op.commutative:
            return None
        a, b = ins
        if not self.swaps(a, b):
            return None
        if op.kind is Kind.ELEMENTWISE and a.shape == b.shape and a.dtype is b.dtype:
            # operands of one type swapped: the same shape and dtype (rebuild, without the
            # shape rule: this runs for most nodes of scalar graphs)
            return Node.make(n.op, (b, a), n.attrs, n.shape, n.dtype, n.provenance)
        return rebuild(n, (b, a))


def commutative_rule(key: Callable[[Node], str]) -> Rule:
    """The rule ordering the operands of commutative nodes by ``key`` (an
    :class:`~symgrad.passes.rewrite.OperandOrder`)."""
    return _Order(key)
