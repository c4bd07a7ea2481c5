"""``symgrad.gradcheck``: verify the gradients of the *generated code* against finite differences,
and when they disagree, say which local rule is wrong and where.

Owns: the public function :func:`gradcheck` and :class:`GradcheckError`; turning a traced function
(arguments and captured leaves) into a pure function of arrays, promoting float32 graphs to
float64, the element-by-element and random-projection checks per backend, classifying
non-differentiable points, nudging. Localisation lives in :mod:`symgrad.check.localise`, the
report (:class:`GradcheckReport`, :class:`InputCheck`) and its text in
:mod:`symgrad.check.report`.

Cost: inputs whose element-wise check would take too long are checked along random directions
instead (the policy is in :mod:`symgrad.check.cost`), with a ``RuntimeWarning`` when the
estimated time decided it, and the reason in the report.

May import: every symgrad layer below ``symgrad.check`` (it drives :mod:`symgrad.lower.jit`).
"""

from __future__ import annotations

import inspect
import keyword
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from symgrad.check.cost import projection_reasons, seconds_per_call
from symgrad.check.differences import SHRINKS, central, tolerance
from symgrad.check.localise import Culprit, kinks, localise, reference_values
from symgrad.check.report import GradcheckReport, InputCheck
from symgrad.frontend.tensor import Tensor
from symgrad.frontend.trace import TracedGraph, trace
from symgrad.ir.dtypes import FLOAT32
from symgrad.ir.errors import ArgumentError, ShapeError
from symgrad.ir.graph import toposort
from symgrad.ir.node import Node
from symgrad.ir.opdef import apply
from symgrad.ir.provenance import provenance_override
from symgrad.lower.jit import compile as _compile
from symgrad.lower.jit import wrt_positions
from symgrad.ops.source import ConstArray
from symgrad.runtime.compiled import CompiledFunction

__all__ = ["Culprit", "GradcheckError", "GradcheckReport", "InputCheck", "gradcheck"]

DIRECTIONS = 3  # random directions per projected input
NUDGES = 3  # at most this many nudges away from non-differentiable points


class GradcheckError(AssertionError):
    """Raised by ``gradcheck(..., raise_on_failure=True)``; the message is the report."""

    def __init__(self, report: GradcheckReport) -> None:
        super().__init__(str(report))
        self.report = report


# -- a traced function as a pure function of arrays ------------------------------------------
def _as_array(x: Any) -> np.ndarray:
    if isinstance(x, Tensor):
        return np.array(x.data, dtype=x.dtype.np)
    a = np.asarray(x)
    if a.dtype.kind in "iu" and a.dtype != np.int64:
        a = a.astype(np.int64)
    if a.dtype.kind == "f" and a.dtype.itemsize not in (4, 8):
        a = a.astype(np.float64)
    return np.array(a, copy=True, order="C")


def _promote(attrs: dict[str, Any]) -> dict[str, Any]:
    out = dict(attrs)
    for k, v in attrs.items():
        if k == "dtype" and v == "float32":
            out[k] = "float64"
        elif isinstance(v, ConstArray) and v.array.dtype == np.float32:
            out[k] = ConstArray(v.array.astype(np.float64))
    return out


def _pure(graph: TracedGraph, promote: bool, name: str) -> Callable[..., Tensor]:
    """A function of one array per graph input (arguments, then captured leaves) that rebuilds
    the first output node by node, keeping every node's provenance; with ``promote`` every
    float32 value becomes float64."""
    root = graph.outputs[0]

    def pure(*args: Tensor) -> Tensor:
        new: dict[int, Node] = {id(i): a.node for i, a in zip(graph.inputs, args, strict=True)}
        for n in toposort([root]):
            if id(n) not in new:
                attrs = _promote(dict(n.attrs)) if promote else dict(n.attrs)
                with provenance_override(n.provenance):
                    new[id(n)] = apply(n.op, tuple(new[id(i)] for i in n.inputs), attrs)
        out = new[id(root)]
        return Tensor._wrap(out, None, (), out.dtype.is_float)

    names: list[str] = []
    for k, nm in enumerate(graph.input_names):
        ok = nm.isidentifier() and not keyword.iskeyword(nm) and nm not in names
        names.append(nm if ok else f"in{k}")
    kind = inspect.Parameter.POSITIONAL_ONLY
    pure.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(nm, kind) for nm in names]
    )
    pure.__name__ = pure.__qualname__ = name
    return pure


def _positions(wrt: Any, graph: TracedGraph) -> list[int]:
    if wrt is None:
        pos = [k for k, n in enumerate(graph.inputs) if n.dtype.is_float]
    else:
        pos = list(dict.fromkeys(wrt_positions(wrt, graph)))
    if not pos:
        raise ArgumentError("gradcheck: the function has no float input to check")
    return pos


def available_backends() -> tuple[str, ...]:
    """``numpy``, and ``c`` when the C backend imports and a C compiler works."""
    from symgrad.runtime.cc import compiler_available

    try:
        import symgrad.codegen.c.printer  # noqa: F401
    except ImportError:
        return ("numpy",)
    return ("numpy", "c") if compiler_available() else ("numpy",)


def _forward(cf: CompiledFunction) -> Callable[[list[np.ndarray]], float]:
    """The generated forward pass alone (finite differences need no backward pass)."""
    raw = getattr(cf, "_fwd", None)
    if raw is None:  # pragma: no cover - the attribute is an implementation detail
        return lambda xs: float(cf(*xs)[0])
    return lambda xs: float(np.asarray(raw(*xs)[0][0]))


# -- the checks --------------------------------------------------------------------------------
def _classify(
    be: str,
    name: str,
    shape: tuple[int, ...],
    mode: str,
    grad: np.ndarray,
    diffs: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    f0: float,
    tols: tuple[np.ndarray, float, float],
    reason: str = "",
) -> InputCheck:
    fd, f_hi, f_lo, step, inside = diffs
    tol, scale, atol = tols
    err = np.abs(grad - fd)
    bad = ~(err <= tol) & inside  # NaN counts as bad; a step outside the domain is not a verdict
    d_hi, d_lo = (f_hi - f0) / step, (f0 - f_lo) / step
    between = (grad >= np.minimum(d_hi, d_lo) - tol) & (grad <= np.maximum(d_hi, d_lo) + tol)
    kink = bad & (np.abs(d_hi - d_lo) > tol) & between
    big = np.maximum(np.abs(grad), np.abs(fd))
    with np.errstate(all="ignore"):
        rel = np.where(big > atol * scale, err / np.where(big > 0, big, 1.0), 0.0)
        ratio = np.where(np.isfinite(err) & inside, err / np.where(tol > 0, tol, 1e-300), 0.0)
        ratio = np.where(~np.isfinite(err) & inside, np.inf, ratio)
    k = int(np.argmax(ratio)) if ratio.size else 0
    worst: tuple[int, ...] | int = k
    if mode == "elementwise":
        worst = tuple(int(i) for i in np.unravel_index(k, shape)) if shape else ()
    return InputCheck(
        be,
        name,
        shape,
        mode,
        int(err.size),
        float(np.max(np.where(inside, err, 0.0), initial=0.0)),
        float(np.max(np.where(inside, rel, 0.0), initial=0.0)),
        worst,
        float(grad[k]) if grad.size else 0.0,
        float(fd[k]) if fd.size else 0.0,
        int(np.sum(bad & ~kink)),
        int(np.sum(kink)),
        reason,
        int(np.sum(~inside)),
        int(np.sum(inside & (step < np.max(step, initial=0.0)))),
    )


def _check_input(
    be: str,
    f: Callable[[list[np.ndarray]], float],
    point: list[np.ndarray],
    pos: int,
    name: str,
    g: np.ndarray,
    f0: float,
    opts: tuple[float, float, float],
    rng: np.random.Generator,
    reason: str = "",
) -> InputCheck:
    eps, atol, rtol = opts
    xs = list(point)
    x = point[pos]
    count = x.size if not reason else DIRECTIONS
    hi, lo, step = np.empty(count), np.empty(count), np.empty(count)
    inside = np.ones(count, dtype=bool)
    if not reason:
        moved = x.copy()
        xs[pos] = moved
        flat = moved.reshape(-1)
        for i in range(x.size):
            old = flat[i]

            def at(h: float, i: int = i, old: Any = old) -> tuple[float, float]:
                flat[i] = old + h
                up = f(xs)
                flat[i] = old - h
                down = f(xs)
                flat[i] = old
                return up, down

            hi[i], lo[i], step[i], inside[i] = central(at, eps)
        fd = (hi - lo) / (2 * step)
        grad = g.reshape(-1)
        tol, scale = tolerance(grad, fd, f0, hi, lo, step, atol, rtol)
        diffs = (fd, hi, lo, step, inside)
        return _classify(be, name, x.shape, "elementwise", grad, diffs, f0, (tol, scale, atol))
    proj = np.empty(DIRECTIONS)
    vs = [rng.standard_normal(x.shape) for _ in range(DIRECTIONS)]
    for j, v in enumerate(vs):

        def along(h: float, v: np.ndarray = v) -> tuple[float, float]:
            xs[pos] = x + h * v
            up = f(xs)
            xs[pos] = x - h * v
            return up, f(xs)

        hi[j], lo[j], step[j], inside[j] = central(along, eps)
        proj[j] = float(np.sum(v * g))
    fd = (hi - lo) / (2 * step)
    finite_g = np.abs(g[np.isfinite(g)])
    scale = float(np.max(finite_g, initial=0.0))  # (the directional derivatives sum elements)
    spread = [atol * scale + rtol * np.abs(g) for _ in vs]
    tol = np.array(
        [3.0 * float(np.sqrt(np.sum((v * t) ** 2))) for v, t in zip(vs, spread, strict=True)]
    )
    tol = tol + tolerance(proj, fd, f0, hi, lo, step, 0.0, 0.0)[0]  # the rounding noise
    diffs = (fd, hi, lo, step, inside)
    return _classify(be, name, x.shape, "projection", proj, diffs, f0, (tol, scale, atol), reason)


def _check_backend(
    be: str,
    cf: CompiledFunction,
    point: list[np.ndarray],
    positions: Sequence[int],
    names: Sequence[str],
    opts: tuple[float, float, float],
    seed: int,
) -> tuple[list[InputCheck], list[np.ndarray]]:
    value, grads = cf(*point)
    f0 = float(value)
    f = _forward(cf)
    gs = [np.asarray(g, dtype=np.float64) for g in grads]
    sizes = [point[p].size for p in positions]
    why = projection_reasons(sizes, seconds_per_call(f, point), names, be, DIRECTIONS)
    out = [
        _check_input(be, f, point, p, nm, g, f0, opts, np.random.default_rng([seed, k]), r)
        for k, (p, nm, g, r) in enumerate(zip(positions, names, gs, why, strict=True))
    ]
    return out, gs


def _outside_domain(checks: Sequence[InputCheck], failing: tuple[str, ...], eps: float) -> Culprit:
    """The verdict when the only failures are elements that no step kept inside the domain."""
    where = ", ".join(
        f"{c.outside} element(s) of {c.input}"
        for c in checks
        if c.outside and c.backend == failing[0]
    )
    return Culprit(
        "domain",
        failing,
        detail=f"the finite-difference step left the function's domain at {where} (f(x ± h) is "
        f"not finite for every step h from eps = {eps:g} down to {eps / 10**SHRINKS:g}): those "
        "elements could not be checked, which says nothing against the rules; try a smaller eps "
        "or a point further inside the domain",
    )


def gradcheck(
    fn: Callable[..., Any],
    *arrays: Any,
    wrt: Any = None,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    backend: str | None = None,
    seed: int = 0,
    nudge: bool = False,
    raise_on_failure: bool = False,
) -> GradcheckReport:
    """Check the gradients that the code generated for ``fn`` computes at ``arrays`` against
    central differences of the generated forward pass, in float64 (see the README).

    ``wrt``: argument indices and/or captured leaves (as for ``symgrad.compile``); default:
    every float argument and every captured float leaf. ``backend``: ``"numpy"``, ``"c"``, or
    ``None`` for both when the C backend is available. Inputs of more than 4096 elements, and
    inputs whose element-wise check would take more than a minute (estimated from the time of
    one evaluation), are checked along 3 random directions; the report says which and why.
    ``nudge=True`` moves the inputs slightly (up to three times) when they sit at
    non-differentiable points. Returns a :class:`GradcheckReport`;
    ``raise_on_failure=True`` raises :class:`GradcheckError` (an ``AssertionError``) instead of
    returning a failed report.
    """
    args = [_as_array(a) for a in arrays]
    traced = trace(fn, *args)
    out = traced.outputs[0]
    if out.shape != () or not out.dtype.is_float:
        raise ShapeError(
            f"gradcheck: the first output of {getattr(fn, '__name__', 'fn')} must be a float "
            f"scalar (a loss); got {out.dtype.short}[{','.join(map(str, out.shape))}]"
        )
    positions = _positions(wrt, traced)
    point = args + [_as_array(t) for t in traced.captures]
    promoted = any(n.dtype is FLOAT32 for n in toposort([out]))
    if promoted:
        point = [a.astype(np.float64) if a.dtype == np.float32 else a for a in point]
    name = getattr(fn, "__name__", "fn")
    pure = _pure(traced, promoted, name)
    graph = trace(pure, *point)
    wrt_nodes = [graph.inputs[p] for p in positions]
    names = [graph.input_names[p] for p in positions]
    backends = (backend,) if backend is not None else available_backends()
    compiled = {be: _compile(pure, *point, wrt=positions, backend=be) for be in backends}
    opts = (eps, atol, rtol)
    nudger = np.random.default_rng([seed, 3])
    nudges, moved = 0, 0.0
    while True:
        vals = reference_values(graph, point)
        if not np.isfinite(vals[graph.outputs[0]]):
            raise ValueError(f"gradcheck: {name} is not finite at the given inputs")
        sites = kinks(graph, vals, wrt_nodes, eps)
        checks: list[InputCheck] = []
        grads: dict[str, list[np.ndarray]] = {}
        for be in backends:
            found, grads[be] = _check_backend(be, compiled[be], point, positions, names, opts, seed)
            checks += found
        rough = bool(sites) or any(c.nondifferentiable for c in checks)
        if not nudge or not rough or nudges == NUDGES:
            break
        nudges += 1
        for p in positions:
            x = point[p]
            step = 1e-4 * 2.0**nudges * (1.0 + np.abs(x)) * nudger.standard_normal(x.shape)
            point[p] = np.ascontiguousarray(x + step)
            moved = max(moved, float(np.max(np.abs(step), initial=0.0)))
    ok = all(c.ok for c in checks)
    culprit = None
    if not ok:
        failing = tuple(dict.fromkeys(c.backend for c in checks if not c.ok))
        if all(c.failed == 0 for c in checks):  # nothing disagrees: steps left the domain
            culprit = _outside_domain(checks, failing, eps)
        else:
            culprit = localise(graph, vals, wrt_nodes, compiled, failing, grads, opts, seed)
    report = GradcheckReport(
        name,
        ok,
        tuple(checks),
        backends,
        eps,
        atol,
        rtol,
        promoted,
        tuple(sites),
        nudges,
        moved,
        culprit,
    )
    if raise_on_failure and not ok:
        raise GradcheckError(report)
    return report
