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

    @property
    def graph(self) -> Graph:
        """The joint graph: inputs and cotangents → outputs and gradients."""
        fwd_inputs = self.forward.inputs
        names = (*self.forward.input_names, *(n.attrs["name"] for n in self.cotangents))
        return Graph((*fwd_inputs, *self.cotangents), (*self.outputs, *self.grads), names)


def _zeros(like: Node) -> Node:
    z = const(0.0, like.dtype)
    return z if not like.shape else apply("broadcast_to", (z,), {"shape": like.shape})


def split(graph: Graph, wrt: Sequence[int]) -> Joint:
    """Differentiate ``graph``'s outputs with respect to its inputs at positions ``wrt``."""
    outs = graph.outputs
    cots = tuple(
        make_input(o.shape, o.dtype, name="g_out" if len(outs) == 1 else f"g_out{k}")
        for k, o in enumerate(outs)
    )
    targets = [graph.inputs[i] for i in wrt]
    res = vjp(outs, cots, targets)
    assert isinstance(res, list)
    grads = tuple(g if g is not None else _zeros(t) for g, t in zip(res, targets, strict=True))
    fwd_nodes = set(toposort(outs))
    inputs = set(graph.inputs)
    reached = toposort(grads, stop=fwd_nodes)
    saved = tuple(
        n for n in reached if n in fwd_nodes and n not in inputs and n.op not in ("const",)
    )
    forward = Graph(graph.inputs, (*outs, *saved), graph.input_names)
    bnames = (
        *(c.attrs["name"] for c in cots),
        *(f"saved{k}" for k in range(len(saved))),
        *graph.input_names,
    )
    backward = Graph((*cots, *saved, *graph.inputs), grads, bnames)
    return Joint(forward, backward, tuple(outs), saved, cots, grads, tuple(targets))
