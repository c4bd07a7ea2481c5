"""The C printer's per-op tables: element types, literals, elementwise expressions and the loop
code of every op of the registry.

Owns: :class:`OpPrinter`, which turns one scheduled statement into C statements that write the
statement's value into a C-order buffer. Each value is a contiguous array; reading operand ``x``
at element ``i`` is ``x[i]`` (scalar constants are inlined as literals). Elementwise expressions
are the op's own C lowering for the operands' dtype (:meth:`OpDef.lowering`: ``"c:float32"``,
then ``"c:float"``, then ``"c"``), declared with the op in ``symgrad/ops/``: that is where the
NaN propagation of ``maximum``/``minimum``/``relu``/``sign`` on floats, the wrap-around int64
arithmetic (in ``uint64_t``: signed overflow is undefined in C) and float32 ``exp``/``tanh``
through the vectorisable helpers ``_sg_expf``/``_sg_tanhf`` (``templates/c/_helpers.c.j2``:
within 0.99 and 1.33 ulp of the exact value for every float32) are declared.

Error reporting: a failing check sets ``_err->value``/``_err->size``/``_err->site`` and returns a
nonzero code through ``SG_FAIL`` (see ``templates/c/kernel.c.j2``); ``site`` indexes the
table of model lines built here (``OpPrinter.sites``).

"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Callable
from typing import Any

from symgrad.codegen.c.loops import (
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
from symgrad.ir.opdef import Kind, broadcast_shapes, get_op, lowering_of

# the error codes of the kernel ABI (kernel.c.j2 #defines them from this table)
ERROR_CODES = {
    "SG_ERR_NOMEM": (1, "out of memory"),
    "SG_ERR_INDEX": (2, "an index out of range: value, size of the dim"),
    "SG_ERR_CLASS": (3, "a one_hot class out of range: value, number of classes"),
    "SG_ERR_EMPTY": (4, "the max of an empty array"),
}

_HELPER_CALL = re.compile(r"\b_sg_(\w+)\(")
# same elements in the same order: alias the input (class_index after its range check)
ALIAS_OPS = ("reshape", "detach", "class_index")
TILE_ROWS, TILE_BYTES = 8, 1024  # matmul: rows per register tile, bytes of its accumulators
REDUCE_COLUMNS = 32  # column sums with at most this many (static) columns accumulate locally


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
    template = lowering_of(node, "c")
    if not isinstance(template, str):
        raise NotImplementedError(f"op {node.op!r}: its C lowering is not an expression template")
    return template


def _in_range(idx: Node, dim: Any) -> bool:
    """Whether ``idx`` is known to hold indices in ``[0, dim)``: a ``class_index`` with at most
    ``dim`` classes has been checked already (so a second range check is left out)."""
    n = idx.attrs.get("num_classes") if idx.op == "class_index" else None
    return isinstance(n, int) and isinstance(dim, int) and n <= dim


def _no_function(node: Node) -> str:
    raise RuntimeError("OpPrinter.ref is set by the function printer")


def transposed_operand(node: Node) -> Node | None:
    """``x`` when ``node`` is the 2-D product ``transpose(x) @ b`` (the C printer then reads
    ``x`` column-wise instead of copying its transpose), else None."""
    if node.op != "matmul" or node.ndim != 2:
        return None
    a = node.inputs[0]
    if a.op == "transpose" and a.ndim == 2 and tuple(a.attrs["perm"]) == (1, 0):
        return a.inputs[0]
    return None


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
        self.parallel = False  # OpenMP on large elementwise loops (SYMGRAD_OPENMP=1)
        # how the matmul being printed indexes its left operand: (row, k) -> element
        self._a_index: Callable[[str, str], str] = lambda row, kk: f"{row} + {kk}"

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

    def note_helpers(self, template: str, f: str = "") -> None:
        """Record the helper functions (``_sg_<name>(``) an expression template calls."""
        self.helpers.update(_HELPER_CALL.findall(template.replace("{f}", f)))

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
        reduced = prod(tuple(x.shape[a] for a in axes))  # NumPy: no identity when it is 0
        if node.op == "max" and (reduced.coef == 0 or reduced.syms):
            fail = self.fail("SG_ERR_EMPTY", "0", "0", self.site(node))
            lines.append(f"if ({reduced.c(self.dim)} == 0) {fail}")
        inner = bool(lens) and ov.strides[-1].is_zero and xv.strides[-1].is_one
        once = inner and not any(st.is_zero for st in ov.strides[:-1])  # one run per result
        if not inner and self._columns(lens, ov, xv):
            return lines + self._reduce_columns(node, out, lens, ident)
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

    @staticmethod
    def _columns(lens: list[Mono], ov: View, xv: View) -> bool:
        """A reduction over the rows of a contiguous matrix with a few static columns (a bias
        gradient: ``g.sum(0)``), whose results fit in registers."""
        return (
            len(lens) == 2
            and not lens[1].syms
            and 0 < lens[1].coef <= REDUCE_COLUMNS
            and not ov.offset
            and not xv.offset
            and ov.strides[0].is_zero
            and ov.strides[1].is_one
            and xv.strides[1].is_one
            and xv.strides[0] == lens[1]
        )

    def _reduce_columns(self, node: Node, out: str, lens: list[Mono], ident: str) -> list[str]:
        """Column results accumulated in a local array while the rows run (each still updated
        in row order, so the values are those of the in-place loop)."""
        (x,) = node.inputs
        rows, cols = (d.c(self.dim) for d in lens)
        ct = node.dtype.c_type
        value = self.at(x, f"_r * {cols} + _j")
        return [
            "{",
            f"    {ct} _acc[{cols}];",
            f"    for (int64_t _j = 0; _j < {cols}; _j++) {{",
            f"        _acc[_j] = {ident};",
            "    }",
            f"    for (int64_t _r = 0; _r < {rows}; _r++) {{",
            f"        for (int64_t _j = 0; _j < {cols}; _j++) {{",
            f"            {self._reduce_update(node, '_acc[_j]', value)}",
            "        }",
            "    }",
            f"    for (int64_t _j = 0; _j < {cols}; _j++) {{",
            f"        {out}[_j] = _acc[_j];",
            "    }",
            "}",
        ]

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
            if not _in_range(i, table[m]):
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

    def op_bincount(self, node: Node, out: str) -> list[str]:
        """``out[i0, ..., ik] += 1`` per index tuple, indices checked like gather's: in the
        counting loop when one array needs it (the first bad value in order either way), else
        array by array first."""
        idx, table = node.inputs, node.attrs["shape"]
        dims = [Mono.of(d).c(self.dim) for d in table]
        lines = self.fill(out, self.size(node.shape), "0")
        checked = [m for m, i in enumerate(idx) if not _in_range(i, table[m])]
        inline = len(checked) == 1
        for m in [] if inline else checked:
            lines += self._check(node, idx[m], dims[m], "SG_ERR_INDEX", f"-{dims[m]}")
        ishape = broadcast_shapes(*(i.shape for i in idx))
        lens, vs = coalesce([Mono.of(d) for d in ishape], [broadcast(i.shape, ishape) for i in idx])
        tst = strides(table)
        site = self.site(node)

        def body(ix: list[str]) -> list[str]:
            code, terms = [], []
            for m, i in enumerate(idx):
                code.append(f"int64_t _v{m} = {self.at(i, ix[m])};")
                if inline and m in checked:
                    fail = self.fail("SG_ERR_INDEX", f"_v{m}", dims[m], site)
                    code.append(f"if (_v{m} < -{dims[m]} || _v{m} >= {dims[m]}) {fail}")
                if m in checked:
                    code.append(f"if (_v{m} < 0) _v{m} += {dims[m]};")
                terms.append(f"_v{m}" if tst[m].is_one else f"_v{m} * {tst[m].c(self.dim)}")
            return [*code, f"{out}[{' + '.join(terms)}] += 1;"]

        return lines + nest(lens, vs, body, self.dim)

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
        return self.alias_check(node) + self.copy(node, node.inputs[0], out)

    def alias_check(self, node: Node) -> list[str]:
        """The check an alias op makes before it is read as its input (class_index's range)."""
        if node.op != "class_index":
            return []
        c = node.attrs["num_classes"]
        return self._check(node, node.inputs[0], str(c), "SG_ERR_CLASS", "0")

    # -- the fused softmax + negative log-likelihood (symgrad/ops/softmax_nll.py) ---------------
    def _softmax_rows(self, node: Node, body: list[str]) -> list[str]:
        """A loop over the rows of ``z`` (n, C): ``_z`` points at the row, ``_y`` is its target
        (checked like gather's index first, negative values wrapped) and ``_m`` the row's max;
        ``body`` finishes the row. A NaN in the row need not reach ``_m``: ``exp(z - _m)`` of
        it is NaN, so the row's sum, and every result of the row, is NaN anyway."""
        z, y = node.inputs[:2]
        n, c = (Mono.of(d).c(self.dim) for d in z.shape)
        ct = z.dtype.c_type
        lines = self._check(node, y, c, "SG_ERR_INDEX", f"-{c}")
        return lines + [
            f"for (int64_t _i = 0; _i < {n}; _i++) {{",
            f"    const {ct} *_z = &{self.ref(z)}[_i * {c}];",
            f"    int64_t _y = {self.at(y, '_i')};",
            f"    {ct} _m = _z[0];",
            f"    if (_y < 0) _y += {c};",
            f"    for (int64_t _j = 1; _j < {c}; _j++) {{",
            "        _m = _z[_j] > _m ? _z[_j] : _m;",
            "    }",
            *("    " + line for line in body),
            "}",
        ]

    def _exp(self, node: Node) -> str:
        if node.dtype is FLOAT32:
            self.helpers.add("expf")
            return "_sg_expf"
        return "exp"

    def op_softmax_nll(self, node: Node, out: str) -> list[str]:
        """Per row: max, sum of exp(z - max), then (max - picked) + log(sum)."""
        z = node.inputs[0]
        c = Mono.of(z.shape[1]).c(self.dim)
        ct, f = z.dtype.c_type, "f" if z.dtype is FLOAT32 else ""
        return self._softmax_rows(
            node,
            [
                f"{ct} _s = 0;",
                f"for (int64_t _j = 0; _j < {c}; _j++) {{",
                f"    _s += {self._exp(node)}(_z[_j] - _m);",
                "}",
                f"{out}[_i] = (_m - _z[_y]) + log{f}(_s);",
            ],
        )

    def op_softmax_nll_grad(self, node: Node, out: str) -> list[str]:
        """Per row: the softmax written into the output row (its sum pairwise, like NumPy's),
        then g * (p - 1) at the target and g * p elsewhere."""
        z, _, g = node.inputs
        c = Mono.of(z.shape[1]).c(self.dim)
        ct, t = z.dtype.c_type, "f32" if z.dtype is FLOAT32 else "f64"
        self.helpers.add("sum_" + t)
        return self._softmax_rows(
            node,
            [
                f"{ct} *_o = &{out}[_i * {c}];",
                f"const {ct} _g = {self.at(g, '_i')};",
                f"for (int64_t _j = 0; _j < {c}; _j++) {{",
                f"    _o[_j] = {self._exp(node)}(_z[_j] - _m);",
                "}",
                f"const {ct} _s = _sg_sum_{t}(_o, {c});",
                f"for (int64_t _j = 0; _j < {c}; _j++) {{",
                "    _o[_j] = (_o[_j] / _s - (_j == _y)) * _g;",
                "}",
            ],
        )

    # -- sources ----------------------------------------------------------------------------------
    def op_arange(self, node: Node, out: str) -> list[str]:
        size = Mono.of(node.attrs["n"]).c(self.dim)
        return self.fill(out, size, "0" if size == "1" else "_i")  # fill() has no loop for 1

    def op_dimsize(self, node: Node, out: str) -> list[str]:
        return [f"{out}[0] = ({node.dtype.c_type})({prod(node.attrs['dims']).c(self.dim)});"]

    # -- linear algebra -----------------------------------------------------------------------
    def op_matmul(self, node: Node, out: str) -> list[str]:
        a, b = node.inputs
        at = transposed_operand(node)
        if at is not None:  # ``x.T @ b``: read x column-wise, no transposed copy
            a = at
        ash = a.shape if a.ndim >= 2 else (1, a.shape[0])
        if at is not None:
            ash = (ash[1], ash[0])
        bsh = b.shape if b.ndim >= 2 else (b.shape[0], 1)
        m, k, n = Mono.of(ash[-2]), Mono.of(ash[-1]), Mono.of(bsh[-1])
        batch = node.shape[: node.ndim - (a.ndim >= 2) - (b.ndim >= 2)]
        views = [
            contiguous(batch, m * n),
            broadcast(ash[:-2], batch, m * k),
            broadcast(bsh[:-2], batch, k * n),
        ]
        lens, vs = coalesce([Mono.of(d) for d in batch], views)
        mc, kc = m.c(self.dim), k.c(self.dim)
        ct = node.dtype.c_type
        self._a_index = (
            (lambda row, kk: f"{kk} * {mc} + {row}")
            if at is not None
            else (lambda row, kk: f"{row} * {kc} + {kk}")
        )
        row_a = "_m" if k.is_one else f"_m * {kc}"
        a_row = self._a_index("_m", "_k") if at is not None else plus(row_a, "_k")

        def body(ix: list[str]) -> list[str]:
            note = [f"/* the left operand is {self.ref(a)} transposed: read column-wise */"]
            head = [
                *(note if at is not None else []),
                f"{ct} *restrict _c = {plus(out, ix[0])};",
                f"const {ct} *restrict _a = {plus(self.ref(a), ix[1])};",
                f"const {ct} *restrict _b = {plus(self.ref(b), ix[2])};",
            ]
            if not n.is_one:
                return head + self._matmul_rows(node, m, k, n)
            if at is not None and not m.syms and m.coef <= REDUCE_COLUMNS:
                return head + [  # a transposed matrix times a vector, in registers
                    f"{ct} _acc[{mc}];",
                    f"for (int64_t _m = 0; _m < {mc}; _m++) {{",
                    "    _acc[_m] = 0;",
                    "}",
                    f"for (int64_t _k = 0; _k < {kc}; _k++) {{",
                    f"    const {ct} _x = _b[_k];",
                    f"    for (int64_t _m = 0; _m < {mc}; _m++) {{",
                    f"        _acc[_m] += _a[{a_row}] * _x;",
                    "    }",
                    "}",
                    f"for (int64_t _m = 0; _m < {mc}; _m++) {{",
                    "    _c[_m] = _acc[_m];",
                    "}",
                ]
            if at is not None:  # a transposed matrix times a vector: a row of it at a time
                return head + [
                    f"for (int64_t _m = 0; _m < {mc}; _m++) {{",
                    "    _c[_m] = 0;",
                    "}",
                    f"for (int64_t _k = 0; _k < {kc}; _k++) {{",
                    f"    const {ct} _x = _b[_k];",
                    f"    for (int64_t _m = 0; _m < {mc}; _m++) {{",
                    f"        _c[_m] += _a[{a_row}] * _x;",
                    "    }",
                    "}",
                ]
            return head + self._matvec_rows(ct, mc, kc)

        return nest(lens, vs, body, self.dim, prefix="_p")

    @staticmethod
    def _matvec_rows(ct: str, mc: str, kc: str) -> list[str]:
        """``_c = _a @ _b`` (m×k times a vector): one dot product per row, ``TILE_ROWS`` rows at
        a time so that their sums are independent chains (each still summed over ``k`` in
        order from 0, so the result does not depend on the blocking)."""
        rows = range(TILE_ROWS)
        return [
            "int64_t _m = 0;",
            f"for (; _m + {TILE_ROWS} <= {mc}; _m += {TILE_ROWS}) {{",
            f"    {ct} " + ", ".join(f"_s{r} = 0" for r in rows) + ";",
            f"    for (int64_t _k = 0; _k < {kc}; _k++) {{",
            f"        const {ct} _x = _b[_k];",
            *(f"        _s{r} += _a[(_m + {r}) * {kc} + _k] * _x;" for r in rows),
            "    }",
            *(f"    _c[_m + {r}] = _s{r};" for r in rows),
            "}",
            f"for (; _m < {mc}; _m++) {{",
            f"    {ct} _s = 0;",
            f"    for (int64_t _k = 0; _k < {kc}; _k++) {{",
            "        _s += _a[_m * " + kc + " + _k] * _b[_k];",
            "    }",
            "    _c[_m] = _s;",
            "}",
        ]

    def _matmul_rows(self, node: Node, m: Mono, k: Mono, n: Mono) -> list[str]:
        """``_c = _a @ _b`` (m×k times k×n, contiguous). Tiles of ``TILE_ROWS`` rows by a few
        vector widths of columns are accumulated in small local arrays (1 KiB in all: kept in
        vector registers or an L1-resident stack slot; never a large local array) while ``k``
        runs, so each element of ``_b`` loaded serves ``TILE_ROWS`` rows and the accumulators
        form independent chains; loads past the last column read 0, and only the real columns
        are stored. Rows left over go one at a time in i-k-j order. Every element is summed
        over ``k`` in order from 0, so the results do not depend on the tiling."""
        ct = node.dtype.c_type
        mc, kc, nc = (x.c(self.dim) for x in (m, k, n))
        size = node.dtype.np.itemsize
        width = TILE_BYTES // TILE_ROWS // size
        while not n.syms and 2 * n.coef <= width and width * size > 64:
            width //= 2  # a narrow product: down to one 64-byte vector, no half-empty ones
        single = not n.syms and n.coef <= width  # one block of columns
        col, end = ("_n", nc) if single else ("_j + _n", "_w")

        def rows_block(count: int) -> list[str]:
            """``count`` rows from ``_m`` on, accumulated together."""
            rows = range(count)
            at = ["_m"] + [f"(_m + {r})" for r in rows[1:]]
            acc = [f"_acc{r}" for r in rows]
            return [
                f"{ct} {', '.join(f'{a}[{width}]' for a in acc)};",
                f"for (int64_t _n = 0; _n < {width}; _n++) {{",
                *(f"    {a}[_n] = 0;" for a in acc),
                "}",
                f"for (int64_t _k = 0; _k < {kc}; _k++) {{",
                *(f"    const {ct} _x{r} = _a[{self._a_index(at[r], '_k')}];" for r in rows),
                f"    for (int64_t _n = 0; _n < {width}; _n++) {{",
                f"        const {ct} _y = _n < {end} ? _b[_k * {nc} + {col}] : 0;",
                *(f"        {acc[r]}[_n] += _x{r} * _y;" for r in rows),
                "    }",
                "}",
                f"for (int64_t _n = 0; _n < {end}; _n++) {{",
                *(f"    _c[{at[r]} * {nc} + {col}] = {acc[r]}[_n];" for r in rows),
                "}",
            ]

        block = rows_block(TILE_ROWS)
        if not single:
            block = [
                f"for (int64_t _j = 0; _j < {nc}; _j += {width}) {{",
                f"    const int64_t _w = {nc} - _j < {width} ? {nc} - _j : {width};",
                *("    " + line for line in block),
                "}",
            ]
        note = f"    /* {TILE_ROWS} rows x {width} columns at a time, summed over k in registers */"
        tile = [note, *("    " + line for line in block), "}"]
        one = [  # one row in i-k-j order
            f"    for (int64_t _n = 0; _n < {nc}; _n++) {{",
            f"        _c[_m * {nc} + _n] = 0;",
            "    }",
            f"    for (int64_t _k = 0; _k < {kc}; _k++) {{",
            f"        const {ct} _x = _a[{self._a_index('_m', '_k')}];",
            f"        for (int64_t _n = 0; _n < {nc}; _n++) {{",
            f"            _c[_m * {nc} + _n] += _x * _b[_k * {nc} + _n];",
            "        }",
            "    }",
            "}",
        ]
        if single:  # one row, its accumulators in registers
            one = [
                f"    {ct} _acc[{width}];",
                f"    for (int64_t _n = 0; _n < {width}; _n++) {{",
                "        _acc[_n] = 0;",
                "    }",
                f"    for (int64_t _k = 0; _k < {kc}; _k++) {{",
                f"        const {ct} _x = _a[{self._a_index('_m', '_k')}];",
                f"        for (int64_t _n = 0; _n < {width}; _n++) {{",
                f"            _acc[_n] += _x * (_n < {nc} ? _b[_k * {nc} + _n] : 0);",
                "        }",
                "    }",
                f"    for (int64_t _n = 0; _n < {nc}; _n++) {{",
                f"        _c[_m * {nc} + _n] = _acc[_n];",
                "    }",
                "}",
            ]
        if m.syms:
            return [
                "int64_t _m = 0;",
                f"for (; _m + {TILE_ROWS} <= {mc}; _m += {TILE_ROWS}) {{",
                *tile,
                f"for (; _m < {mc}; _m++) {{",
                *one,
            ]
        full = m.coef - m.coef % TILE_ROWS  # static rows: only the loops that run
        lines = [f"for (int64_t _m = 0; _m < {full}; _m += {TILE_ROWS}) {{", *tile] if full else []
        if full < m.coef and single:  # the rows left over, together
            rest = m.coef - full
            lines += [
                "{",
                f"    /* {'the last ' if full else 'all '}{rest} row{'s' * (rest > 1)} at a time,"
                " summed over k in registers */",
                f"    const int64_t _m = {full};",
                *("    " + line for line in rows_block(rest)),
                "}",
            ]
        elif full < m.coef:
            lines += [f"for (int64_t _m = {full}; _m < {mc}; _m++) {{", *one]
        return lines
