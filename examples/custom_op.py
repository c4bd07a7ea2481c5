"""New ops from SymPy expressions: mish and a Legendre polynomial, their derivatives derived by
SymPy, the backward code symgrad generates for them, gradcheck passing; then a hand-written
derivative with a typo, caught by gradcheck, which names the op and the line that uses it.

    python examples/custom_op.py [--backend numpy|c]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import sympy
from _common import banner, count

import symgrad as sg

# mish(x) = x * tanh(softplus(x)), a smooth relu (Misra 2019)
mish = sg.elementwise("mish", lambda x: x * sympy.tanh(sympy.log(1 + sympy.exp(x))))
# the Legendre polynomial P4(x) = (35x^4 - 30x^2 + 3) / 8, straight from SymPy
legendre4 = sg.elementwise("legendre4", lambda x: sympy.legendre(4, x))
# the same polynomial with its derivative written by hand, with a typo: the true derivative is
# (35x^3 - 15x) / 2
legendre4_by_hand = sg.elementwise(
    "legendre4_by_hand",
    lambda x: sympy.legendre(4, x),
    derivative=lambda x: (35 * x**3 - 30 * x) / 2,
)


def mish_layer(x: sg.Tensor, w: sg.Tensor) -> sg.Tensor:
    """A layer with a mish activation, summed to a scalar."""
    return mish(x @ w).sum()


def legendre_fit(c: sg.Tensor, x: sg.Tensor, y: sg.Tensor) -> sg.Tensor:
    """Mean squared error of c0 + c1 * P4(c2 * x) against y."""
    pred = c[0] + c[1] * legendre4(c[2] * x)
    return ((pred - y) ** 2).mean()


def legendre_fit_by_hand(c: sg.Tensor, x: sg.Tensor, y: sg.Tensor) -> sg.Tensor:
    pred = c[0] + c[1] * legendre4_by_hand(c[2] * x)
    return ((pred - y) ** 2).mean()


def declared() -> None:
    banner("1. Two ops declared from SymPy expressions, derivatives derived by SymPy")
    for op in (mish, legendre4):
        print(f"{op.name}(x) = {op.expr}")
        print(f"  d/dx = {op.derivative_expr}    (y stands for {op.name}(x) itself)")


def mish_code(backend: str | None) -> bool:
    banner("2. A mish layer compiled: the derivative is generated code like any other op")
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((4, 3)), rng.standard_normal((3, 2))
    f = sg.compile(mish_layer, sg.Spec(("n", 3)), sg.Spec((3, 2)), wrt=1, backend="numpy")
    value, (g_w,) = f(x, w)
    print(f.source("backward"))
    print(f"loss {float(value):.6f}; gradient of w:\n{np.array2string(g_w, precision=6)}")
    report = sg.gradcheck(mish_layer, x, w, backend=backend)
    print(str(report).rstrip())
    return report.ok


def legendre_check(backend: str | None, steps: int) -> tuple[bool, float]:
    banner("3. Fitting c0 + c1*P4(c2*x): gradcheck passes, and gradient descent fits the data")
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, 64)
    u = 0.9 * x
    y = 0.5 + 2.0 * (35 * u**4 - 30 * u**2 + 3) / 8 + 0.01 * rng.standard_normal(64)
    c = np.array([0.0, 1.0, 1.0])
    report = sg.gradcheck(legendre_fit, c, x, y, backend=backend)
    print(str(report).rstrip())
    step = sg.compile(legendre_fit, c, x, y, wrt=0, backend=backend)
    first = float(step(c, x, y)[0])
    for _ in range(steps):
        loss, (g,) = step(c, x, y)
        c = c - 0.1 * g
    print(
        f"\nafter {steps} steps: c = [{c[0]:.4f}, {c[1]:.4f}, {c[2]:.4f}] "
        f"(the data was made with [0.5, 2.0, 0.9]); loss {first:.2e} -> {float(loss):.2e}"
    )
    return report.ok, float(loss)


def wrong_derivative(backend: str | None) -> str:
    banner("4. A derivative written by hand, with a typo: gradcheck catches it and names it")
    print(f"declared: d/dx {legendre4_by_hand.name}(x) = {legendre4_by_hand.derivative_expr}")
    print(f"true:     d/dx P4(x) = {sympy.expand(legendre4.derivative_expr)}\n")
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, 16)
    y = rng.standard_normal(16)
    report = sg.gradcheck(legendre_fit_by_hand, np.array([0.3, 0.7, 0.9]), x, y, backend=backend)
    print(str(report).rstrip())
    assert not report.ok, "gradcheck should have caught the wrong derivative"
    culprit = report.culprit
    assert culprit is not None and culprit.site is not None
    return culprit.site.label


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--backend",
        choices=("numpy", "c"),
        default=None,
        help="check this backend only (default: numpy, and c when a compiler works)",
    )
    ap.add_argument("--steps", type=count, default=2000, help="gradient descent steps (2000)")
    args = ap.parse_args(argv)
    declared()
    ok_mish = mish_code(args.backend)
    ok_legendre, loss = legendre_check(args.backend, args.steps)
    named = wrong_derivative(args.backend)
    print(
        f"\ncustom ops: mish gradcheck {'ok' if ok_mish else 'FAILED'}, legendre4 gradcheck "
        f"{'ok' if ok_legendre else 'FAILED'} (fit loss {loss:.2e}), wrong derivative caught "
        f"in {named}"
    )
    return 0 if ok_mish and ok_legendre and named == "legendre4_by_hand" else 1


if __name__ == "__main__":
    sys.exit(main())
