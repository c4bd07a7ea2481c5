"""The emission templates of an op, printed by SymPy's NumPy and C99 printers.

An op's ``emit`` table holds one format string per backend, over the operands ``{0}``, ``{1}``,
...: ``numpy`` (uses ``np.``; Max/Min as nested ``np.maximum``/``np.minimum``), ``c`` (double)
and ``c:float32`` (float: ``expf``, ``1.0F``). Numeric constants replace ``M_PI``/``M_E`` in C
(not strict C99). A backend whose printer cannot print the expression gets no entry. The
expression was checked by :mod:`symgrad.sympy_ops.vet`, so the printed code holds no user text.

Owns: :func:`_emissions`, the NumPy printer class (:func:`_numpy_printer`) and the conversion of
printed code to a template (:func:`_template`).

May import: the standard library; SymPy only lazily, inside functions (importing symgrad must
not import it).
"""

from __future__ import annotations

import re
from typing import Any

_NUMPY_PRINTER: Any = None


def _numpy_printer() -> Any:
    """SymPy's NumPy printer, printing ``np.exp`` (not ``numpy.exp``) and Max/Min as nested
    ``np.maximum``/``np.minimum`` (not ``functools.reduce``)."""
    global _NUMPY_PRINTER
    if _NUMPY_PRINTER is None:
        from sympy.printing.numpy import NumPyPrinter

        class _NpPrinter(NumPyPrinter):  # type: ignore[misc]
            def _module_format(self, fqn: str, register: bool = True) -> str:
                text: str = super()._module_format(fqn, register)
                return "np." + text[6:] if text.startswith("numpy.") else text

            def _nested(self, fn: str, args: tuple[Any, ...]) -> str:
                *rest, last = args
                text: str = self._print(last)
                for a in reversed(rest):
                    text = f"{self._module_format(fn)}({self._print(a)}, {text})"
                return text

            def _print_Abs(self, e: Any) -> str:
                return f"{self._module_format('numpy.abs')}({self._print(e.args[0])})"

            def _print_Max(self, e: Any) -> str:
                return self._nested("numpy.maximum", e.args)

            def _print_Min(self, e: Any) -> str:
                return self._nested("numpy.minimum", e.args)

        _NUMPY_PRINTER = _NpPrinter
    return _NUMPY_PRINTER({"fully_qualified_modules": True})


def _template(text: str) -> str:
    """Printed code over ``__sg_argK__`` as a format string over ``{K}`` (braces escaped)."""
    flat = " ".join(line.strip() for line in text.splitlines())
    flat = flat.replace("{", "{{").replace("}", "}}")
    return re.sub(r"__sg_arg(\d+)__", lambda m: "({" + m.group(1) + "})", flat)


def _emissions(args: tuple[Any, ...], expr: Any) -> dict[str, str]:
    """``emit`` templates printed by SymPy: ``numpy`` (uses ``np.``), ``c`` (double) and
    ``c:float32`` (float: ``expf``, ``1.0F``); a backend whose printer cannot print the
    expression gets no entry."""
    import sympy as sp
    from sympy.codegen.ast import float32, real
    from sympy.printing.c import C99CodePrinter

    names = [sp.Symbol(f"__sg_arg{i}__", real=True) for i in range(len(args))]
    e = expr.xreplace(dict(zip(args, names, strict=True)))
    out: dict[str, str] = {}
    try:
        printer = _numpy_printer()
        text = printer.doprint(e)
        if set(printer.module_imports) <= {"numpy"} and "\n" not in text.strip():
            if not e.free_symbols:  # a constant: keep the operand's shape and dtype
                text = f"np.full_like(__sg_arg0__, {text})"
            out["numpy"] = _template(text)
    except Exception:
        pass
    # C: numeric constants instead of M_PI/M_E (not in strict C99), printed per float type
    ce = e.xreplace({c: sp.Float(c.evalf(30), 30) for c in e.atoms(sp.NumberSymbol)})
    c_settings: dict[str, dict[str, Any]] = {
        "c": {"math_macros": {}},
        "c:float32": {"math_macros": {}, "type_aliases": {real: float32}},
    }
    for key, settings in c_settings.items():
        try:
            text = C99CodePrinter(settings).doprint(ce)
        except Exception:
            continue
        if ";" not in text and "//" not in text:
            out[key] = _template(text)
    return out
