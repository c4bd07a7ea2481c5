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
    """``keys(node)``: an integer digest of ``node``'s structure, memoised by node (the memo
    keeps the nodes it knows alive). Graph inputs are keyed by position.

    A key is Python's ``hash`` of a tuple of ints (the op's and the attributes' codes, then the
    inputs' keys): int and tuple hashing do not depend on the process (unlike str hashing, which
    ``PYTHONHASHSEED`` salts), and the codes of op names and attribute texts are blake2b digests,
    memoised. So keys are independent of ids, creation order and the process (a collision only
    leaves one pair of operands unordered)."""

    def __init__(self, graph: Graph) -> None:
        # (keyed by the nodes themselves, which hash by identity: no id() per lookup)
        self.memo: dict[Node, int] = {n: hash((_INPUT, k)) for k, n in enumerate(graph.inputs)}
        self._attrs: dict[int, int] = {}  # id(attrs dict) -> its code (rebuilt nodes share it)

    def __call__(self, n: Node) -> int:
        memo = self.memo
        k = memo.get(n)
        if k is not None:
            return k
        ins = n.inputs
        attrs = n.attrs
        code = _OP_CODES.get(n.op) or _op_code(n.op)
        acode = (self._attrs.get(id(attrs)) or self._attr_code(attrs)) if attrs else 0
        try:  # the common case: the inputs are known (nodes are met inputs first)
            if len(ins) == 2:
                a, b = ins
                k = hash((code, acode, memo[a], memo[b]))
            else:
                k = hash((code, acode, *[memo[i] for i in ins]))
        except KeyError:
            self._fill(n)
            return memo[n]
        memo[n] = k
        return k

    def _fill(self, n: Node) -> None:
        """Key ``n`` and every input it needs, inputs first (iterative: deep graphs)."""
        memo = self.memo
        stack = [n]
        while stack:
            top = stack[-1]
            todo = [i for i in top.inputs if i not in memo]
            if todo:
                stack.extend(todo)
                continue
            stack.pop()
            if top not in memo:
                self(top)

    def _attr_code(self, attrs: dict[str, object]) -> int:
        text = ",".join(f"{a}={v!r}" for a, v in sorted(attrs.items()) if a != "uid")
        code = self._attrs[id(attrs)] = _text_code(text) or 1
        return code


_INPUT = -1  # the op code of graph inputs (keyed by position)
_OP_CODES: dict[str, int] = {}


def _text_code(text: str) -> int:
    """A deterministic 63-bit code of ``text`` (not ``hash(text)``: that depends on the
    process)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big") >> 1


def _op_code(op: str) -> int:
    code = _OP_CODES[op] = _text_code(op) or 1
    return code


def structural_keys(graph: Graph) -> Callable[[Node], int]:
    """A function giving each node an integer digest of its structure (memoised)."""
    return StructuralKeys(graph)


class _Order(OperandOrder):
    """Sorts the two operands of commutative nodes by structural key, constants last."""

    def __init__(self, key: Callable[[Node], int]) -> None:
        self.key = key
        self.memo = key.memo if isinstance(key, StructuralKeys) else {}
        self.ops = registry()

    def swaps(self, a: Node, b: Node) -> bool:
        a_const = a.op == "const"
        if a_const != (b.op == "const"):  # constants last
            return a_const
        memo = self.memo
        ka = memo.get(a)
        if ka is None:
            ka = self.key(a)
        kb = memo.get(b)
        if kb is None:
            kb = self.key(b)
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


def commutative_rule(key: Callable[[Node], int]) -> Rule:
    """The rule ordering the operands of commutative nodes by ``key`` (an
    :class:`~symgrad.passes.rewrite.OperandOrder`)."""
    return _Order(key)


#: graphs up to this many nodes get their operands back in the user's order (larger ones are
#: scalar graphs printed as compacted regions, where the order is not read)
USER_ORDER_LIMIT = 50_000


def user_order(
    original: Graph, optimized: Graph, total: dict[int, Node]
) -> tuple[Graph, dict[Node, Node]]:
    """``optimized`` with the two operands of each commutative node in the order the user wrote
    them: canonical order is for hashing (it merges ``a·b`` and ``b·a``), the printed code keeps
    ``x @ W + b`` and ``w1 * x1``. ``total`` maps ``id(node of original)`` to its replacement in
    ``optimized``; a node made from several user nodes takes the order of the first (in
    topological order: forward before backward). Values are unchanged (these ops commute
    exactly). Returns the graph and ``node of optimized -> node of the result``."""
    ops = registry()
    swap: dict[Node, bool] = {}
    get = total.get
    for o in original.order:
        ins = o.inputs
        if len(ins) != 2 or not ops[o.op].commutative:
            continue
        new = get(id(o))
        if new is None or new.op != o.op or len(new.inputs) != 2 or new in swap:
            continue
        a, b = new.inputs
        ma, mb = get(id(ins[0])), get(id(ins[1]))
        if ma is b and mb is a and a is not b:
            swap[new] = True
        elif ma is a and mb is b:
            swap[new] = False
    out: dict[Node, Node] = {}
    changed = False
    for n in optimized.order:
        if not n.inputs:
            out[n] = n
            continue
        new_ins = [out[i] for i in n.inputs]
        if swap.get(n):
            new_ins.reverse()
        m = rebuild(n, new_ins)
        if m is not n:
            changed = True
        out[n] = m
    if not changed:
        return optimized, out
    return Graph(optimized.inputs, [out[o] for o in optimized.outputs], optimized.input_names), out
