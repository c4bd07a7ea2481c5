"""Strided loop nests for the C printer: sizes and strides as monomials over symbolic dims.

Owns: :class:`Mono` (``coef * n * m``: an int times a product of symbolic dims, enough for every
size, stride and offset of a static-rank program), :class:`View` (how one operand is addressed
over the loop axes: an offset plus one stride per axis; stride 0 broadcasts), the views of
contiguous, broadcast, permuted and sliced operands, :func:`coalesce` (dropping unit axes and
merging axes that every operand walks contiguously, so equal-shape elementwise code is one flat
loop) and :func:`nest` (the C text of the loops). All shapes are static in rank and in which
dims are 1, so every broadcasting decision is made here, at generation time.

May import: the standard library and ``symgrad.ir``. Lives with the op library: the C
lowerings of the ops (declared with them) build their loops from it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from symgrad.ir.node import Dim

DimName = Callable[[str], str]  # symbolic dim -> its C variable (and records the use)


@dataclass(frozen=True, slots=True)
class Mono:
    """``coef * syms[0] * syms[1] * ...`` with the symbolic dims sorted (a canonical form)."""

    coef: int
    syms: tuple[str, ...] = ()

    @staticmethod
    def of(d: Dim) -> Mono:
        return Mono(d) if isinstance(d, int) else Mono(1, (d,))

    def __mul__(self, other: Mono) -> Mono:
        if self.coef == 0 or other.coef == 0:
            return ZERO
        return Mono(self.coef * other.coef, tuple(sorted(self.syms + other.syms)))

    def scale(self, k: int) -> Mono:
        return self * Mono(k)

    @property
    def is_zero(self) -> bool:
        return self.coef == 0

    @property
    def is_one(self) -> bool:
        return self.coef == 1 and not self.syms

    def c(self, dim: DimName) -> str:
        """C text (int64 arithmetic: the dim variables are ``int64_t``)."""
        if not self.syms:
            return _int(self.coef)
        parts = [dim(s) for s in self.syms]
        if self.coef != 1:
            parts.insert(0, _int(self.coef))
        return " * ".join(parts)


ZERO = Mono(0)
ONE = Mono(1)


def _int(v: int) -> str:
    text = str(v) if -(2**31) < v < 2**31 else f"{v}LL"
    return f"({text})" if v < 0 else text


def prod(dims: Sequence[Dim]) -> Mono:
    out = ONE
    for d in dims:
        out = out * Mono.of(d)
    return out


def strides(shape: Sequence[Dim]) -> list[Mono]:
    """C-order strides (in elements) of a contiguous array."""
    out: list[Mono] = []
    acc = ONE
    for d in reversed(shape):
        out.append(acc)
        acc = acc * Mono.of(d)
    return out[::-1]


@dataclass(frozen=True)
class View:
    """An operand over the loop axes: element ``offset + sum_k i_k * strides[k]``."""

    strides: tuple[Mono, ...]
    offset: tuple[Mono, ...] = ()


def contiguous(shape: Sequence[Dim], scale: Mono = ONE) -> View:
    return View(tuple(s * scale for s in strides(shape)))


def broadcast(src: Sequence[Dim], out: Sequence[Dim], scale: Mono = ONE) -> View:
    """A contiguous array of shape ``src`` read at every index of the broadcast shape ``out``."""
    st = strides(src)
    lead = len(out) - len(src)
    res: list[Mono] = []
    for k in range(len(out)):
        j = k - lead
        moves = j >= 0 and src[j] != 1
        res.append(st[j] * scale if moves else ZERO)
    return View(tuple(res))


def sliced(shape: Sequence[Dim], index: Sequence[tuple[Dim, Dim, int]]) -> View:
    """The elements ``x[start:stop:step, ...]`` of a contiguous ``x``, over the slice's shape."""
    st = strides(shape)
    offset = tuple(s * Mono(int(start)) for s, (start, _, _) in zip(st, index, strict=True))
    return View(tuple(s.scale(step) for s, (_, _, step) in zip(st, index, strict=True)), offset)


def coalesce(lens: Sequence[Mono], views: Sequence[View]) -> tuple[list[Mono], list[View]]:
    """Drop unit axes and merge an axis into the one outside it when every view steps over the
    inner axis exactly as far as one step of the outer one (contiguous in all operands)."""
    keep = [k for k, n in enumerate(lens) if not n.is_one]
    out_lens = [lens[k] for k in keep]
    out_st = [[v.strides[k] for k in keep] for v in views]
    k = len(out_lens) - 1
    while k > 0:
        inner = out_lens[k]
        if all(st[k - 1] == st[k] * inner for st in out_st):
            out_lens[k - 1] = out_lens[k - 1] * inner
            del out_lens[k]
            for st in out_st:
                st[k - 1] = st[k]
                del st[k]
        k -= 1
    return out_lens, [View(tuple(st), v.offset) for st, v in zip(out_st, views, strict=True)]


def index_expr(terms: Sequence[tuple[str, Mono]], offset: Sequence[Mono], dim: DimName) -> str:
    """``offset + var * stride + ...`` as C text (``0`` when empty)."""
    parts: list[tuple[bool, str]] = []  # (negative, magnitude text)
    const = 0
    for m in offset:
        if m.syms:
            parts.append((m.coef < 0, Mono(abs(m.coef), m.syms).c(dim)))
        else:
            const += m.coef
    for var, st in terms:
        if st.is_zero:
            continue
        mag = Mono(abs(st.coef), st.syms)
        parts.append((st.coef < 0, var if mag.is_one else f"{var} * {mag.c(dim)}"))
    if const:
        parts.append((const < 0, str(abs(const))))
    if not parts:
        return "0"
    neg, text = parts[0]
    out = f"-{text}" if neg else text
    for neg, text in parts[1:]:
        out += f" - {text}" if neg else f" + {text}"
    return out


def loop_vars(n: int, prefix: str = "_i") -> list[str]:
    return [prefix] if n == 1 else [f"{prefix}{k}" for k in range(n)]


#: The fewest elements for which a loop nest runs on several threads (when enabled).
PARALLEL_MIN = 1 << 16


def nest(
    lens: Sequence[Mono],
    views: Sequence[View],
    body: Callable[[list[str]], list[str]],
    dim: DimName,
    prefix: str = "_i",
    parallel: bool = False,
) -> list[str]:
    """Loops over ``lens`` (outermost first); ``body`` gets each view's index expression and
    returns the innermost statements. Lines are indented by four spaces per loop level.
    ``parallel`` puts an OpenMP ``parallel for`` on the outermost loop, taken at run time
    only when the nest has at least :data:`PARALLEL_MIN` elements (small ones stay serial)."""
    names = loop_vars(len(lens), prefix) if lens else []
    idx = [index_expr(list(zip(names, v.strides, strict=True)), v.offset, dim) for v in views]
    lines: list[str] = []
    total = ONE
    for n in lens:
        total = total * n
    if parallel and names and (total.syms or total.coef >= PARALLEL_MIN):
        cond = "" if not total.syms else f" if({total.c(dim)} >= {PARALLEL_MIN})"
        lines.append(f"#pragma omp parallel for{cond}")
    for depth, (var, n) in enumerate(zip(names, lens, strict=True)):
        pad = "    " * depth
        lines.append(f"{pad}for (int64_t {var} = 0; {var} < {n.c(dim)}; {var}++) {{")
    pad = "    " * len(names)
    inner = body(idx)
    if not names and len(inner) > 1:  # no loop: a block scopes the body's locals
        inner = ["{", *("    " + line for line in inner), "}"]
    lines += [pad + line for line in inner]
    for depth in reversed(range(len(names))):
        lines.append("    " * depth + "}")
    return lines
