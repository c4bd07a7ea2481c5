"""The op codes of the eager ``Value`` tape: which scalar ops an eager ``Value`` records, and
in which operand form.

Owns: :class:`TapeOp` and :func:`tape_ops`, the table read by the front end (``Value``
arithmetic stores a code in each result) and by the printers of the tape module (one case of the
reverse sweep per code, printed from the op's VJP rule). Code 0 is a leaf. Every elementwise op
with an ``OpDef.scalar`` evaluator gets codes: unary ops one (form ``"v"``); binary ops three,
for two Values (``"vv"``), a Value and a number (``"vk"``) and a number and a Value (``"kv"``);
the number is kept on the result as its constant ``k``. May import: ``symgrad.ir``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from symgrad.ir.opdef import Kind, OpDef, registry

LEAF = 0
FORMS = {1: ("v",), 2: ("vv", "vk", "kv")}


@dataclass(frozen=True)
class TapeOp:
    code: int
    name: str  # the op's registry name
    form: str  # "v", "vv", "vk" or "kv": which operands are Values ("v") or the constant ("k")

    @property
    def op(self) -> OpDef:
        return registry()[self.name]

    @property
    def value_positions(self) -> tuple[int, ...]:
        """The operand positions holding Values (the others hold the constant)."""
        return tuple(i for i, c in enumerate(self.form) if c == "v")


@functools.cache
def tape_ops() -> tuple[TapeOp, ...]:
    """Every tape op, indexed by code (entry 0 is ``None``-like: the leaf, listed as "leaf")."""
    ops = [TapeOp(LEAF, "leaf", "")]
    for name in sorted(registry()):
        op = registry()[name]
        if op.scalar is None or op.kind is not Kind.ELEMENTWISE or op.arity not in FORMS:
            continue
        for form in FORMS[op.arity]:
            ops.append(TapeOp(len(ops), name, form))
    return tuple(ops)


@functools.cache
def code_of(name: str, form: str) -> int:
    """The code of ``name`` in ``form`` (KeyError when the op has no scalar evaluator)."""
    for t in tape_ops():
        if t.name == name and t.form == form:
            return t.code
    raise KeyError(f"no tape op {name!r} in form {form!r}")
