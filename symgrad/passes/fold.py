"""Constant folding: a node all of whose inputs are constants becomes a constant.

Owns: the folding rule. Only small results are folded (at most ``MAX_ELEMENTS`` elements), so a
broadcast of a scalar over a large shape stays a broadcast instead of becoming a large embedded
array; source ops (arange, dimsize, inputs) are left alone. Values are computed by the reference
interpreter, so folding cannot change them. May import: numpy, ``symgrad.ir``, ``symgrad.ops``,
``symgrad.passes.rewrite``.
"""

from __future__ import annotations

import numpy as np

from symgrad.ir.graph import evaluate
from symgrad.ir.node import Node
from symgrad.ir.opdef import Kind, const, get_op, shape_size
from symgrad.ops.source import make_constant
from symgrad.passes.rewrite import needs_constant_input, operand_symmetric

MAX_ELEMENTS = 16


def fold(n: Node) -> Node | None:
    if not n.inputs:
        return None
    for i in n.inputs:  # a loop, not any(): this runs on every node of every graph
        if i.op != "const" and i.op != "constant":
            return None
    if get_op(n.op).kind is Kind.SOURCE:
        return None
    size = shape_size(n.shape)
    if size is None or size > MAX_ELEMENTS:
        return None
    try:
        with np.errstate(all="ignore"):
            res = evaluate([n], {}, dims={})
    except Exception:  # an op that raises (e.g. an index check) stays unfolded
        return None
    assert isinstance(res, list)
    value = res[0]
    if n.shape == ():
        return const(value.item(), n.dtype)
    return make_constant(value)


# a + b and b + a (a * b, a == b, a != b) are the same IEEE value; not maximum and minimum,
# which return their first operand of two equal ones (+0.0 and -0.0)
operand_symmetric(fold, ("add", "mul", "eq", "ne"))
needs_constant_input(fold)
