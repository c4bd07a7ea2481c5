"""The explorer: one self-contained HTML page linking a model's source lines to the statements
symgrad generates for them, in both backends.

Owns: :func:`explore` (the structured view of a :class:`~symgrad.codegen.program.Program`: its
statements with their type, op, rule (provenance ``via``) and model line; the model's source;
the NumPy and C code of each function, every printed line tagged with the statements it
computes), :func:`page` (a whole HTML document, what ``symgrad show --html`` writes) and
:func:`fragment` (the same view as one ``<div>``, what a compiled function's ``_repr_html_``
shows in Jupyter). The layout is ``templates/explorer/explorer.html.j2``: inline CSS and
JavaScript, no network. Click or hover a model line and its statements light up, and the other
way round; buttons switch between the backends.

The code shown is the printers' own output (``render_numpy``, ``render_c``): statements are
found in it by their target names, which the Program gives (``Stmt.target``; in C through
``CNames``, on the ``/* target: ... */`` comment the C printer writes before each statement).
Compacted scalar regions (``Function.region``) are shown but not linked.

May import: ``symgrad.ir``, ``symgrad.ops`` and the rest of ``symgrad.codegen``.
"""

from __future__ import annotations

import itertools
import json
import linecache
import os
import re
from dataclasses import dataclass, field

from symgrad.codegen.c.names import CNames
from symgrad.codegen.program import Function, Program
from symgrad.ir.graph import type_str
from symgrad.ir.node import Node
from symgrad.ir.opdef import op_label
from symgrad.ir.provenance import Provenance

BACKENDS = ("numpy", "c")
#: a model file longer than this is shown as the cited lines with this much context around them
FULL_FILE_LINES = 400
CONTEXT = 3

_PY_TARGET = re.compile(r"^\s+([A-Za-z_]\w*) = ")
_C_MARKER = re.compile(r"^\s*/\* ([A-Za-z_]\w*): ")
_C_REGION = re.compile(r"^\s*/\* \d+ scalar statements as ")
_C_TARGET = re.compile(r"^\s*(?:const \w+ )?([A-Za-z_]\w*)(?:\[[^\]]*\])? [-+*/]?= ")
_IDS = itertools.count()


@dataclass
class StmtView:
    """One statement: ``id`` is ``f<k>``/``b<k>`` (forward/backward, k-th statement)."""

    id: str
    function: str
    target: str
    op: str
    type: str
    rule: str  # "vjp tanh" for a backward rule, "" for a forward op
    where: str  # the printers' provenance text
    sites: list[str]  # keys of the model lines it cites: "<file index>:<line>"


@dataclass
class CodeLine:
    text: str
    stmts: list[str]  # ids of the statements this printed line computes
    head: str = ""  # the statement whose first line this is (annotations go there)


@dataclass
class CodeView:
    """One generated function in one backend."""

    function: str
    lines: list[CodeLine]


@dataclass
class SourceLine:
    number: int
    text: str
    key: str
    stmts: list[str]

    @property
    def counts(self) -> str:
        """``"2 forward · 5 backward"``: how many statements of each pass cite the line."""
        f = sum(s.startswith("f") for s in self.stmts)
        b = len(self.stmts) - f
        return " · ".join(t for t in (f"{f} forward" * bool(f), f"{b} backward" * bool(b)) if t)


@dataclass
class SourceFile:
    path: str
    name: str
    lines: list[SourceLine]  # shown lines; a gap between numbers is elided text


@dataclass
class Explorer:
    title: str
    backend: str  # the backend shown first
    stmts: dict[str, StmtView]
    sources: list[SourceFile]
    code: dict[str, list[CodeView]]  # backend -> functions
    errors: dict[str, str] = field(default_factory=dict)  # backend -> why it has no code


def sites_of(node: Node) -> list[Provenance]:
    """The model lines a statement cites (its node's provenance)."""
    p = node.provenance
    return [p] if p is not None else []


def _functions(prog: Program) -> list[Function]:
    return [f for f in (prog.forward, prog.backward) if f is not None]


def explore(prog: Program, title: str = "", backend: str = "numpy") -> Explorer:
    """The structured view of ``prog`` (see the module docstring)."""
    if backend not in BACKENDS:
        raise ValueError(f"explore(): backend must be one of {BACKENDS}, got {backend!r}")
    files: dict[str, int] = {}
    stmts: dict[str, StmtView] = {}
    by_fn: dict[str, dict[str, str]] = {}  # function -> target -> statement id
    for fn in _functions(prog):
        names = by_fn.setdefault(fn.name, {})
        for k, s in enumerate(fn.stmts):
            sid = f"{fn.name[0]}{k}"
            keys = []
            for p in sites_of(s.node):
                fi = files.setdefault(p.file, len(files))
                keys.append(f"{fi}:{p.line}")
            stmts[sid] = StmtView(
                sid,
                fn.name,
                s.target,
                op_label(s.node.op),
                type_str(s.node),
                _rule(s.node),
                s.where,
                keys,
            )
            names[s.target] = sid
    code: dict[str, list[CodeView]] = {}
    errors: dict[str, str] = {}
    for b in BACKENDS:
        try:
            code[b] = _numpy_code(prog, by_fn) if b == "numpy" else _c_code(prog, by_fn)
        except (ValueError, KeyError) as e:  # a program this backend cannot print
            code[b], errors[b] = [], f"{type(e).__name__}: {e}"
    return Explorer(
        title or "symgrad explorer", backend, stmts, _sources(files, stmts), code, errors
    )


def _rule(node: Node) -> str:
    p = node.provenance
    if p is None or not p.via:
        return ""
    kind, _, of = p.via.partition(" ")
    return f"{kind} {op_label(of)}" if of else kind


def _sources(files: dict[str, int], stmts: dict[str, StmtView]) -> list[SourceFile]:
    at: dict[str, list[str]] = {}
    for s in stmts.values():
        for key in s.sites:
            at.setdefault(key, []).append(s.id)
    out: list[SourceFile] = []
    for path, fi in files.items():
        text = linecache.getlines(path)
        cited = sorted(int(k.split(":")[1]) for k in at if k.split(":")[0] == str(fi))
        if not text:  # no source (a string compiled with exec): the cited lines as recorded
            shown = [(n, "") for n in cited]
        elif len(text) <= FULL_FILE_LINES:
            shown = [(n, t) for n, t in enumerate(text, 1)]
        else:
            keep = {m for n in cited for m in range(n - CONTEXT, n + CONTEXT + 1)}
            shown = [(n, t) for n, t in enumerate(text, 1) if n in keep]
        lines = [
            SourceLine(n, t.rstrip("\r\n"), f"{fi}:{n}", at.get(f"{fi}:{n}", [])) for n, t in shown
        ]
        out.append(SourceFile(path, _file_label(path), lines))
    return out


def _file_label(path: str) -> str:
    """A file's name as shown: ``model.py``, or ``notebook cell`` for IPython's cell files."""
    if re.search(r"[/\\]ipykernel_\d+[/\\]\d+\.py$", path) or path.startswith("<ipython-input-"):
        return "notebook cell"
    return os.path.basename(path)


def _numpy_code(prog: Program, by_fn: dict[str, dict[str, str]]) -> list[CodeView]:
    from symgrad.codegen.numpy.printer import render_numpy

    text = render_numpy(prog)
    views = []
    for fn in _functions(prog):
        m = re.search(rf"^def {fn.name}\(.*?(?=^def |\Z)", text, re.S | re.M)
        if m is None:
            raise ValueError(f"the NumPy module has no function {fn.name}")
        names = by_fn[fn.name]
        lines = []
        for t in m.group(0).rstrip().split("\n"):
            hit = _PY_TARGET.match(t)
            sid = names.get(hit.group(1)) if hit else None
            lines.append(CodeLine(t, [sid] if sid else [], sid or ""))
        views.append(CodeView(fn.name, lines))
    return views


def _c_code(prog: Program, by_fn: dict[str, dict[str, str]]) -> list[CodeView]:
    from symgrad.codegen.c.printer import render_c

    kernel = render_c(prog, "sg_explorer").kernel
    cnames = CNames(prog).of
    views = []
    for fn in _functions(prog):
        m = re.search(rf"^// sg_{fn.name}:.*?\n\{{\n.*?^\}}\n", kernel, re.S | re.M)
        if m is None:
            raise ValueError(f"the C kernel has no function sg_{fn.name}")
        names = {cnames.get(t, t): sid for t, sid in by_fn[fn.name].items()}
        lines = _c_lines(m.group(0).rstrip().split("\n"), names)
        _link_absorbed(fn, by_fn[fn.name], lines)
        views.append(CodeView(fn.name, lines))
    return views


def _link_absorbed(fn: Function, ids: dict[str, str], lines: list[CodeLine]) -> None:
    """Statements the C printer reads through instead of printing (``x.T`` read by a matrix
    product): linked to the lines of the statements that read them."""
    shown = {sid for c in lines for sid in c.stmts}
    missing = {id(s.node): ids[s.target] for s in fn.stmts if ids[s.target] not in shown}
    if not missing:
        return
    extra: dict[str, list[str]] = {}
    for s in fn.stmts:
        for i in s.node.inputs:
            if id(i) in missing:
                extra.setdefault(ids[s.target], []).append(missing[id(i)])
    for c in lines:
        add = [m for sid in c.stmts for m in extra.get(sid, ())]
        c.stmts += [m for m in dict.fromkeys(add) if m not in c.stmts]


def _c_lines(text: list[str], names: dict[str, str]) -> list[CodeLine]:
    """Each line with its statements: a run of ``/* target: ... */`` comments and the code
    after it (up to the next comment of a statement or of the tail) is one block; a line of a
    fused loop that assigns one of the block's targets is that statement's alone."""
    out: list[CodeLine] = []
    block: list[str] = []  # the ids of the current block
    targets: dict[str, str] = {}  # C name -> id, in the current block
    after_code = False
    for t in text:
        mark = _C_MARKER.match(t)
        if mark is not None:
            sid = names.get(mark.group(1))
            if sid is None:  # the tail's copies (/* out0: f64[] */): no statement
                block, targets, after_code = [], {}, False
                out.append(CodeLine(t, []))
                continue
            if after_code:
                block, targets, after_code = [], {}, False
            block.append(sid)
            targets[mark.group(1)] = sid
            out.append(CodeLine(t, [sid], sid))
            continue
        if t.startswith("}") or t.strip() == "_done:" or _C_REGION.match(t):
            block, targets = [], {}
        if block:
            after_code = True
            hit = _C_TARGET.match(t)
            own = targets.get(hit.group(1)) if hit and len(block) > 1 else None
            out.append(CodeLine(t, [own] if own else list(block)))
        else:
            out.append(CodeLine(t, []))
    return out


# -- HTML ---------------------------------------------------------------------------------------
def _data(ex: Explorer) -> str:
    """The statements as JSON safe inside a <script> element."""
    data = {
        s.id: {
            "target": s.target,
            "op": s.op,
            "type": s.type,
            "rule": s.rule,
            "cites": s.where,
            "sites": s.sites,
        }
        for s in ex.stmts.values()
    }
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def fragment(prog: Program, title: str = "", backend: str = "numpy") -> str:
    """The explorer as one ``<div>`` with its style and script (for Jupyter)."""
    from symgrad.codegen.templating import render

    ex = explore(prog, title, backend)
    return render(
        "explorer/explorer.html.j2",
        ex=ex,
        root=f"sgx{os.getpid():x}{next(_IDS)}",
        data=_data(ex),
        labels={"numpy": "NumPy", "c": "C"},
        document=False,
    )


def page(prog: Program, title: str = "", backend: str = "numpy") -> str:
    """The explorer as a whole HTML document (``symgrad show --html``)."""
    from symgrad.codegen.templating import render

    ex = explore(prog, title, backend)
    return render(
        "explorer/explorer.html.j2",
        ex=ex,
        root="sgx",
        data=_data(ex),
        labels={"numpy": "NumPy", "c": "C"},
        document=True,
    )
