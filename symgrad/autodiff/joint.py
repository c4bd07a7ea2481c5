"""The joint forward+backward graph of a function, split into its two passes.

Owns: :class:`Joint` and :func:`split`: given a graph's outputs and the inputs to differentiate,
build the cotangent inputs (``g_out``), the gradient nodes, the forward graph (outputs + the
values the backward pass needs, "saved") and the backward graph (inputs: cotangents, saved
values, and the function's own inputs). Code generation emits one function per pass from these.
May import: ``symgrad.ir``, ``symgrad.ops`` and ``symgrad.autodiff.vjp``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from symgrad.autodiff.vjp import vjp
from symgrad.ir.graph import Graph, toposort
from symgrad.ir.node import Node
from symgrad.ir.opdef import apply, const
from symgrad.ops.source import make_input


@dataclass(frozen=True)
class Joint:
    """The two passes of a differentiated function.

    ``forward``: inputs → outputs + saved. ``backward``: (cotangents, saved, inputs) → grads,
    one gradient per entry of ``wrt`` (zeros where an output does not depend on it).
    """

    forward: Graph
    backward: Graph
    outputs: tuple[Node, ...]
    saved: tuple[Node, ...]
    cotangents: tuple[Node, ...]
    grads: tuple[Node, ...]
    wrt: tuple[Node, ...]
    cot_map: dict[int, Node]  # id(forward node) -> its cotangent node (for naming g_<name>)

    def remap(self, graph: Graph, mapping: dict[int, Node]) -> Joint:
        """This joint after its ``graph`` was rewritten into ``graph`` (``mapping``: old id ->
        new node, as filled by ``symgrad.passes.optimize``)."""
        n = len(self.outputs)
        outs, grads = tuple(graph.outputs[:n]), tuple(graph.outputs[n:])
        cmap = {
            id(mapping[fid]): mapping[id(c)]
            for fid, c in self.cot_map.items()
            if fid in mapping and id(c) in mapping
        }
        base = Graph(self.forward.inputs, outs, self.forward.input_names)
        return partition(base, outs, self.cotangents, grads, self.wrt, cmap)

    @property
    def graph(self) -> Graph:
        """The joint graph: inputs and cotangents → outputs and gradients."""
        fwd_inputs = self.forward.inputs
        names = (*self.forward.input_names, *(n.attrs["name"] for n in self.cotangents))
        return Graph((*fwd_inputs, *self.cotangents), (*self.outputs, *self.grads), names)


def _zeros(like: Node) -> Node:
    z = const(0.0, like.dtype)
    return z if not like.shape else apply("broadcast_to", (z,), {"shape": like.shape})


def split(graph: Graph, wrt: Sequence[int], n_diff: int | None = None) -> Joint:
    """Differentiate ``graph``'s first ``n_diff`` outputs (default: all) with respect to its
    inputs at positions ``wrt``; the other outputs are computed by the forward pass only."""
    outs = graph.outputs
    diff = outs if n_diff is None else outs[:n_diff]
    cots = tuple(
        make_input(o.shape, o.dtype, name="g_out" if len(diff) == 1 else f"g_out{k}")
        for k, o in enumerate(diff)
    )
    targets = [graph.inputs[i] for i in wrt]
    cmap = vjp(diff, cots, targets, all_nodes=True)
    assert isinstance(cmap, dict)
    grads = tuple(cmap.get(id(t)) or _zeros(t) for t in targets)
    return partition(graph, tuple(outs), cots, grads, tuple(targets), cmap)


def partition(
    graph: Graph,
    outs: tuple[Node, ...],
    cots: tuple[Node, ...],
    grads: tuple[Node, ...],
    targets: tuple[Node, ...],
    cmap: dict[int, Node],
) -> Joint:
    """Split outputs and gradients into a forward and a backward graph (see :class:`Joint`)."""
    fwd_nodes = set(toposort(outs))  # every output: auxiliary ones may be reused too
    inputs = set(graph.inputs)
    reached = toposort(grads, stop=fwd_nodes)
    rank = {id(n): k for k, n in enumerate(toposort(outs))}
    saved = tuple(
        sorted(
            (n for n in reached if n in fwd_nodes and n not in inputs and n.op != "const"),
            key=lambda n: rank[id(n)],
        )
    )
    forward = Graph(graph.inputs, (*outs, *saved), graph.input_names)
    bnames = (
        *(c.attrs["name"] for c in cots),
        *(f"saved{k}" for k in range(len(saved))),
        *graph.input_names,
    )
    backward = Graph((*cots, *saved, *graph.inputs), grads, bnames)
    return Joint(forward, backward, outs, saved, cots, grads, targets, cmap)
