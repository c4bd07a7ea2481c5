"""Registering an elementwise op declared by a SymPy expression, and its VJP.

:func:`_declare` registers ``op_name(*args) = expr`` as an ``OpDef`` of kind ELEMENTWISE: its
evaluation (:mod:`symgrad.sympy_ops.evaluate`), its emission templates
(:mod:`symgrad.sympy_ops.printers`), its ``sympy_fn`` and its VJP. The VJP multiplies the
cotangent by each partial derivative (:mod:`symgrad.sympy_ops.derive`, derived on the first
VJP); a partial that is not a number or an argument becomes a registered elementwise op of
``(args..., out)`` declared by the same function, so derivatives of derivatives come for free.

Owns: :func:`_declare` and ``_INFOS`` (every op declared by this package, by registry name), the
``eval``, ``vjp`` and ``sympy_fn`` callables of those ops.

May import: numpy, the standard library, ``symgrad.ir``, ``symgrad.ops.infer`` and the modules
``opinfo``, ``derive``, ``evaluate`` and ``printers`` of ``symgrad.sympy_ops``; SymPy only
lazily, inside functions (importing symgrad must not import it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from symgrad.ir.node import Node
from symgrad.ir.opdef import EvalContext, Kind, OpDef, apply, register
from symgrad.ops.infer import ew_infer
from symgrad.sympy_ops.derive import _partial
from symgrad.sympy_ops.evaluate import _compile
from symgrad.sympy_ops.opinfo import _LOCK, _OpInfo
from symgrad.sympy_ops.printers import _emissions

_INFOS: dict[str, _OpInfo] = {}  # by registry name: every op declared here


def _declare(
    op_name: str,
    label: str,
    args: tuple[Any, ...],
    expr: Any,
    overrides: tuple[Any, ...],
    doc: str,
) -> _OpInfo:
    """Register the elementwise op ``op_name(*args) = expr``; returns its info (idempotent)."""
    import sympy as sp

    with _LOCK:
        known = _INFOS.get(op_name)
        if known is not None:
            if sp.srepr(known.expr) != sp.srepr(expr):
                raise RuntimeError(f"op {op_name!r} was declared with another expression")
            return known
        info = _OpInfo(op_name, label, args, expr, overrides)
        fn = _compile(args, expr, label)
        register(
            OpDef(
                op_name,
                Kind.ELEMENTWISE,
                len(args),
                eval=_make_eval(fn),
                infer=ew_infer(float_only=True),
                vjp=_make_vjp(info),
                doc=doc,
                emit=_emissions(args, expr),
                sympy_fn=_builder(args, expr),
                label=info.label,
            )
        )
        _INFOS[op_name] = info
        return info


def _builder(args: tuple[Any, ...], expr: Any) -> Callable[..., Any]:
    """``OpDef.sympy_fn``: the op's expression with its arguments replaced by the given ones."""

    def build(*symbols: Any) -> Any:
        if len(symbols) != len(args):
            raise TypeError(f"expected {len(args)} SymPy arguments, got {len(symbols)}")
        return expr.xreplace(dict(zip(args, symbols, strict=True)))

    return build


def _make_eval(fn: Callable[..., Any]) -> Callable[..., np.ndarray]:
    def run(ctx: EvalContext, *arrays: Any) -> np.ndarray:
        with np.errstate(all="ignore"):
            res = np.asarray(fn(*arrays))
        if res.shape != ctx.shape:  # a constant expression, or an input that was broadcast
            return np.array(np.broadcast_to(res, ctx.shape), dtype=ctx.dtype)
        return res.astype(ctx.dtype, copy=False)

    return run


def _make_vjp(info: _OpInfo) -> Callable[..., tuple[Node | None, ...]]:
    def vjp(g: Node, out: Node, *inputs: Node) -> tuple[Node | None, ...]:
        return tuple(_cotangent(info, i, g, out, inputs) for i in range(len(inputs)))

    return vjp


def _cotangent(info: _OpInfo, i: int, g: Node, out: Node, inputs: tuple[Node, ...]) -> Node | None:
    """``g`` times the partial derivative w.r.t. input ``i`` (None: a symbolic zero)."""
    p = _partial(info, i)
    if p.is_zero is True:
        return None
    if p.is_Number:
        return g * float(p)
    symbols = (*info.args, info.out)
    nodes = (*inputs, out)
    for s, n in zip(symbols, nodes, strict=True):
        if p == s:  # e.g. exp: the derivative is the output itself
            return g * n
    suffix = "_d" if len(info.args) == 1 else f"_d{i}"
    pinfo = _declare(
        info.op_name + suffix,
        f"d{info.label}/d{info.args[i]}",
        symbols,
        p,
        (None,) * len(symbols),
        f"derivative of {info.label!r} w.r.t. {info.args[i]}, a function of "
        f"({', '.join(map(str, symbols))}) where {info.out} is its output: {p}".replace("|", "\\|"),
    )
    return g * apply(pinfo.op_name, nodes)
