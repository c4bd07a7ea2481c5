"""Small models whose generated code is kept as golden files (tests/golden/). Edit with care:
the generated code quotes these lines; regenerate with `pytest --update-golden`."""

from __future__ import annotations

import symgrad as sg


def neuron(x1, x2, w1, w2, b):  # type: ignore[no-untyped-def]
    n = x1 * w1 + x2 * w2 + b
    return n.tanh()


def tanh_layer(x, w, b):  # type: ignore[no-untyped-def]
    h = (x @ w + b).tanh()
    return (h * h).mean()


def bigram(W, xs, ys):  # type: ignore[no-untyped-def]
    logits = sg.one_hot(xs, 27) @ W
    counts = logits.exp()
    probs = counts / counts.sum(1, keepdims=True)
    return -probs[sg.arange(xs.shape[0]), ys].log().mean() + 0.01 * (W**2).mean()


MODELS = {
    "neuron": (neuron, [sg.Spec(())] * 5, [0, 1, 2, 3, 4]),
    "tanh_layer": (tanh_layer, [sg.Spec(("n", 3)), sg.Spec((3, 2)), sg.Spec((2,))], [1, 2]),
    "bigram": (
        bigram,
        [sg.Spec((27, 27)), sg.Spec(("n",), "int64"), sg.Spec(("n",), "int64")],
        [0],
    ),
}
