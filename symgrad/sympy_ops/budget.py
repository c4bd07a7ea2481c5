"""The time budget of a derivation: SymPy steps bounded by SIGALRM.

SymPy's simplify/solve can take very long on unlucky expressions. Each step gets at most
``_STEP_SECONDS``, one derivation at most ``_BUDGET_SECONDS`` in total (:func:`_deadline`); on a
timeout (or a SymPy error) the caller's fallback is used. Off the main thread (no SIGALRM) only
small expressions (at most ``_MAX_OPS_WITHOUT_ALARM`` operations) are attempted.

Owns: :func:`_deadline`, :func:`_bounded`, the budget constants and the alarm's exception.

May import: the standard library; SymPy only lazily, inside functions (importing symgrad must not
import it).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_BUDGET_SECONDS = 8.0
_STEP_SECONDS = 3.0
_MAX_OPS_WITHOUT_ALARM = 60


def _deadline() -> float:
    """When a derivation starting now must be done (``time.monotonic()`` seconds)."""
    return time.monotonic() + _BUDGET_SECONDS


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
