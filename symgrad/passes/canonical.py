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
from symgrad.ir.opdef import get_op
from symgrad.passes.rewrite import Rule, rebuild


def structural_keys(graph: Graph) -> Callable[[Node], str]:
    """A function giving each node a digest of its structure (memoised)."""
    keys: dict[int, str] = {id(n): f"in{k}" for k, n in enumerate(graph.inputs)}

    def key(n: Node) -> str:
        k = keys.get(id(n))
        if k is not None:
            return k
        stack = [n]
        while stack:
            top = stack[-1]
            todo = [i for i in top.inputs if id(i) not in keys]
            if todo:
                stack.extend(todo)
                continue
            stack.pop()
            if id(top) in keys:
                continue
            attrs = ",".join(f"{a}={v!r}" for a, v in sorted(top.attrs.items()) if a != "uid")
            text = f"{top.op}[{attrs}]({','.join(keys[id(i)] for i in top.inputs)})"
            keys[id(top)] = hashlib.sha1(text.encode()).hexdigest()[:16]
        return keys[id(n)]

    return key


def commutative_rule(key: Callable[[Node], str]) -> Rule:
    def order(n: Node) -> Node | None:
        if not get_op(n.op).commutative or len(n.inputs) != 2:
            return None
        a, b = n.inputs
        ka = (a.op == "const", key(a))
        kb = (b.op == "const", key(b))
        if kb < ka:
            return rebuild(n, (b, a))
        return None

    return order
