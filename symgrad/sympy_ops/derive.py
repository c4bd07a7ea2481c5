"""The derivation of an elementwise op's partial derivatives with SymPy.

A partial derivative is obtained with ``sympy.diff`` (or taken from the op's explicit
derivative), made to vanish at kinks and jumps (Dirac deltas are 0), simplified within the time
budget of :mod:`symgrad.sympy_ops.budget`, and rewritten in terms of the op's output where that
is cheaper (``tanh``: ``1 - y**2``); every rewrite is checked numerically against the plain
derivative (at sample points, 40 significant digits) before it is accepted, and the cheapest
form by a rough cost model wins. Results are cached by ``sympy.srepr`` of the expression.

Owns: :func:`_partial` and ``_PARTIAL_CACHE``, the choice of form (:func:`_best_form`), the
numeric check (:class:`_Checker`) and the cost model (:func:`_cost`).

May import: the standard library, ``symgrad.autodiff.vjp`` (``MissingRuleError``),
``symgrad.sympy_ops.opinfo`` and ``symgrad.sympy_ops.budget``; SymPy only lazily, inside
functions (importing symgrad must not import it).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from symgrad.autodiff.vjp import MissingRuleError
from symgrad.sympy_ops.budget import _bounded, _deadline
from symgrad.sympy_ops.opinfo import _LOCK, _OpInfo

# points at which a rewritten derivative must agree with the plain one (40 significant digits)
_SAMPLES = (-11.3, -5.5, -2.63, -1.21, -0.71, -0.37, 0.05, 0.37, 0.71, 1.21, 2.63, 5.5, 11.3)
_MIN_CHECKED_POINTS = 3
_REL_TOL = 1e-12

_PARTIAL_CACHE: dict[tuple[str, int, str], Any] = {}  # (srepr(expr), arg index, srepr(override))


def _partial(info: _OpInfo, i: int) -> Any:
    """∂expr/∂args[i] (or the override) in its cheapest verified form, in args and ``out``."""
    import sympy as sp

    with _LOCK:
        got = info.partials.get(i)
        if got is not None:
            return got
        override = info.overrides[i]
        key = (sp.srepr(info.expr), i, "" if override is None else sp.srepr(override))
        p = _PARTIAL_CACHE.get(key)
        if p is None:
            if override is not None:
                raw = override
            else:
                raw = _almost_everywhere(sp.diff(info.expr, info.args[i]))
                if raw.has(sp.Derivative):
                    raise MissingRuleError(
                        f"SymPy cannot differentiate the op {info.label!r} ({info.expr}) with "
                        f"respect to {info.args[i]}: it leaves {raw}; declare the op with "
                        "derivative=..."
                    )
            p = _best_form(raw, info.args, info.out, info.expr)
            _PARTIAL_CACHE[key] = p
        info.partials[i] = p
        return p


def _almost_everywhere(d: Any) -> Any:
    """The derivative away from kinks and jumps, like the built-in relu/abs/sign rules: Dirac
    deltas (from Heaviside, sign, Max, ...) and derivatives of floor/ceiling are 0."""
    import sympy as sp

    def flat(e: Any) -> bool:
        if isinstance(e, sp.DiracDelta):
            return True
        return isinstance(e, sp.Derivative) and isinstance(e.expr, sp.floor | sp.ceiling)

    return d.replace(flat, lambda e: sp.S.Zero)


def _best_form(raw: Any, args: tuple[Any, ...], out: Any, expr: Any) -> Any:
    """The cheapest of: ``raw``, its simplification, and those expressed through ``out``
    (substituting the op's expression, or for one argument solving ``out = expr`` for it);
    rewrites are accepted only when they agree numerically with ``raw``."""
    import sympy as sp

    deadline = _deadline()
    if raw.is_Number:
        return raw
    simplified = _bounded(lambda: sp.simplify(raw), raw, deadline, raw)
    bases = [raw] if simplified == raw else [raw, simplified]
    cands: list[tuple[Any, bool]] = [(b, False) for b in bases]  # (form, needs checking)
    if not expr.is_Number and expr not in args:
        for b in bases:
            c = _bounded(partial(b.subs, expr, out), b, deadline, b)
            if c != b:
                cands.append((c, True))
    # inverting out = expr(x) is attempted when x occurs once in expr: then the inverse peels
    # off one function at a time (tanh, sigmoid, softplus, ...) and solve is quick
    if len(args) == 1 and _occurrences(expr, args[0]) == 1:
        x = args[0]
        sols: Any = _bounded(partial(sp.solve, sp.Eq(out, expr), x), [], deadline, expr)
        if isinstance(sols, list) and 0 < len(sols) <= 4:
            for s in sols:
                if not isinstance(s, sp.Expr) or s.has(sp.I) or x in s.free_symbols:
                    continue
                for b in bases:
                    sub = b.subs(x, s)
                    cands.append((_bounded(partial(sp.simplify, sub), sub, deadline, sub), True))
    allowed = {*args, out}
    best = []
    checker: _Checker | None = None
    seen: set[str] = set()
    for c, check in cands:
        text = sp.srepr(c)
        if text in seen:
            continue
        seen.add(text)
        if check:
            if not c.free_symbols <= allowed or c.has(sp.I, sp.zoo, sp.nan):
                continue
            if checker is None:
                checker = _Checker(raw, args, out, expr)
            if not _bounded(partial(checker.agrees, c), False, deadline, None):
                continue
        best.append(c)
    return min(best, key=lambda c: (_cost(c), len(c.free_symbols & set(args)), len(str(c))))


def _occurrences(e: Any, s: Any) -> int:
    import sympy as sp

    return sum(1 for node in sp.preorder_traversal(e) if node == s)


class _Checker:
    """Compares candidate derivative forms with the reference at sample points (40 digits)."""

    def __init__(self, ref: Any, args: tuple[Any, ...], out: Any, expr: Any) -> None:
        import sympy as sp

        self.points: list[tuple[dict[Any, Any], complex]] = []
        m = len(_SAMPLES)
        for k in range(m):
            env = {a: sp.Float(_SAMPLES[(k + 5 * j) % m], 40) for j, a in enumerate(args)}
            try:
                yv = _evalf(expr, env)
            except Exception:
                continue
            y = _complex(yv)
            if y is None or abs(y.imag) > 1e-30 * max(1.0, abs(y)):
                continue  # outside the op's real domain
            env[out] = sp.re(yv)  # all 40 digits: 1 - y**2 cancels badly in the tails of tanh
            r = _value(ref, env)
            if r is None or abs(r.imag) > 1e-30 * max(1.0, abs(r)):
                continue
            self.points.append((env, r))

    def agrees(self, cand: Any) -> bool:
        if len(self.points) < _MIN_CHECKED_POINTS:
            return False  # cannot tell: keep the plain form
        for env, r in self.points:
            v = _value(cand, env)
            if v is None or abs(v - r) > _REL_TOL * max(abs(r), 1e-200):
                return False
        return True


def _evalf(e: Any, env: dict[Any, Any]) -> Any:
    return e.xreplace(env).evalf(40)


def _complex(v: Any) -> complex | None:
    import cmath

    try:
        c = complex(v)
    except Exception:
        return None
    return c if cmath.isfinite(c) else None


def _value(e: Any, env: dict[Any, Any]) -> complex | None:
    try:
        return _complex(_evalf(e, env))
    except Exception:
        return None


_CHEAP_FUNCTIONS = {"Abs", "sign", "Max", "Min", "floor", "ceiling", "Heaviside"}


def _cost(e: Any) -> int:
    """A rough evaluation cost: transcendental calls are expensive, arithmetic is cheap."""
    total = 0
    stack = [e]
    while stack:
        n = stack.pop()
        if n.is_Atom:
            continue
        stack.extend(n.args)
        if n.is_Add or n.is_Mul:
            total += len(n.args) - 1
        elif n.is_Pow:
            k = n.exp
            if k.is_Integer:
                total += {0: 0, 1: 0, 2: 1, 3: 2}.get(abs(int(k)), 3) + (4 if k < 0 else 0)
            elif k.is_Rational and k.q == 2:
                total += 4 + (4 if k < 0 else 0) + (abs(int(k.p)) > 1) * 3
            else:
                total += 10
        elif n.is_Piecewise:
            total += 3 + len(n.args)
        elif n.is_Relational:
            total += 1
        elif n.is_Function:
            total += 2 if type(n).__name__ in _CHEAP_FUNCTIONS else 10
        else:
            total += 1
    return total
