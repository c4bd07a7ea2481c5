"""The module state a training step updates, found while tracing it, and the user's objects
restored afterwards.

Owns: :func:`trace_with_state`. Before tracing, it records the tensors reachable from the loss
function (its closure and the globals it names, through objects' attributes, lists and dicts:
the model, its layers, their buffers); during the trace, in-place updates of captured leaves
are logged (``symgrad.frontend.tensor_inplace.INPLACE``). A recorded tensor that the trace
*read* and then replaced (``self.running_mean = ...`` under ``no_grad``) or updated in place is
module state: its new value becomes an output of the step graph, written into the tensor's
array after every step. Whatever else the trace left in those objects — traced tensors cached
on a layer (``self.out = x @ self.weight``) — is put back as it was, so nothing traced outlives
the trace (and no later error blames it). May import: every symgrad layer.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from symgrad.frontend.tensor import Tensor
from symgrad.frontend.tensor_inplace import INPLACE
from symgrad.frontend.trace import Spec, TracedGraph, trace
from symgrad.frontend.trace_state import snapshot


@dataclass
class Traced:
    graph: TracedGraph  # outputs: the loss, the extra outputs, the new values of `buffers`
    n_extra: int
    buffers: list[Tensor]


def trace_with_state(
    fn: Callable[..., Any], specs: tuple[Spec, ...], roots: Callable[..., Any], carry: bool
) -> Traced:
    """Trace ``fn`` (the loss first among its outputs); see the module docstring. Without
    ``carry`` the graph has the loss only, and the objects are still restored."""
    snap = snapshot(roots)
    saved_log = INPLACE.entries
    INPLACE.entries = []
    found: dict[str, Any] = {}

    # (the graph's inputs are named after fn's parameters; the snapshot is reached through a
    # default, not a closure cell, so that tracing does not name the user's objects after it)
    @functools.wraps(fn)
    def traced(*args: Any, _changed: Callable[[], Any] = snap.changed) -> Any:
        out = fn(*args)
        outs = list(out) if isinstance(out, tuple | list) else [out]
        if not outs:
            raise ValueError("compile_step: the loss function returned nothing")
        candidates = [(old, new) for _, _, old, new in _changed() if _replaced(old, new)]
        candidates += [(t, t) for t, _, _ in INPLACE.entries or ()]
        found["n_extra"] = len(outs) - 1
        found["candidates"] = candidates
        if not carry:
            return outs[0]
        return (*outs, *(new for _, new in candidates))

    try:
        graph = trace(traced, *specs)
    finally:
        entries = INPLACE.entries or []
        INPLACE.entries = saved_log
        for t, node, data in entries:  # updated in place: back to the leaf it was
            t.node, t._data, t._parents, t._pin = node, data, (), ()
        snap.restore_tensors()
    return _keep_state(graph, found, carry)


def _replaced(old: Any, new: Any) -> bool:
    return isinstance(old, Tensor) and isinstance(new, Tensor) and old._data is not None


def _keep_state(graph: TracedGraph, found: dict[str, Any], carry: bool) -> Traced:
    """Keep the candidates the trace read (module state); drop the others' outputs."""
    n_extra = int(found.get("n_extra", 0)) if carry else 0
    if not carry:
        return Traced(graph, 0, [])
    candidates = found.get("candidates", [])
    inputs = {id(n): k for k, n in enumerate(graph.inputs)}
    caps = list(graph.captures)
    keep: list[Tensor] = []
    outputs = list(graph.outputs[: 1 + n_extra])
    for (old, _), out in zip(candidates, graph.outputs[1 + n_extra :], strict=True):
        k = inputs.get(id(old.node))
        if k is None or k < graph.n_args:
            continue  # never read: a cached intermediate (restored), not state
        caps[k - graph.n_args] = old  # (an in-place update's capture is a stand-in: the tensor)
        if not old._data.flags.writeable:  # (written after every step; same values)
            old._data = np.array(old._data)
        keep.append(old)
        outputs.append(out)
    kept = TracedGraph(graph.inputs, outputs, graph.input_names, graph.n_args, caps, graph.specs)
    return Traced(kept, n_extra, keep)
