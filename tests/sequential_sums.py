"""Reference matrix products summed over k in order from 0, as symgrad's C tiles sum them:
with a separate product and sum per term (the portable tiles) or with one fused multiply-add
per term (the AVX2 tiles, ``templates/c/_smm.c.j2``). Tests of exact values accept either."""

from __future__ import annotations

from fractions import Fraction

import numpy as np


def plain(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b with each term rounded as a product, then as a sum (in a's dtype)."""
    out = np.zeros((a.shape[0], b.shape[1]), dtype=a.dtype)
    for p in range(a.shape[1]):
        out += a[:, p : p + 1] * b[p]
    return out


def fused(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b with one rounding per term: float64 exactly (fractions); float32 through float64,
    where a product of two floats is exact and the sum is rounded twice (double rounding
    differs from a true float32 FMA only on exact ties, about once in 2**29 terms)."""
    out = np.zeros((a.shape[0], b.shape[1]), dtype=a.dtype)
    for i in range(a.shape[0]):
        for j in range(b.shape[1]):
            if a.dtype == np.float64:
                acc = 0.0
                for p in range(a.shape[1]):
                    acc = float(Fraction(acc) + Fraction(a[i, p]) * Fraction(b[p, j]))
                out[i, j] = acc
            else:
                acc32 = np.float32(0)
                for p in range(a.shape[1]):
                    term = np.float64(a[i, p]) * np.float64(b[p, j])
                    acc32 = np.float32(np.float64(acc32) + term)
                out[i, j] = acc32
    return out


def in_order(got: np.ndarray, a: np.ndarray, b: np.ndarray) -> bool:
    """Whether ``got`` is exactly ``a @ b`` summed in order, plainly or fused."""
    got = np.asarray(got)
    return bool((got == plain(a, b)).all() or (got == fused(a, b)).all())
