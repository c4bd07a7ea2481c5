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
import inspect
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from symgrad.frontend.tensor import Tensor
from symgrad.frontend.tensor_inplace import INPLACE
from symgrad.frontend.trace import Spec, TracedGraph, trace

_MAX_DEPTH = 8
_OPAQUE = (
    types.ModuleType,
    type,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    np.ndarray,
    np.generic,
    str,
    bytes,
    int,
    float,
    complex,
    bool,
)


@dataclass
class Traced:
    graph: TracedGraph  # outputs: the loss, the extra outputs, the new values of `buffers`
    n_extra: int
    buffers: list[Tensor]


@dataclass
class _Snapshot:
    """The attributes, list items and dict values of the objects reachable from the roots."""

    objects: list[tuple[Any, dict[Any, Any]]] = field(default_factory=list)

    def changed(self) -> Iterator[tuple[Any, Any, Any, Any]]:
        """(container, key, value before, value now) for every slot that changed (MISSING
        before: a new attribute)."""
        for obj, before in self.objects:
            now = _slots(obj)
            for k, v in now.items():
                old = before.get(k, _MISSING)
                if old is not v:
                    yield obj, k, old, v

    def restore(self, obj: Any, key: Any, old: Any) -> None:
        if isinstance(obj, list):
            obj[key] = old
        elif isinstance(obj, dict):
            if old is _MISSING:
                del obj[key]
            else:
                obj[key] = old
        elif old is _MISSING:
            delattr(obj, key)
        else:
            setattr(obj, key, old)


_MISSING = object()


def _slots(obj: Any) -> dict[Any, Any]:
    if isinstance(obj, list):
        return dict(enumerate(obj))
    if isinstance(obj, dict):
        return dict(obj)
    return dict(vars(obj))


def _roots(fn: Callable[..., Any]) -> list[Any]:
    out: list[Any] = []
    bound = getattr(fn, "__self__", None)
    if bound is not None:
        out.append(bound)
    target = getattr(fn, "__func__", fn)
    if isinstance(target, types.FunctionType):
        cv = inspect.getclosurevars(target)
        out += list(cv.nonlocals.values()) + list(cv.globals.values())
    elif not isinstance(target, _OPAQUE) and hasattr(target, "__dict__"):
        out.append(target)  # a callable object (a model)
    return out


def snapshot(fn: Callable[..., Any]) -> _Snapshot:
    snap = _Snapshot()
    seen: set[int] = set()
    stack = [(r, 0) for r in _roots(fn)]
    while stack:
        obj, depth = stack.pop()
        if id(obj) in seen or depth > _MAX_DEPTH or isinstance(obj, (*_OPAQUE, Tensor)):
            continue
        seen.add(id(obj))
        if isinstance(obj, tuple):
            stack += [(v, depth + 1) for v in obj]
            continue
        if not isinstance(obj, list | dict) and not hasattr(obj, "__dict__"):
            continue
        try:
            slots = _slots(obj)
        except TypeError:
            continue
        snap.objects.append((obj, slots))
        stack += [(v, depth + 1) for v in slots.values() if not isinstance(v, Tensor)]
    return snap


def trace_with_state(
    fn: Callable[..., Any], specs: tuple[Spec, ...], roots: Callable[..., Any], carry: bool
) -> Traced:
    """Trace ``fn`` (the loss first among its outputs); see the module docstring. Without
    ``carry`` the graph has the loss only, and the objects are still restored."""
    snap = snapshot(roots)
    saved_log = INPLACE.entries
    INPLACE.entries = []
    found: dict[str, Any] = {}

    @functools.wraps(fn)  # (the graph's inputs are named after fn's parameters)
    def traced(*args: Any) -> Any:
        out = fn(*args)
        outs = list(out) if isinstance(out, tuple | list) else [out]
        if not outs:
            raise ValueError("compile_step: the loss function returned nothing")
        candidates = [(old, new) for _, _, old, new in snap.changed() if _replaced(old, new)]
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
        for obj, key, old, new in list(snap.changed()):
            if isinstance(new, Tensor) or isinstance(old, Tensor):
                snap.restore(obj, key, old)
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
