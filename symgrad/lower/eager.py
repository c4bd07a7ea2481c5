"""Generated code for eager ``Tensor.backward()``: prepare a backward graph region as a call into
a compiled module, memoised by the region's structural hash. (Eager ``Value`` graphs run on the
tape: ``tape.py``.)

Owns: the eager executor installed into ``symgrad.frontend.backward`` (``prepare``, ``policy``)
and its backend policy: C (when a compiler works) for graphs up to ``SYMGRAD_EAGER_C_MAX_NODES``
nodes (default 5000), the NumPy backend above that (a C compile of a graph that size takes
longer than the NumPy module's run); the bounded in-process table of modules; the compile log
(logger ``symgrad.runtime``) and :func:`eager_stats`. The region is lowered by
:func:`symgrad.lower.driver.lower` at level 1 (compiled once, run every step), or at level 0
above the node limit (there the passes would cost more than they save).

A region's inputs are the nodes with eager values and the array constants it reads, and
``Graph.content_hash`` identifies inputs by position, dtype and shape: the module, its cache
entry and its alias depend on the structure, never on the values of the data. The front end
keeps the returned runner per structure of the recorded graph (``frontend/backward_plan.py``), so
a warm training step does not come here at all.
"""

from __future__ import annotations

import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from symgrad.frontend.backward_plan import PLANS, Runner
from symgrad.ir.graph import Graph, toposort
from symgrad.ir.node import Node
from symgrad.ir.provenance import provenance_override
from symgrad.lower.driver import lower
from symgrad.ops.source import make_input
from symgrad.passes.levels import DEFAULT_OPT
from symgrad.passes.rewrite import rebuild
from symgrad.runtime import modules

#: How many modules the in-process table keeps (the least recently used goes first; a module
#: that leaves it is loaded again from the on-disk cache, without compiling, when needed).
MAX_MODULES = 128

_MEMO: OrderedDict[tuple[str, str], Callable[..., Any]] = OrderedDict()
_log = logging.getLogger("symgrad.runtime")


class _Counts:
    compiles = 0  # modules generated and built by this process (C: a compiler run)
    loads = 0  # modules loaded from the on-disk cache (built by an earlier process)
    prepared = 0  # regions prepared (lowered, or found in the module table by structure)
    compile_seconds = 0.0


@dataclass(frozen=True)
class EagerStats:
    """What eager ``Tensor.backward()`` has done in this process (:func:`eager_stats`).

    - ``backward_plans``: backward passes derived (the first pass of each structure, dtypes and
      shapes: a new plan); ``plan_hits``: passes that reused one (nothing derived, lowered,
      looked up on disk or compiled);
    - ``compiles``: modules generated and built (with the C backend each is a compiler run and a
      new cache entry); ``cache_loads``: modules found in the on-disk cache instead;
    - ``compile_seconds``: time spent generating and building them;
    - ``plans_cached``, ``modules_cached``: the sizes of the two bounded in-process tables.
    """

    backward_plans: int
    plan_hits: int
    compiles: int
    cache_loads: int
    compile_seconds: float
    plans_cached: int
    modules_cached: int


def eager_stats() -> EagerStats:
    """Counters of eager ``backward()``: how many passes reused a plan and how many compiled.

    A training loop that rebuilds the same graph each step compiles on its first step only:
    after it, ``compiles`` stays put and ``plan_hits`` grows by one per step. Each compile is
    also logged at INFO on the ``symgrad.runtime`` logger, with the reason (first eager
    backward pass, new shapes, new structure)."""
    return EagerStats(
        backward_plans=PLANS.built,
        plan_hits=PLANS.hits,
        compiles=_Counts.compiles,
        cache_loads=_Counts.loads,
        compile_seconds=round(_Counts.compile_seconds, 6),
        plans_cached=len(PLANS),
        modules_cached=len(_MEMO),
    )


def clear() -> None:
    """Forget the prepared plans and the in-process module table, and reset the counters of
    :func:`eager_stats` (the disk cache stays)."""
    PLANS.clear()
    PLANS.hits = PLANS.built = 0
    _MEMO.clear()
    _Counts.compiles = _Counts.loads = _Counts.prepared = 0
    _Counts.compile_seconds = 0.0


def c_node_limit() -> int:
    try:
        return int(os.environ.get("SYMGRAD_EAGER_C_MAX_NODES", "5000"))
    except ValueError:
        return 5000


def choose_backend(n_nodes: int) -> str:
    backend = modules.resolve_backend(os.environ.get("SYMGRAD_BACKEND") or None)
    if backend == "c" and (n_nodes > c_node_limit() or not _c_backend_present()):
        return "numpy"
    return backend


def _c_backend_present() -> bool:
    try:
        import symgrad.codegen.c.printer  # noqa: F401
    except ImportError:
        return False
    return True


def policy() -> Hashable:
    """What decides the backend of a prepared region besides its size: the environment
    variables choosing it (a plan prepared under other values is not reused)."""
    env = os.environ
    return (env.get("SYMGRAD_BACKEND"), env.get("SYMGRAD_EAGER_C_MAX_NODES"), env.get("CC"))


def _module(graph: Graph, backend: str, reason: str) -> Callable[..., Any]:
    """The ``forward`` function of the module computing ``graph`` on ``backend``."""
    key = (graph.content_hash, backend)
    forward = _MEMO.get(key)
    if forward is not None:
        _MEMO.move_to_end(key)
        return forward
    t0 = time.perf_counter()
    explicit = bool(os.environ.get("SYMGRAD_BACKEND"))
    # (compiled once per structure, so optimising pays: the default level; very large graphs,
    # which run on NumPy, are lowered as they are: the passes would take longer)
    prog = lower(graph, opt=DEFAULT_OPT if len(graph) <= c_node_limit() else 0).prog
    if backend == "c" and not explicit:  # a failing compiler: NumPy, with a warning
        built = modules.build_c_or_numpy(prog, graph)
    else:
        built = modules.build(prog, backend, graph)
    seconds = time.perf_counter() - t0
    name = getattr(built.module, "__name__", built.path.name)
    if built.compiled_now:
        _Counts.compiles += 1
        _Counts.compile_seconds += seconds
        _log.info(
            "compiled %s for eager backward (%s): %s, %d nodes, %.2f s",
            name,
            reason,
            "C" if built.backend == "c" else "NumPy",
            len(graph),
            seconds,
        )
    else:
        _Counts.loads += 1
        _log.debug("loaded %s for eager backward (%s) from %s", name, reason, built.path)
    forward = built.module.forward
    _MEMO[key] = forward
    while len(_MEMO) > MAX_MODULES:
        _MEMO.popitem(last=False)
    return forward


def region_graph(boundary: Sequence[Node], outputs: Sequence[Node]) -> Graph:
    """The region between ``boundary`` and ``outputs`` as a graph of its own: every boundary
    node is an ``input`` (``v0``, ``v1``, ...; its provenance kept), the region's nodes are
    rebuilt over them. (The passes may look through a node to its inputs: boundary nodes are
    forward values whose inputs lie outside the region.)"""
    names = [f"v{k}" for k in range(len(boundary))]
    sub: dict[Node, Node] = {}
    for b, name in zip(boundary, names, strict=True):
        with provenance_override(b.provenance):
            sub[b] = make_input(b.shape, b.dtype, name=name)
    for n in toposort(outputs, stop=sub):
        if n not in sub and n.inputs:
            sub[n] = rebuild(n, [sub.get(i, i) for i in n.inputs])
    return Graph([sub[b] for b in boundary], [sub.get(o, o) for o in outputs], names)


def prepare(boundary: Sequence[Node], outputs: Sequence[Node], reason: str = "") -> Runner:
    """A function computing ``outputs`` from the arrays of ``boundary`` with generated code."""
    _Counts.prepared += 1
    graph = region_graph(boundary, outputs)
    backend = choose_backend(len(graph))
    forward = _module(graph, backend, reason or "eager backward")
    if backend != "c":

        def run(arrays: list[Any]) -> list[Any]:
            results, _ = forward(*arrays)
            return list(results)

        return run

    views = [False]  # whether this region's arguments have been views: then check first

    def run_c(arrays: list[Any]) -> list[Any]:
        # eager values can be views (x.T, slices): the binding takes C-contiguous buffers
        # only, and refuses anything else with TypeError before it runs. A region whose
        # arguments never were views calls it straight away; once they were, they are checked
        # first (the same structure has the same views every step)
        if not views[0]:
            try:
                results, _ = forward(*arrays)
                return list(results)
            except TypeError:
                views[0] = True
        for k, a in enumerate(arrays):
            if not a.flags.c_contiguous:
                arrays[k] = np.ascontiguousarray(a)
        results, _ = forward(*arrays)
        return list(results)

    return run_c


def execute(boundary: list[Node], outputs: list[Node], arrays: list[Any]) -> list[Any]:
    """Run the region between ``boundary`` and ``outputs`` with generated code."""
    return prepare(boundary, outputs)(list(arrays))
