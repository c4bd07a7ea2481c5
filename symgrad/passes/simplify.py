"""Algebraic simplification rules, one small function per pattern, as a table by op.

Owns: rewrites that keep values in IEEE arithmetic — x·1, 1·x, x/1, x+0, x−0, 0−x → −x,
−(−x), x**1, x**2 → x·x, reshape/transpose/broadcast chains, casts to the same dtype, and
``detach`` (an identity once gradients exist: passes run after differentiation). The only
differences are signs of zero: x + 0.0 → x keeps x = −0.0 where NumPy gives +0.0, and
0 − x → −x gives −0.0 for x = +0.0. Rewrites that change values (x·0 → 0 is wrong for NaN and
±inf; exp(log x) → x is wrong for x < 0) are deliberately absent.
May import: ``symgrad.ir`` and ``symgrad.ops``.
"""

from __future__ import annotations

from symgrad.ir.node import Node
from symgrad.ir.opdef import apply
from symgrad.passes.rewrite import Rule, needs_constant_input, operand_symmetric


def _is(node: Node, value: float) -> bool:
    if node.op != "const":
        return False
    v = node.attrs["value"]
    return not isinstance(v, bool) and v == value


def _keeps_type(x: Node, node: Node) -> Node | None:
    """``x`` when it has exactly ``node``'s shape and dtype (so it can replace it)."""
    return x if x.shape == node.shape and x.dtype is node.dtype else None


def mul_one(n: Node) -> Node | None:
    a, b = n.inputs
    if a.op != "const" and b.op != "const":  # the common case, without a call
        return None
    if _is(b, 1):
        return _keeps_type(a, n)
    if _is(a, 1):
        return _keeps_type(b, n)
    return None


def add_zero(n: Node) -> Node | None:
    a, b = n.inputs
    if a.op != "const" and b.op != "const":
        return None
    if _is(b, 0):
        return _keeps_type(a, n)
    if _is(a, 0):
        return _keeps_type(b, n)
    return None


def sub_zero(n: Node) -> Node | None:
    a, b = n.inputs
    if _is(b, 0):
        return _keeps_type(a, n)
    if _is(a, 0) and b.shape == n.shape:
        return apply("neg", (b,))
    return None


def div_one(n: Node) -> Node | None:
    a, b = n.inputs
    return _keeps_type(a, n) if _is(b, 1) else None


def neg_neg(n: Node) -> Node | None:
    (a,) = n.inputs
    return a.inputs[0] if a.op == "neg" else None


def pow_small(n: Node) -> Node | None:
    x, y = n.inputs
    if _is(y, 1):
        return _keeps_type(x, n)
    if _is(y, 2) and x.shape == n.shape:
        return apply("mul", (x, x))
    return None


def reshape_chain(n: Node) -> Node | None:
    (x,) = n.inputs
    if x.shape == n.shape:
        return x
    if x.op == "reshape":
        return apply("reshape", (x.inputs[0],), {"shape": n.attrs["shape"]})
    return None


def transpose_chain(n: Node) -> Node | None:
    (x,) = n.inputs
    perm = n.attrs["perm"]
    if perm == tuple(range(len(perm))):
        return x
    if x.op == "transpose":
        inner = x.attrs["perm"]
        combined = tuple(inner[p] for p in perm)
        if combined == tuple(range(len(combined))):
            return x.inputs[0]
        return apply("transpose", (x.inputs[0],), {"perm": combined})
    return None


def broadcast_chain(n: Node) -> Node | None:
    (x,) = n.inputs
    if x.shape == n.shape:
        return x
    if x.op == "broadcast_to":
        return apply("broadcast_to", (x.inputs[0],), {"shape": n.attrs["shape"]})
    return None


def cast_same(n: Node) -> Node | None:
    (x,) = n.inputs
    return x if x.dtype is n.dtype else None


def detach_identity(n: Node) -> Node | None:
    return n.inputs[0]


RULES: dict[str, list[Rule]] = {
    "mul": [mul_one],
    "add": [add_zero],
    "sub": [sub_zero],
    "div": [div_one],
    "neg": [neg_neg],
    "pow": [pow_small],
    "reshape": [reshape_chain],
    "transpose": [transpose_chain],
    "broadcast_to": [broadcast_chain],
    "cast": [cast_same],
    "detach": [detach_identity],
}

# x * 1 and 1 * x, x + 0 and 0 + x: the same x (see passes.rewrite.OperandOrder)
operand_symmetric(mul_one, ("mul",))
operand_symmetric(add_zero, ("add",))
# these look for a constant operand (1, 0, 2)
for _rule in (mul_one, add_zero, sub_zero, div_one, pow_small):
    needs_constant_input(_rule)
