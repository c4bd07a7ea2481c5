"""Softmax + pair-indexed NLL fusion, and row-wise work on gathered rows done once per row
(level 2).

Owns: :func:`fuse` (Graph → Graph) and the level-2 rules ``RULES``.

:func:`fuse` finds the log-probability of each row's target written as

- ``log((e / e.sum(1, keepdims=True))[arange(n), y])`` with ``e = exp(z)`` (the makemore
  bigram), or ``log(e / e.sum(...))[arange(n), y]``;
- ``log_softmax(z, 1)[arange(n), y]`` (``cross_entropy``), ``log(softmax(z, 1))[arange(n), y]``
  or ``softmax(z, 1)[arange(n), y].log()``,

and replaces it with ``-softmax_nll(z, y)`` (``symgrad/ops/softmax_nll.py``: one stable pass per
row). Passes run on the joint graph, after differentiation, so the pattern's backward is there
too, as the VJP rules wrote it; it is found by differentiating the pattern again, from a
placeholder for the target log-probability's cotangent ``g``, simplifying that the way the
pipeline does, and matching it against the graph (commutative operands in either order, the
placeholder against any node). The match — the pattern's contribution to ``z``'s cotangent — is
replaced with ``softmax_nll_grad(z, y, -g)``: no softmax, one-hot or (n, C) temporaries besides
the gradient itself. A fusion is kept only when it removes the unfused intermediates (when
another user still needs them, nothing would be saved and the graph is left as it was).

Values: the fused form is the numerically stable one, so where the unfused ``exp`` overflows
(the probability is ``inf/inf``) it returns the finite value instead of NaN; elsewhere the two
agree up to rounding, special values included (see the op's docstring).

``RULES`` (applied with the level-1 rules after :func:`fuse`):

- row-wise work once per distinct row (the bigram's 228k softmaxes become 27):
  ``softmax_nll(W[r], y)`` → ``logsumexp(W, 1)[r] - W[r, y]``, and the gradient scattered back
  to the rows, ``scatter_add(softmax_nll_grad(W[r], y, g), r)``, → ``softmax(W, 1) * G - S``
  with ``S = scatter_add(g, (r, y))`` and ``G = S.sum(1)`` (the total weight of each row); rows
  that no example gathers stay exactly 0 (guarded by the examples per row, summed from the pair
  counts ``bincount(r, y)``, so a NaN or inf in such a row of ``W`` cannot leak into the
  gradient). The sum of the forward's per-example terms over the batch, and ``S`` when ``g`` is
  uniform (a mean), then become 27×27 work on those counts (``passes/aggregate.py``);
- a row max subtracted before the fused op dropped (``unshift``: the op subtracts it itself);
- signs pushed outwards, so ``-(-x)`` can cancel: ``sum(-x) → -sum(x)``, ``(-a) * b →
  -(a * b)``, ``(-a) / b → -(a / b)``, ``reshape(-x) → -reshape(x)``, ``-broadcast_to(x) →
  broadcast_to(-x)`` (exact in IEEE arithmetic).

May import: ``symgrad.ir``, ``symgrad.ops``, ``symgrad.autodiff`` and the other pass modules.
"""

from __future__ import annotations

from collections.abc import Callable

from symgrad.autodiff.vjp import vjp
from symgrad.ir.dtypes import INT64
from symgrad.ir.graph import Graph, toposort
from symgrad.ir.node import Node
from symgrad.ir.opdef import apply, const, get_op
from symgrad.ir.provenance import Provenance, provenance_override, with_rule
from symgrad.ops import api
from symgrad.ops.source import make_input
from symgrad.passes.rewrite import Rule, rebuild

Simplify = Callable[[Graph], Graph]

# -- the forms of the target's log-probability, written as the user's code writes them -------


def _pick(x: Node, i: Node, y: Node) -> Node:
    return apply("gather", (x, i, y))


def _probs(z: Node) -> Node:
    e = apply("exp", (z,))
    return e / api.sum(e, 1, keepdims=True)


# (z, i, y) -> the log-probability of y; i is the pick's arange(n) node (one per creation site)
FORMS: dict[str, Callable[[Node, Node, Node], Node]] = {
    "log(probs[i, y])": lambda z, i, y: apply("log", (_pick(_probs(z), i, y),)),
    "log(probs)[i, y]": lambda z, i, y: _pick(apply("log", (_probs(z),)), i, y),
    "log_softmax[i, y]": lambda z, i, y: _pick(api.log_softmax(z, 1), i, y),
    "log(softmax)[i, y]": lambda z, i, y: _pick(apply("log", (api.softmax(z, 1),)), i, y),
    "log(softmax[i, y])": lambda z, i, y: apply("log", (_pick(api.softmax(z, 1), i, y),)),
}
_DEPTH = 8  # how far below the pick the logits may be


def _pick_of(n: Node) -> Node | None:
    """The ``x[arange(n), y]`` node at the top of ``n`` (``n`` itself or under a log)."""
    g = n.inputs[0] if n.op == "log" and n.inputs else n
    if g.op != "gather" or len(g.inputs) != 3 or g.inputs[0].ndim != 2:
        return None
    x, i, y = g.inputs
    if i.op != "arange" or i.attrs["n"] != x.shape[0] or y.shape != x.shape[:1]:
        return None
    return g


def _differentiable(n: Node) -> bool:
    return n.op == "input" or (get_op(n.op).differentiable and bool(n.inputs))


def _logit_candidates(x: Node) -> list[Node]:
    """Nodes under ``x`` with its (n, C) float type: where the logits may be."""
    out: list[Node] = []
    seen = {id(x)}
    level = [x]
    for _ in range(_DEPTH):
        nxt = []
        for n in level:
            for i in n.inputs:
                if id(i) not in seen:
                    seen.add(id(i))
                    nxt.append(i)
                    if i.shape == x.shape and i.dtype is x.dtype and _differentiable(i):
                        out.append(i)
        level = nxt
    return out


# -- matching the backward ------------------------------------------------------------------


def _unify(t: Node, n: Node, hole: Node, live: set[int], bind: dict[str, Node]) -> bool:
    """Whether template ``t`` (whose nodes in ``live`` depend on ``hole``) equals ``n`` with
    ``hole`` standing for one node (bound in ``bind``), commutative operands in either order."""
    if t is hole:
        if "g" in bind:
            return bind["g"] is n
        if n.shape != hole.shape or n.dtype is not hole.dtype:
            return False
        bind["g"] = n
        return True
    if t is n:
        return True
    if id(t) not in live or t.op != n.op or t.shape != n.shape or t.dtype is not n.dtype:
        return False
    if len(t.inputs) != len(n.inputs) or t.attrs != n.attrs:
        return False
    orders = [n.inputs]
    if get_op(t.op).commutative and len(n.inputs) == 2:
        orders.append(n.inputs[::-1])
    for ins in orders:
        saved = dict(bind)
        if all(_unify(a, b, hole, live, bind) for a, b in zip(t.inputs, ins, strict=True)):
            return True
        bind.clear()
        bind.update(saved)
    return False


def _match_backward(
    graph: Graph, template: Node, hole: Node
) -> tuple[Node, Node, Node | None] | None:
    """``(root, g, add)``: the graph node equal to ``template`` with ``hole`` bound to ``g``;
    when that contribution is one operand of an ``add`` (the logits have other users too),
    ``add`` is that sum and ``root`` the operand."""
    live = {id(n) for n in toposort([template]) if hole in toposort([n])}
    for n in graph.order:
        bind: dict[str, Node] = {}
        if n.op == template.op and _unify(template, n, hole, live, bind):
            return n, bind["g"], None
    for n in graph.order:
        if n.op != "add" or n.shape != template.shape:
            continue
        for a in n.inputs:
            bind = {}
            if a.op == template.op and _unify(template, a, hole, live, bind):
                return a, bind["g"], n
    return None


# -- substitution -----------------------------------------------------------------------------


def substitute(
    graph: Graph, repl: dict[int, Node], mapping: dict[int, Node] | None = None
) -> Graph:
    """``graph`` with each node whose id is in ``repl`` replaced by that expression (which may
    use any node of ``graph``: it is rebuilt over their replacements)."""
    new: dict[int, Node] = {} if mapping is None else mapping

    def translate(x: Node, memo: dict[int, Node]) -> Node:
        if id(x) in new:
            return new[id(x)]
        if id(x) not in memo:
            memo[id(x)] = rebuild(x, [translate(i, memo) for i in x.inputs])
        return memo[id(x)]

    keep = set(graph.inputs)
    for node in graph.order:
        if node in keep:
            new[id(node)] = node
        elif id(node) in repl:
            new[id(node)] = translate(repl[id(node)], {})
        else:
            new[id(node)] = rebuild(node, [new[id(i)] for i in node.inputs])
    return Graph(graph.inputs, [new[id(o)] for o in graph.outputs], graph.input_names)


# -- the pass -----------------------------------------------------------------------------------


def _via(p: Provenance | None, via: str) -> Provenance | None:
    return with_rule(p.single, via) if p is not None else None


def _find(graph: Graph, simplify: Simplify, skip: set[int]) -> tuple[dict[int, Node], set[int]]:
    """Replacements for one fusible pattern (empty when there is none) and the ids of the
    pattern's intermediates, which must disappear."""
    for n in graph.order:
        if id(n) in skip or (g := _pick_of(n)) is None:
            continue
        _, i, y = g.inputs
        for z in _logit_candidates(g.inputs[0]):
            for build in FORMS.values():
                hole = make_input(n.shape, n.dtype, "g")
                with provenance_override(None):
                    raw = build(z, i, y)
                    if raw.shape != n.shape or raw.dtype is not n.dtype:
                        continue
                    cts = vjp([raw], [hole], [z])
                    assert isinstance(cts, list)
                    dz = cts[0]
                    if dz is None:
                        continue
                    simple = simplify(Graph([z, y, hole], [raw, dz]))
                fwd, tmpl = simple.outputs
                if fwd is not n:
                    continue
                inner = {
                    id(m)
                    for m in toposort([n], stop={z, y})
                    if m is not n and m is not z and m is not y and m.inputs
                }
                repl = {id(n): _fused_forward(n, z, y)}
                back = _match_backward(graph, tmpl, hole)
                if back is not None:
                    root, gl, add = back
                    fused = _fused_backward(n, z, y, gl)
                    if add is None:
                        repl[id(root)] = fused
                    else:
                        other = add.inputs[1] if add.inputs[0] is root else add.inputs[0]
                        repl[id(add)] = fused + other
                return repl, inner
    return {}, set()


#: the label of what the pass fused, in the provenance of the nodes it builds
FUSED = "fused softmax-NLL"


def _fused_forward(n: Node, z: Node, y: Node) -> Node:
    with provenance_override(_via(n.provenance, FUSED)):
        return -apply("softmax_nll", (z, y))


def _fused_backward(site: Node, z: Node, y: Node, g: Node) -> Node:
    """The fused backward, cited at the fused forward's site (``n``: the user's loss line)."""
    with provenance_override(_via(site.provenance, f"vjp {FUSED}")):
        return apply("softmax_nll_grad", (z, y, -g))


def fuse(graph: Graph, simplify: Simplify, mapping: dict[int, Node] | None = None) -> Graph:
    """``graph`` with every fusible softmax + NLL pattern (and its backward) fused.

    ``simplify`` must be the simplification the graph went through (the pipeline's rules): the
    backward is matched after the same simplification. ``mapping`` receives ``id(old node) ->
    new node`` like :func:`symgrad.passes.rewrite.rewrite`'s."""
    total: dict[int, Node] = {id(n): n for n in graph.order}
    skip: set[int] = set()
    out = graph
    while True:
        repl, inner = _find(out, simplify, skip)
        if not repl:
            break
        step: dict[int, Node] = {}
        cand = substitute(out, repl, step)
        if any(id(m) in inner for m in cand.order):  # still needed by someone: no saving
            skip.update(repl)
            continue
        total = {k: step.get(id(v), v) for k, v in total.items()}
        out = cand
    if mapping is not None:
        mapping.update(total)
    return out


# -- level-2 rules: row-wise work once per row, signs outwards ----------------------------------


def _gathered_rows(z: Node) -> tuple[Node, Node] | None:
    """``(W, r)`` when ``z`` is ``W[r]`` with a 2-D ``W`` and a 1-D ``r``."""
    if z.op != "gather" or len(z.inputs) != 2:
        return None
    w, r = z.inputs
    return (w, r) if w.ndim == 2 and r.ndim == 1 else None


def nll_of_rows(n: Node) -> Node | None:
    """softmax_nll(W[r], y) → logsumexp(W, 1)[r] - W[r, y]."""
    z, y = n.inputs
    wr = _gathered_rows(z)
    if wr is None:
        return None
    w, r = wr
    # the op's own arithmetic per row (an unguarded max: a row with +inf gives NaN, like the op)
    m = api.max(w, 1, keepdims=True)
    s = api.sum(apply("exp", (w - m,)), 1, keepdims=True)
    lse = api.reshape(apply("log", (s,)) + m, (w.shape[0],))
    return apply("gather", (lse, r)) - apply("gather", (w, r, y))


def grad_of_rows(n: Node) -> Node | None:
    """scatter_add(softmax_nll_grad(W[r], y, g), r) → where(count > 0, softmax(W) * G - S, 0)."""
    d, *idx = n.inputs
    if d.op != "softmax_nll_grad" or len(idx) != 1:
        return None
    z, y, g = d.inputs
    wr = _gathered_rows(z)
    if wr is None or wr[1] is not idx[0] or n.shape != wr[0].shape:
        return None
    with provenance_override(d.provenance):  # the fused gradient's region keeps its label
        return _grad_rows(wr[0], wr[1], y, g)


def _grad_rows(w: Node, r: Node, y: Node, g: Node) -> Node:
    picked = apply("scatter_add", (g, r, y), {"shape": w.shape})
    total = api.sum(picked, 1, keepdims=True)  # each example's weight lands in one column
    # examples per row, from the (r, y) pair counts: the table aggregation by value shares
    # (passes/aggregate.py), still one counting pass when g is not uniform
    pairs = apply("bincount", (r, y), {"shape": w.shape})
    hit = apply("gt", (api.sum(pairs, 1, keepdims=True), const(0, INT64)))
    grad = api.softmax(w, 1) * total - picked
    return api.where(hit, grad, const(0.0, g.dtype))


def unshift(n: Node) -> Node | None:
    """softmax_nll(z - max(z, 1), ...) → softmax_nll(z, ...) (and the same for the gradient):
    the op subtracts the row max itself, so the values are the same bit for bit (``sg.softmax``
    written before the pick leaves its max subtraction in the logits; without it the rows of a
    gathered ``W[r]`` are found)."""
    z, *rest = n.inputs
    if z.op != "sub":
        return None
    x, m = z.inputs
    if m.op != "max" or m.inputs[0] is not x or m.attrs != {"axis": (1,), "keepdims": True}:
        return None
    return apply(n.op, (x, *rest))


def _neg_inside(n: Node) -> Node | None:
    a = n.inputs[0]
    return a.inputs[0] if a.op == "neg" else None


def sum_neg(n: Node) -> Node | None:
    x = _neg_inside(n)
    return None if x is None else -apply("sum", (x,), dict(n.attrs))


def mul_neg(n: Node) -> Node | None:
    a, b = n.inputs
    for x, other in ((a, b), (b, a)):
        if x.op == "neg":
            out = -(x.inputs[0] * other)
            return out if out.shape == n.shape else None
    return None


def div_neg(n: Node) -> Node | None:
    a, b = n.inputs
    if a.op != "neg":
        return None
    out = -(a.inputs[0] / b)
    return out if out.shape == n.shape else None


def neg_broadcast(n: Node) -> Node | None:
    (x,) = n.inputs
    if x.op != "broadcast_to":
        return None
    return apply("broadcast_to", (-x.inputs[0],), dict(x.attrs))


def reshape_neg(n: Node) -> Node | None:
    x = _neg_inside(n)
    return None if x is None else -apply("reshape", (x,), dict(n.attrs))


RULES: dict[str, list[Rule]] = {
    "softmax_nll": [unshift, nll_of_rows],
    "softmax_nll_grad": [unshift],
    "scatter_add": [grad_of_rows],
    "sum": [sum_neg],
    "mul": [mul_neg],
    "div": [div_neg],
    "neg": [neg_broadcast],
    "reshape": [reshape_neg],
}
