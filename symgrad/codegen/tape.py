"""The tape module: the reverse sweep of eager ``Value`` graphs, printed from the VJP rules.

Owns: :func:`rules` (each tape op's VJP rule, applied to placeholder operands, as graph nodes),
:func:`render_tape_c` (a CPython extension that walks the Values behind a root, sweeps them in
reverse with one ``case`` per tape op and adds each gradient to its ``.grad``) and
:func:`render_tape_python` (the same rules as Python functions, for machines without a C
compiler). Expressions come from the ops' emission templates, as for every other generated
statement; the templates only lay out the files. May import: ``symgrad.ir``, ``symgrad.ops`` and
the other backend modules.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from symgrad.codegen.numpy import printer as npb
from symgrad.codegen.templating import render
from symgrad.ir.dtypes import FLOAT64
from symgrad.ir.node import Node
from symgrad.ir.opdef import get_op, lowering_of
from symgrad.ops.c import emitter as c_emitter
from symgrad.ops.source import make_input
from symgrad.ops.tape import TapeOp, tape_ops

# operand names: the Values are a (then b), the constant operand k, the result y, its gradient g
_NAMES = ("a", "b")


@dataclass(frozen=True)
class Rule:
    """One tape op's rule: the cotangent node for each Value operand (None: no gradient)."""

    tape: TapeOp
    inputs: dict[Node, str]  # placeholder node -> its name in the generated code
    cotangents: tuple[Node | None, ...]  # one per Value operand, in order (a, then b)
    text: str  # the rule in words, for the comment


@functools.cache
def rules() -> tuple[Rule, ...]:
    """The rule of every tape op except the leaf, in code order."""
    out = []
    for t in tape_ops()[1:]:
        names: dict[Node, str] = {}
        operands: list[Node] = []
        values = iter(_NAMES)
        for c in t.form:
            name = next(values) if c == "v" else "k"
            node = make_input((), FLOAT64, name=name)
            names[node] = name
            operands.append(node)
        y = make_input((), FLOAT64, name="y")
        g = make_input((), FLOAT64, name="g")
        names[y], names[g] = "y", "g"
        assert t.op.vjp is not None
        cts = t.op.vjp(g, y, *operands)
        picked = tuple(cts[i] for i in t.value_positions)
        args = ", ".join(names[o] for o in operands)
        text = f"y = {t.name}({args})"
        out.append(Rule(t, names, picked, text))
    return tuple(out)


def _print(node: Node, names: dict[Node, str], template_of: object, literal: object) -> str:
    """``node`` as one expression over the placeholder names (rules are small trees)."""
    if node in names:
        return names[node]
    if node.op == "const":
        return str(literal(node.attrs["value"], node))  # type: ignore[operator]
    args = [f"({_print(i, names, template_of, literal)})" for i in node.inputs]
    return str(template_of(node)).format(*args, f="", ctype="double")  # type: ignore[operator]


def _c_literal(value: object, node: Node) -> str:
    return c_emitter.literal(value, node.dtype)


def _used(exprs: list[str], name: str) -> bool:
    return any(re.search(rf"\b{name}\b", e) for e in exprs)


def render_tape_c(module_name: str) -> str:
    """The C source of the tape extension module ``module_name``."""
    cases = []
    helpers: set[str] = set()
    for r in rules():
        exprs = [
            _print(c, r.inputs, c_emitter.elementwise_template, _c_literal)
            for c in r.cotangents
            if c is not None
        ]
        for e in exprs:
            helpers.update(c_emitter.HELPER_CALL.findall(e))
        targets = [
            f"G[{'A' if name == 'a' else 'B'}[i]]"
            for name, c in zip(_NAMES, r.cotangents, strict=False)
            if c is not None
        ]
        reads = {"a": "V[A[i]]", "b": "V[B[i]]", "k": "K[i]", "y": "V[i]"}
        decls = [f"const double {n} = {src};" for n, src in reads.items() if _used(exprs, n)]
        adds = [f"{t} += {e};" for t, e in zip(targets, exprs, strict=True)]
        cases.append({"code": r.tape.code, "comment": r.text, "lines": decls + adds})
    return render(
        "c/tape.c.j2",
        module_name=module_name,
        graph_hash="tape",
        cases=cases,
        arity={t.code: len(t.value_positions) for t in tape_ops()},
        has_k={t.code: int("k" in t.form) for t in tape_ops()},
        n_codes=len(tape_ops()),
        helpers=sorted(helpers),
    )


def render_tape_python() -> str:
    """The Python source of the rules: ``RULES[code](a, b, k, y, g)`` returns the cotangent of
    each Value operand (NumPy float64 scalars in, float64 scalars out; None: no gradient)."""
    fns = []
    helpers: set[str] = set()
    for r in rules():
        exprs = []
        for c in r.cotangents:
            if c is None:
                exprs.append("None")
                continue
            exprs.append(_print(c, r.inputs, _numpy_template, npb.literal))
            helpers.update(h for n in _walk(c) for h in get_op(n.op).helpers.get("numpy", ()))
        fns.append({"code": r.tape.code, "comment": r.text, "exprs": exprs})
    return render(
        "numpy/tape.py.j2",
        graph_hash="tape",
        rules=fns,
        n_codes=len(tape_ops()),
        helpers=sorted(helpers),
    )


def _numpy_template(node: Node) -> str:
    template = lowering_of(node, "numpy")
    if not isinstance(template, str):
        raise NotImplementedError(f"op {node.op!r}: its NumPy lowering is not a template")
    return template


def _walk(node: Node) -> list[Node]:
    out, stack = [], [node]
    while stack:
        n = stack.pop()
        out.append(n)
        stack.extend(n.inputs)
    return out
