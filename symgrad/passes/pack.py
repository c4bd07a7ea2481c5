"""Packing re-rolled scalar parameters: one array input per gathered parameter matrix.

Owns: :func:`pack_parameters` and :class:`Pack`. After ``passes/reroll.py`` a layer's scalar
parameters reach the tensor code through a gather (``stack`` of 0-d inputs, reshaped to the
layer's (J, K) weight matrix or kept as its (J,) bias). A training step that took those
parameters one 0-d input each would unpack, differentiate, update and return each of them
separately — four statements per ``Value`` at the interface, most of the code. This pass makes
each gather a graph input of its own (``layers_0_w: f64[16,2]``, named after the layer the
gather's provenance records), so the gradient is one tensor and the update one statement; a
packed parameter read elsewhere as a scalar becomes an element of its pack. The caller hands
the packs' values in as one array each (``frontend/value_nodes.LeafArrays``). May import:
``symgrad.ir``, ``symgrad.ops`` and the other pass modules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from symgrad.ir.graph import Graph
from symgrad.ir.node import Node
from symgrad.ir.provenance import path_identifier, provenance_override
from symgrad.ops import api, api_index
from symgrad.ops.source import make_input
from symgrad.passes.rewrite import rebuild


@dataclass(frozen=True, slots=True)
class Pack:
    """A packed parameter: ``node`` (an input of ``shape``) holds ``members`` row-major."""

    node: Node
    members: tuple[Node, ...]
    name: str

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.node.shape)


def _members(c: Node, eligible: set[Node], taken: set[Node]) -> tuple[Node, ...] | None:
    """The 0-d parameters ``c`` stacks (``concatenate`` of ``reshape(p, (1,))``, or one such
    reshape: the gather of a one-neuron layer's bias), or None."""
    if c.op == "reshape" and c.shape == (1,):
        p = c.inputs[0]
        return (p,) if p in eligible and p not in taken else None
    if c.op != "concatenate" or c.attrs.get("axis", 0) != 0:
        return None
    out = []
    for r in c.inputs:
        if r.op != "reshape" or r.shape != (1,):
            return None
        p = r.inputs[0]
        if p not in eligible or p in taken:
            return None
        out.append(p)
    if len(set(out)) != len(out):
        return None
    return tuple(out)


def _layer_path(module: str) -> str:
    """``model.layers[0]`` -> ``layers[0]``: the layer's path (``passes/reroll.py`` records it
    on its gathers) less the root's name."""
    root, dot, rest = module.partition(".")
    return rest if dot and "[" not in root else module


def _name(c: Node, kind: str, used: set[str], k: int) -> str:
    module = c.provenance.module if c.provenance is not None else ""
    base = path_identifier(f"{_layer_path(module)}.{kind}") if module else f"packed{k}_{kind}"
    name, i = base, 1
    while name in used:
        name, i = f"{base}_{i}", i + 1
    used.add(name)
    return name


def pack_parameters(
    graph: Graph, params: Sequence[Node], n_args: int
) -> tuple[Graph, list[Pack]] | None:
    """``graph`` with the gathers of ``params`` (0-d inputs of ``graph``) as inputs of their
    own, or None when nothing packs. The new graph's inputs are the first ``n_args`` inputs,
    then the other inputs with each pack in place of its first member (the members that are
    packed are gone); its input names are the old ones and the packs' names."""
    eligible = {p for p in params if p.shape == () and p.op == "input"}
    order = graph.order
    reshaped: dict[Node, Node] = {}  # gather -> its reshape to a matrix, when there is one
    for n in order:
        if n.op == "reshape" and len(n.shape) == 2 and n.inputs[0].op in ("concatenate", "reshape"):
            reshaped.setdefault(n.inputs[0], n)
    taken: set[Node] = set()
    found: list[tuple[Node, tuple[Node, ...], Node | None]] = []  # (gather, members, matrix)
    # gathers first, then single parameters reshaped to (1,) outside every gather
    candidates = [n for n in order if n.op == "concatenate"]
    candidates += [n for n in order if n.op == "reshape"]
    for n in candidates:
        members = _members(n, eligible, taken)
        if members is not None:
            taken.update(members)
            found.append((n, members, reshaped.get(n)))
    used = {nm for i, nm in zip(graph.inputs, graph.input_names, strict=True) if i not in taken}
    packs: list[Pack] = []
    subst: dict[Node, Node] = {}
    for n, members, mat in found:
        shape = mat.shape if mat is not None else n.shape
        name = _name(n, "w" if mat is not None else "b", used, len(packs))
        node = make_input(shape, members[0].dtype, name)
        packs.append(Pack(node, members, name))
        if mat is not None:  # the matrix is the pack; the gather its flat form
            subst[mat] = node
            with provenance_override(n.provenance):
                subst[n] = api.reshape(node, n.shape)
        else:
            subst[n] = node
    if not packs:
        return None
    where: dict[Node, tuple[Node, tuple[int, ...]]] = {}
    for pk in packs:
        shape = pk.shape
        for flat, m in enumerate(pk.members):
            where[m] = (pk.node, _unravel(flat, shape))
    new = _rebuild(graph.outputs, subst, where)
    first = {pk.members[0]: pk for pk in packs}
    inputs: list[Node] = []
    names: list[str] = []
    for k, (i, nm) in enumerate(zip(graph.inputs, graph.input_names, strict=True)):
        if k >= n_args and i in first:
            inputs.append(first[i].node)
            names.append(first[i].name)
        elif k < n_args or i not in taken:
            inputs.append(i)
            names.append(nm)
    return Graph(inputs, [new[o] for o in graph.outputs], names), packs


def _unravel(flat: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    out = []
    for d in reversed(shape):
        out.append(flat % d)
        flat //= d
    return tuple(reversed(out))


def _rebuild(
    outputs: Sequence[Node],
    subst: dict[Node, Node],
    where: dict[Node, tuple[Node, tuple[int, ...]]],
) -> dict[Node, Node]:
    """The outputs' nodes over the packs (demand-driven: a gather's scalar inputs are not
    visited once it is replaced)."""
    new: dict[Node, Node] = {}
    stack = list(outputs)
    while stack:
        n = stack[-1]
        if n in new:
            stack.pop()
            continue
        got = subst.get(n)
        if got is None and n in where:
            t, idx = where[n]
            with provenance_override(n.provenance):
                got = api.reshape(t, ()) if t.shape == (1,) else api_index.index(t, idx)
        if got is None and n.op == "input":
            got = n
        if got is not None:
            new[n] = got
            stack.pop()
            continue
        missing = [i for i in n.inputs if i not in new]
        if missing:
            stack.extend(missing)
            continue
        stack.pop()
        new[n] = rebuild(n, [new[i] for i in n.inputs])
    return new
