"""The reverse-mode driver: walks a graph backwards calling each op's local VJP rule.

Owns: which nodes need gradients, the reverse walk (iterative, so deep graphs never hit the
recursion limit), summing the cotangents of multi-use nodes, undoing broadcasting, and symbolic
zeros (``None``). Rules build graph nodes, never numbers, so the result is itself a graph and can
be differentiated again. May import: ``symgrad.ir`` and ``symgrad.ops``.
"""

from __future__ import annotations

from collections.abc import Sequence

from symgrad.ir.errors import ShapeError, SymgradError
from symgrad.ir.graph import toposort
from symgrad.ir.node import Node, Shape
from symgrad.ir.opdef import apply, const, fmt_shape, get_op
from symgrad.ir.provenance import _OVERRIDE, Provenance


class MissingRuleError(SymgradError, NotImplementedError):
    """An op is marked differentiable but declares no VJP rule."""


def unbroadcast(ct: Node, shape: Shape) -> Node:
    """Sum ``ct`` over the axes that broadcasting added to reach ``shape``."""
    if ct.shape == shape:
        return ct
    lead = ct.ndim - len(shape)
    if lead < 0:  # a rule returned something smaller (e.g. a scalar): broadcast it up
        return apply("broadcast_to", (ct,), {"shape": shape})
    axes = tuple(range(lead)) + tuple(
        lead + i for i, d in enumerate(shape) if d == 1 and ct.shape[lead + i] != 1
    )
    for i, d in enumerate(shape):
        if d != 1 and ct.shape[lead + i] != d:
            raise ShapeError(
                f"cotangent of shape {fmt_shape(ct.shape)} does not reduce to {fmt_shape(shape)}"
            )
    s = apply("sum", (ct,), {"axis": axes, "keepdims": True}) if axes else ct
    return s if s.shape == shape else apply("reshape", (s,), {"shape": shape})


def needs_grad(order: Sequence[Node], wrt: Sequence[Node]) -> set[int]:
    """ids of the nodes through which a gradient can flow from one of ``wrt``."""
    need = {id(w) for w in wrt}
    differentiable: dict[str, bool] = {}
    for n in order:
        if id(n) in need or not n.inputs or not n.dtype.is_float:
            continue
        d = differentiable.get(n.op)
        if d is None:
            d = differentiable[n.op] = get_op(n.op).differentiable
        if not d:
            continue
        for i in n.inputs:
            if id(i) in need:
                need.add(id(n))
                break
    return need


def vjp(
    outputs: Sequence[Node],
    cotangents: Sequence[Node],
    wrt: Sequence[Node],
    all_nodes: bool = False,
) -> list[Node | None] | dict[int, Node]:
    """Cotangents of ``wrt`` given output cotangents; ``None`` means a symbolic zero.

    With ``all_nodes`` the dict of every reached node's cotangent (by node id) is returned.
    """
    order = toposort(outputs)
    need = needs_grad(order, wrt)
    cot: dict[int, Node] = {}
    for o, g in zip(outputs, cotangents, strict=True):
        if id(o) in need:
            g = unbroadcast(g, o.shape)
            cot[id(o)] = cot[id(o)] + g if id(o) in cot else g
    # the provenance of a rule's nodes, per (forward provenance, op): one object per model line
    vias: dict[tuple[int, str], Provenance] = {}
    for n in reversed(order):
        gn = cot.get(id(n))
        if gn is None or not n.inputs:
            continue
        op = get_op(n.op)
        if op.vjp is None:
            raise MissingRuleError(f"op {n.op!r} is differentiable but has no VJP rule")
        p = n.provenance
        via = None
        if p is not None:
            via = vias.get((id(p), n.op))  # p is alive while n is
            if via is None:
                via = vias[id(p), n.op] = Provenance(p.file, p.line, p.function, f"vjp {n.op}")
        _OVERRIDE.append(via)  # nodes built by the rule carry the forward node's provenance
        try:
            raw = op.vjp(gn, n, *n.inputs, **n.attrs)
            if len(raw) != len(n.inputs):
                raise MissingRuleError(
                    f"VJP rule of {n.op!r} returned {len(raw)} cotangents "
                    f"for {len(n.inputs)} inputs"
                )
            for inp, ct in zip(n.inputs, raw, strict=True):
                if ct is None or id(inp) not in need:
                    continue
                if ct.shape != inp.shape:
                    ct = unbroadcast(ct, inp.shape)
                if ct.dtype is not inp.dtype:
                    raise MissingRuleError(
                        f"VJP rule of {n.op!r} gave a {ct.dtype} cotangent for a {inp.dtype} input"
                    )
                prev = cot.get(id(inp))
                cot[id(inp)] = ct if prev is None else apply("add", (prev, ct))  # prev + ct
        finally:
            _OVERRIDE.pop()
    if all_nodes:
        return cot
    return [cot.get(id(w)) for w in wrt]


def grad(output: Node, wrt: Sequence[Node]) -> list[Node]:
    """Gradients of a scalar ``output`` with respect to ``wrt`` (zeros where independent)."""
    if output.shape != ():
        raise ShapeError(f"grad needs a scalar output, got shape {fmt_shape(output.shape)}")
    res = vjp([output], [const(1.0, output.dtype)], wrt)
    assert isinstance(res, list)
    out: list[Node] = []
    for w, g in zip(wrt, res, strict=True):
        if g is None:
            g = const(0.0, w.dtype)
            if w.shape:
                g = apply("broadcast_to", (g,), {"shape": w.shape})
        out.append(g)
    return out
