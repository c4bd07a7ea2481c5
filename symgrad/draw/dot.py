"""Pictures of graphs: Graphviz DOT text with the value and the gradient of every node, like
micrograd's ``draw_dot``, and a plain-text table of the same facts for terminals.

Owns: :func:`graph_dot` (DOT text of any :class:`~symgrad.ir.graph.Graph`, annotated with
values and gradients when given), :func:`draw_dot` and :func:`table` (the recorded graph behind
an eager ``Value``/``Tensor``, after ``backward()``), :func:`traced_values` (a traced graph
evaluated at example inputs, with every node's gradient of the first output, by the reference
interpreter), :func:`render` and :func:`to_svg` (run Graphviz's ``dot`` when it is installed),
and :class:`Dot` (what ``draw_dot`` returns: DOT text a notebook shows as its picture, or with a
note when Graphviz is missing).

User text (labels, input names) reaches the DOT text only escaped.

May import: anything in ``symgrad`` (a top layer, like :mod:`symgrad.cli`).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from symgrad.frontend.backward import collect
from symgrad.frontend.tensor import Tensor, as_tensor
from symgrad.frontend.value import Value
from symgrad.ir.graph import Graph, evaluate, toposort, type_str
from symgrad.ir.node import Node
from symgrad.ir.opdef import const, get_op, op_label

FORMATS = ("dot", "svg", "png", "pdf")


class GraphvizNotFound(RuntimeError):
    """Graphviz's ``dot`` program is not installed (the DOT text is still usable)."""


@dataclass(frozen=True)
class Annotations:
    """What is shown on the nodes: values and gradients (by node), display labels."""

    values: Mapping[Node, Any]
    grads: Mapping[Node, Any]
    labels: Mapping[Node, str]


def op_symbol(node: Node) -> str:
    """The op's display name: the symbol of an arithmetic operator (``+``, ``−``, ``*``, ``@``;
    ``−x`` for negation), else its name (``tanh``); user ops by their declared name."""
    s = get_op(node.op).surface
    if s.symbol and (s.reflected or len(node.inputs) == 1):
        sym = s.symbol.replace("-", "\N{MINUS SIGN}")
        return sym + "x" if len(node.inputs) == 1 else sym
    return op_label(node.op)


def fmt_value(v: Any) -> str:
    """A short text for a value: ``0.7071`` for scalars, the elements of small arrays, else the
    shape with the mean and the largest magnitude."""
    a = np.asarray(v)
    if a.ndim == 0:
        x = a.item()
        return f"{x:.4f}" if isinstance(x, float) else str(x)
    if a.size <= 4:
        return np.array2string(a, precision=4, separator=" ", suppress_small=True)
    if a.dtype.kind in "fiu" and a.size:
        return f"mean {float(a.mean()):.4g}, max|·| {float(np.abs(a).max()):.4g}"
    return f"shape {a.shape}"


def fmt_const(node: Node) -> str:
    """A constant as written in the model: ``2.0``, ``1e-05``."""
    a = np.asarray(node.attrs["value"])
    return f"{a.item():g}" if a.ndim == 0 else fmt_value(a)


def _esc(text: str) -> str:
    """Escape text for a DOT record label inside a double-quoted string."""
    out = []
    for ch in text:
        if ch in '{}|<>"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(f"\\\\x{ord(ch):02x}")
    return "".join(out)


def graph_dot(
    graph: Graph,
    values: Mapping[Node, Any] | None = None,
    grads: Mapping[Node, Any] | None = None,
    labels: Mapping[Node, str] | None = None,
    title: str = "",
    rankdir: str = "LR",
) -> str:
    """DOT text of ``graph``: one record per node (name, type, ``data``, ``grad``) and, for
    every node made by an op, a small node of the op feeding it (micrograd's layout)."""
    ann = Annotations(values or {}, grads or {}, labels or {})
    names = graph.names()
    order = graph.order
    ids = {id(n): f"n{k}" for k, n in enumerate(order)}
    lines = [
        "digraph symgrad {",
        f"  rankdir={rankdir};",
        '  node [fontname="Helvetica", fontsize=10];',
        '  edge [color="#555555"];',
    ]
    if title:
        lines.append(f'  label="{_esc(title)}"; labelloc=t;')
    boundary = set(graph.inputs)
    for n in order:
        nid = ids[id(n)]
        if n.op == "const":
            text = fmt_const(n)
            lines.append(f'  {nid} [shape=plaintext, fontcolor="#777777", label="{_esc(text)}"];')
            continue
        name = ann.labels.get(n) or names.get(id(n), "")
        typ = "" if n.shape == () and n.dtype.name == "float64" else type_str(n)
        fields = [f"{name} : {typ}" if name and typ else name or typ]
        if n in ann.values:
            fields.append(f"data {fmt_value(ann.values[n])}")
        if n in ann.grads:
            fields.append(f"grad {fmt_value(ann.grads[n])}")
        record = "{ " + " | ".join(_esc(f) for f in fields) + " }"
        fill = ', style=filled, fillcolor="#e8f0fe"' if n in boundary else ""
        lines.append(f'  {nid} [shape=record, label="{record}"{fill}];')
        if n in boundary or not n.inputs:
            continue
        lines.append(f'  {nid}_op [label="{_esc(op_symbol(n))}"];')
        lines.append(f"  {nid}_op -> {nid};")
        for i in n.inputs:
            if id(i) in ids:
                lines.append(f"  {ids[id(i)]} -> {nid}_op;")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _eager(of: Tensor | Value) -> tuple[Graph, Annotations]:
    root = as_tensor(of)
    tensors = collect(root)
    values: dict[Node, Any] = {}
    grads: dict[Node, Any] = {}
    labels: dict[Node, str] = {}
    for t in tensors:
        for node, data in t._pin:
            if data is not None:
                values.setdefault(node, data)
    for t in tensors:
        if t._data is not None:
            values[t.node] = t._data
        if t.label:
            labels[t.node] = t.label
        if t.grad is not None and t.dtype.is_float:
            grads[t.node] = t.grad
    order = toposort([root.node])
    leaves = [n for n in order if n.op == "input"]
    names = [labels.get(n) or str(n.attrs.get("name") or f"in{k}") for k, n in enumerate(leaves)]
    return Graph(leaves, [root.node], names), Annotations(values, grads, labels)


class Dot(str):
    """DOT text (a ``str``) that a notebook shows as a picture, like the ``graphviz.Digraph``
    micrograd's ``draw_dot`` returns: SVG when Graphviz's ``dot`` is installed, otherwise a
    note saying so above the DOT text. ``svg()`` is the picture itself."""

    __slots__ = ()

    def svg(self, timeout: float = 60.0) -> str:
        """The picture as SVG text (runs ``dot -Tsvg``; :class:`GraphvizNotFound` without it)."""
        return to_svg(self, timeout)

    def _repr_svg_(self) -> str | None:
        if dot_program() is None:
            return None
        return self.svg()

    def _repr_html_(self) -> str:
        import html

        if dot_program() is None:
            return (
                '<div class="sg-dot"><p><b>Graphviz is not installed</b>: the picture needs its '
                "<code>dot</code> program (e.g. <code>apt install graphviz</code> or <code>brew "
                "install graphviz</code>). The DOT text:</p><pre>"
                + html.escape(str(self))
                + "</pre></div>"
            )
        svg = self.svg()
        return '<div class="sg-dot">' + svg[svg.find("<svg") :] + "</div>"


def draw_dot(root: Tensor | Value, title: str = "", rankdir: str = "LR") -> Dot:
    """DOT text of the recorded graph behind ``root`` (an eager ``Value`` or ``Tensor``), each
    node with its data and, after ``root.backward()``, its gradient. In a notebook it shows as
    the picture (:class:`Dot`)."""
    graph, ann = _eager(root)
    return Dot(graph_dot(graph, ann.values, ann.grads, ann.labels, title, rankdir))


def table(root: Tensor | Value) -> str:
    """The nodes behind ``root`` as a text table: name, op and inputs, data, grad."""
    graph, ann = _eager(root)
    return graph_table(graph, ann.values, ann.grads, ann.labels)


def graph_table(
    graph: Graph,
    values: Mapping[Node, Any] | None = None,
    grads: Mapping[Node, Any] | None = None,
    labels: Mapping[Node, str] | None = None,
) -> str:
    """A text table of ``graph``'s nodes (constants inline) with their values and gradients."""
    values, grads, labels = values or {}, grads or {}, labels or {}
    names = graph.names()

    def name(n: Node) -> str:
        if n.op == "const":
            return fmt_const(n)
        return labels.get(n) or names.get(id(n), "?")

    rows = [("node", "type", "computed as", "data", "grad")]
    boundary = set(graph.inputs)
    for n in graph.order:
        if n.op == "const":
            continue
        how = (
            "input" if n in boundary else f"{op_symbol(n)}(" + ", ".join(map(name, n.inputs)) + ")"
        )
        rows.append(
            (
                name(n),
                type_str(n),
                how,
                fmt_value(values[n]) if n in values else "",
                fmt_value(grads[n]) if n in grads else "",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


def traced_values(graph: Graph, arrays: Sequence[Any]) -> tuple[dict[Node, Any], dict[Node, Any]]:
    """Every node's value at ``arrays`` (one per graph input), and every node's gradient of the
    first output when it is a float scalar (else no gradients), by the reference interpreter."""
    from symgrad.autodiff.vjp import vjp

    if len(arrays) != len(graph.inputs):
        raise ValueError(f"expected {len(graph.inputs)} input arrays, got {len(arrays)}")
    env = {n: np.asarray(a, dtype=n.dtype.np) for n, a in zip(graph.inputs, arrays, strict=True)}
    got = evaluate(list(graph.outputs), env, keep=True)
    assert isinstance(got, dict)
    values = {n: got[n] for n in graph.order if n in got}
    out = graph.outputs[0]
    grads: dict[Node, Any] = {}
    if out.shape == () and out.dtype.is_float:
        floats = [n for n in graph.inputs if n.dtype.is_float]
        cots = vjp([out], [const(1.0, out.dtype)], floats, all_nodes=True)
        assert isinstance(cots, dict)
        by_id = {id(n): n for n in graph.order}
        targets = [(by_id[k], g) for k, g in cots.items() if k in by_id]
        if targets:
            vals = evaluate([g for _, g in targets], dict(values))
            assert isinstance(vals, list)
            grads = {n: v for (n, _), v in zip(targets, vals, strict=True)}
    return values, grads


def dot_program() -> str | None:
    """The path of Graphviz's ``dot``, or None when it is not installed."""
    return shutil.which("dot")


def _not_found() -> GraphvizNotFound:
    return GraphvizNotFound(
        "Graphviz's `dot` program is not installed (e.g. `apt install graphviz` or "
        "`brew install graphviz`)"
    )


def _run_dot(dot_text: str, args: list[str], fmt: str, timeout: float) -> bytes:
    exe = dot_program()
    if exe is None:
        raise _not_found()
    proc = subprocess.run(
        [exe, f"-T{fmt}", *args],
        input=dot_text.encode("utf-8"),
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        err = " ".join(proc.stderr.decode("utf-8", "replace").split())
        raise RuntimeError(f"dot -T{fmt} failed (exit {proc.returncode}): {err[:300]}")
    return proc.stdout


def to_svg(dot_text: str, timeout: float = 60.0) -> str:
    """``dot_text`` rendered by Graphviz as SVG text (:class:`GraphvizNotFound` without it)."""
    return _run_dot(dot_text, [], "svg", timeout).decode("utf-8")


def render(dot_text: str, path: str | Path, timeout: float = 60.0) -> Path:
    """Write ``dot_text`` to ``path``: as is for ``.dot``, else rendered by Graphviz (``.svg``,
    ``.png``, ``.pdf``). Raises :class:`GraphvizNotFound` when ``dot`` is not installed."""
    out = Path(path)
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ValueError(
            f"cannot tell the picture format from {out.name!r}: expected a name ending in "
            + ", ".join(f".{f}" for f in FORMATS)
        )
    if fmt == "dot":
        out.write_text(dot_text, encoding="utf-8")
        return out
    _run_dot(dot_text, ["-o", str(out)], fmt, timeout)
    return out
