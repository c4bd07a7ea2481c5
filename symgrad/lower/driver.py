"""The one lowering driver: graph → (reverse mode) → passes → schedule → Program → module.

Owns: :class:`Lowered` (a graph, the optimised graph its program was scheduled from, and the
Program) and :func:`lower`, the pipeline's middle every entry point shares — ``compile``,
``compile_step``, eager ``backward()``, ``export`` and ``gradcheck`` differ only in what graph
they bring and what they do with the Program (build and load it, or print it into an export) —
and :func:`load` (build the Program with the chosen backend, through the on-disk cache).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from symgrad.autodiff.joint import split
from symgrad.codegen.program import Program
from symgrad.codegen.schedule import schedule
from symgrad.ir.errors import ShapeError
from symgrad.ir.graph import Graph
from symgrad.ir.node import Node
from symgrad.ir.opdef import fmt_shape
from symgrad.passes import DEFAULT_OPT, optimize
from symgrad.passes.reroll import reroll, reroll_outputs
from symgrad.runtime import modules


@dataclass(frozen=True, slots=True)
class Lowered:
    """``graph`` lowered: ``optimised`` is the graph ``prog`` was scheduled from (the joint
    forward+backward graph when differentiated)."""

    graph: Graph
    optimised: Graph
    prog: Program


def lower(
    graph: Graph,
    *,
    wrt: Sequence[int] = (),
    opt: int = DEFAULT_OPT,
    inplace: Sequence[tuple[int, int]] = (),
) -> Lowered:
    """Lower ``graph`` to a Program at optimisation level ``opt``.

    ``wrt``: input positions to differentiate the first output (a float scalar: the loss) with
    respect to; the Program then has a forward function (outputs and saved values) and a
    backward one (the gradients); at ``opt`` 2 a micrograd-form scalar graph is re-rolled into
    tensor ops before it is differentiated (``passes/reroll.py``). ``inplace``: (output index,
    input index) pairs whose results overwrite the input's array (``compile_step``'s
    parameters and optimiser state)."""
    if wrt:
        first = graph.outputs[0]
        if first.shape != () or not first.dtype.is_float:
            raise ShapeError(
                "wrt= differentiates the first output, which must be a float scalar (the "
                f"loss); got {first.dtype}{fmt_shape(first.shape)}"
            )
        joint = split(reroll(graph) if opt >= 2 else graph, list(wrt), n_diff=1)
        mapping: dict[int, Node] = {}
        joint = joint.remap(optimize(joint.graph, opt, mapping), mapping)
        return Lowered(graph, joint.graph, schedule(graph, joint, inplace=list(inplace)))
    rolled = reroll_outputs(graph) if opt >= 2 else graph  # a micrograd step's updates
    optimised = optimize(rolled, opt)
    return Lowered(graph, optimised, schedule(optimised, inplace=list(inplace)))


def load(lowered: Lowered, backend: str | None) -> modules.Built:
    """The built module of ``lowered`` (``backend`` None: C when a compiler works, else NumPy),
    from the on-disk cache when it is there."""
    return modules.load(lowered.prog, backend, lowered.optimised)
