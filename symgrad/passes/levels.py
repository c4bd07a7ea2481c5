"""The optimisation levels: which passes run, in which order.

Owns: :func:`optimize`, ``LEVELS`` and ``DEFAULT_OPT``. Level 0 leaves the graph as
differentiated (every statement maps one-to-one to a VJP rule: best for reading). Level 1 runs
canonical ordering (CSE), constant folding and algebraic simplification to a fixpoint. Level 2
(the default of every entry point, ``DEFAULT_OPT``) is level 1 plus the rewrites that change the
shape of the computation: ``one_hot(i) @ W`` (and a cast of a one-hot) as a row gather and its
backward as a scatter-add (``passes/onehot.py``); then the softmax + pair-indexed NLL fused into
one stable op with its backward (``passes/softmax_nll.py``: matched after the level-1
simplification, which is what it compares the backward with), row-wise work on gathered rows
done once per row, and signs pushed outwards, again to a fixpoint with the level-1 rules. Batch
sums and scatters whose terms depend on the examples only through small-range indices are
aggregated by value (``passes/aggregate.py``: a table of counts) in both fixpoints.
May import: ``symgrad.ir``, ``symgrad.ops`` and the other pass modules.
"""

from __future__ import annotations

from operator import is_

from symgrad.ir.graph import Graph
from symgrad.ir.node import Node
from symgrad.ir.opdef import registry
from symgrad.passes import aggregate, softmax_nll
from symgrad.passes.canonical import (
    USER_ORDER_LIMIT,
    commutative_rule,
    structural_keys,
    user_order,
)
from symgrad.passes.fold import fold
from symgrad.passes.onehot import RULES as ONEHOT_RULES
from symgrad.passes.rewrite import Rule, rewrite, rewrite_nodes
from symgrad.passes.simplify import RULES

LEVELS = (0, 1, 2)
#: The level every entry point uses unless told otherwise (``opt=``): 2, the rewrites that make
#: the lecture's code fast (a one-hot product is a gather, softmax + NLL one stable op, batch
#: sums over a few index values a table of counts). Level 1 keeps the computation as
#: differentiated, only cleaned up: the code to read next to the lecture's backprop.
DEFAULT_OPT = 2


def _fixpoint(graph: Graph, rules: dict[str, list[Rule]], total: dict[int, Node] | None) -> Graph:
    """Rewrite ``graph`` with ``rules`` until nothing changes; ``total`` (old id -> node), when
    given, is composed with each step's mapping."""
    out = graph
    settled: set[Node] | None = None
    for _ in range(4):  # a rewrite can expose another one upstream of it
        step, step_map = rewrite_nodes(out, rules, settled)
        # a fixpoint: every node rebuilt as itself (interned: no hashing of the whole graph);
        # then the step's mapping is the identity and there is nothing to compose
        order = out.order
        if all(map(is_, map(step_map.__getitem__, order), order)):
            return step
        if total is not None:
            get = step_map.get
            total.update({k: get(v, v) for k, v in total.items()})
        # what each node became was tried against every rule until none fired: only the nodes
        # the rules built inside it, and their users, need another look
        settled = set(step_map.values())
        out = step
    return out


def optimize(graph: Graph, level: int = 1, mapping: dict[int, Node] | None = None) -> Graph:
    """``graph`` optimised at ``level`` (0, 1 or 2); values are unchanged (level 2: up to
    rounding, and finite where an unfused softmax overflows).

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
            rules[name] += ONEHOT_RULES.get(name, []) + aggregate.RULES.get(name, [])
    # (old id -> node: only when asked for or to restore the user's operand order, a dict
    # over every node of large graphs)
    readable = len(graph.order) <= USER_ORDER_LIMIT
    track = mapping is not None or readable
    total = {id(n): n for n in graph.order} if track else None
    out = _fixpoint(graph, rules, total)
    if level >= 2:
        fused: dict[int, Node] = {}
        before = out
        out = softmax_nll.fuse(out, lambda g: rewrite(g, rules), fused)
        if out is not before and total is not None:
            total.update({k: fused.get(id(v), v) for k, v in total.items()})
        if out is not before:  # the cleanup rules only matter around what was fused
            more = {k: v + softmax_nll.RULES.get(k, []) for k, v in rules.items()}
            out = _fixpoint(out, more, total)
    if readable and total is not None:  # canonical order was for hashing: print the user's
        out, back = user_order(graph, out, total)
        total = {k: back.get(v, v) for k, v in total.items()}
    if mapping is not None and total is not None:
        mapping.update(total)
    return out
