"""The C printer's per-op tables: element types, literals, elementwise expressions and the loop
code of every op of the registry.

Owns: :class:`OpPrinter`, which turns one scheduled statement into C statements that write the
statement's value into a C-order buffer. Each value is a contiguous array; reading operand ``x``
at element ``i`` is ``x[i]`` (scalar constants are inlined as literals). Elementwise expressions
come from each op's ``emit["c"]`` template (``emit["c_f32"]`` for float32 when present), except
for a few dtype-specific overrides below that match NumPy where the generic template does not:
NaN propagation of ``maximum``/``minimum``/``relu``/``sign`` on floats, and wrap-around int64
arithmetic (done in ``uint64_t``: signed overflow is undefined in C).

Error reporting: a failing check sets ``_err->value``/``_err->size``/``_err->site`` and returns a
nonzero code through ``SG_FAIL`` (see ``codegen_templates/c/kernel.c.j2``); ``site`` indexes the
table of model lines built here (``OpPrinter.sites``).

May import: the standard library, ``symgrad.ir``, ``symgrad.ops`` and ``symgrad.backends``.
"""

from __future__ import annotations

import math
import string
from collections.abc import Callable
from typing import Any

from symgrad.backends.c_loops import (
    ONE,
    DimName,
    Mono,
    View,
    broadcast,
    coalesce,
    contiguous,
    nest,
    prod,
    sliced,
    strides,
)
from symgrad.ir.dtypes import BOOL, FLOAT32, INT64, DType
from symgrad.ir.node import Node
from symgrad.ir.opdef import Kind, get_op

# the error codes of the kernel ABI (kernel.c.j2 #defines them from this table)
ERROR_CODES = {
    "SG_ERR_NOMEM": (1, "out of memory"),
    "SG_ERR_INDEX": (2, "an index out of range: value, size of the dim"),
    "SG_ERR_CLASS": (3, "a one_hot class out of range: value, number of classes"),
    "SG_ERR_EMPTY": (4, "the max of an empty array"),
}

# elementwise templates that replace the op's generic emit["c"] for a dtype family
_FLOAT_OVERRIDES = {
    "maximum": "({0} > {1} || {0} != {0} ? {0} : {1})",
    "minimum": "({0} < {1} || {0} != {0} ? {0} : {1})",
    "relu": "({0} > 0 || {0} != {0} ? {0} : 0)",
    "sign": "({0} > 0 ? 1 : ({0} < 0 ? -1 : ({0} == 0 ? 0 : {0})))",
}
_INT_OVERRIDES = {
    "add": "(int64_t)((uint64_t){0} + (uint64_t){1})",
    "sub": "(int64_t)((uint64_t){0} - (uint64_t){1})",
    "mul": "(int64_t)((uint64_t){0} * (uint64_t){1})",
    "neg": "(int64_t)(0 - (uint64_t){0})",
    "abs": "({0} < 0 ? (int64_t)(0 - (uint64_t){0}) : {0})",
}
_BOOL_OVERRIDES = {"abs": "{0}", "sign": "{0}"}
ALIAS_OPS = ("reshape", "detach")  # same elements in the same order: alias the input


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
    text = repr(f) + ("f" if dtype is FLOAT32 else "")
    return f"({text})" if text.startswith("-") else text


def elementwise_template(node: Node) -> str:
    """The C expression template of an elementwise node (``{0}``... operands, ``{f}``,
    ``{ctype}``)."""
    op = get_op(node.op)
    dt = node.inputs[-1].dtype if node.inputs else node.dtype
    if dt.is_float and node.op in _FLOAT_OVERRIDES:
        return _FLOAT_OVERRIDES[node.op]
    if dt is INT64 and node.op in _INT_OVERRIDES:
        return _INT_OVERRIDES[node.op]
    if dt is BOOL and node.op in _BOOL_OVERRIDES:
        return _BOOL_OVERRIDES[node.op]
    template = op.emit.get("c_f32") if dt is FLOAT32 else None
    template = template or op.emit.get("c")
    if not isinstance(template, str):
        raise NotImplementedError(f"op {node.op!r} has no C emission")
    return template


def _no_function(node: Node) -> str:
    raise RuntimeError("OpPrinter.ref is set by the function printer")


def plus(a: str, b: str) -> str:
    return b if a == "0" else a if b == "0" else f"{a} + {b}"


class OpPrinter:
    """Prints statements; ``ref`` names a node's buffer (set by the function being printed),
    ``dim`` a symbolic dim's variable."""

    def __init__(self, dim: DimName) -> None:
        self.ref: Callable[[Node], str] = _no_function
        self.dim = dim
        self.helpers: set[str] = set()
        self.sites: list[str] = []
        self.fails = False  # whether any statement jumps to the exit label

    # -- operands ---------------------------------------------------------------------------
    def at(self, node: Node, idx: str) -> str:
        if node.op == "const":
            return literal(node.attrs["value"], node.dtype)
        return f"{self.ref(node)}[{idx}]"

    def size(self, shape: tuple[Any, ...]) -> str:
        return prod(shape).c(self.dim)

    def site(self, node: Node) -> int:
        p = node.provenance
        text = p.short if p is not None else node.op
        if text not in self.sites:
            self.sites.append(text)
        return self.sites.index(text)

    def fail(self, code: str, value: str, size: str, site: int) -> str:
        assert code in ERROR_CODES
        self.fails = True
        return f"SG_FAIL({code}, {value}, {size}, {site});"

    def fill(self, out: str, size: str, value: str) -> list[str]:
        if size == "1":
            return [f"{out}[0] = {value};"]
        return [f"for (int64_t _i = 0; _i < {size}; _i++) {{", f"    {out}[_i] = {value};", "}"]

    # -- dispatch -----------------------------------------------------------------------------
    def statement(self, node: Node, out: str) -> list[str]:
        """C statements computing ``node`` into the buffer ``out``."""
        op = get_op(node.op)
        if op.kind is Kind.ELEMENTWISE:
            return self.elementwise(node, out, elementwise_template(node))
        method = getattr(self, "op_" + node.op, None)
        if method is None:
            raise NotImplementedError(f"the C backend cannot print op {node.op!r}")
        lines: list[str] = method(node, out)
        return lines

    def copy(self, node: Node, src: Node, out: str) -> list[str]:
        """``out`` = the elements of ``src`` in order (a reshape or a detach into a result)."""
        lens, vs = coalesce([prod(node.shape)], [View((ONE,)), View((ONE,))])
        return nest(lens, vs, lambda ix: [f"{out}[{ix[0]}] = {self.at(src, ix[1])};"], self.dim)

    def strided(self, out: str, out_view: View, src: Node, src_view: View, shape: Any) -> list[str]:
        """``out[out_view] = src[src_view]`` over the loop axes of ``shape``."""
        lens, vs = coalesce([Mono.of(d) for d in shape], [out_view, src_view])
        return nest(lens, vs, lambda ix: [f"{out}[{ix[0]}] = {self.at(src, ix[1])};"], self.dim)

    # -- elementwise and movement ---------------------------------------------------------
    def elementwise(self, node: Node, out: str, template: str) -> list[str]:
        shape = node.shape
        views = [contiguous(shape)] + [broadcast(i.shape, shape) for i in node.inputs]
        lens, vs = coalesce([Mono.of(d) for d in shape], views)
        f = "f" if node.inputs and node.inputs[-1].dtype is FLOAT32 else ""
        if "_sg_sigmoid{f}" in template:
            self.helpers.add("sigmoid" + f)
        fields = {name for _, name, _, _ in string.Formatter().parse(template) if name}

        def body(ix: list[str]) -> list[str]:
            args = [
                self.at(i, k) if str(n) in fields else ""  # a template may ignore an operand
                for n, (i, k) in enumerate(zip(node.inputs, ix[1:], strict=True))
            ]
            expr = template.format(*args, f=f, ctype=node.dtype.c_type)
            return [f"{out}[{ix[0]}] = {expr};"]

        return nest(lens, vs, body, self.dim)

    def op_broadcast_to(self, node: Node, out: str) -> list[str]:
        return self.elementwise(node, out, "{0}")

    def op_reshape(self, node: Node, out: str) -> list[str]:
        return self.copy(node, node.inputs[0], out)

    def op_transpose(self, node: Node, out: str) -> list[str]:
        (x,) = node.inputs
        st = strides(x.shape)
        src = View(tuple(st[p] for p in node.attrs["perm"]))
        return self.strided(out, contiguous(node.shape), x, src, node.shape)

    def op_slice(self, node: Node, out: str) -> list[str]:
        (x,) = node.inputs
        src = sliced(x.shape, node.attrs["index"])
        return self.strided(out, contiguous(node.shape), x, src, node.shape)

    def op_unslice(self, node: Node, out: str) -> list[str]:
        (g,) = node.inputs
        lines = self.fill(out, self.size(node.shape), "0")
        dst = sliced(node.shape, node.attrs["index"])
        return lines + self.strided(out, dst, g, contiguous(g.shape), g.shape)

    def op_concatenate(self, node: Node, out: str) -> list[str]:
        axis = node.attrs["axis"]
        st = strides(node.shape)
        lines: list[str] = []
        start = 0
        for x in node.inputs:
            dst = View(tuple(st), (st[axis].scale(start),))
            lines += self.strided(out, dst, x, contiguous(x.shape), x.shape)
            n = x.shape[axis]
            start += n if isinstance(n, int) else 0
        return lines

    # -- reductions ---------------------------------------------------------------------------
    def _reduce_update(self, node: Node, acc: str, v: str) -> str:
        if node.op == "max":
            if node.inputs[0].dtype.is_float:
                return f"{acc} = ({v} > {acc} || {v} != {v}) ? {v} : {acc};"
            if node.inputs[0].dtype is BOOL:
                return f"{acc} = {acc} || {v};"
            return f"{acc} = {v} > {acc} ? {v} : {acc};"
        if node.dtype is INT64 and node.inputs[0].dtype is INT64:
            return f"{acc} = (int64_t)((uint64_t){acc} + (uint64_t){v});"
        return f"{acc} += {v};"

    def _reduce(self, node: Node, out: str) -> list[str]:
        """sum/max over axes, in the input's memory order. When the reduced axes are innermost
        (``sum(axis=-1)``, a full reduction) each result is one pass over a contiguous run:
        NumPy's pairwise summation for float sums, a running value otherwise; else results
        start at the identity and every input element updates its result in place."""
        (x,) = node.inputs
        axes = node.attrs["axis"]
        kept = [d for k, d in enumerate(x.shape) if k not in axes]
        kst = iter(strides(kept))
        out_view = View(tuple(Mono(0) if k in axes else next(kst) for k in range(x.ndim)))
        lens, (ov, xv) = coalesce([Mono.of(d) for d in x.shape], [out_view, contiguous(x.shape)])
        dt = x.dtype
        if node.op == "sum":
            ident = "0"
        elif dt.is_float:
            ident = "(-INFINITY)"
        else:
            ident = "0" if dt is BOOL else "INT64_MIN"
        lines: list[str] = []
        total = prod(x.shape)
        if node.op == "max" and (total.coef == 0 or total.syms):  # NumPy: no identity
            fail = self.fail("SG_ERR_EMPTY", "0", "0", self.site(node))
            lines.append(f"if ({total.c(self.dim)} == 0) {fail}")
        inner = bool(lens) and ov.strides[-1].is_zero and xv.strides[-1].is_one
        once = inner and not any(st.is_zero for st in ov.strides[:-1])  # one run per result
        if not once:
            lines += self.fill(out, self.size(node.shape), ident)
        if not inner:
            upd = lambda ix: [self._reduce_update(node, f"{out}[{ix[0]}]", self.at(x, ix[1]))]  # noqa: E731
            return lines + nest(lens, [ov, xv], upd, self.dim)
        n_inner = lens[-1].c(self.dim)
        ovo, xvo = (View(v.strides[:-1], v.offset) for v in (ov, xv))
        ctype = node.dtype.c_type
        assign = "=" if once else "+="

        def body(ix: list[str]) -> list[str]:
            if node.op == "sum" and dt.is_float:
                fn = "_sg_sum_f32" if dt is FLOAT32 else "_sg_sum_f64"
                self.helpers.add(fn[4:])
                return [f"{out}[{ix[0]}] {assign} {fn}(&{self.ref(x)}[{ix[1]}], {n_inner});"]
            return [
                f"{ctype} _acc = {ident if once else f'{out}[{ix[0]}]'};",
                f"for (int64_t _j = 0; _j < {n_inner}; _j++) {{",
                f"    {self._reduce_update(node, '_acc', self.at(x, plus(ix[1], '_j')))}",
                "}",
                f"{out}[{ix[0]}] = _acc;",
            ]

        return lines + nest(lens[:-1], [ovo, xvo], body, self.dim)

    op_sum = _reduce
    op_max = _reduce

    # -- indexing -------------------------------------------------------------------------------
    def _check(self, node: Node, idx: Node, n: str, code: str, lower: str) -> list[str]:
        """Range checks of one index array (all of it, in order, like NumPy)."""
        site = self.site(node)
        cond = f"_v < {lower} || _v >= {n}"
        fail = self.fail(code, "_v", n, site)
        if idx.op == "const":
            return [f"{{ const int64_t _v = {self.at(idx, '0')}; if ({cond}) {fail} }}"]
        return [
            f"for (int64_t _j = 0; _j < {self.size(idx.shape)}; _j++) {{",
            f"    const int64_t _v = {self.ref(idx)}[_j];",
            f"    if ({cond}) {fail}",
            "}",
        ]

    def _indexed(self, node: Node, out: str, table: tuple[Any, ...], scatter: bool) -> list[str]:
        """gather (``out = x[i0, ..., ik]``) and scatter_add (``out[i0, ..., ik] += g``)."""
        src, *idx = node.inputs
        k = len(idx)
        lines: list[str] = []
        dims = [Mono.of(d).c(self.dim) for d in table[:k]]
        for m, i in enumerate(idx):
            lines += self._check(node, i, dims[m], "SG_ERR_INDEX", f"-{dims[m]}")
        full = src if scatter else node  # the array of shape (*index shape, *rows)
        ishape = full.shape[: full.ndim - (len(table) - k)]
        rows = prod(table[k:])
        tst = strides(table)
        views = [contiguous(ishape, rows)] + [broadcast(i.shape, ishape) for i in idx]
        lens, vs = coalesce([Mono.of(d) for d in ishape], views)
        n_rows = rows.c(self.dim)

        def body(ix: list[str]) -> list[str]:
            code: list[str] = []
            terms = []
            for m, i in enumerate(idx):
                code.append(f"int64_t _v{m} = {self.at(i, ix[1 + m])};")
                code.append(f"if (_v{m} < 0) _v{m} += {dims[m]};")
                st = tst[m]
                terms.append(f"_v{m}" if st.is_one else f"_v{m} * {st.c(self.dim)}")
            code.append(f"const int64_t _s = {' + '.join(terms)};")
            r = "0" if rows.is_one else "_r"
            if scatter:
                stmt = f"{out}[{plus('_s', r)}] += {self.at(src, plus(ix[0], r))};"
            else:
                stmt = f"{out}[{plus(ix[0], r)}] = {self.ref(src)}[{plus('_s', r)}];"
            if rows.is_one:
                return [*code, stmt]
            return [*code, f"for (int64_t _r = 0; _r < {n_rows}; _r++) {{", f"    {stmt}", "}"]

        return lines + nest(lens, vs, body, self.dim)

    def op_gather(self, node: Node, out: str) -> list[str]:
        return self._indexed(node, out, node.inputs[0].shape, scatter=False)

    def op_scatter_add(self, node: Node, out: str) -> list[str]:
        lines = self.fill(out, self.size(node.shape), "0")
        return lines + self._indexed(node, out, node.attrs["shape"], scatter=True)

    def op_one_hot(self, node: Node, out: str) -> list[str]:
        (i,) = node.inputs
        c = node.attrs["num_classes"]
        lines = self._check(node, i, str(c), "SG_ERR_CLASS", "0")
        lines += self.fill(out, self.size(node.shape), "0")
        n = self.size(i.shape)
        return lines + [
            f"for (int64_t _i = 0; _i < {n}; _i++) {{",
            f"    {out}[_i * {c} + {self.at(i, '_i')}] = 1;",
            "}",
        ]

    def op_class_index(self, node: Node, out: str) -> list[str]:
        (i,) = node.inputs
        c = node.attrs["num_classes"]
        return self._check(node, i, str(c), "SG_ERR_CLASS", "0") + self.copy(node, i, out)

    # -- sources ----------------------------------------------------------------------------------
    def op_arange(self, node: Node, out: str) -> list[str]:
        return self.fill(out, Mono.of(node.attrs["n"]).c(self.dim), "_i")

    def op_dimsize(self, node: Node, out: str) -> list[str]:
        return [f"{out}[0] = ({node.dtype.c_type})({prod(node.attrs['dims']).c(self.dim)});"]

    # -- linear algebra -----------------------------------------------------------------------
    def op_matmul(self, node: Node, out: str) -> list[str]:
        a, b = node.inputs
        ash = a.shape if a.ndim >= 2 else (1, a.shape[0])
        bsh = b.shape if b.ndim >= 2 else (b.shape[0], 1)
        m, k, n = Mono.of(ash[-2]), Mono.of(ash[-1]), Mono.of(bsh[-1])
        batch = node.shape[: node.ndim - (a.ndim >= 2) - (b.ndim >= 2)]
        views = [
            contiguous(batch, m * n),
            broadcast(ash[:-2], batch, m * k),
            broadcast(bsh[:-2], batch, k * n),
        ]
        lens, vs = coalesce([Mono.of(d) for d in batch], views)
        mc, kc, nc = (x.c(self.dim) for x in (m, k, n))
        ct = node.dtype.c_type
        row_a = "_m" if k.is_one else f"_m * {kc}"
        row_c = "_m" if n.is_one else f"_m * {nc}"
        row_b = "_k" if n.is_one else f"_k * {nc}"

        def body(ix: list[str]) -> list[str]:
            head = [
                f"{ct} *restrict _c = {plus(out, ix[0])};",
                f"const {ct} *restrict _a = {plus(self.ref(a), ix[1])};",
                f"const {ct} *restrict _b = {plus(self.ref(b), ix[2])};",
                f"for (int64_t _m = 0; _m < {mc}; _m++) {{",
            ]
            if n.is_one:  # a matrix-vector product: one dot product per row
                inner = [
                    f"    {ct} _s = 0;",
                    f"    for (int64_t _k = 0; _k < {kc}; _k++) {{",
                    f"        _s += _a[{plus(row_a, '_k')}] * _b[_k];",
                    "    }",
                    "    _c[_m] = _s;",
                ]
            else:  # i-k-j order: the innermost loop is contiguous in _b and _c
                inner = [
                    f"    for (int64_t _n = 0; _n < {nc}; _n++) {{",
                    f"        _c[{plus(row_c, '_n')}] = 0;",
                    "    }",
                    f"    for (int64_t _k = 0; _k < {kc}; _k++) {{",
                    f"        const {ct} _x = _a[{plus(row_a, '_k')}];",
                    f"        for (int64_t _n = 0; _n < {nc}; _n++) {{",
                    f"            _c[{plus(row_c, '_n')}] += _x * _b[{plus(row_b, '_n')}];",
                    "        }",
                    "    }",
                ]
            return [*head, *inner, "}"]

        return nest(lens, vs, body, self.dim, prefix="_p")
