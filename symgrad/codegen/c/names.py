"""C identifiers for a Program's names.

Owns: :class:`CNames`: each Program name kept as it is when it is safe in C, else suffixed with
``_`` — names the generated C uses, that the C and Python headers define as object-like macros,
or that appear in the Program's expression templates (libm functions, runtime routines) — and
array constants named ``sg_c<k>``. May import: the standard library, ``symgrad.ir``,
``symgrad.ops`` and ``symgrad.codegen``.
"""

from __future__ import annotations

import re

from symgrad.codegen.program import Program
from symgrad.ops.c.emitter import expression_template

# identifiers the generated C uses, or that the C and Python headers define as object-like
# macros; a Program name equal to one of these (or matching MACRO_LIKE) gets a "_" suffix
C_RESERVED = frozenset(
    """
    NAN INFINITY HUGE_VAL HUGE_VALF HUGE_VALL EOF BUFSIZ EDOM ERANGE EILSEQ NULL errno stdin
    stdout stderr assert offsetof malloc free memcpy memset abs labs fabs fabsf exp expf log logf
    pow powf sqrt sqrtf tanh tanhf isnan isinf isfinite signbit fmax fmin unix linux i386 I
    complex imaginary bool true false static_assert alignof alignas noreturn thread_local
    int8_t int16_t int32_t int64_t uint8_t uint16_t uint32_t uint64_t intptr_t uintptr_t
    size_t ptrdiff_t intmax_t uintmax_t wchar_t math_errhandling
    """.split()
)
MACRO_LIKE = re.compile(r"[A-Z][A-Z0-9]*_[A-Za-z0-9_]*\Z|E[A-Z0-9]+\Z|(Py|PY|sg_|SG_|sgb_)")
_CONST_REF = re.compile(r"_C\[(\d+)\]")  # a Program's name of an array constant


def _macro_like(name: str) -> bool:
    """``MACRO_LIKE.match(name)``, without the regex for the names that cannot match (those
    that start neither with a capital letter nor with sg_ or sgb_: temporaries, thousands)."""
    if not (name[:1].isupper() or name.startswith("sg")):
        return False
    return MACRO_LIKE.match(name) is not None


IDENT = re.compile(r"(?<![\w.])[A-Za-z_]\w*")  # not the "e" or "f" of 1e-5f


class CNames:
    """C identifiers: each Program name as is when safe in C, else with ``_`` appended."""

    def __init__(self, prog: Program) -> None:
        avoid = _template_identifiers(prog)
        self.taken: set[str] = set()
        self.of: dict[str, str] = {}
        taken, of = self.taken, self.of
        for name in [*prog.names.values(), *prog.dim_vars.values()]:  # (often 100,000s)
            m = _CONST_REF.fullmatch(name) if name.startswith("_C[") else None
            base = f"sg_c{m.group(1)}" if m else name
            if not m and (base in C_RESERVED or base in avoid or _macro_like(base)):
                base += "_"
            if base in taken:
                base = self.fresh(base)
            else:
                taken.add(base)
            of[name] = base

    def fresh(self, base: str) -> str:
        name = base
        while name in self.taken:
            name += "_"
        self.taken.add(name)
        return name


def _template_identifiers(prog: Program) -> set[str]:
    """Every identifier in the Program's elementwise templates (libm functions, helpers)."""
    out: set[str] = set()
    for fn in (prog.forward, prog.backward):
        if fn is None:
            continue
        nodes = [s.node for s in fn.stmts]
        nodes += [g.node for g in fn.region.groups] if fn.region is not None else []
        for node in nodes:
            template = expression_template(node)
            if template is not None:
                out.update(IDENT.findall(template))
    return out
