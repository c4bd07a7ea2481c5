"""The symgrad showcase run by `make demo`: micrograd's lecture neuron and test expressions,
with values, gradients, and the forward and backward graphs symgrad derived for them."""

from __future__ import annotations

import symgrad as sg
from symgrad.autodiff.vjp import grad
from symgrad.ir.graph import Graph


def banner(title: str) -> None:
    print(f"\n{'=' * 78}\n{title}\n{'=' * 78}")


def lecture_neuron() -> None:
    banner("The lecture neuron: o = tanh(x1*w1 + x2*w2 + b)")
    x1, x2 = sg.Value(2.0, label="x1"), sg.Value(0.0, label="x2")
    w1, w2 = sg.Value(-3.0, label="w1"), sg.Value(1.0, label="w2")
    b = sg.Value(6.8813735870195432, label="b")
    n = x1 * w1 + x2 * w2 + b
    o = n.tanh()
    o.backward()
    print(f"o = {o.data:.16f}")
    for v in (x1, w1, x2, w2, b):
        print(f"  d o / d {v.label:<2} = {v.grad:+.6f}")

    # the same neuron as a traced function: its graph and the graph of its gradient
    def neuron(x1: sg.Value, x2: sg.Value, w1: sg.Value, w2: sg.Value, b: sg.Value) -> sg.Value:
        return (x1 * w1 + x2 * w2 + b).tanh()

    g = sg.trace(neuron, *[sg.Spec(())] * 5)
    grads = grad(g.outputs[0], list(g.inputs))
    print("\nforward and backward graph (one typed line per node, with the line that made it):")
    print(Graph(g.inputs, [g.outputs[0], *grads], g.input_names).text())


def tanh_through_exp() -> None:
    banner("The same neuron with tanh spelled through exp: (e^2n - 1) / (e^2n + 1)")
    x1, x2, w1, w2 = sg.Value(2.0), sg.Value(0.0), sg.Value(-3.0), sg.Value(1.0)
    b = sg.Value(6.8813735870195432)
    n = x1 * w1 + x2 * w2 + b
    e = (2 * n).exp()
    o = (e - 1) / (e + 1)
    o.backward()
    print(
        f"o = {o.data:.16f}; grads x1 {x1.grad:+.6f} w1 {w1.grad:+.6f} "
        f"x2 {x2.grad:+.6f} w2 {w2.grad:+.6f}"
    )


def micrograd_tests() -> None:
    banner("micrograd's test expressions")
    x = sg.Value(-4.0)
    z = 2 * x + 2 + x
    q = z.relu() + z * x
    h = (z * z).relu()
    y = h + q + q * x
    y.backward()
    print(f"sanity_check: y = {y.data}, dy/dx = {x.grad}   (micrograd: -20.0, 46.0)")

    a, b = sg.Value(-4.0), sg.Value(2.0)
    c = a + b
    d = a * b + b**3
    c += c + 1
    c += 1 + c + (-a)
    d += d * 2 + (b + a).relu()
    d += 3 * d + (b - a).relu()
    e = c - d
    f = e**2
    g = f / 2.0
    g += 10.0 / f
    g.backward()
    print(f"more_ops: g = {g.data!r}, dg/da = {a.grad!r}, dg/db = {b.grad!r}")
    print("          (micrograd: 24.70408163265306, 138.83381924198252, 645.5772594752187)")


def tiny_mlp() -> None:
    banner("micrograd's MLP(3, [4, 4, 1]) on the lecture's four examples")
    import random

    random.seed(1337)
    model = sg.nn.MLP(3, [4, 4, 1], act="tanh", nonlin_last=True)
    xs = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
    ys = [1.0, -1.0, -1.0, 1.0]
    for k in range(40):
        preds = [model(x) for x in xs]
        loss = sum(((p - y) ** 2 for p, y in zip(preds, ys, strict=True)), sg.Value(0.0))
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data -= 0.1 * p.grad
        if k % 10 == 0 or k == 39:
            print(f"  step {k:2d}  loss {loss.data:.6f}")
    print("  predictions:", [round(model(x).data, 3) for x in xs], "targets:", ys)


if __name__ == "__main__":
    lecture_neuron()
    tanh_through_exp()
    micrograd_tests()
    tiny_mlp()
