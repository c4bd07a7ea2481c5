"""How :mod:`symgrad.gradcheck` decides between element-wise and projected checks.

Owns: the cost policy. Checking an input element by element evaluates the function twice per
element, so its cost is estimated as ``2 × elements × (the measured time of one evaluation)``;
an input with more than :data:`ELEMENTWISE_MAX` elements, or whose estimated cost (added to that
of the inputs checked before it) exceeds :data:`ELEMENTWISE_SECONDS`, is checked along random
directions instead, and :func:`projection_reason` says why in words for the report.

May import: numpy and the standard library (a leaf helper of :mod:`symgrad.gradcheck`).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence

import numpy as np

ELEMENTWISE_MAX = 4096  # inputs with more elements are checked by random projections
ELEMENTWISE_SECONDS = 60.0  # ... and so are inputs whose element-wise check would take longer


def clock() -> float:
    return time.perf_counter()


def duration_text(seconds: float) -> str:
    """``seconds`` for people: ``"850 µs"``, ``"2.5 s"``, ``"14 min"``, ``"3.1 h"``."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1.0:
        return f"{seconds * 1e3:.0f} ms"
    if seconds < 120.0:
        return f"{seconds:.1f} s"
    if seconds < 7200.0:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def seconds_per_call(f: Callable[[list[np.ndarray]], float], point: list[np.ndarray]) -> float:
    """The time of one evaluation of ``f`` at ``point`` (the faster of two)."""
    best = float("inf")
    for _ in range(2):
        t0 = clock()
        f(point)
        best = min(best, clock() - t0)
    return max(best, 0.0)


def projection_reason(size: int, seconds: float, spent: float) -> str:
    """Why an input of ``size`` elements is not checked element by element ("" when it is),
    given one evaluation's time and the estimated time of the element-wise checks before it."""
    limit = ELEMENTWISE_SECONDS
    if size > ELEMENTWISE_MAX:
        return f"{size} elements, more than {ELEMENTWISE_MAX}"
    cost = 2 * size * seconds
    if spent + cost > limit:
        return (
            f"element by element would take about {duration_text(cost)} ({size} elements "
            f"× 2 evaluations × {duration_text(seconds)}), more than the "
            f"{duration_text(limit)} allowed"
        )
    return ""


def projection_reasons(
    sizes: Sequence[int], seconds: float, names: Sequence[str], backend: str, directions: int
) -> list[str]:
    """:func:`projection_reason` for each input in turn (the budget is shared: an input checked
    element by element spends its estimated time), warning about each input that the estimated
    time (not merely its size) sends to projections."""
    out, spent = [], 0.0
    for size, name in zip(sizes, names, strict=True):
        reason = projection_reason(size, seconds, spent)
        if reason and size <= ELEMENTWISE_MAX:
            warnings.warn(
                f"gradcheck: input {name} on {backend}: {reason}; checking it along "
                f"{directions} random directions instead",
                RuntimeWarning,
                stacklevel=4,
            )
        if not reason:
            spent += 2 * size * seconds
        out.append(reason)
    return out
