"""The C text of a compacted scalar region (see ``backends.compact``).

Owns: :func:`region_code`: the ``V`` arrays (one per dtype, in scratch memory), the copies in
(literals, parameters and earlier statements, one line each) and one loop per group over its
slice of the index table; later code reads the values it needs from their slots. Expressions
come from the same elementwise templates as every other statement.

May import: the standard library, ``symgrad.ir``, ``symgrad.ops`` and ``symgrad.backends``.
"""

from __future__ import annotations

import string

from symgrad.backends.c_kernels import OpPrinter, elementwise_template
from symgrad.backends.compact import Region, describe
from symgrad.backends.text import block_comment
from symgrad.ir.dtypes import FLOAT32
from symgrad.ir.node import Node


def v_name(dtype: str) -> str:
    return f"_v_{dtype}"


def region_code(pr: OpPrinter, region: Region) -> tuple[list[str], list[tuple[str, str, str]]]:
    """The statements of ``region`` and its scratch arrays (name, count, C type). Values read
    after the region stay in their slots (:func:`stored_ref`)."""
    scratch = []
    for dt, count in sorted(region.n_slots.items()):
        scratch.append((v_name(dt), str(count), region_ctype(region, dt)))
    slot = region.slots

    def dtn(n: Node) -> str:
        return v_name(n.dtype.name)

    body = [
        f"/* {len(region.nodes)} scalar statements as {len(region.groups)} vector statements: "
        "every value has a slot in a V array; each loop below computes the statements of one "
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
        if "_sg_sigmoid{f}" in template:
            pr.helpers.add("sigmoid" + f)
        fields = {fld for _, fld, _, _ in string.Formatter().parse(template) if fld}
        args = [
            f"{dtn(i)}[{table}[{g.ins[k]} + _j]]" if str(k) in fields else ""
            for k, i in enumerate(node.inputs)
        ]
        if g.count == 1:  # one statement: its slots are literals
            args = [
                f"{dtn(i)}[{slot[id(i)]}]" if str(k) in fields else ""
                for k, i in enumerate(node.inputs)
            ]
            expr = template.format(*args, f=f, ctype=node.dtype.c_type)
            body.append(f"{dtn(node)}[{slot[id(node)]}] = {expr};")
            continue
        expr = template.format(*args, f=f, ctype=node.dtype.c_type)
        lhs = f"{dtn(node)}[{table}[{g.out} + _j]]"
        body += [f"for (int64_t _j = 0; _j < {g.count}; _j++) {{", f"    {lhs} = {expr};", "}"]
    return body, scratch


def stored_ref(region: Region, node: Node) -> str:
    """How code after the region reads a value it computed: its slot, in place."""
    return f"({v_name(node.dtype.name)} + {region.slots[id(node)]})"


def region_ctype(region: Region, dtype: str) -> str:
    for n in region.nodes + region.loads + region.literals:
        if n.dtype.name == dtype:
            return n.dtype.c_type
    raise AssertionError(f"no value of dtype {dtype} in the region")
