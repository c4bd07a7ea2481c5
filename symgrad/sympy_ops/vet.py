"""Vetting what a user's builder functions return, before anything is derived or printed.

An op's expression (and an explicit derivative) must be a real SymPy expression in the symbols
handed to the builder and SymPy's own functions only: no symbols the user made, no
``sympy.Function("...")`` with a made-up name, nothing complex, infinite or undefined. So the
code that SymPy prints from it (for evaluation and for the emitters) contains no user text.

Owns: :func:`_check_expr`, :func:`_call_builder` (calling a builder, explaining its errors) and
:func:`_positional_arity` (whether ``derivative`` takes ``(x)`` or ``(x, y)``).

May import: numpy and the standard library; SymPy only lazily, inside functions (importing
symgrad must not import it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def _positional_arity(fn: Callable[..., Any]) -> int:
    """How many required positional parameters ``fn`` has (1 when it cannot be inspected)."""
    import inspect

    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return 1
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(1 for p in sig.parameters.values() if p.kind in kinds and p.default is p.empty)


def _call_builder(name: str, what: str, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    try:
        return fn(*args)
    except Exception as e:
        shown = ", ".join(map(str, args))
        raise TypeError(
            f"elementwise({name!r}): {what}({shown}) raised {type(e).__name__}: {e}. {what} "
            "must build a SymPy expression from the SymPy symbol it is given, e.g. "
            "lambda x: x * sympy.tanh(x) (use sympy functions, not numpy or math ones)"
        ) from e


def _check_expr(name: str, what: str, value: Any, allowed: set[Any]) -> Any:
    """``value`` as a real SymPy expression in the ``allowed`` symbols and SymPy functions only."""
    import sympy as sp
    from sympy.core.function import AppliedUndef

    where = f"elementwise({name!r}): {what}"
    if isinstance(value, bool | np.bool_):
        raise TypeError(f"{where} must be a SymPy expression, got the bool {value!r}")
    if isinstance(value, int | np.integer):
        return sp.Integer(int(value))
    if isinstance(value, float | np.floating):
        return sp.Float(float(value))
    if not isinstance(value, sp.Expr) or getattr(value, "is_Matrix", False):
        raise TypeError(
            f"{where} must be a SymPy expression, got {type(value).__name__} ({value!r:.80}); "
            "build it from the symbol passed in with SymPy functions, e.g. sympy.exp(x)"
        )
    extra = value.free_symbols - allowed
    if extra:
        names = ", ".join(sorted(repr(str(s)) for s in extra))
        allowed_names = " and ".join(sorted(str(s) for s in allowed))
        raise TypeError(
            f"{where} may only use the symbol(s) {allowed_names} it is given, but it also "
            f"uses {names} (symbols you create yourself are different objects, even if their "
            "names match)"
        )
    for fn in value.atoms(sp.Function):
        cls = type(fn)
        if (
            isinstance(fn, AppliedUndef)
            or not cls.__module__.startswith("sympy.")
            or not cls.__name__.isidentifier()
        ):
            raise TypeError(
                f"{where} uses the function {cls.__name__!r}, which is not one of SymPy's "
                "own; only SymPy's functions (sympy.exp, sympy.tanh, ...) can be evaluated "
                "and compiled"
            )
    if value.has(sp.I):
        raise TypeError(f"{where} must be real-valued, got the complex expression {value}")
    if value.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
        raise TypeError(f"{where} contains an infinite or undefined constant: {value}")
    return value
