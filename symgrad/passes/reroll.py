"""Re-rolling: scalar graphs written micrograd's way become the tensor computation they are.

Owns: :func:`reroll` (a traced forward graph, before differentiation) and
:func:`reroll_outputs` (a training step's scalar outputs: the updates of gathered parameters as
one vector statement per layer). micrograd's ``Neuron`` computes ``act(b + w0·x0 + ...)``
with one scalar node per operation, a ``Layer`` applies its neurons to the same inputs, and a
Python loop over examples repeats the whole network per example. This pass finds that
structure in a traced forward graph and rebuilds it from tensor ops:

- **Neurons and layers.** A *neuron sum* is a chain ``((b + w0·x0) + w1·x1) + ...`` whose ``b``
  and ``w_k`` are scalar graph inputs (parameters). Neuron sums over the same inputs
  ``x_0 … x_{K-1}`` are one *application* of a layer; applications whose neurons have the same
  parameters are one *layer*. The layer's parameters are gathered (``stack``) into a (J, K)
  weight matrix and a (J,) bias, and all its applications become one matrix product
  ``F @ W.T + b`` with ``F`` the applications' inputs as a (B, K) matrix — or (n, K) when the
  inputs are columns (the README's column form: Value weights times column Tensors).
- **Isomorphic scalar subgraphs** (``Vectorizer``): a grid of scalar nodes that apply the same
  elementwise op to operands that are themselves vectorisable is one vector statement. Leaves
  are elements of a known tensor (``X[i, k]``, a layer's output ``A[i, j]``, a gathered
  parameter), one node shared by the whole grid (broadcast) or constants.
- **Sums of terms** (``total = l0 + l1 + ...``, micrograd's ``sum(losses)`` and the L2 term
  ``sum(p * p for p in parameters)``): the terms are grouped by the shape of their computation,
  each group vectorised and summed with one reduction.

The graph's inputs stay the scalar parameters, so the VJP of the gather hands every ``Value`` its
own gradient (a slice of its layer's gradient matrix). Summation orders change (a matrix product,
a reduction): values agree to rounding. Anything that does not match is rebuilt unchanged (and
compacted later by ``codegen/compact.py``). May import: ``symgrad.ir``, ``symgrad.ops`` and the
other pass modules.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from symgrad.ir.graph import Graph
from symgrad.ir.node import Node
from symgrad.ir.opdef import apply
from symgrad.ir.provenance import Provenance, provenance_override
from symgrad.ops import api
from symgrad.passes.rewrite import rebuild
from symgrad.passes.vectorize import Vectorizer, grid_provenance, pick, shape_key

#: scalar (0-d) nodes a graph needs before the pass looks at it (the lecture's neuron stays as is)
THRESHOLD = 200
#: terms a sum needs to be re-rolled into a reduction
MIN_TERMS = 4


@dataclass(frozen=True, slots=True)
class _Neuron:
    """A neuron sum ``b + Σ_k w_k · x_k`` (top node of its chain)."""

    node: Node
    b: Node
    ws: tuple[Node, ...]
    xs: tuple[Node, ...]


@dataclass(slots=True)
class _Layer:
    """Applications (rows) of neurons (columns) sharing their parameters."""

    apps: list[list[_Neuron]]
    built: bool = False


def _is_param(n: Node) -> bool:
    return n.op == "input" and n.shape == () and n.dtype.is_float


def _find_neurons(order: Sequence[Node]) -> list[_Neuron]:
    """Every maximal neuron sum of ``order`` (topological), in order."""
    link: dict[Node, tuple[Node, Node, Node]] = {}  # chain node -> (previous, w, x)
    interior: set[Node] = set()
    for n in order:
        if n.op != "add":
            continue
        prev, term = n.inputs
        if term.op != "mul" or not _is_param(term.inputs[0]):
            continue
        w, x = term.inputs
        if x.dtype is not n.dtype or x.shape != n.shape:
            continue
        if prev in link:
            interior.add(prev)
        elif not _is_param(prev):
            continue
        link[n] = (prev, w, x)
    out = []
    for n in order:
        if n not in link or n in interior:
            continue
        ws, xs = [], []
        cur = n
        while cur in link:
            cur, w, x = link[cur]
            ws.append(w)
            xs.append(x)
        out.append(_Neuron(n, cur, tuple(reversed(ws)), tuple(reversed(xs))))
    return out


def _group_layers(neurons: list[_Neuron]) -> list[_Layer]:
    """Neurons grouped into applications (same inputs) and layers (same parameters)."""
    apps: dict[tuple[Node, ...], list[_Neuron]] = defaultdict(list)
    for nr in neurons:
        apps[nr.xs].append(nr)
    layers: dict[tuple[Node, ...], list[list[_Neuron]]] = defaultdict(list)
    for app in apps.values():
        key = tuple(p for nr in app for p in (nr.b, *nr.ws))
        layers[key].append(app)
    out = []
    for key, rows in layers.items():
        if len(set(key)) != len(key):  # a parameter used twice in one layer: not micrograd's
            continue
        if len(rows) > 1 and rows[0][0].node.shape != ():
            continue  # several applications over columns: not a pattern we gather
        out.append(_Layer(rows))
    return out


def reroll(graph: Graph) -> Graph:
    """``graph`` with its micrograd-form scalar structure rebuilt from tensor ops (the same
    graph when nothing re-rolls)."""
    order = graph.order
    if sum(1 for n in order if n.shape == ()) < THRESHOLD:
        return graph
    neurons = _find_neurons(order)
    layers = _group_layers(neurons)
    vz = Vectorizer({})
    for layer in layers:
        for app in layer.apps:
            for nr in app:
                vz.lazy[nr.node] = functools.partial(_build_layer, vz, layer)
    users: dict[Node, int] = defaultdict(int)
    first_of_add: set[Node] = set()
    for n in order:
        for i in n.inputs:
            users[i] += 1
        if n.op == "add":
            first_of_add.add(n.inputs[0])
    vz.interior = {n for n in first_of_add if users[n] == 1 and n.op == "add"}
    for layer in layers:
        if not layer.built:
            _build_layer(vz, layer)
    new = vz.new
    plans: dict[Node, _Plan | None] = {}
    stack = list(graph.outputs)
    changed = False
    while stack:  # demand-driven, without recursion: only what the outputs need is rebuilt
        n = stack[-1]
        if n in new:
            stack.pop()
            continue
        if n.op == "input":
            new[n] = n
            stack.pop()
            continue
        if n not in plans:
            plans[n] = _plan(vz, n)
        plan = plans[n]
        deps = n.inputs if plan is None else plan.leftovers
        missing = [d for d in deps if d not in new]
        if missing:
            stack.extend(missing)
            continue
        stack.pop()
        if plan is None:
            new[n] = rebuild(n, [new[i] for i in n.inputs])
        else:
            new[n] = plan.finish(new)
            changed = True
    if not changed:
        return graph
    return Graph(graph.inputs, [new[o] for o in graph.outputs], graph.input_names)


@dataclass(slots=True)
class _Plan:
    """How a re-rolled node is built: ``parts`` (vectorised and reduced already) plus the
    rebuilt ``leftovers``, added in order."""

    top: Node
    parts: list[Node]
    leftovers: list[Node]

    def finish(self, new: dict[Node, Node]) -> Node:
        terms = [*self.parts, *(new[t] for t in self.leftovers)]
        out = terms[0]
        for t in terms[1:]:
            out = apply("add", (out, t), provenance=self.top.provenance)
        return out


def _plan(vz: Vectorizer, n: Node) -> _Plan | None:
    if n in vz.lazy:
        got = vz.element(n)
        if got is not None and n in vz.elements:
            with provenance_override(n.provenance):
                return _Plan(n, [pick(got[0], got[1], n)], [])
    if n.op == "add" and n not in vz.interior:
        with provenance_override(n.provenance):  # (the line of the sum)
            return _reduction(vz, n)
    return None


def _build_layer(vz: Vectorizer, layer: _Layer) -> None:
    """The layer as one matrix product, its neurons' sums as elements of it (in place)."""
    if layer.built:
        return
    layer.built = True
    with provenance_override(_layer_provenance(layer)):  # the Neuron's line, the layer's path
        _build(vz, layer)


def _layer_provenance(layer: _Layer) -> Provenance | None:
    """The first neuron's provenance, its module path cut to the layer's (``model.layers[0]``
    for neurons at ``model.layers[0].neurons[k]``)."""
    return grid_provenance(tuple(nr.node for nr in layer.apps[0]), siblings=True)


def _build(vz: Vectorizer, layer: _Layer) -> None:
    row = layer.apps[0]
    first = row[0]
    j, k = len(row), len(first.ws)
    if any(len(nr.ws) != k for nr in row):
        return
    w = api.reshape(api.stack([vz.new.get(p, p) for nr in row for p in nr.ws]), (j, k))
    b = api.stack([vz.new.get(nr.b, nr.b) for nr in row])
    s = first.node.shape
    if len(layer.apps) == 1:
        f = vz.tensor(first.xs, (k,))
        if f is None:
            f = api.stack([vz.new.get(x, x) for x in first.xs], axis=len(s))
        if s == ():
            a = api.reshape(api.matmul(api.reshape(f, (1, k)), api.transpose(w)), (j,)) + b
        else:
            a = api.matmul(f, api.transpose(w)) + b
        for jj, nr in enumerate(row):
            vz.elements[nr.node] = (a, (jj,))
    else:
        f2 = _rows(vz, layer.apps, k)
        if f2 is None:
            return
        a = api.matmul(f2, api.transpose(w)) + b
        for ii, app in enumerate(layer.apps):
            for jj, nr in enumerate(app):
                vz.elements[nr.node] = (a, (ii, jj))
    for jj, nr in enumerate(row):
        for kk, p in enumerate(nr.ws):
            vz.elements.setdefault(p, (w, (jj, kk)))
        vz.elements.setdefault(nr.b, (b, (jj,)))


def _rows(vz: Vectorizer, apps: list[list[_Neuron]], k: int) -> Node | None:
    """The (B, K) matrix of the applications' scalar inputs."""
    grid = tuple(x for app in apps for x in app[0].xs)
    if any(len(app[0].xs) != k for app in apps):
        return None
    return vz.tensor(grid, (len(apps), k))


def _reduction(vz: Vectorizer, top: Node) -> _Plan | None:
    """A chain of adds ``t0 + t1 + ... + tm`` as grouped reductions, or None."""
    terms = []
    cur = top
    while cur.op == "add" and (cur is top or cur in vz.interior):
        terms.append(cur.inputs[1])
        cur = cur.inputs[0]
    terms.append(cur)
    terms.reverse()
    if len(terms) < MIN_TERMS or any(t.shape != top.shape for t in terms):
        return None
    groups: dict[object, list[Node]] = defaultdict(list)
    for t in terms:
        groups[shape_key(vz, t)].append(t)
    parts: list[Node] = []
    leftovers: list[Node] = []
    for members in groups.values():
        v = vz.tensor(tuple(members), (len(members),)) if len(members) >= 2 else None
        if v is None:
            leftovers.extend(members)
        else:
            parts.append(api.sum(v, axis=len(top.shape)))
    if not parts:
        return None
    return _Plan(top, parts, leftovers)


def reroll_outputs(graph: Graph) -> Graph:
    """``graph`` with its scalar outputs computed as vectors where they are isomorphic (a
    training step's updates ``p - lr·g`` of the parameters a re-rolled forward gathered), each
    output then an element of its vector (the same graph when nothing re-rolls)."""
    outs = graph.outputs
    if sum(1 for o in outs if o.shape == ()) < THRESHOLD // 4:
        return graph
    elements: dict[Node, tuple[Node, tuple[int, ...]]] = {}
    for n in graph.order:  # the gathers of scalar parameters (``stack``: what _build_layer made)
        if n.op == "concatenate" and all(
            i.op == "reshape" and i.shape == (1,) and i.inputs[0].op == "input" for i in n.inputs
        ):
            for pos, r in enumerate(n.inputs):
                elements.setdefault(r.inputs[0], (n, (pos,)))
    vz = Vectorizer(elements)
    groups: dict[object, list[int]] = defaultdict(list)
    for k, o in enumerate(outs):
        if o.shape == () and o.op != "input":
            groups[shape_key(vz, o)].append(k)
    new = list(outs)
    for members in groups.values():
        if len(members) < MIN_TERMS:
            continue
        grid = tuple(outs[k] for k in members)
        with provenance_override(grid[0].provenance):
            v = vz.tensor(grid, (len(members),))
            if v is None:
                continue
            for i, k in enumerate(members):
                new[k] = pick(v, (i,), outs[k])
    if all(a is b for a, b in zip(new, outs, strict=True)):
        return graph
    return Graph(graph.inputs, new, graph.input_names)
