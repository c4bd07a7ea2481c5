"""The C text of a compacted scalar region (see ``backends.compact``).

Owns: :func:`region_code`: the ``V`` arrays (one per dtype, in scratch memory), the copies in
(literals, parameters and earlier statements, one line each) and one call per group over its
slice of the index table, to a file-scope function per kind of statement
(:class:`GroupFunctions`); later code reads the values it needs from their slots. Expressions
come from the same elementwise templates as every other statement.

May import: the standard library, ``symgrad.ir``, ``symgrad.ops`` and ``symgrad.backends``.
"""

from __future__ import annotations

import itertools
import string

from symgrad.codegen.compact import describe
from symgrad.codegen.program import Region
from symgrad.codegen.text import block_comment, line_comment
from symgrad.ir.dtypes import ALL_DTYPES, FLOAT32
from symgrad.ir.node import Node
from symgrad.ir.opdef import op_label
from symgrad.ops.c.emitter import Emitter, elementwise_template

_C_TYPE = {d.name: d.c_type for d in ALL_DTYPES}


def v_name(dtype: str) -> str:
    return f"_v_{dtype}"


class GroupFunctions:
    """The file-scope C functions that compute the groups of compacted regions: one per kind
    of statement (the same expression over the same V arrays), shared by all the groups of
    that kind in the translation unit. A group is then one call with its part of the index
    table, which GCC compiles once per kind instead of once per group (the moons step: 369
    groups, 7 functions; a third of the compile time)."""

    def __init__(self) -> None:
        self._names: dict[str, str] = {}  # function text (after its name) -> name
        self.definitions: list[str] = []

    def name(self, node: Node, template: str, fields: set[str], f: str) -> tuple[str, list[str]]:
        """The function computing ``node``'s kind of group, and the V arrays (dtype names) it
        takes: ``name(V arrays..., out table, input tables..., count)``."""
        used = [k for k in range(len(node.inputs)) if str(k) in fields]
        out_dt = node.dtype.name
        arrays = sorted({out_dt, *(node.inputs[k].dtype.name for k in used)})
        args = [
            f"{v_name(i.dtype.name)}[_a{k}[_j]]" if k in used else ""
            for k, i in enumerate(node.inputs)
        ]
        expr = template.format(*args, f=f, ctype=node.dtype.c_type)
        params = [f"{'' if dt == out_dt else 'const '}{_C_TYPE[dt]} *{v_name(dt)}" for dt in arrays]
        params += ["const int64_t *_o", *(f"const int64_t *_a{k}" for k in used), "int64_t _n"]
        sep = ",\n        "
        text = (
            f"({sep.join(params)})\n{{\n"
            f"    for (int64_t _j = 0; _j < _n; _j++) {{\n"
            f"        {v_name(out_dt)}[_o[_j]] = {expr};\n    }}\n}}"
        )
        name = self._names.get(text)
        if name is None:
            name = self._names[text] = f"_sg_group{len(self._names)}"
            of = ", ".join(i.dtype.name for i in node.inputs)
            self.definitions.append(
                f"\n// {line_comment(op_label(node.op))}({of}) over a group of compacted scalar "
                "statements (backends/compact.py): statement j reads its operands from the V "
                "slots a0[j], a1[j], ... and writes slot o[j]\n"
                f"static void {name}{text}\n"
            )
        return name, [v_name(dt) for dt in arrays]


def region_code(
    pr: Emitter, region: Region, functions: GroupFunctions
) -> tuple[list[str], list[tuple[str, str, str]]]:
    """The statements of ``region`` and its scratch arrays (name, count, C type). Values read
    after the region stay in their slots (:func:`stored_ref`). Groups call ``functions``."""
    scratch = []
    for dt, count in sorted(region.n_slots.items()):
        scratch.append((v_name(dt), str(count), region_ctype(region, dt)))
    slot = region.slots

    def dtn(n: Node) -> str:
        return v_name(n.dtype.name)

    body = [
        f"/* {len(region.nodes)} scalar statements as {len(region.groups)} vector statements: "
        "every value has a slot in a V array; each call below computes the statements of one "
        "op at one depth, over its part of the index table */",
    ]
    for n in region.literals:
        body.append(f"{dtn(n)}[{slot[id(n)]}] = {pr.at(n, '0')};")
    for n in region.loads:
        body.append(f"{dtn(n)}[{slot[id(n)]}] = {pr.ref(n)}[0];")
    table = pr.ref(region.table)
    for e in region.picks:
        body += [
            f"for (int64_t _j = 0; _j < {e.count}; _j++) {{",
            f"    {dtn(e.array)}[{table}[{e.at} + _j]] = "
            f"{pr.ref(e.array)}[{table}[{e.at + e.count} + _j]];",
            "}",
        ]
    for g in region.groups:
        body.append(f"/* {block_comment(describe(g))} */")
        node = g.node
        template = elementwise_template(node)
        f = "f" if node.inputs and node.inputs[-1].dtype is FLOAT32 else ""
        pr.note_helpers(template, f)
        fields = {fld for _, fld, _, _ in string.Formatter().parse(template) if fld}
        if g.count == 1:  # one statement: its slots are literals
            args = [
                f"{dtn(i)}[{slot[id(i)]}]" if str(k) in fields else ""
                for k, i in enumerate(node.inputs)
            ]
            expr = template.format(*args, f=f, ctype=node.dtype.c_type)
            body.append(f"{dtn(node)}[{slot[id(node)]}] = {expr};")
            continue
        name, arrays = functions.name(node, template, fields, f)
        tables = [g.out, *(g.ins[k] for k in range(len(node.inputs)) if str(k) in fields)]
        args = arrays + [f"{table} + {t}" for t in tables]
        body.append(f"{name}({', '.join(args)}, {g.count});")
    return body, scratch


def stored_ref(region: Region, node: Node) -> str:
    """How code after the region reads a value it computed: its slot, in place."""
    return f"({v_name(node.dtype.name)} + {region.slots[id(node)]})"


def region_ctype(region: Region, dtype: str) -> str:
    for n in itertools.chain(region.nodes, region.loads, region.literals):
        if n.dtype.name == dtype:
            return n.dtype.c_type
    raise AssertionError(f"no value of dtype {dtype} in the region")
