"""Elementwise fusion for the C printer: chains of elementwise statements become one loop nest.

Owns: :func:`fusion_groups`, which picks, in one function, the elementwise statements that can
be computed inside the loop of a later elementwise statement of the same shape (their *root*)
instead of into an array of their own, and :func:`fused_loop`, the C text of one group: one
loop nest over the root's shape whose body computes every member into a local scalar named like
its statement (``const double t2 = t1[_i] + b[_i1];``) and stores only the root. Each member
keeps its own line and provenance comment, so the fused code reads statement by statement like
the unfused code, but the intermediate arrays (and a pass over memory each) are gone.

A statement is fused into a group when it is elementwise (its op's C lowering is an expression
template: elementwise ops and ``broadcast_to``), is not a
result of the function, has the root's shape, and every statement that reads it belongs to that
group. Members are computed at the root's position, which is safe: their operands are computed
earlier, and nothing outside the group reads them.

May import: the standard library, ``symgrad.ir``, ``symgrad.ops`` and ``symgrad.codegen``.
"""

from __future__ import annotations

import string
from collections.abc import Sequence

from symgrad.ir.dtypes import FLOAT32
from symgrad.ir.node import Node
from symgrad.ops.c.emitter import Emitter, elementwise_template, expression_template
from symgrad.ops.c.loops import Mono, View, broadcast, coalesce, contiguous, nest


def fusible(node: Node) -> bool:
    """Whether ``node`` is computed one element at a time from the same (broadcast) index of
    its operands: its op's C lowering is an expression template (elementwise ops and
    ``broadcast_to``)."""
    return bool(node.inputs) and expression_template(node) is not None


def fusion_groups(nodes: Sequence[Node], results: set[int]) -> dict[int, list[Node]]:
    """``id(root) -> members`` (in statement order, root excluded) for the statements ``nodes``
    (in order) of one function whose values ``results`` (ids) must be stored. Only roots with
    at least one member appear."""
    readers: dict[int, set[int]] = {}
    for n in nodes:
        for i in n.inputs:
            readers.setdefault(id(i), set()).add(id(n))
    root_of: dict[int, Node] = {}  # id(node) -> its group's root
    for n in reversed(nodes):
        if not fusible(n):
            continue
        users = readers.get(id(n), set())
        roots = {id(root_of[u]) if u in root_of else None for u in users}
        if id(n) not in results and users and len(roots) == 1 and None not in roots:
            root = root_of[next(iter(users))]
            if root.shape == n.shape:
                root_of[id(n)] = root
                continue
        root_of[id(n)] = n
    groups: dict[int, list[Node]] = {}
    for n in nodes:
        top = root_of.get(id(n))
        if top is not None and top is not n:
            groups.setdefault(id(top), []).append(n)
    return groups


def fused_loop(
    pr: Emitter, root: Node, members: list[Node], out: str, name: dict[int, str]
) -> list[str]:
    """One loop nest computing ``members`` (locals named ``name[id(member)]``) and then ``root``
    into the buffer ``out``."""
    shape = root.shape
    local = {id(m) for m in members}
    reads: list[Node] = []  # operands read from memory (each once per iteration)
    for n in [*members, root]:
        for i in n.inputs:
            if id(i) not in local and i.op != "const" and all(i is not r for r in reads):
                reads.append(i)
    views: list[View] = [contiguous(shape)] + [broadcast(i.shape, shape) for i in reads]
    lens, vs = coalesce([Mono.of(d) for d in shape], views)

    def body(ix: list[str]) -> list[str]:
        index = {id(i): k for i, k in zip(reads, ix[1:], strict=True)}
        lines: list[str] = []
        for n in [*members, root]:
            template = elementwise_template(n)
            f = "f" if n.inputs and n.inputs[-1].dtype is FLOAT32 else ""
            pr.note_helpers(template, f)
            fields = {fld for _, fld, _, _ in string.Formatter().parse(template) if fld}
            args = []
            for k, i in enumerate(n.inputs):
                if str(k) not in fields:
                    args.append("")
                elif id(i) in local:
                    args.append(name[id(i)])
                elif i.op == "const":
                    args.append(pr.at(i, "0"))
                else:  # read only where a template uses it: an unread parameter stays unused
                    args.append(pr.at(i, index[id(i)]))
            expr = template.format(*args, f=f, ctype=n.dtype.c_type)
            if n is root:
                lines.append(f"{out}[{ix[0]}] = {expr};")
            else:
                lines.append(f"const {n.dtype.c_type} {name[id(n)]} = {expr};")
        return lines

    return nest(lens, vs, body, pr.dim, parallel=pr.parallel)
