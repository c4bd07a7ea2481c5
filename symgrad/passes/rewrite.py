"""The rewrite engine: rebuild a graph bottom-up, applying rules to every node until none fires.

Owns: :func:`rewrite` (Graph → Graph) and :func:`rebuild` (re-create a node over new inputs,
keeping its provenance). A rule is ``(node) -> Node | None``; rules are looked up by op name,
so each pass is a table. Dead code disappears by construction: only what the outputs reach is
rebuilt. May import: ``symgrad.ir`` and ``symgrad.ops``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from symgrad.ir.graph import Graph
from symgrad.ir.node import _OVERRIDE, Node
from symgrad.ir.opdef import get_op

Rule = Callable[[Node], Node | None]
MAX_ROUNDS = 16  # rules make nodes smaller, so a node settles in a few rounds


def rebuild(node: Node, inputs: Sequence[Node]) -> Node:
    """``node`` over ``inputs`` (the same node when they did not change)."""
    for a, b in zip(node.inputs, inputs, strict=True):
        if a is not b:
            break
    else:
        return node
    ins = tuple(inputs)
    shape, dtype = get_op(node.op).infer(ins, node.attrs)
    return Node.make(node.op, ins, node.attrs, shape, dtype, node.provenance)


def rewrite(
    graph: Graph,
    rules: Mapping[str, Sequence[Rule]],
    mapping: dict[int, Node] | None = None,
    settled: set[int] | None = None,
) -> Graph:
    """Apply ``rules`` everywhere in ``graph``; the result computes the same outputs.

    ``mapping``, when given, receives ``id(old node) -> new node`` for every node of ``graph``.
    ``settled`` (ids) names nodes already rewritten to a fixpoint by an earlier pass with the
    same rules: while their inputs are unchanged they are kept without trying the rules again
    (rules only look at a node and its inputs), which makes a confirming pass over a large
    graph cheap.
    """
    new: dict[int, Node] = {} if mapping is None else mapping
    keep = set(graph.inputs)
    for node in graph.order:
        if node in keep:
            new[id(node)] = node
            continue
        ins = [new[id(i)] for i in node.inputs]
        if settled is not None and id(node) in settled:
            for a, b in zip(node.inputs, ins, strict=True):
                if a is not b:
                    break
            else:
                new[id(node)] = node
                continue
        cur = rebuild(node, ins)
        for _ in range(MAX_ROUNDS):
            out = None
            # what a rule builds stems from node (provenance_override, without a context
            # manager: this loop visits every node of large graphs several times)
            _OVERRIDE.append(node.provenance)
            try:
                for rule in rules.get(cur.op, ()):
                    out = rule(cur)
                    if out is not None:
                        break
            finally:
                _OVERRIDE.pop()
            if out is None or out is cur:
                break
            if out.shape != cur.shape or out.dtype is not cur.dtype:
                raise AssertionError(
                    f"rewrite of {cur.op} changed its type: {cur.dtype}{cur.shape} -> "
                    f"{out.dtype}{out.shape}"
                )
            cur = out
        new[id(node)] = cur
    return Graph(graph.inputs, [new[id(o)] for o in graph.outputs], graph.input_names)
