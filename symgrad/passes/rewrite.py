"""The rewrite engine: rebuild a graph bottom-up, applying rules to every node until none fires.

Owns: :func:`rewrite` (Graph → Graph) and :func:`rebuild` (re-create a node over new inputs,
keeping its provenance). A rule is ``(node) -> Node | None``; rules are looked up by op name,
so each pass is a table. Dead code disappears by construction: only what the outputs reach is
rebuilt. May import: ``symgrad.ir`` and ``symgrad.ops``.

Graphs traced from scalar code have hundreds of thousands of nodes, nearly all of which a pass
rebuilds (a reordered operand changes every node above it), so the per-node path is kept short.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from symgrad.ir.dtypes import DType
from symgrad.ir.graph import Graph
from symgrad.ir.node import Node, Shape
from symgrad.ir.opdef import Kind, registry
from symgrad.ir.provenance import _OVERRIDE

Rule = Callable[[Node], Node | None]
MAX_ROUNDS = 16  # rules make nodes smaller, so a node settles in a few rounds


class OperandOrder:
    """A rule that only puts the two operands of commutative nodes in a canonical order
    (``passes.canonical``): ``swaps(a, b)`` says whether ``op(a, b)`` becomes ``op(b, a)``.

    When every other rule of an op is declared :func:`operand_symmetric` for it, the engine
    builds the node over its rewritten inputs in canonical order at once -- what building it
    as it was and then swapping gives, without making and dropping the first node (most nodes
    of a graph traced from scalar code)."""

    def swaps(self, a: Node, b: Node) -> bool:
        raise NotImplementedError

    def __call__(self, n: Node) -> Node | None:
        raise NotImplementedError


_SYMMETRIC: dict[Rule, frozenset[str]] = {}


def operand_symmetric(rule: Rule, ops: Iterable[str]) -> Rule:
    """Declare that for a node of one of the commutative ``ops``, ``rule`` gives the same for
    ``op(a, b)`` as for ``op(b, a)``: both None, or the same node. Returns ``rule``."""
    _SYMMETRIC[rule] = _SYMMETRIC.get(rule, frozenset()) | frozenset(ops)
    return rule


_NEEDS_CONSTANT: set[Rule] = set()
_CONSTANTS = ("const", "constant")


def needs_constant_input(rule: Rule) -> Rule:
    """Declare that ``rule`` returns None unless an input of the node is a ``const`` or
    ``constant`` node (folding, x·1, x+0 ...): the engine does not try it on other nodes.
    Returns ``rule``."""
    _NEEDS_CONSTANT.add(rule)
    return rule


def _presorted(rules: Mapping[str, Sequence[Rule]]) -> dict[str, OperandOrder]:
    """The ops whose nodes can be built in canonical operand order at once (see
    :class:`OperandOrder`), with their order rule."""
    out: dict[str, OperandOrder] = {}
    for op, op_rules in rules.items():
        orders = [r for r in op_rules if isinstance(r, OperandOrder)]
        if len(orders) == 1 and all(
            r is orders[0] or op in _SYMMETRIC.get(r, ()) for r in op_rules
        ):
            out[op] = orders[0]
    return out


def _constant_gated(
    rules: Mapping[str, Sequence[Rule]], presorted: Mapping[str, OperandOrder]
) -> dict[str, bool]:
    """The ops none of whose rules can fire on a node without a constant input: ``op ->
    False`` when that holds of all its rules, ``op -> True`` when of all but its order rule
    (which the engine has then applied already: see :class:`OperandOrder`)."""
    out: dict[str, bool] = {}
    for op, op_rules in rules.items():
        others = [r for r in op_rules if r is not presorted.get(op)]
        if all(r in _NEEDS_CONSTANT for r in others):
            out[op] = len(others) < len(op_rules)
    return out


def rebuild(node: Node, inputs: Sequence[Node]) -> Node:
    """``node`` over ``inputs`` (the same node when they did not change)."""
    old = node.inputs
    if len(old) != len(inputs):
        raise ValueError(f"rebuild of {node.op}: {len(inputs)} inputs for {len(old)}")
    same_types = True
    for a, b in zip(old, inputs, strict=True):
        if a is not b:
            break
    else:
        return node
    ins = tuple(inputs)
    for a, b in zip(old, ins, strict=True):
        if a.shape != b.shape or a.dtype is not b.dtype:
            same_types = False
            break
    op = registry()[node.op]
    if same_types and op.kind is Kind.ELEMENTWISE:
        # an elementwise shape rule looks only at the inputs' shapes and dtypes: unchanged
        shape, dtype = node.shape, node.dtype
    else:
        shape, dtype = op.infer(ins, node.attrs)
    return Node.make(node.op, ins, node.attrs, shape, dtype, node.provenance)


def _elementwise_ops() -> set[str]:
    return {name for name, op in registry().items() if op.kind is Kind.ELEMENTWISE}


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
    done = None
    if settled is not None:
        done = {n for n in graph.order if id(n) in settled}
    out, new = rewrite_nodes(graph, rules, done)
    if mapping is not None:
        mapping.update(zip(map(id, new), new.values(), strict=True))
    return out


def rewrite_nodes(
    graph: Graph, rules: Mapping[str, Sequence[Rule]], settled: set[Node] | None = None
) -> tuple[Graph, dict[Node, Node]]:
    """:func:`rewrite` keyed by the nodes themselves (they hash by identity): the rewritten
    graph and ``old node -> new node`` for every node of ``graph``; ``settled`` holds nodes
    (not ids). What the pipeline's fixpoint uses: no ``id()`` per node and lookup."""
    order = graph.order
    if settled is not None and settled.issuperset(order):
        # every node settled, so (inputs first) every node stays: nothing to do
        same = dict(zip(order, order, strict=True))
        return Graph.known(graph.inputs, graph.outputs, graph.input_names, graph), same
    new: dict[Node, Node] = {}
    n_inputs = len(graph.inputs)  # the order starts with the inputs, which stay
    for node in order[:n_inputs]:
        new[node] = node
    get_rules = rules.get
    make, find = Node.make, Node.find
    presorted = _presorted(rules)
    gated = _constant_gated(rules, presorted)
    elementwise = _elementwise_ops().__contains__
    no_rules: Sequence[Rule] = ()
    done = settled if settled is not None else set()
    for node in order[n_inputs:]:
        old = node.inputs
        settled_rule: Rule | None = None  # a rule known not to fire on cur (as first built)
        # the node over its rewritten inputs (itself when none changed)
        if len(old) == 2:
            a, b = old
            na, nb = new[a], new[b]
            order_rule = presorted.get(node.op)
            if (
                order_rule is not None
                and na.shape == nb.shape
                and na.dtype is nb.dtype
                and not (na is a and nb is b and node in done)
            ):
                settled_rule = order_rule  # the operands are in canonical order below
                if order_rule.swaps(na, nb):
                    # op(na, nb), which the order rule would swap: built swapped at once, with
                    # the provenance op(na, nb) has (that of a live equal node, else node's)
                    as_is = node if na is a and nb is b else find(node.op, (na, nb), *_types(node))
                    prov = (as_is or node).provenance
                    cur = make(node.op, (nb, na), node.attrs, node.shape, node.dtype, prov)
                elif na is a and nb is b:
                    cur = node
                elif elementwise(node.op):  # rewrites keep types: so is the node's
                    cur = make(
                        node.op, (na, nb), node.attrs, node.shape, node.dtype, node.provenance
                    )
                else:
                    cur = rebuild(node, (na, nb))
            elif na is a and nb is b:
                cur = node
            elif elementwise(node.op):  # rewrites keep types: so is the node's
                cur = make(node.op, (na, nb), node.attrs, node.shape, node.dtype, node.provenance)
            else:
                cur = rebuild(node, (na, nb))
        elif len(old) == 1:
            na = new[old[0]]
            if na is old[0]:
                cur = node
            elif elementwise(node.op):
                cur = make(node.op, (na,), node.attrs, node.shape, node.dtype, node.provenance)
            else:
                cur = rebuild(node, (na,))
        elif old:
            cur = rebuild(node, [new[i] for i in old])
        else:
            cur = node
        if cur is node and node in done:
            new[node] = node
            continue
        but_order = gated.get(cur.op)
        if but_order is not None and (settled_rule is not None or not but_order):
            for i in cur.inputs:
                if i.op in _CONSTANTS:
                    break
            else:  # no rule can fire: no constant input (the usual case)
                new[node] = cur
                continue
        node_rules = get_rules(cur.op, no_rules)
        if node_rules:
            # what a rule builds stems from node (provenance_override, without a context
            # manager: this loop visits every node of large graphs several times)
            _OVERRIDE.append(node.provenance)
            try:
                cur = _apply_rules(cur, node_rules, get_rules, settled_rule)
            finally:
                _OVERRIDE.pop()
        new[node] = cur
    outputs = [new[o] for o in graph.outputs]
    if all(a is b for a, b in zip(outputs, graph.outputs, strict=True)):
        # the same outputs over the same inputs: the same graph (no second walk over it)
        return Graph.known(graph.inputs, outputs, graph.input_names, graph), new
    return Graph(graph.inputs, outputs, graph.input_names), new


def _types(node: Node) -> tuple[dict[str, Any], Shape, DType]:
    """A node's attributes, shape and dtype (what :meth:`Node.find` needs besides op and
    inputs)."""
    return node.attrs, node.shape, node.dtype


def _apply_rules(
    cur: Node,
    node_rules: Sequence[Rule],
    get_rules: Callable[[str, Sequence[Rule]], Sequence[Rule]],
    skip: Rule | None = None,
) -> Node:
    """``cur`` rewritten until no rule fires (at most ``MAX_ROUNDS`` rewrites); ``skip`` is
    known not to fire on ``cur`` itself."""
    for _ in range(MAX_ROUNDS):
        out = None
        for rule in node_rules:
            if rule is skip:
                continue
            out = rule(cur)
            if out is not None:
                break
        skip = None
        if out is None or out is cur:
            break
        if out.shape != cur.shape or out.dtype is not cur.dtype:
            raise AssertionError(
                f"rewrite of {cur.op} changed its type: {cur.dtype}{cur.shape} -> "
                f"{out.dtype}{out.shape}"
            )
        cur = out
        node_rules = get_rules(cur.op, ())
    return cur
