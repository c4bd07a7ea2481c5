"""micrograd's lecture in symgrad: the expressions, the tanh neuron drawn with its values and
gradients, the backward code symgrad generates for it, and gradcheck passing.

    python examples/micrograd_lecture.py [--out DIR]

Writes DIR/neuron.dot (and neuron.svg, neuron.png when Graphviz's `dot` is installed).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
from _common import banner, out_dir

import symgrad as sg
from symgrad import draw


def expression() -> dict[str, float]:
    """The lecture's first expression: L = (a*b + c) * f."""
    banner("1. An expression and its gradients: L = (a*b + c) * f")
    a = sg.Value(2.0, label="a")
    b = sg.Value(-3.0, label="b")
    c = sg.Value(10.0, label="c")
    e = a * b
    e.label = "e"
    d = e + c
    d.label = "d"
    f = sg.Value(-2.0, label="f")
    L = d * f
    L.label = "L"
    L.backward()
    print(draw.table(L))
    return {v.label: v.grad for v in (a, b, c, d, e, f)} | {"L": L.data}


def neuron() -> tuple[sg.Value, list[sg.Value]]:
    """The lecture's neuron: o = tanh(x1*w1 + x2*w2 + b), with the lecture's labels."""
    x1, x2 = sg.Value(2.0, label="x1"), sg.Value(0.0, label="x2")
    w1, w2 = sg.Value(-3.0, label="w1"), sg.Value(1.0, label="w2")
    b = sg.Value(6.8813735870195432, label="b")
    x1w1 = x1 * w1
    x1w1.label = "x1*w1"
    x2w2 = x2 * w2
    x2w2.label = "x2*w2"
    x1w1x2w2 = x1w1 + x2w2
    x1w1x2w2.label = "x1*w1 + x2*w2"
    n = x1w1x2w2 + b
    n.label = "n"
    o = n.tanh()
    o.label = "o"
    o.backward()
    return o, [x1, x2, w1, w2, b]


def draw_neuron(o: sg.Value, out: Path) -> list[Path]:
    dot = draw.draw_dot(o, title="o = tanh(x1*w1 + x2*w2 + b)")
    written = [draw.render(dot, out / "neuron.dot")]
    if draw.dot_program() is None:
        print(f"wrote {written[0]} (Graphviz is not installed: `dot -Tsvg {written[0]}` draws it)")
        return written
    for suffix in (".svg", ".png"):
        written.append(draw.render(dot, out / f"neuron{suffix}"))
    print("drew the graph:", ", ".join(str(p) for p in written))
    return written


def tanh_via_exp() -> float:
    """The same neuron with tanh spelled out through exp: the same gradients."""
    banner("3. tanh spelled out: o = (e^2n - 1) / (e^2n + 1) gives the same gradients")
    x1, x2 = sg.Value(2.0, label="x1"), sg.Value(0.0, label="x2")
    w1, w2 = sg.Value(-3.0, label="w1"), sg.Value(1.0, label="w2")
    b = sg.Value(6.8813735870195432, label="b")
    n = x1 * w1 + x2 * w2 + b
    e = (2 * n).exp()
    o = (e - 1) / (e + 1)
    o.backward()
    print(f"o = {o.data:.6f}; x1.grad = {x1.grad:+.6f}, w1.grad = {w1.grad:+.6f}")
    return x1.grad


def accumulation() -> float:
    """The lecture's bug hunt: a variable used twice must get the sum of both gradients."""
    banner("4. A Value used twice: b = a + a, so db/da = 2 (gradients accumulate)")
    a = sg.Value(3.0, label="a")
    b = a + a
    b.backward()
    print(f"b = {b.data}, a.grad = {a.grad}")
    return a.grad


def lecture_neuron(x1: sg.Value, x2: sg.Value, w1: sg.Value, w2: sg.Value, b: sg.Value) -> sg.Value:
    return (x1 * w1 + x2 * w2 + b).tanh()


def generated_code(leaves: list[sg.Value]) -> tuple[float, list[float]]:
    banner("5. The neuron compiled: the backward pass symgrad generates (NumPy backend)")
    f = sg.compile(lecture_neuron, *[sg.Spec(())] * 5, wrt=[0, 1, 2, 3, 4], backend="numpy")
    args = [np.float64(v.data) for v in leaves]
    value, grads = f(*args)
    print(f.source("backward"))
    print(f"compiled: o = {float(value):.6f}, grads (x1, x2, w1, w2, b) =", end=" ")
    print(", ".join(f"{float(g):+.6f}" for g in grads))
    return float(value), [float(g) for g in grads]


def check(leaves: list[sg.Value]) -> bool:
    banner("6. gradcheck: the generated gradients against central differences")
    args = [np.float64(v.data) for v in leaves]
    report = sg.gradcheck(lecture_neuron, *args)
    print(str(report).rstrip())
    return report.ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="output directory (default: examples/out)")
    args = ap.parse_args(argv)
    out = out_dir(args.out)

    grads = expression()
    assert grads == {"a": 6.0, "b": -4.0, "c": -2.0, "d": -2.0, "e": -2.0, "f": 4.0, "L": -8.0}

    banner("2. The neuron: o = tanh(x1*w1 + x2*w2 + b), every node's value and gradient")
    o, leaves = neuron()
    print(draw.table(o))
    draw_neuron(o, out)
    x1 = leaves[0]
    assert math.isclose(o.data, math.sqrt(0.5), rel_tol=1e-12)
    expected = {"x1": -1.5, "x2": 0.5, "w1": 1.0, "w2": 0.0, "b": 0.5}
    for v in leaves:
        assert math.isclose(v.grad, expected[v.label], abs_tol=1e-9), (v.label, v.grad)

    assert math.isclose(tanh_via_exp(), -1.5, rel_tol=1e-9)
    assert accumulation() == 2.0
    _, cgrads = generated_code(leaves)
    assert np.allclose(cgrads, [v.grad for v in leaves], atol=1e-12)
    ok = check(leaves)
    print(
        f"\nlecture: o = {o.data:.6f}, x1.grad = {x1.grad:+.4f}, "
        f"gradcheck {'ok' if ok else 'FAILED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
