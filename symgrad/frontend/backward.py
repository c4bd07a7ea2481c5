"""``Tensor.backward()``: differentiate the recorded graph symbolically, run it, fill ``.grad``.

Owns: collecting the Python objects of a recorded graph, choosing who receives gradients
(requires_grad leaves; every ``Value``; tensors that called ``retain_grad()``), and accumulating
into ``.grad``. The backward graph is built by ``symgrad.autodiff.vjp`` (graph nodes, no numeric
closures) and run by the installed executor (generated code, ``symgrad.lower.eager``) or, without
one, by the reference interpreter. With an executor, the prepared backward code is kept per
structure of the recorded graph (``backward_plan``): a later ``backward()`` on a graph of the same
structure — the next minibatch of a training loop — neither differentiates nor lowers anything.
The region's inputs are the nodes that have eager values and the array constants it reads, so
the code never depends on the values of the data. May import: numpy, ``symgrad.ir``,
``symgrad.ops``, ``symgrad.autodiff`` and ``symgrad.frontend.tensor``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from symgrad.autodiff.vjp import vjp
from symgrad.frontend import tensor as _tensor
from symgrad.frontend.backward_plan import PLANS, Executor, Plan, Source, signature
from symgrad.ir.dtypes import DType
from symgrad.ir.errors import ConcretizationError, ShapeError
from symgrad.ir.graph import evaluate, toposort
from symgrad.ir.node import Node
from symgrad.ir.opdef import const, fmt_shape
from symgrad.ir.provenance import Provenance
from symgrad.ops.source import make_input

if TYPE_CHECKING:
    from symgrad.frontend.tensor import Tensor


def collect(root: Tensor) -> list[Tensor]:
    """Every tensor object of the recorded graph behind ``root``, parents first (iterative)."""
    order: list[Tensor] = []
    seen = {id(root)}
    stack: list[tuple[Tensor, int]] = [(root, 0)]
    while stack:
        t, i = stack[-1]
        if i < len(t._parents):
            stack[-1] = (t, i + 1)
            p = t._parents[i]
            if id(p) not in seen:
                seen.add(id(p))
                stack.append((p, 0))
        else:
            stack.pop()
            order.append(t)
    return order


_executor: Executor | None = None


def set_executor(executor: Executor | None) -> None:
    """Choose how backward graphs run (``None``: the reference interpreter). Plans prepared
    by the previous executor are dropped."""
    global _executor
    _executor = executor
    PLANS.clear()


_ONES: dict[DType, Node] = {}  # the seed of a scalar output, per dtype (kept alive: it is reused)


def seed_for(out: Tensor, gradient: Any) -> tuple[Node, np.ndarray | None]:
    """The output cotangent: the constant 1 for a scalar, else an input bound to ``gradient``."""
    if gradient is None:
        if out.node.shape != ():
            raise ShapeError(
                f"backward() without a gradient needs a scalar output, got shape "
                f"{fmt_shape(out.node.shape)}; pass gradient= an array of that shape"
            )
        one = _ONES.get(out.dtype)
        if one is None:
            one = _ONES[out.dtype] = const(1.0, out.dtype)
        return one, None
    g = np.asarray(gradient, dtype=out.dtype.np)
    if g.shape != out.node.shape:
        raise ShapeError(f"gradient: expected shape {fmt_shape(out.node.shape)}, got {g.shape}")
    return make_input(g.shape, out.dtype, name="gradient"), g


def boundary_of(region: Sequence[Node], env: dict[Node, Any]) -> list[Node]:
    """The inputs of a backward region: its nodes with eager values and its array constants
    (a constant's values are data like any other: code that took them in would be keyed by
    them)."""
    return [n for n in region if n in env or n.op == "constant"]


def run(targets: list[Node], env: dict[Node, Any]) -> list[Any]:
    """Values of ``targets`` given the values in ``env`` (generated code when installed)."""
    boundary = boundary_of(toposort(targets, stop=env), env)
    arrays = [env[n] if n in env else n.attrs["value"].array for n in boundary]
    if _executor is not None:
        return _executor.prepare(boundary, targets, "unplanned region")(arrays)
    values = evaluate(targets, dict(zip(boundary, arrays, strict=True)))
    assert isinstance(values, list)
    return values


def gradients(
    out: Node,
    seed: Node,
    seed_value: Any,
    wrt: list[Node],
    wrt_set: set[Node],
    env: dict[Node, Any],
) -> dict[Node, Any]:
    """The gradient arrays of the nodes ``wrt`` (also given as a set) that ``out`` depends on,
    by node."""
    ex = _executor
    if ex is None:
        reached, targets = _differentiate(out, seed, wrt)
        return dict(zip(reached, run(targets, env) if targets else [], strict=True))
    order, sig = signature(out, env, wrt_set)
    policy = ex.policy()
    key = (policy, seed_value is not None, sig)
    plan = PLANS.get(key)
    if plan is None:
        plan = _plan(ex, out, seed, wrt, env, order, PLANS.reason(policy, sig))
        if plan is None:  # (a region this module cannot map onto the forward graph)
            reached, targets = _differentiate(out, seed, wrt)
            return dict(zip(reached, run(targets, env) if targets else [], strict=True))
        PLANS.put(key, policy, sig, plan)
    results = plan.runner(plan.arguments(order, env, seed_value))
    return {order[p]: v for p, v in zip(plan.targets, results, strict=True)}


def _differentiate(out: Node, seed: Node, wrt: list[Node]) -> tuple[list[Node], list[Node]]:
    """The nodes of ``wrt`` that ``out`` depends on, and their cotangent nodes."""
    cots = vjp([out], [seed], wrt, all_nodes=True)
    assert isinstance(cots, dict)
    reached = [n for n in wrt if id(n) in cots]
    return reached, [cots[id(n)] for n in reached]


def _plan(
    ex: Executor,
    out: Node,
    seed: Node,
    wrt: list[Node],
    env: dict[Node, Any],
    order: list[Node],
    reason: str,
) -> Plan | None:
    reached, targets = _differentiate(out, seed, wrt)
    pos = {n: k for k, n in enumerate(order)}
    if not targets:
        return Plan(_nothing, (), ())
    boundary = boundary_of(toposort(targets, stop=env), env)
    sources: list[Source] = []
    for n in boundary:
        if n is seed:
            sources.append(None)
        elif n in pos:
            sources.append(pos[n])
        elif n.op == "constant":  # made by a VJP rule from the structure: a literal
            sources.append(n.attrs["value"].array)
        else:
            return None
    runner = ex.prepare(boundary, targets, reason)
    return Plan(runner, tuple(sources), tuple(pos[n] for n in reached))


def _nothing(arrays: list[Any]) -> list[Any]:
    return []


def versions(tensors: list[Tensor]) -> dict[int, list[Node]]:
    """For each tensor object (by id), the graph nodes it was used as (one per data version)."""
    out: dict[int, list[Node]] = {}
    for t in tensors:
        for p, (node, _) in zip(t._parents, t._pin, strict=True):
            seen = out.setdefault(id(p), [])
            if node not in seen:
                seen.append(node)
    return out


def recorded(out: Tensor) -> tuple[list[Tensor], dict[int, list[Node]], dict[Node, Any]]:
    """The tensor objects behind ``out`` (``out`` first), the graph nodes each was used as (by
    object id; one per data version, see :func:`versions`) and the eager value of every node
    among them: :func:`collect`, :func:`versions` and the values in one walk."""
    tensors = [out]
    used: dict[int, list[Node]] = {id(out): [out.node]}
    env: dict[Node, Any] = {}
    stack = [out]
    push, pop, found = stack.append, stack.pop, tensors.append
    while stack:
        t = pop()
        d = t._data
        if d is not None:
            env[t.node] = d
        parents = t._parents
        if not parents:
            continue
        # (_pin has one entry per parent, made with it: zip without strict= on this path)
        for p, (node, data) in zip(parents, t._pin):  # noqa: B905
            if data is not None:
                env[node] = data
            key = id(p)
            nodes = used.get(key)
            if nodes is None:
                used[key] = [node]
                found(p)
                push(p)
            elif node not in nodes:
                nodes.append(node)
    return tensors, used, env


def run_backward(out: Tensor, gradient: Any = None) -> None:
    if out._data is None:
        raise ConcretizationError(
            "backward() on a traced tensor: inside symgrad.compile/trace, ask for gradients "
            "with wrt= instead",
            Provenance.capture(),
        )
    if not out.requires_grad:
        raise ShapeError(
            "backward(): the output does not depend on any tensor that requires gradients"
        )
    tensors, used, env = recorded(out)
    receivers = [
        t for t in tensors if t.requires_grad and (not t._parents or t._retain or t._always_retain)
    ]
    wrt: list[Node] = []
    chosen: set[Node] = set()
    for t in receivers:
        for n in used.get(id(t), ()):
            if n not in chosen:
                chosen.add(n)
                wrt.append(n)
    seed, seed_value = seed_for(out, gradient)
    if seed_value is not None:
        env[seed] = seed_value
    by_node = gradients(out.node, seed, seed_value, wrt, chosen, env) if wrt else {}
    for t in receivers:
        g: Any = None
        for n in used.get(id(t), ()):
            v = by_node.get(n)
            if v is not None:
                g = v if g is None else g + v
        if g is None:
            g = np.zeros(t.node.shape, dtype=t.dtype.np)
        if t._always_retain:
            t.grad = float(t.grad) + float(g)
        else:
            t.grad = np.array(g, copy=True) if t.grad is None else t.grad + g


_tensor._HOOKS.backward = run_backward
