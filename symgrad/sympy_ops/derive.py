"""Elementwise ops declared by a SymPy expression, with derivatives derived by SymPy.

``symgrad.elementwise(name, f, derivative=None)`` turns ``f`` (a function from a SymPy symbol to a
SymPy expression) into a registered elementwise op. Its derivative is obtained with
``sympy.diff`` (or taken from ``derivative``), simplified within a time budget, and rewritten in
terms of the op's output where that is cheaper (``tanh``: ``1 - y**2``); every rewrite is checked
numerically against the plain derivative before it is accepted. The derivative is itself a
registered elementwise op of ``(x, y)`` declared by the same machinery (generalised to n-ary
SymPy ops), so derivatives of derivatives come for free. Derivation is lazy (on the first VJP)
and cached by ``sympy.srepr`` of the expression.

Security: a user's op name never becomes code. The op is registered under a generated name
(``ew_<letters, digits, underscores of the name>_<hash>``); the user's name is only kept for
display (in the op's ``doc`` and :func:`display_name`). Expressions may only use the symbol
handed to ``f`` and SymPy's own functions (no ``sympy.Function("...")`` with a made-up name), so
the code that SymPy prints (for evaluation and for the emitters) contains no user text.

Owns: :func:`elementwise`, :class:`ElementwiseOp`, the derivation (simplification, expressing
through the output, the cost model, the numeric check), the evaluation functions (``lambdify``)
and the emission templates (``emit["numpy"]``, ``emit["c"]`` for double, ``emit["c:float32"]`` for
float; ``{0}``, ``{1}`` are the operands) printed with SymPy's NumPy and C99 printers.

May import: numpy, the standard library, ``symgrad.ir`` and ``symgrad.ops``; SymPy only lazily,
inside functions (this is the only symgrad module that imports SymPy, and importing symgrad must
not import it); ``symgrad.frontend.tensor`` lazily, to apply an op to tensors.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar, overload

import numpy as np

from symgrad.autodiff.vjp import MissingRuleError
from symgrad.ir.node import Node
from symgrad.ir.opdef import EvalContext, Kind, OpDef, apply, op_label, register, registry
from symgrad.ops.infer import ew_infer

if TYPE_CHECKING:
    import sympy

    from symgrad.frontend.tensor import Tensor

__all__ = ["ElementwiseOp", "display_name", "elementwise"]

T = TypeVar("T")

# Derivation budget: SymPy's simplify/solve can take very long on unlucky expressions. Each call
# gets at most _STEP_SECONDS, one derivation at most _BUDGET_SECONDS in total; on a timeout the
# unsimplified form is used. Off the main thread (no SIGALRM) only small expressions are
# simplified.
_BUDGET_SECONDS = 8.0
_STEP_SECONDS = 3.0
_MAX_OPS_WITHOUT_ALARM = 60
# points at which a rewritten derivative must agree with the plain one (40 significant digits)
_SAMPLES = (-11.3, -5.5, -2.63, -1.21, -0.71, -0.37, 0.05, 0.37, 0.71, 1.21, 2.63, 5.5, 11.3)
_MIN_CHECKED_POINTS = 3
_REL_TOL = 1e-12

_LOCK = threading.RLock()
_USER_OPS: dict[str, ElementwiseOp] = {}  # by the user's name
_INFOS: dict[str, _OpInfo] = {}  # by registry name: every op declared here
_PARTIAL_CACHE: dict[tuple[str, int, str], Any] = {}  # (srepr(expr), arg index, srepr(override))
_FN_CACHE: dict[str, Callable[..., Any]] = {}  # srepr((args, expr)) -> NumPy function


def _symbol(i: int) -> Any:
    """The i-th canonical argument symbol: x, y, z, u3, u4, ... (all real)."""
    import sympy as sp

    return sp.Symbol(("x", "y", "z")[i] if i < 3 else f"u{i}", real=True)


@dataclass
class _OpInfo:
    """What this module knows about one op it declared (the registry holds the OpDef)."""

    op_name: str
    label: str
    args: tuple[Any, ...]  # SymPy symbols, canonical: (x,), (x, y), ...
    expr: Any  # SymPy expression in ``args``
    overrides: tuple[Any, ...]  # per argument: an explicit partial derivative, or None
    partials: dict[int, Any] = field(default_factory=dict)

    @property
    def out(self) -> Any:
        """The symbol that stands for the op's output in its partial derivatives."""
        return _symbol(len(self.args))


# -- the public door ---------------------------------------------------------------------------
class ElementwiseOp:
    """A user-declared elementwise op; call it on a ``Value``, ``Tensor``, NumPy array, number
    or graph ``Node``. Returned by :func:`symgrad.elementwise`."""

    __slots__ = ("_info", "name")

    def __init__(self, name: str, info: _OpInfo) -> None:
        self.name = name
        self._info = info

    @property
    def op_name(self) -> str:
        """The (generated, code-safe) name under which the op is registered."""
        return self._info.op_name

    @property
    def expr(self) -> sympy.Expr:
        """The op as a SymPy expression in the real symbol ``x``."""
        return self._info.expr

    @property
    def symbol(self) -> sympy.Symbol:
        """The SymPy symbol ``x`` of :attr:`expr` (``y`` in :attr:`derivative_expr` is the
        output)."""
        return self._info.args[0]

    @property
    def derivative_expr(self) -> sympy.Expr:
        """d(op)/dx in terms of ``x`` and ``y`` (``y`` stands for the op's output); derived on
        first use (or on the first backward pass) and cached."""
        return _partial(self._info, 0)

    @overload
    def __call__(self, x: Node) -> Node: ...

    @overload
    def __call__(self, x: Any) -> Tensor: ...

    def __call__(self, x: Any) -> Node | Tensor:
        op_name = self._info.op_name
        if isinstance(x, Node):
            return apply(op_name, (x,))
        from symgrad.frontend.tensor import Tensor, _run, lift

        x = lift(x)  # an eager Value: its tensor in the graph
        if not isinstance(x, Tensor):
            arr = np.asarray(x)
            if arr.dtype.kind not in "fiub":
                raise TypeError(
                    f"{self.name}: expected a symgrad Value/Tensor, a NumPy array or a number, "
                    f"got {type(x).__name__}"
                )
            x = Tensor(arr if arr.dtype.kind == "f" else arr.astype(np.float64))
        return _run(lambda n: apply(op_name, (n,)), x)

    def __repr__(self) -> str:
        return f"ElementwiseOp({self.name!r}, x -> {self._info.expr}, op={self.op_name!r})"


def elementwise(
    name: str,
    f: Callable[[sympy.Symbol], sympy.Expr],
    derivative: Callable[..., sympy.Expr] | None = None,
) -> ElementwiseOp:
    """Declare an elementwise op from a SymPy expression.

    ``f`` maps a SymPy symbol (real) to a SymPy expression in that symbol, e.g.
    ``symgrad.elementwise("mish", lambda x: x * sympy.tanh(sympy.log(1 + sympy.exp(x))))``.
    The derivative is derived with SymPy unless ``derivative`` is given: ``derivative(x)`` (an
    expression in ``x``) or ``derivative(x, y)`` (in ``x`` and ``y``, which stands for the op's
    output ``f(x)``). Declaring the same name again with the same expression returns the same
    op; a different expression under a used name is a ``ValueError``.
    """
    import sympy as sp

    if not isinstance(name, str):
        raise TypeError(f"elementwise: name must be a str, got {type(name).__name__}")
    if not name.strip():
        raise ValueError("elementwise: name must not be empty")
    if not callable(f):
        raise TypeError(
            f"elementwise({name!r}): f must be a function from a SymPy symbol to a SymPy "
            f"expression, got {type(f).__name__}"
        )
    if derivative is not None and not callable(derivative):
        raise TypeError(
            f"elementwise({name!r}): derivative must be a function like f or None, got "
            f"{type(derivative).__name__}"
        )
    x, y = _symbol(0), _symbol(1)
    expr = _call_builder(name, "f", f, (x,))
    expr = _check_expr(name, "f(x)", expr, {x})
    override = None
    if derivative is not None:
        params = _positional_arity(derivative)
        dargs = (x, y) if params >= 2 else (x,)
        d = _call_builder(name, "derivative", derivative, dargs)
        override = _check_expr(name, "derivative(" + ", ".join(map(str, dargs)) + ")", d, {x, y})
    key = sp.srepr(expr) + "|" + ("" if override is None else sp.srepr(override))
    with _LOCK:
        old = _USER_OPS.get(name)
        if old is not None:
            info = old._info
            old_key = (
                sp.srepr(info.expr)
                + "|"
                + ("" if info.overrides[0] is None else sp.srepr(info.overrides[0]))
            )
            if old_key == key:
                return old
            what = "expression" if sp.srepr(info.expr) != sp.srepr(expr) else "derivative"
            raise ValueError(
                f"an elementwise op named {name!r} is already declared with a different "
                f"{what} (x -> {info.expr}); choose another name"
            )
        op_name = _registry_name(name)
        doc = f"user op {name!r} declared with symgrad.elementwise: x -> {expr}" + (
            f" (derivative given: {override})" if override is not None else ""
        )
        info = _declare(op_name, name, (x,), expr, (override,), doc.replace("|", "\\|"))
        op = ElementwiseOp(name, info)
        _USER_OPS[name] = op
        return op


def display_name(op_name: str) -> str:
    """The user's name of an op declared with :func:`elementwise` (its registry name is
    generated), e.g. for graph printing; other ops are shown by their registry name."""
    return op_label(op_name)


# -- validation ----------------------------------------------------------------------------------
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


def _registry_name(name: str) -> str:
    """A code-safe, unique registry name for the user's op name."""
    clean = re.sub(r"[^A-Za-z0-9_]", "", name)[:32].strip("_") or "op"
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()
    for n in (8, 16, 64):
        cand = f"ew_{clean}_{digest[:n]}"
        if cand not in registry():
            return cand
    raise ValueError(f"cannot find a free registry name for the op {name!r}")


# -- declaring ops (user ops and their derivative ops) -----------------------------------------
def _declare(
    op_name: str,
    label: str,
    args: tuple[Any, ...],
    expr: Any,
    overrides: tuple[Any, ...],
    doc: str,
) -> _OpInfo:
    """Register the elementwise op ``op_name(*args) = expr``; returns its info (idempotent)."""
    import sympy as sp

    with _LOCK:
        known = _INFOS.get(op_name)
        if known is not None:
            if sp.srepr(known.expr) != sp.srepr(expr):
                raise RuntimeError(f"op {op_name!r} was declared with another expression")
            return known
        info = _OpInfo(op_name, label, args, expr, overrides)
        fn = _compile(args, expr, label)
        register(
            OpDef(
                op_name,
                Kind.ELEMENTWISE,
                len(args),
                eval=_make_eval(fn),
                infer=ew_infer(float_only=True),
                vjp=_make_vjp(info),
                doc=doc,
                emit=_emissions(args, expr),
                sympy_fn=_builder(args, expr),
                label=info.label,
            )
        )
        _INFOS[op_name] = info
        return info


def _builder(args: tuple[Any, ...], expr: Any) -> Callable[..., Any]:
    """``OpDef.sympy_fn``: the op's expression with its arguments replaced by the given ones."""

    def build(*symbols: Any) -> Any:
        if len(symbols) != len(args):
            raise TypeError(f"expected {len(args)} SymPy arguments, got {len(symbols)}")
        return expr.xreplace(dict(zip(args, symbols, strict=True)))

    return build


def _make_eval(fn: Callable[..., Any]) -> Callable[..., np.ndarray]:
    def run(ctx: EvalContext, *arrays: Any) -> np.ndarray:
        with np.errstate(all="ignore"):
            res = np.asarray(fn(*arrays))
        if res.shape != ctx.shape:  # a constant expression, or an input that was broadcast
            return np.array(np.broadcast_to(res, ctx.shape), dtype=ctx.dtype)
        return res.astype(ctx.dtype, copy=False)

    return run


def _make_vjp(info: _OpInfo) -> Callable[..., tuple[Node | None, ...]]:
    def vjp(g: Node, out: Node, *inputs: Node) -> tuple[Node | None, ...]:
        return tuple(_cotangent(info, i, g, out, inputs) for i in range(len(inputs)))

    return vjp


def _cotangent(info: _OpInfo, i: int, g: Node, out: Node, inputs: tuple[Node, ...]) -> Node | None:
    """``g`` times the partial derivative w.r.t. input ``i`` (None: a symbolic zero)."""
    p = _partial(info, i)
    if p.is_zero is True:
        return None
    if p.is_Number:
        return g * float(p)
    symbols = (*info.args, info.out)
    nodes = (*inputs, out)
    for s, n in zip(symbols, nodes, strict=True):
        if p == s:  # e.g. exp: the derivative is the output itself
            return g * n
    suffix = "_d" if len(info.args) == 1 else f"_d{i}"
    pinfo = _declare(
        info.op_name + suffix,
        f"d{info.label}/d{info.args[i]}",
        symbols,
        p,
        (None,) * len(symbols),
        f"derivative of {info.label!r} w.r.t. {info.args[i]}, a function of "
        f"({', '.join(map(str, symbols))}) where {info.out} is its output: {p}".replace("|", "\\|"),
    )
    return g * apply(pinfo.op_name, nodes)


# -- derivation ------------------------------------------------------------------------------------
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

    deadline = time.monotonic() + _BUDGET_SECONDS
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


def _bounded(thunk: Callable[[], T], fallback: T, deadline: float, size_of: Any) -> T:
    """``thunk()`` within the time left (at most _STEP_SECONDS), else ``fallback``; SymPy
    errors (e.g. NotImplementedError from solve) also give ``fallback``."""
    import signal

    left = min(deadline - time.monotonic(), _STEP_SECONDS)
    if left <= 0.01:
        return fallback
    alarm = (
        hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
        and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    )
    if not alarm:
        if size_of is not None and _op_count(size_of) > _MAX_OPS_WITHOUT_ALARM:
            return fallback
        try:
            return thunk()
        except Exception:
            return fallback

    def on_alarm(signum: int, frame: Any) -> None:
        raise _Timeout

    previous = signal.signal(signal.SIGALRM, on_alarm)
    try:
        try:
            signal.setitimer(signal.ITIMER_REAL, left)
            return thunk()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except _Timeout:
        return fallback
    except Exception:
        return fallback
    finally:
        signal.signal(signal.SIGALRM, previous)


class _Timeout(BaseException):
    """Raised by the alarm; a BaseException so that SymPy's ``except Exception`` lets it pass."""


def _op_count(e: Any) -> int:
    import sympy as sp

    try:
        return int(sp.count_ops(e))
    except Exception:
        return 1 << 30


# -- evaluation and emission ----------------------------------------------------------------------
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
