"""Generated code for eager ``Tensor.backward()``: run a backward graph region through a
compiled module, memoised by the region's structural hash so a training loop that rebuilds the
same graph each step compiles once. (Eager ``Value`` graphs run on the tape: ``tape.py``.)

Owns: the eager executor installed into ``symgrad.frontend.backward`` and its backend policy:
C (when a compiler works) for graphs up to ``SYMGRAD_EAGER_C_MAX_NODES`` nodes (default 5000),
the NumPy backend above that (a C compile of a graph that size takes longer than the NumPy
module's run). The region is lowered by :func:`symgrad.lower.driver.lower` at level 0 (an eager
graph runs once per step: optimising it would cost more than it saves).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from symgrad.ir.graph import Graph
from symgrad.ir.node import Node
from symgrad.lower.driver import lower
from symgrad.runtime import modules

_MEMO: dict[tuple[str, str], Any] = {}


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


def execute(boundary: list[Node], outputs: list[Node], arrays: list[Any]) -> list[Any]:
    """Run the region between ``boundary`` and ``outputs`` with generated code."""
    names = [f"v{k}" for k in range(len(boundary))]
    graph = Graph(boundary, outputs, names)
    backend = choose_backend(len(graph))
    key = (graph.content_hash, backend)
    module = _MEMO.get(key)
    if module is None:
        explicit = bool(os.environ.get("SYMGRAD_BACKEND"))
        prog = lower(graph, opt=0).prog
        if backend == "c" and not explicit:  # a failing compiler: NumPy, with a warning
            module = modules.build_c_or_numpy(prog, graph).module
        else:
            module = modules.build(prog, backend, graph).module
        _MEMO[key] = module
    if backend == "c":  # eager values can be views (x.T, slices): C reads contiguous buffers
        arrays = [a if a.flags.c_contiguous else np.ascontiguousarray(a) for a in arrays]
    results, _ = module.forward(*arrays)
    return list(results)
