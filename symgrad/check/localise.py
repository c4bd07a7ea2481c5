"""Localisation for :mod:`symgrad.gradcheck`: which local rule is wrong, and where.

Owns: :class:`Culprit` and :func:`localise`: checking every node's VJP rule against central
differences of that node's own forward (``OpDef.eval``) at the values of one run of the
reference interpreter (a vector–Jacobian comparison ``u·J·v`` per input, with a random
cotangent ``u`` and random directions ``v``); the scan for non-differentiable points (relu/abs/
sign at 0, ties of maximum/minimum/max and of comparisons); finding the generated statements of
a node's VJP in compiled source. The report's text is :mod:`symgrad.gradcheck_report`.

May import: numpy and every symgrad layer (``ir``, ``ops``, ``autodiff``, ``backends``,
``runtime``): like :mod:`symgrad.api`, this is a top-level module; only
:mod:`symgrad.gradcheck` imports it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from symgrad.autodiff.vjp import grad, needs_grad, unbroadcast
from symgrad.ir.graph import Graph, evaluate, toposort
from symgrad.ir.node import Node
from symgrad.ir.opdef import EvalContext, get_op, op_label, resolve_shape
from symgrad.ops.source import make_input
from symgrad.runtime.compiled import CompiledFunction

Values = Mapping[Node, np.ndarray]


@dataclass(frozen=True)
class Site:
    """Where a node comes from: its op (registry name and the name people know) and the user's
    line that created it."""

    op: str
    label: str
    file: str
    line: int
    source: str

    @property
    def short(self) -> str:
        return f"{os.path.basename(self.file)}:{self.line}"

    @property
    def user_op(self) -> bool:
        """Whether the op was declared with ``symgrad.elementwise``."""
        return self.label != self.op

    def where(self) -> str:
        return f"{self.file}:{self.line}" + (f": {self.source}" if self.source else "")


def site_of(node: Node) -> Site:
    p = node.provenance
    label = op_label(node.op)
    if p is None:
        return Site(node.op, label, "<unknown>", 0, "")
    return Site(node.op, label, p.file, p.line, p.source)


@dataclass(frozen=True)
class RuleMismatch:
    """A node whose VJP rule disagrees with differences of its forward (or that raised)."""

    site: Site
    input_index: int
    input_type: str  # e.g. "f64[3,4]"
    numeric: float  # u·J·v by central differences of the op's eval
    rule: float  # u·J·v from the rule (<rule's cotangent, v>)
    abs_err: float
    rel_err: float
    error: str = ""  # the exception text when the rule could not be evaluated


@dataclass(frozen=True)
class Kink:
    """Non-differentiable points of one node at the checked values."""

    site: Site
    what: str  # "relu at 0", "maximum tie", ...
    count: int  # how many elements


def reference_values(graph: Graph, arrays: Sequence[np.ndarray]) -> dict[Node, np.ndarray]:
    """Every node's value (reference interpreter) for the first output of ``graph``."""
    env = dict(zip(graph.inputs, arrays, strict=True))
    vals = evaluate(graph.outputs[:1], env, keep=True)
    assert isinstance(vals, dict)
    return vals


def _type(node: Node) -> str:
    return f"{node.dtype.short}[{','.join(str(d) for d in node.shape)}]"


def _near(a: np.ndarray, b: np.ndarray | float, eps: float) -> np.ndarray:
    a64 = np.asarray(a, dtype=np.float64)
    return np.asarray(np.abs(a64 - b) <= eps * np.maximum(1.0, np.abs(a64)))


def kinks(graph: Graph, vals: Values, wrt: Sequence[Node], eps: float) -> list[Kink]:
    """Nodes on the gradient's path that sit at (or within a difference step of) a point where
    they are not differentiable: relu/abs/sign at 0, ties of maximum/minimum, of a max
    reduction and of comparisons of values that depend on ``wrt``."""
    order = toposort(graph.outputs[:1])
    need = needs_grad(order, wrt)
    found: list[Kink] = []
    for n in order:
        if not n.inputs or not any(id(i) in need for i in n.inputs):
            continue
        ins = [vals[i] for i in n.inputs]
        if any(np.asarray(a).dtype.kind != "f" for a in ins[:2]):
            continue
        count, what = 0, ""
        kind = get_op(n.op).kinks
        if kind == "zero":
            count, what = int(_near(ins[0], 0.0, eps).sum()), f"{op_label(n.op)} at 0"
        elif kind == "ties" and len(ins) == 2:
            a, b = np.broadcast_arrays(ins[0], ins[1])
            count, what = int(_near(a, b, eps).sum()), f"{op_label(n.op)} tie"
        elif kind == "reduced ties":
            x = np.asarray(ins[0], dtype=np.float64)
            axis = n.attrs["axis"]
            top = np.max(x, axis=axis, keepdims=True)
            hits = np.sum(_near(x, top, eps), axis=axis)
            count, what = int(np.sum(hits > 1)), f"{op_label(n.op)} tie"
        if count:
            found.append(Kink(site_of(n), what, count))
    return found


def _eval(node: Node, args: Sequence[np.ndarray]) -> np.ndarray:
    op = get_op(node.op)
    ctx = EvalContext(node.attrs, resolve_shape(node.shape, {}), node.dtype.np, {})
    with np.errstate(all="ignore"):
        return np.asarray(op.eval(ctx, *args), dtype=np.float64)


def _rule_cotangents(node: Node, vals: Values, u: np.ndarray, need: set[int]) -> list[Any]:
    """The rule's cotangent of each input (None: not needed or a symbolic zero), evaluated."""
    op = get_op(node.op)
    assert op.vjp is not None
    g = make_input(node.shape, node.dtype, name="u")
    raw = op.vjp(g, node, *node.inputs, **node.attrs)
    if len(raw) != len(node.inputs):
        raise ValueError(f"the rule returned {len(raw)} cotangents for {len(node.inputs)} inputs")
    cts = [
        None if ct is None or id(i) not in need else unbroadcast(ct, i.shape)
        for i, ct in zip(node.inputs, raw, strict=True)
    ]
    live = [ct for ct in cts if ct is not None]
    env: dict[Node, Any] = {g: u.astype(node.dtype.np), node: vals[node]}
    env.update({i: vals[i] for i in node.inputs})
    got = evaluate(live, env, dims={}) if live else []
    assert isinstance(got, list)
    it = iter(got)
    return [None if ct is None else np.asarray(next(it), dtype=np.float64) for ct in cts]


def _check_node(
    node: Node,
    vals: Values,
    need: set[int],
    eps: float,
    atol: float,
    rtol: float,
    rng: np.random.Generator,
) -> RuleMismatch | None:
    site = site_of(node)
    out = np.asarray(vals[node], dtype=np.float64)
    u = rng.standard_normal(out.shape)
    try:
        cts = _rule_cotangents(node, vals, u, need)
    except Exception as e:  # a broken rule: that is the finding
        k = next(k for k, i in enumerate(node.inputs) if id(i) in need)
        msg = f"{type(e).__name__}: {e}"
        return RuleMismatch(site, k, _type(node.inputs[k]), np.nan, np.nan, np.inf, np.inf, msg)
    args = [np.asarray(vals[i]) for i in node.inputs]
    for k, inp in enumerate(node.inputs):
        if id(inp) not in need:
            continue
        ct = cts[k] if cts[k] is not None else np.zeros(args[k].shape)
        for _ in range(2):
            v = rng.standard_normal(args[k].shape)
            moved = list(args)
            moved[k] = args[k] + eps * v
            plus = _eval(node, moved)
            moved[k] = args[k] - eps * v
            minus = _eval(node, moved)
            numeric = float(np.sum(u * (plus - minus))) / (2 * eps)
            rule = float(np.sum(ct * v))
            # the size of u·J·v's terms (its L2 norm): a rule off by a factor 1 + rtol is
            # off by about rtol times this; differences in float64 are far more accurate
            scale = float(np.sqrt(np.sum((u * (plus - minus)) ** 2))) / (2 * eps)
            tol = atol + rtol * max(scale, abs(rule))
            err = abs(numeric - rule)
            if err <= tol:
                continue
            # a kink of this node: the one-sided differences disagree and the rule lies between
            d_hi = float(np.sum(u * (plus - out))) / eps
            d_lo = float(np.sum(u * (out - minus))) / eps
            lo, hi = min(d_hi, d_lo) - tol, max(d_hi, d_lo) + tol
            if abs(d_hi - d_lo) > tol and lo <= rule <= hi:
                continue
            rel = err / max(abs(numeric), abs(rule), 1e-300)
            return RuleMismatch(site, k, _type(inp), numeric, rule, err, rel)
    return None


def check_rules(
    graph: Graph,
    vals: Values,
    wrt: Sequence[Node],
    eps: float,
    atol: float,
    rtol: float,
    seed: int,
) -> list[RuleMismatch]:
    """Every differentiable node on the gradient's path whose VJP rule disagrees with central
    differences of its own forward, in reverse topological order (the first is closest to the
    output)."""
    order = toposort(graph.outputs[:1])
    need = needs_grad(order, wrt)
    rng = np.random.default_rng([seed, 7])
    found: list[RuleMismatch] = []
    for n in reversed(order):
        if id(n) not in need or not n.inputs or not get_op(n.op).differentiable:
            continue
        bad = _check_node(n, vals, need, eps, atol, rtol, rng)
        if bad is not None:
            found.append(bad)
    return found


def statements(source: str, backend: str, site: Site, limit: int = 14) -> list[str]:
    """The lines of generated ``source`` that compute the VJP of the node at ``site``: the
    statements whose comment says ``(vjp <op>)`` at that file:line (C: with their loops)."""
    marker = re.compile(re.escape(f"(vjp {site.label})  {site.short}") + r"(?!\d)")
    lines = source.splitlines()
    picked: list[str] = []
    for k, line in enumerate(lines):
        if not marker.search(line):
            continue
        if backend != "c":
            picked.append(line)
            continue
        indent = len(line) - len(line.lstrip())
        picked.append(line)
        for nxt in lines[k + 1 :]:
            stripped = nxt.lstrip()
            at_top = len(nxt) - len(stripped) <= indent
            if at_top and (stripped.startswith("/*") or stripped.startswith("_done") or not nxt):
                break
            picked.append(nxt)
    if len(picked) > limit:
        picked = [*picked[:limit], "    ..."]
    pad = min((len(s) - len(s.lstrip()) for s in picked if s.strip()), default=0)
    return [s[pad:].rstrip() for s in picked]


@dataclass(frozen=True)
class Culprit:
    """Where a failure comes from. ``kind``: ``"rule"`` (a node's VJP rule disagrees with
    differences of its own forward: ``site``, ``mismatch``, the generated ``statements``),
    ``"codegen"`` (every rule agrees and the reference interpreter's gradient differs from the
    generated code's) or ``"unknown"``."""

    kind: str
    backends: tuple[str, ...]  # the backends that failed
    site: Site | None = None
    mismatch: RuleMismatch | None = None
    statements: tuple[str, ...] = ()
    quoted_backend: str = ""
    others: int = 0  # further nodes whose rules disagree too
    detail: str = ""


def localise(
    graph: Graph,
    vals: dict[Node, np.ndarray],
    wrt: list[Node],
    compiled: dict[str, CompiledFunction],
    failing: tuple[str, ...],
    grads: dict[str, list[np.ndarray]],
    opts: tuple[float, float, float],
    seed: int,
) -> Culprit:
    eps, atol, rtol = opts
    found = check_rules(graph, vals, wrt, eps, atol, rtol, seed)
    be = failing[0]
    if found:
        m = found[0]
        try:
            src = compiled[be].source("backward")
        except (OSError, ValueError):
            src = ""
        lines = tuple(statements(src, be, m.site))
        return Culprit("rule", failing, m.site, m, lines, be, len(found) - 1)
    env = {n: vals[n] for n in graph.inputs}
    ref = evaluate(grad(graph.outputs[0], wrt), env)
    for b in failing:
        for k, (mine, want) in enumerate(zip(grads[b], ref, strict=True)):
            diff = float(np.max(np.abs(mine - want), initial=0.0))
            if not diff <= atol + rtol * float(np.max(np.abs(want), initial=0.0)):
                name = graph.input_names[graph.inputs.index(wrt[k])]
                return Culprit(
                    "codegen",
                    failing,
                    quoted_backend=b,
                    detail=f"the generated {b} code's gradient of {name} differs from the "
                    f"reference interpreter's by up to {diff:.3g}, and every VJP rule agrees "
                    "with finite differences of its op: a code generation bug",
                )
    return Culprit(
        "unknown",
        failing,
        detail="every VJP rule agrees with finite differences of its op at this point, and the "
        "generated code computes what the graph says; the function may be too curved or too "
        "rough at this point for this eps (try another eps, or nudge=True)",
    )
