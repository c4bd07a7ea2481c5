"""``symgrad demo``: a short tour that works from an installed wheel (no checkout needed).

Owns: the tour: micrograd's lecture neuron in eager ``Value`` code (every node's value and
gradient as a table), the same neuron compiled (its generated backward pass), and gradcheck
passing on it. The full examples are ``examples/*.py`` in the source checkout.

May import: anything in ``symgrad`` (a top layer).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from symgrad.ir.provenance import user_code


@user_code  # the model's lines, not the console script's, are what its generated code cites
def neuron(x1: Any, x2: Any, w1: Any, w2: Any, b: Any) -> Any:
    """The lecture's neuron: ``tanh(x1*w1 + x2*w2 + b)``."""
    n = x1 * w1 + x2 * w2 + b
    return n.tanh()


def tour() -> None:
    import symgrad as sg
    from symgrad import draw

    print("1. micrograd's lecture neuron, eager: o = tanh(x1*w1 + x2*w2 + b); o.backward()\n")
    x1, x2 = sg.Value(2.0, label="x1"), sg.Value(0.0, label="x2")
    w1, w2 = sg.Value(-3.0, label="w1"), sg.Value(1.0, label="w2")
    b = sg.Value(6.8813735870195432, label="b")
    o = neuron(x1, x2, w1, w2, b)
    assert isinstance(o, sg.Value)
    o.label = "o"
    o.backward()
    print(draw.table(o))
    print(
        "\n   (symgrad.draw.draw_dot(o) is the same graph as Graphviz DOT text; "
        "`symgrad graph` draws models)"
    )

    print("\n2. the same neuron compiled: the backward pass symgrad generated (NumPy)\n")
    scalar = sg.Spec(())
    f = sg.compile(neuron, *[scalar] * 5, wrt=list(range(5)), backend="numpy")
    args = [np.float64(v.data) for v in (x1, x2, w1, w2, b)]
    value, grads = f(*args)
    print(f.source("backward"))
    print(f"   o = {float(value):.6f}, grads = {[round(float(g), 6) for g in grads]}")

    print("\n3. gradcheck: the generated gradients against central differences\n")
    report = sg.gradcheck(neuron, *args, backend="numpy")
    print(str(report).rstrip())
    print(
        "\nMore: `symgrad demo --list` (the examples of a source checkout), `symgrad show`, "
        "`symgrad graph`, `symgrad gradcheck`, `symgrad export` (see `symgrad --help`)."
    )
