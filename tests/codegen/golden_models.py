"""Small models whose generated code is kept as golden files (tests/golden/). Edit with care:
the generated code quotes these lines; regenerate with `pytest --update-golden`."""

from __future__ import annotations

import numpy as np

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


def moons(X, y, W1, b1, W2, b2, W3, b3):  # type: ignore[no-untyped-def]
    h1 = (X @ W1 + b1).relu()
    h2 = (h1 @ W2 + b2).relu()
    scores = (h2 @ W3 + b3).reshape((X.shape[0],))
    data_loss = (1 - y * scores).relu().mean()
    reg_loss = 1e-4 * ((W1**2).sum() + (W2**2).sum() + (W3**2).sum())
    return data_loss + reg_loss


class MakemoreMLP:
    """makemore's MLP (embedding, one tanh layer): parameters held by an object, as a user
    writes them, so the generated signature names them after their attributes."""

    def __init__(self, vocab: int = 27, emb: int = 10, block: int = 3, hidden: int = 64) -> None:
        g = np.random.default_rng(0)
        self.C = sg.Tensor(g.standard_normal((vocab, emb)), requires_grad=True)
        self.W1 = sg.Tensor(g.standard_normal((block * emb, hidden)), requires_grad=True)
        self.b1 = sg.Tensor(g.standard_normal(hidden), requires_grad=True)
        self.W2 = sg.Tensor(g.standard_normal((hidden, vocab)), requires_grad=True)
        self.b2 = sg.Tensor(g.standard_normal(vocab), requires_grad=True)

    def __call__(self, X):  # type: ignore[no-untyped-def]
        emb = self.C[X]
        h = (emb.reshape((X.shape[0], -1)) @ self.W1 + self.b1).tanh()
        return h @ self.W2 + self.b2


mlp = MakemoreMLP()


def makemore(X, Y):  # type: ignore[no-untyped-def]
    return sg.cross_entropy(mlp(X), Y)


MODELS = {
    "neuron": (neuron, [sg.Spec(())] * 5, [0, 1, 2, 3, 4]),
    "tanh_layer": (tanh_layer, [sg.Spec(("n", 3)), sg.Spec((3, 2)), sg.Spec((2,))], [1, 2]),
    "bigram": (
        bigram,
        [sg.Spec((27, 27)), sg.Spec(("n",), "int64"), sg.Spec(("n",), "int64")],
        [0],
    ),
    "moons": (
        moons,
        [sg.Spec(("n", 2)), sg.Spec(("n",))]
        + [sg.Spec(s) for s in [(2, 16), (16,), (16, 16), (16,), (16, 1), (1,)]],
        [2, 3, 4, 5, 6, 7],
    ),
    "makemore": (makemore, [sg.Spec(("n", 3), "int64"), sg.Spec(("n",), "int64")], [2, 3, 4, 5, 6]),
}
