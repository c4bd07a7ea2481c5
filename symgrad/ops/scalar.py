"""Python-float evaluation of the scalar elementwise ops (``OpDef.scalar``), for eager ``Value``.

Owns: one function per op mapping Python floats to a Python float with exactly the IEEE results
of the op's NumPy ``eval`` on float64 (``1 / 0`` is ``inf``, ``log(-1)`` is ``nan``, ``exp(1000)``
is ``inf``: never an exception). The common case is one ``math`` call; special values fall back to
NumPy. Transcendentals come from the C library (``math``), as in the C backend, so they may differ
from NumPy's vectorised ones in the last bit. May import: numpy and the standard library.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable

import numpy as np

ScalarFn = Callable[..., float]

add: ScalarFn = operator.add
sub: ScalarFn = operator.sub
mul: ScalarFn = operator.mul
neg: ScalarFn = operator.neg
tanh: ScalarFn = math.tanh
abs_: ScalarFn = math.fabs


def _numpy(fn: Callable[..., object], *xs: float) -> float:
    """The op's float64 NumPy result (special values: inf, nan, signed zeros)."""
    with np.errstate(all="ignore"):
        return float(fn(*(np.float64(x) for x in xs)))  # type: ignore[arg-type]


def div(a: float, b: float) -> float:
    try:
        return a / b
    except ZeroDivisionError:
        return _numpy(np.true_divide, a, b)


def pow_(a: float, b: float) -> float:
    if a == -math.inf:  # NumPy: (-inf) ** 0.5 is nan where C's pow says inf
        return _numpy(np.power, a, b)
    try:
        return math.pow(a, b)
    except (ValueError, OverflowError):  # 0 ** -1, (-8) ** 0.5, 10 ** 400
        return _numpy(np.power, a, b)


def exp(a: float) -> float:
    try:
        return math.exp(a)
    except OverflowError:
        return math.inf


def log(a: float) -> float:
    try:
        return math.log(a)
    except ValueError:  # 0 and negative numbers
        return _numpy(np.log, a)


def sqrt(a: float) -> float:
    try:
        return math.sqrt(a)
    except ValueError:
        return math.nan


def relu(a: float) -> float:
    return a if a > 0 or a != a else 0.0


def sigmoid(a: float) -> float:
    e = exp(-math.fabs(a))  # stable in both tails, as the op's eval
    return 1.0 / (1.0 + e) if a >= 0 else e / (1.0 + e)
