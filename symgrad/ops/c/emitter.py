"""What an op's C lowering writes with: the emitter of one kernel file.

Owns: :class:`Emitter`, the state and the small vocabulary that the C lowerings declared with
the ops (``emit={"c": ...}`` in ``symgrad/ops/``) print statements with, and
:meth:`Emitter.statement`, which looks a statement's lowering up in its op's record:

- an **expression template** (a ``str``: ``"tanh{f}({0})"``, ``"{0}"``) is printed as one
  loop over the result's elements, each operand read through its broadcast view;
- a **statement lowering** (a callable ``(emitter, node, out) -> lines``) prints the C
  statements that write the node's value into the C-order buffer ``out``.

Each value is a contiguous array: reading operand ``x`` at element ``i`` is ``x[i]`` (scalar
constants are inlined as literals, :func:`literal`). Routines too large to print at every call
site (the matrix product, softmax rows, range checks, pairwise sums) are C functions of the
runtime (``symgrad/codegen/templates/c/_runtime.c.j2``): a lowering calls ``_sg_<name>(...)``
and records ``<name>`` with :meth:`Emitter.need`, and the runtime prints each routine once per
file.

Error reporting: a failing check sets ``_err->value``/``_err->size``/``_err->site`` and returns a
nonzero code through ``SG_FAIL`` (``templates/c/kernel.c.j2``); ``site`` indexes the table of
model lines built here (:attr:`Emitter.sites`). May import: the standard library and
``symgrad.ir``.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Callable
from typing import Any

import numpy as np

from symgrad.ir.dtypes import BOOL, FLOAT32, INT64, DType
from symgrad.ir.node import Node
from symgrad.ir.opdef import get_op, lowering_of
from symgrad.ops.c.loops import (
    ONE,
    DimName,
    Mono,
    View,
    broadcast,
    coalesce,
    contiguous,
    nest,
    prod,
)

# the error codes of the kernel ABI (kernel.c.j2 #defines them from this table)
ERROR_CODES = {
    "SG_ERR_NOMEM": (1, "out of memory"),
    "SG_ERR_INDEX": (2, "an index out of range: value, size of the dim"),
    "SG_ERR_CLASS": (3, "a one_hot class out of range: value, number of classes"),
    "SG_ERR_EMPTY": (4, "the max of an empty array"),
    "SG_ERR_TARGET": (7, "a cross_entropy target out of range: value, number of classes"),
}

HELPER_CALL = re.compile(r"\b_sg_(\w+)\(")

# a statement lowering: the C statements writing ``node`` into the buffer ``out``
Lowering = Callable[["Emitter", Node, str], list[str]]
# the check an alias op makes before it is read as its operand (``emit["c-check"]``)
Check = Callable[["Emitter", Node], list[str]]


def literal(value: Any, dtype: DType) -> str:
    """A C literal of ``dtype`` (float32 gets the ``f`` suffix; inf/nan via INFINITY/NAN)."""
    if dtype is BOOL:
        return "1" if value else "0"
    if dtype is INT64:
        v = int(value)
        if v == -(2**63):
            return "(-9223372036854775807LL - 1)"
        text = str(v) if -(2**31) < v < 2**31 else f"{v}LL"
        return f"({text})" if v < 0 else text
    f = float(value)
    if math.isnan(f):
        return "NAN"
    if math.isinf(f):
        return "INFINITY" if f > 0 else "(-INFINITY)"
    if 0.0 < f < 0.5 and len(repr(f)) > 8:  # a mean's 1/n, printed as such when exact
        n = round(1.0 / f)
        f32 = dtype is FLOAT32
        if 2 <= n <= 10**12 and (float(np.float32(1) / np.float32(n)) if f32 else 1.0 / n) == f:
            return f"(1.0f / {n})" if f32 else f"(1.0 / {n})"
    text = repr(f) + ("f" if dtype is FLOAT32 else "")
    return f"({text})" if text.startswith("-") else text


def expression_template(node: Node) -> str | None:
    """The C expression template of ``node`` (``{0}``... operands, ``{f}``, ``{ctype}``), or
    None when its op's C lowering is a statement lowering."""
    found = lowering_of(node, "c")
    return found if isinstance(found, str) else None


def elementwise_template(node: Node) -> str:
    """The C expression template of a node whose op declares one (elementwise ops,
    ``broadcast_to``)."""
    template = expression_template(node)
    if template is None:
        raise NotImplementedError(f"op {node.op!r}: its C lowering is not an expression template")
    return template


def plus(a: str, b: str) -> str:
    """``a + b`` with zero terms left out."""
    return b if a == "0" else a if b == "0" else f"{a} + {b}"


def _no_function(node: Node) -> str:
    raise RuntimeError("Emitter.ref is set by the function printer")


class Emitter:
    """Prints statements; ``ref`` names a node's buffer (set by the function being printed),
    ``dim`` a symbolic dim's variable."""

    def __init__(self, dim: DimName) -> None:
        self.ref: Callable[[Node], str] = _no_function
        self.dim = dim
        self.helpers: set[str] = set()  # the runtime routines called
        self.sites: list[str] = []
        self.fails = False  # whether any statement jumps to the exit label
        self.parallel = False  # OpenMP on large elementwise loops (SYMGRAD_OPENMP=1)

    # -- operands and sizes -------------------------------------------------------------------
    def at(self, node: Node, idx: str) -> str:
        """Element ``idx`` of ``node`` (a literal for a scalar constant)."""
        if node.op == "const":
            return literal(node.attrs["value"], node.dtype)
        return f"{self.ref(node)}[{idx}]"

    def c(self, d: Any) -> str:
        """C text of a size, a dim or a :class:`Mono`."""
        return (d if isinstance(d, Mono) else Mono.of(d)).c(self.dim)

    def size(self, shape: tuple[Any, ...]) -> str:
        return prod(shape).c(self.dim)

    def site(self, node: Node) -> int:
        """The index of ``node``'s model line in the file's table of sites."""
        p = node.provenance
        text = p.short if p is not None else node.op
        if text not in self.sites:
            self.sites.append(text)
        return self.sites.index(text)

    # -- the runtime ----------------------------------------------------------------------------
    def need(self, *names: str) -> None:
        """Record runtime routines (``_sg_<name>``) that the code printed calls."""
        self.helpers.update(names)

    def note_helpers(self, template: str, f: str = "") -> None:
        """Record the runtime routines (``_sg_<name>(``) an expression template calls."""
        self.helpers.update(HELPER_CALL.findall(template.replace("{f}", f)))

    # -- statements -----------------------------------------------------------------------------
    def fail(self, code: str, value: str, size: str, site: int) -> str:
        assert code in ERROR_CODES
        self.fails = True
        return f"SG_FAIL({code}, {value}, {size}, {site});"

    def fill(self, out: str, size: str, value: str) -> list[str]:
        if size == "1":
            return [f"{out}[0] = {value};"]
        return [f"for (int64_t _i = 0; _i < {size}; _i++) {{", f"    {out}[_i] = {value};", "}"]

    def check_range(self, node: Node, idx: Node, n: str, code: str, lower: str) -> list[str]:
        """The range check ``lower <= v < n`` of every value of the index array ``idx`` (all of
        it, in order, like NumPy: the first bad value is the one reported)."""
        site = self.site(node)
        if idx.op == "const":
            v = self.at(idx, "0")
            return [f"if ({v} < {lower} || {v} >= {n}) {self.fail(code, v, n, site)}"]
        self.need("first_outside")
        ref = self.ref(idx)
        call = f"_sg_first_outside({ref}, {self.size(idx.shape)}, {lower}, {n})"
        fail = self.fail(code, f"{ref}[_bad]", n, site)
        return [f"{{ const int64_t _bad = {call}; if (_bad >= 0) {fail} }}"]

    def statement(self, node: Node, out: str) -> list[str]:
        """C statements computing ``node`` into the buffer ``out``, from its op's lowering."""
        found = lowering_of(node, "c")
        if isinstance(found, str):
            return self.elementwise(node, out, found)
        lines: list[str] = found(self, node, out)
        return lines

    def alias_check(self, node: Node) -> list[str]:
        """The check an alias op (``OpDef.alias``) makes before it is read as its operand
        (``class_index``'s range check): its op's ``emit["c-check"]``, if any."""
        check: Check | None = get_op(node.op).emit.get("c-check")
        return check(self, node) if check is not None else []

    def copy(self, node: Node, src: Node, out: str) -> list[str]:
        """``out`` = the elements of ``src`` in order (a reshape or a detach into a result)."""
        lens, vs = coalesce([prod(node.shape)], [View((ONE,)), View((ONE,))])
        return nest(lens, vs, lambda ix: [f"{out}[{ix[0]}] = {self.at(src, ix[1])};"], self.dim)

    def strided(self, out: str, out_view: View, src: Node, src_view: View, shape: Any) -> list[str]:
        """``out[out_view] = src[src_view]`` over the loop axes of ``shape``."""
        lens, vs = coalesce([Mono.of(d) for d in shape], [out_view, src_view])
        return nest(lens, vs, lambda ix: [f"{out}[{ix[0]}] = {self.at(src, ix[1])};"], self.dim)

    def elementwise(self, node: Node, out: str, template: str) -> list[str]:
        """One loop over ``node``'s elements, each the expression ``template`` of its operands'
        elements at the same (broadcast) index."""
        shape = node.shape
        views = [contiguous(shape)] + [broadcast(i.shape, shape) for i in node.inputs]
        lens, vs = coalesce([Mono.of(d) for d in shape], views)
        f = "f" if node.inputs and node.inputs[-1].dtype is FLOAT32 else ""
        self.note_helpers(template, f)
        fields = {name for _, name, _, _ in string.Formatter().parse(template) if name}

        def body(ix: list[str]) -> list[str]:
            args = [
                self.at(i, k) if str(n) in fields else ""  # a template may ignore an operand
                for n, (i, k) in enumerate(zip(node.inputs, ix[1:], strict=True))
            ]
            expr = template.format(*args, f=f, ctype=node.dtype.c_type)
            return [f"{out}[{ix[0]}] = {expr};"]

        return nest(lens, vs, body, self.dim, parallel=self.parallel)
