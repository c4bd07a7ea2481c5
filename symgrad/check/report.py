"""The result of :func:`symgrad.gradcheck` and its text: a headline, a table with one row
per input and backend, notes (projections and why, non-differentiable points, nudges) and, on a
failure, the rule that disagrees with its location and generated statements.

Owns: :class:`GradcheckReport`, :class:`InputCheck` and :func:`render`. May import: the
standard library and :mod:`symgrad.check.localise` (for its types).
"""

from __future__ import annotations

from dataclasses import dataclass

from symgrad.check.localise import Culprit, Kink


@dataclass(frozen=True)
class InputCheck:
    """One input's gradient on one backend against central differences of that backend's
    forward pass. ``worst`` is the element index (elementwise mode) or the direction number
    (projection mode) that is furthest outside the tolerance (or closest to it)."""

    backend: str
    input: str
    shape: tuple[int, ...]
    mode: str  # "elementwise" | "projection"
    checked: int  # elements (elementwise) or directions (projection)
    max_abs_err: float
    max_rel_err: float
    worst: tuple[int, ...] | int
    worst_grad: float  # the generated code's gradient (projection: v·grad)
    worst_fd: float  # central differences (projection: the directional derivative)
    failed: int  # elements (directions) outside the tolerance
    nondifferentiable: int  # ... of which at non-differentiable points (not failures)
    reason: str = ""  # projection mode: why the input was not checked element by element
    outside: int = 0  # elements (directions) where every step left the function's domain
    shrunk: int = 0  # ... checked with a step smaller than eps, to stay inside the domain

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.outside == 0


@dataclass(frozen=True)
class GradcheckReport:
    """The result of :func:`gradcheck`; ``str(report)`` is a readable table."""

    function: str
    ok: bool
    checks: tuple[InputCheck, ...]
    backends: tuple[str, ...]
    eps: float
    atol: float
    rtol: float
    evaluated_in_float64: bool  # the function is float32 and was checked in float64
    nondifferentiable: tuple[Kink, ...] = ()  # non-differentiable points found at the inputs
    nudges: int = 0  # how many times the inputs were nudged
    nudge_size: float = 0.0  # the largest change of an input element
    culprit: Culprit | None = None

    def __str__(self) -> str:
        return render(self)


def _row(c: InputCheck) -> tuple[str, ...]:
    if c.mode == "elementwise":
        at = "[" + ", ".join(map(str, c.worst if isinstance(c.worst, tuple) else (c.worst,))) + "]"
        mode = "elementwise"
    else:
        at, mode = f"direction {c.worst}", f"projection x{c.checked}"
    status = "ok" if c.ok else f"FAILED ({c.failed} of {c.checked})"
    if c.nondifferentiable:
        status += f", {c.nondifferentiable} non-differentiable"
    if c.outside:
        status = ("" if c.failed else "NOT CHECKED: ") + status.replace("ok", "")
        status = f"{status}{', ' if c.failed else ''}{c.outside} outside the domain".strip(", ")
    return (
        c.backend,
        c.input,
        "(" + ", ".join(map(str, c.shape)) + ("," if len(c.shape) == 1 else "") + ")",
        mode,
        f"{c.max_abs_err:.2e}",
        f"{c.max_rel_err:.2e}",
        f"{at}: {c.worst_grad:.6g} vs fd {c.worst_fd:.6g}",
        status,
    )


def _culprit_lines(c: Culprit) -> list[str]:
    if c.kind != "rule" or c.site is None or c.mismatch is None:
        return [f"failed on {', '.join(c.backends)}: {c.detail}"]
    m, s = c.mismatch, c.site
    user = " (declared with symgrad.elementwise)" if s.user_op else ""
    out = [
        f"failed on {', '.join(c.backends)}; the rule that disagrees: the VJP of {s.label}{user}, "
        f"for its input {m.input_index} "
        f"({m.input_type})",
        f"  at {s.where()}",
    ]
    if m.error:
        out.append(f"  the rule fails: {m.error}")
    else:
        out.append(
            f"  u·J·v for random u, v: {m.rule:.6g} by the rule, {m.numeric:.6g} by central "
            f"differences of {s.label} (abs err {m.abs_err:.3g}, rel err {m.rel_err:.3g})"
        )
    if c.statements:
        out.append(f"  generated code ({c.quoted_backend} backward pass):")
        out += [f"    {line}" for line in c.statements]
    else:
        out.append("  generated code: no statement of its own (its result is shared or reused)")
    if c.others:
        out.append(f"  the rules of {c.others} more node(s), further from the output, disagree too")
    return out


def render(r: GradcheckReport) -> str:
    """The report as text: a headline, the table, notes, and the culprit of a failure."""
    lines = [
        f"gradcheck {r.function}: {'ok' if r.ok else 'FAILED'}",
        f"generated code ({', '.join(r.backends)}) against central differences in float64: "
        f"eps {r.eps:g}, tolerance atol {r.atol:g}·max|grad| + rtol {r.rtol:g}·|fd|",
    ]
    if r.evaluated_in_float64:
        lines.append("float32 function: evaluated in float64 (the same graph, float32 promoted)")
    head = ("backend", "input", "shape", "mode", "max abs err", "max rel err", "worst element")
    rows = [(*head, "status"), *(_row(c) for c in r.checks)]
    widths = [max(len(row[k]) for row in rows) for k in range(len(head))]
    lines.append("")
    for row in rows:
        lines.append("  ".join(x.ljust(w) for x, w in zip(row, [*widths, 0], strict=True)))
    lines.append("")
    projected = [c for c in r.checks if c.mode == "projection"]
    if projected:
        lines.append(
            "projection: checked along random directions v, (f(x+εv) − f(x−εv))/2ε against "
            "v·grad, instead of element by element:"
        )
        many = len(r.backends) > 1
        for c in projected:
            on = f" ({c.backend})" if many else ""
            lines.append(f"  {c.input}{on}: {c.reason or 'too many elements'}")
    if r.nondifferentiable or any(c.nondifferentiable for c in r.checks):
        lines.append("non-differentiable points (reported, not counted as failures):")
        lines += [
            f"  {k.what}: {k.count} element(s) at {k.site.where()}" for k in r.nondifferentiable
        ]
        if not r.nondifferentiable:
            lines.append("  one-sided differences disagree (a kink or a jump on the gradient path)")
    shrunk = [c for c in r.checks if c.shrunk]
    if shrunk:
        lines.append(
            "smaller steps: x ± eps left the function's domain, so a smaller step was used:"
        )
        lines += [f"  {c.input} ({c.backend}): {c.shrunk} element(s)" for c in shrunk]
    if r.nudges:
        lines.append(
            f"nudged {r.nudges} time(s): inputs moved by up to {r.nudge_size:.1e} away from "
            "non-differentiable points"
        )
    if r.culprit is not None:
        lines += _culprit_lines(r.culprit)
    while lines[-1] == "":
        lines.pop()
    return "\n".join(lines) + "\n"
