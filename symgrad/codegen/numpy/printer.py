"""The NumPy printer: a Program becomes a Python module that imports nothing but NumPy.

Owns: printing operands (names, typed literals), attributes (shapes with dim variables, slices,
axes) and each statement from its op's NumPy lowering (``OpDef.lowering("numpy", dtype)``, with
the helper routines the op declares), then laying the module out with
``templates/numpy/module.py.j2``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from symgrad.codegen.compact import describe
from symgrad.codegen.program import Function, Program, Region
from symgrad.codegen.templating import render
from symgrad.codegen.text import line_comment, py_string
from symgrad.ir.graph import type_str
from symgrad.ir.node import Node
from symgrad.ir.opdef import get_op, lowering_of

_COMMENT_COL = 44


def literal(value: Any, node: Node) -> str:
    """A Python literal with the node's dtype (float32 constants are wrapped, not upcast)."""
    if isinstance(value, bool) or node.dtype.name == "bool":
        return "True" if value else "False"
    if node.dtype.name == "int64":
        v = str(int(value))
        return f"({v})" if v.startswith("-") else v
    f = float(value)
    if math.isnan(f):
        text = "np.nan"
    elif math.isinf(f):
        text = "np.inf" if f > 0 else "(-np.inf)"
    else:
        text = repr(f)
    if node.dtype.name == "float32":
        n = reciprocal_of(f, lambda k: float(np.float32(1.0 / k)))
        return f"np.float32(1 / {n})" if n else f"np.float32({text})"
    n = reciprocal_of(f, lambda k: 1.0 / k)
    if n:
        return f"(1 / {n})"  # a mean's 1/n: legible, and the same double as the literal
    return f"({text})" if text.startswith("-") else text


def reciprocal_of(f: float, recip: Any) -> int:
    """``n`` when the constant ``f`` is ``1/n`` for an integer ``n`` (exactly: ``recip(n) ==
    f``) and its decimal literal is long (``0.0013717421124828531``, not ``0.125``), else 0."""
    if not (0.0 < f < 0.5) or len(repr(f)) <= 8:
        return 0
    n = round(1.0 / f)
    if n < 2 or n > 10**12 or recip(n) != f:
        return 0
    return int(n)


class NumpyPrinter:
    def __init__(self, prog: Program) -> None:
        self.prog = prog
        self.helpers: set[str] = set()

    def operand(self, node: Node) -> str:
        if node.op == "const":
            return literal(node.attrs["value"], node)
        return self.prog.operand(node)

    def dim(self, d: int | str) -> str:
        return str(d) if isinstance(d, int) else self.prog.dim_vars[d]

    def shape(self, shape: tuple[Any, ...]) -> str:
        inner = ", ".join(self.dim(d) for d in shape)
        return f"({inner},)" if len(shape) == 1 else f"({inner})"

    def index(self, index: tuple[tuple[Any, Any, Any], ...]) -> str:
        parts = []
        for start, stop, step in index:
            stop_s = "" if step < 0 and isinstance(stop, int) and stop < 0 else self.dim(stop)
            parts.append(f"{start}:{stop_s}:{step}" if (start, step) != (0, 1) else f":{stop_s}")
        return ", ".join(parts) if len(parts) != 1 else parts[0] + ","

    def fields(self, node: Node, args: list[str]) -> dict[str, str]:
        a = node.attrs
        f: dict[str, str] = {
            "args": ", ".join(args),
            "args_tuple": _tuple(args),
            "rest_tuple": _tuple(args[1:]),
        }
        if "shape" in a:
            f["shape"] = self.shape(a["shape"])
        for key in ("axis", "perm", "keepdims", "num_classes"):
            if key in a:
                f[key] = repr(a[key])
        if "index" in a:
            f["index"] = self.index(a["index"])
        if "dtype" in a:
            f["dtype"] = str(a["dtype"])
        if "n" in a:
            f["n"] = self.dim(a["n"])
        if "dims" in a:
            f["dims"] = " * ".join(self.dim(d) for d in a["dims"]) or "1"
        if node.op == "constant":
            f["const"] = self.prog.operand(node)
        return f

    def expr(self, node: Node, operands: list[str] | None = None) -> str:
        """The expression of ``node``; ``operands`` replaces its inputs' names."""
        op = get_op(node.op)
        template = lowering_of(node, "numpy")
        args = operands if operands is not None else [self.operand(i) for i in node.inputs]
        self.helpers.update(op.helpers.get("numpy", ()))
        text = (
            template(args, node)
            if callable(template)
            else template.format(*args, **self.fields(node, args))
        )
        if op.reports_site:
            p = node.provenance
            text = text[:-1] + f", {py_string(p.short if p else node.op)})"
        return str(text)

    def function(self, fn: Function, saved_names: list[str]) -> dict[str, Any]:
        params = [name for name, _ in fn.params]
        prologue: list[str] = []
        sig = ", ".join(f"{name}: {type_str(n)}" for name, n in fn.params)
        body: list[dict[str, Any]] = []
        for k, s in enumerate([*fn.stmts, None]):
            if fn.region is not None and k == fn.region.at:
                for code, comment in region_lines(self, fn.region):
                    pad = max(0, _COMMENT_COL - len(code))
                    body.append({"code": code, "comment": line_comment(comment), "pad": pad})
            if s is None:
                break
            code = f"{s.target} = {self.expr(s.node)}"
            pad = max(0, _COMMENT_COL - len(code))
            body.append({"code": code, "comment": line_comment(s.where), "pad": pad})
        for k, p in fn.inplace:  # parameters updated in place, after every other statement
            pname, pnode = fn.params[p]
            if fn.outputs[k] is not pnode:
                code = f"{pname}[...] = {self.operand(fn.outputs[k])}"
                pad = max(0, _COMMENT_COL - len(code))
                body.append({"code": code, "comment": "updated in place", "pad": pad})
        kept = fn.returned()
        outs = [self.operand(fn.outputs[k]) for k in kept]
        n_res = sum(k < fn.n_results for k in kept)
        results, saved = outs[:n_res], outs[n_res:]
        ret = _tuple(results) + (", " + _tuple(saved) if fn.name == "forward" else "")
        return {
            "name": fn.name,
            "params": params,
            "signature": line_comment(
                f"({sig}) -> "
                + _tuple([type_str(fn.outputs[k]) for k in kept if k < fn.n_results]),
                limit=10_000,
            ),
            "prologue": prologue,
            "body": body,
            "ret": ret,
            "saved": saved_names,
        }


def _tuple(items: list[str]) -> str:
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


def render_numpy(prog: Program) -> str:
    """The module source for ``prog``: ``forward`` and, if differentiated, ``backward``."""
    pr = NumpyPrinter(prog)
    fwd = pr.function(prog.forward, [])
    for var, param, axis in prog.forward.dims:
        fwd["prologue"].append(f"{var} = {param}.shape[{axis}]")
    functions = [fwd]
    if prog.backward is not None:
        bwd = pr.function(prog.backward, [])
        n_cot = (
            len(prog.backward.params)
            - len(prog.forward.params)
            - (len(prog.forward.outputs) - prog.forward.n_results)
        )
        cot_names = [name for name, _ in prog.backward.params[:n_cot]]
        saved_names = [
            name
            for name, _ in prog.backward.params[
                n_cot : len(prog.backward.params) - len(prog.forward.params)
            ]
        ]
        bwd["params"] = [*cot_names, "saved", *[n for n, _ in prog.forward.params]]
        if saved_names:
            bwd["prologue"].append(f"{_tuple(saved_names)} = saved")
        for var, param, axis in prog.backward.dims:
            bwd["prologue"].append(f"{var} = {param}.shape[{axis}]")
        functions.append(bwd)
    consts = [f"{c.array.dtype}{list(c.array.shape)} {c.digest}" for c in prog.consts]
    return render(
        "numpy/module.py.j2",
        graph_hash=prog.graph_hash[:12],
        consts=consts,
        helpers=sorted(pr.helpers),
        functions=functions,
    )


def region_lines(pr: NumpyPrinter, region: Region) -> list[tuple[str, str]]:
    """(code, comment) lines of a compacted scalar region (see ``backends.compact``): one V
    array per dtype, the copies in, one vector statement per group, the values read later."""
    v = {dt: f"_v_{dt}" for dt in region.n_slots}
    slot = region.slots
    out: list[tuple[str, str]] = []
    head = f"{len(region.nodes)} scalar statements as {len(region.groups)} vector statements"
    for dt, count in sorted(region.n_slots.items()):
        out.append((f"{v[dt]} = np.empty({count}, dtype=np.{dt})", head))
        head = ""
    for n in region.literals + region.loads:
        out.append((f"{v[n.dtype.name]}[{slot[id(n)]}] = {pr.operand(n)}", ""))
    table = pr.operand(region.table)
    for e in region.picks:
        a, b = e.at, e.at + e.count
        src = f"{pr.operand(e.array)}.reshape(-1)"
        out.append(
            (f"{v[e.array.dtype.name]}[{table}[{a}:{b}]] = {src}[{table}[{b}:{b + e.count}]]", "")
        )
    for g in region.groups:
        node, c = g.node, g.count
        args = [
            f"{v[i.dtype.name]}[{f'{table}[{a}:{a + c}]' if c > 1 else slot[id(i)]}]"
            for a, i in zip(g.ins, node.inputs, strict=True)
        ]
        lhs = (
            f"{v[node.dtype.name]}[{f'{table}[{g.out}:{g.out + c}]' if c > 1 else slot[id(node)]}]"
        )
        out.append((f"{lhs} = {pr.expr(node, args)}", describe(g)))
    for n in region.stores:  # read later: a 0-d array of its own
        out.append((f"{pr.prog.operand(n)} = np.array({v[n.dtype.name]}[{slot[id(n)]}])", ""))
    return out
