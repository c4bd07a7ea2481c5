"""The optimisation levels: which passes run, in which order.

Owns: :func:`optimize` and ``LEVELS``. Level 0 leaves the graph as differentiated (every
statement maps one-to-one to a VJP rule: best for reading). Level 1 (the default) runs canonical
ordering (CSE), constant folding and algebraic simplification to a fixpoint. Level 2 is level 1
plus the rewrites that change the shape of the computation: ``one_hot(i) @ W`` as a row gather
and its backward as a scatter-add (``passes/onehot.py``).
May import: ``symgrad.ir``, ``symgrad.ops`` and the other pass modules.
"""

from __future__ import annotations

from symgrad.ir.graph import Graph
from symgrad.ir.node import Node
from symgrad.ir.opdef import registry
from symgrad.passes.canonical import commutative_rule, structural_keys
from symgrad.passes.fold import fold
from symgrad.passes.onehot import RULES as ONEHOT_RULES
from symgrad.passes.rewrite import Rule, rewrite
from symgrad.passes.simplify import RULES

LEVELS = (0, 1, 2)


def optimize(graph: Graph, level: int = 1, mapping: dict[int, Node] | None = None) -> Graph:
    """``graph`` optimised at ``level`` (0, 1 or 2); values are unchanged.

    ``mapping``, when given, receives ``id(node of graph) -> its replacement``.
    """
    if level not in LEVELS:
        raise ValueError(f"opt must be one of {LEVELS}, got {level!r}")
    if level == 0:
        if mapping is not None:
            mapping.update({id(n): n for n in graph.order})
        return graph
    order = commutative_rule(structural_keys(graph))
    rules: dict[str, list[Rule]] = {}
    for name, op in registry().items():
        rules[name] = [fold, *RULES.get(name, ())] + ([order] if op.commutative else [])
        if level >= 2:
            rules[name] += ONEHOT_RULES.get(name, [])
    out = graph
    total = {id(n): n for n in graph.order}
    for _ in range(4):  # a rewrite can expose another one upstream of it
        step_map: dict[int, Node] = {}
        step = rewrite(out, rules, step_map)
        total = {k: step_map.get(id(v), v) for k, v in total.items()}
        done = step.content_hash == out.content_hash
        out = step
        if done:
            break
    if mapping is not None:
        mapping.update(total)
    return out
