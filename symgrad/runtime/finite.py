"""``check_finite=True``: find where a NaN or an infinity comes from.

Owns: checking a call's arrays for non-finite values and, when an output or gradient is not
finite, re-running the graph with the reference interpreter (``Graph.evaluate(keep=True)``) to
name the first node that produced a non-finite value from finite inputs, with its op and the
user's file:line. May import: numpy and ``symgrad.ir``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from symgrad.ir.errors import NonFiniteError
from symgrad.ir.graph import Graph, evaluate, type_str
from symgrad.ir.node import Node


def first_bad(a: Any) -> tuple[str, tuple[int, ...]] | None:
    """``("nan" | "inf" | "-inf", index)`` of the first non-finite element of a float array."""
    if a is None:
        return None
    arr = np.asarray(a)
    if arr.dtype.kind != "f":
        return None
    bad = ~np.isfinite(arr)
    if not bad.any():
        return None
    idx = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), arr.shape))
    v = arr[idx]
    return ("nan" if np.isnan(v) else "inf" if v > 0 else "-inf"), idx


def _where(bad: tuple[str, tuple[int, ...]]) -> str:
    value, idx = bad
    return value if not idx else f"{value} at index {list(idx)}"


def check_inputs(fname: str, names: Sequence[str], arrays: Sequence[Any]) -> None:
    """Raise :class:`NonFiniteError` naming the first argument holding NaN or ±inf."""
    for name, a in zip(names, arrays, strict=False):
        bad = first_bad(a)
        if bad is not None:
            raise NonFiniteError(
                f"{fname}(): check_finite=True and {name} is not finite ({_where(bad)})"
            )


def _origin(graph: Graph, values: dict[Node, Any], start: Node) -> Node:
    """Among the nodes on a path of non-finite values ending at ``start``, the earliest (in
    topological order) whose inputs are all finite: where the non-finite value was produced."""
    rank = {id(n): k for k, n in enumerate(graph.order)}
    sources: list[Node] = []
    stack, seen = [start], {id(start)}
    while stack:
        n = stack.pop()
        bad = [i for i in n.inputs if first_bad(values.get(i)) is not None]
        if not bad:
            sources.append(n)
        for i in bad:
            if id(i) not in seen:
                seen.add(id(i))
                stack.append(i)
    return min(sources, key=lambda n: rank.get(id(n), len(rank)))


def locate(
    fname: str,
    graph: Graph,
    arrays: Sequence[Any],
    results: Sequence[Any],
    result_names: Sequence[str],
) -> None:
    """Raise :class:`NonFiniteError` when a result is not finite, naming the node that produced
    the first non-finite value (found by re-running ``graph`` with the reference interpreter
    on ``arrays``, the values of ``graph.inputs``)."""
    for k, r in enumerate(results):
        bad = first_bad(r)
        if bad is None:
            continue
        head = f"{fname}(): check_finite=True and {result_names[k]} is not finite ({_where(bad)})"
        env = dict(zip(graph.inputs, arrays, strict=True))
        with np.errstate(all="ignore"):
            values = evaluate(list(graph.outputs), env, keep=True)
        assert isinstance(values, dict)
        out = graph.outputs[k]
        if first_bad(values.get(out)) is None:
            raise NonFiniteError(
                f"{head}; the reference interpreter computes a finite value here, so the "
                "generated code disagrees with it (please report this)"
            )
        node = _origin(graph, values, out)
        nbad = first_bad(values[node])
        assert nbad is not None
        ins = ", ".join(type_str(i) for i in node.inputs)
        via = node.provenance.via if node.provenance is not None else ""
        part = f" in the backward pass ({via})" if via.startswith("vjp") else ""
        raise NonFiniteError(
            f"{head}.\n  The first non-finite value is produced by {node.op}{part} "
            f"({ins} -> {type_str(node)}: {_where(nbad)}) from finite inputs",
            node.provenance,
            node.op,
        )
