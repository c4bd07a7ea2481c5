"""Central differences for :func:`symgrad.gradcheck`: a step that stays inside the function's
domain, and a tolerance scaled by the gradient's magnitude.

Owns: :func:`central` (one central difference whose step shrinks, by tenths, while ``f(x+h)``
or ``f(x-h)`` is not finite -- ``log`` at ``1e-7`` with ``eps=1e-6`` steps below 0 -- and which
says when no step up to ``eps / 10**SHRINKS`` stays inside), :func:`tolerance` (``atol`` times
the largest gradient magnitude of the input, plus ``rtol·|fd|``, plus the rounding noise of the
differences: a function whose gradients are all ``1e-8`` is checked as strictly as one whose
gradients are 1) and :data:`SHRINKS`.

May import: numpy.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

SHRINKS = 6  # the step goes down to eps / 10**SHRINKS when the function is not finite at x ± h
_ROUNDING = 8 * float(np.finfo(np.float64).eps)  # what f(x±h) may lose to rounding, relatively


def _finite(*vs: float) -> bool:
    return all(np.isfinite(v) for v in vs)


def central(
    at: Callable[[float], tuple[float, float]], eps: float
) -> tuple[float, float, float, bool]:
    """``(f(x+h), f(x-h), h, inside)`` for the step ``h``: ``eps`` when both values are finite,
    else the first of ``eps/10, eps/100, ...`` that keeps both finite, made ten times smaller once
    more (near the edge of the domain the curvature is large). ``inside`` is False when no step
    kept both values finite: the point is at the edge of the function's domain."""
    hi, lo = at(eps)
    if _finite(hi, lo):
        return hi, lo, eps, True
    h = eps
    for _ in range(SHRINKS):
        h /= 10.0
        hi, lo = at(h)
        if _finite(hi, lo):
            hi2, lo2 = at(h / 10.0)
            if _finite(hi2, lo2):
                return hi2, lo2, h / 10.0, True
            return hi, lo, h, True
    return hi, lo, eps, False


def tolerance(
    grad: np.ndarray,
    fd: np.ndarray,
    f0: float,
    hi: np.ndarray,
    lo: np.ndarray,
    step: np.ndarray,
    atol: float,
    rtol: float,
) -> tuple[np.ndarray, float]:
    """The tolerance of each comparison of ``grad`` with ``fd``, and the gradient's scale.

    ``atol`` is relative to the scale (the largest ``|grad|`` or finite ``|fd|`` of the input),
    so that a derivative wrong by 2x fails whatever its magnitude; the rounding noise of the
    differences (``~1e-15·|f| / h``) is added so that a zero gradient of a large function passes.
    """
    finite_fd = np.abs(fd[np.isfinite(fd)])
    finite_g = np.abs(grad[np.isfinite(grad)])
    scale = float(max(np.max(finite_g, initial=0.0), np.max(finite_fd, initial=0.0)))
    with np.errstate(all="ignore"):
        size = np.maximum(abs(f0), np.maximum(np.abs(hi), np.abs(lo)))
        noise = np.where(np.isfinite(size), _ROUNDING * size / step, 0.0)
    return atol * scale + rtol * np.abs(fd) + noise, scale
