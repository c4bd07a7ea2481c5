"""The NumPy evaluation function of an op's SymPy expression.

``lambdify`` prints a vectorised NumPy function of a checked expression (one that
:mod:`symgrad.sympy_ops.vet` limited to the op's own symbols and SymPy's functions, so no user
text is printed); when the result is not vectorised (a function NumPy lacks, e.g. ``erf``) the
expression is evaluated element by element with the ``math`` module instead. Functions are
checked on a sample array and cached by ``sympy.srepr`` of ``(args, expr)``.

Owns: :func:`_compile`, :func:`_scalar_fallback` and ``_FN_CACHE``.

May import: numpy and the standard library; SymPy only lazily, inside functions (importing
symgrad must not import it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

_FN_CACHE: dict[str, Callable[..., Any]] = {}  # srepr((args, expr)) -> NumPy function


def _compile(args: tuple[Any, ...], expr: Any, label: str) -> Callable[..., Any]:
    """A NumPy function of the expression (``lambdify``), checked on a sample array."""
    import sympy as sp

    key = sp.srepr((args, expr))
    fn = _FN_CACHE.get(key)
    if fn is not None:
        return fn
    probe = [np.array([0.5, 1.5, -0.5, 2.0])] * len(args)
    try:
        fn = sp.lambdify(args, expr, "numpy", cse=True)
        with np.errstate(all="ignore"):
            got = np.asarray(fn(*probe))
        if got.shape not in ((), (4,)) or got.dtype.kind not in "fiub":
            raise TypeError("not vectorised")
    except Exception:
        fn = _scalar_fallback(args, expr, label, probe)
    _FN_CACHE[key] = fn
    return fn


def _scalar_fallback(
    args: tuple[Any, ...], expr: Any, label: str, probe: list[np.ndarray]
) -> Callable[..., Any]:
    """Element by element with the ``math`` module, for functions NumPy lacks (e.g. erf)."""
    import sympy as sp

    try:
        scalar = sp.lambdify(args, expr, "math")
    except Exception as e:
        raise TypeError(f"elementwise({label!r}): cannot evaluate {expr} numerically ({e})") from e

    def one(*vals: float) -> float:
        try:
            return float(scalar(*vals))
        except (ArithmeticError, ValueError):
            return float("nan")

    vec = np.vectorize(one, otypes=[np.float64])
    try:
        vec(*probe)
    except Exception as e:
        raise TypeError(f"elementwise({label!r}): cannot evaluate {expr} numerically ({e})") from e
    return vec
