"""micrograd's demo: a 2-16-16-1 MLP learns the two moons (max-margin loss + L2, learning-rate
decay, 100 steps). The model and the training loop are micrograd's, written with `Value`.

(a) eager: micrograd's loop as written (a graph of Values per example, `loss.backward()`), a
    few steps (--eager-steps) on --eager-n points (all of them by default; a step is about
    65,000 Values and takes tens of milliseconds: the Values record a tape and a generated C
    sweep runs the backward pass), checking that the compiled step computes the same losses.
(b) compiled: the same model object and the same loss, compiled with `symgrad.compile_step` into
    one generated function (forward + backward + SGD update) that trains on all the points. The
    micrograd model code runs unchanged on whole columns: a `Value` weight times a column
    `Tensor` is a column.

Plots the decision boundary to DIR/moons.png.

    python examples/micrograd_moons.py [--n 100] [--steps 100] [--eager-n N] [--eager-steps 10]
                                       [--backend numpy|c] [--out DIR] [--no-progress]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import banner, count, matplotlib_pyplot, out_dir, positive, progress, savefig

import symgrad as sg
from symgrad.nn import MLP

ALPHA = 1e-4  # L2 regularisation strength


def make_moons(n: int, noise: float = 0.1, seed: int = 1337) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's make_moons with NumPy: two interleaved half circles, labels -1 and +1."""
    rng = np.random.default_rng(seed)
    n_out, n_in = n // 2, n - n // 2
    a, b = np.linspace(0, np.pi, n_out), np.linspace(0, np.pi, n_in)
    X = np.concatenate([np.c_[np.cos(a), np.sin(a)], np.c_[1 - np.cos(b), 0.5 - np.sin(b)]])
    X += noise * rng.standard_normal(X.shape)
    y = np.concatenate([-np.ones(n_out), np.ones(n_in)])
    perm = rng.permutation(n)
    return X[perm], y[perm]


def micrograd_loss(model: MLP, X: np.ndarray, y: np.ndarray) -> tuple[sg.Value, float]:
    """micrograd's loss(), as in its demo notebook: svm max-margin loss + L2, and accuracy."""
    inputs = [list(map(sg.Value, xrow)) for xrow in X]
    scores = list(map(model, inputs))
    losses = [(1 + -yi * scorei).relu() for yi, scorei in zip(y, scores, strict=True)]
    data_loss = sum(losses) * (1.0 / len(losses))
    reg_loss = ALPHA * sum(p * p for p in model.parameters())
    total_loss = data_loss + reg_loss
    accuracy = [(yi > 0) == (scorei.data > 0) for yi, scorei in zip(y, scores, strict=True)]
    return total_loss, sum(accuracy) / len(accuracy)


def batched_loss(model: MLP) -> Any:
    """The same loss over whole columns, for compile_step (traced once, symbolic batch size)."""

    def loss(X: sg.Tensor, y: sg.Tensor) -> sg.Tensor:
        scores = model([X[:, 0], X[:, 1]])  # micrograd's MLP.__call__, unchanged
        data_loss = (1 + -y * scores).relu().mean()
        reg_loss = ALPHA * sum(p * p for p in model.parameters())
        return data_loss + reg_loss

    return loss


def learning_rate(k: int, steps: int) -> float:
    return 1.0 - 0.9 * k / steps


def eager(model: MLP, X: np.ndarray, y: np.ndarray, steps: int, bar: bool) -> list[float]:
    """micrograd's training loop, verbatim apart from the progress bar."""
    losses = []
    it = progress(range(steps), steps, "eager (micrograd loop)", bar)
    for k in it:
        total_loss, acc = micrograd_loss(model, X, y)
        model.zero_grad()
        total_loss.backward()
        lr = learning_rate(k, 100)
        for p in model.parameters():
            p.data -= lr * p.grad
        losses.append(total_loss.data)
        it.set_postfix_str(f"loss {total_loss.data:.4f}, accuracy {acc * 100:.0f}%")
    return losses


def compiled(
    model: MLP, X: np.ndarray, y: np.ndarray, steps: int, backend: str | None, bar: bool
) -> tuple[list[float], Any]:
    """The whole training step compiled once, then called ``steps`` times."""
    opt = sg.optim.SGD(model.parameters(), lr=1.0)
    t0 = time.perf_counter()
    step = sg.compile_step(
        batched_loss(model), sg.Spec(("n", 2)), sg.Spec(("n",)), optimizer=opt, backend=backend
    )
    scores = sg.compile(lambda X: model([X[:, 0], X[:, 1]]), sg.Spec(("n", 2)), backend=backend)
    print(f"compiled the step ({step.backend} backend) in {time.perf_counter() - t0:.2f} s")
    losses = []
    it = progress(range(steps), steps, f"compiled ({step.backend})", bar)
    for k in it:
        opt.lr = learning_rate(k, steps)
        losses.append(step(X, y))
        if k % 10 == 0 or k == steps - 1:
            acc = float(np.mean((scores(X) > 0) == (y > 0)))
            it.set_postfix_str(f"loss {losses[-1]:.4f}, accuracy {acc * 100:.0f}%")
    return losses, scores


def plot(scores: Any, X: np.ndarray, y: np.ndarray, path: Path) -> Path | None:
    """The decision boundary, as in micrograd's notebook (a finer grid: it is cheap here)."""
    plt = matplotlib_pyplot()
    if plt is None:
        print("matplotlib is not installed: no plot (pip install 'symgrad[examples]')")
        return None
    h = 0.02
    x_min, x_max = X[:, 0].min() - 1, X[:, 0].max() + 1
    y_min, y_max = X[:, 1].min() - 1, X[:, 1].max() + 1
    xx, yy = np.meshgrid(np.arange(x_min, x_max, h), np.arange(y_min, y_max, h))
    Z = scores(np.c_[xx.ravel(), yy.ravel()]).reshape(xx.shape) > 0
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.contourf(xx, yy, Z, cmap=plt.cm.Spectral, alpha=0.8)
    ax.scatter(X[:, 0], X[:, 1], c=y, s=40, cmap=plt.cm.Spectral, edgecolors="k")
    ax.set_xlim(xx.min(), xx.max())
    ax.set_ylim(yy.min(), yy.max())
    ax.set_title("micrograd moons: decision boundary of the compiled-trained MLP")
    return savefig(fig, path)


def set_weights(model: MLP, values: list[float]) -> None:
    for p, v in zip(model.parameters(), values, strict=True):
        p.data = v


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=positive, default=100, help="data points (100)")
    ap.add_argument("--steps", type=positive, default=100, help="compiled training steps (100)")
    ap.add_argument(
        "--eager-n", type=positive, default=None, help="points of the eager run (default: --n)"
    )
    ap.add_argument("--eager-steps", type=count, default=10, help="eager steps (10; 0 skips it)")
    ap.add_argument(
        "--backend",
        choices=("numpy", "c"),
        default="numpy",
        help="backend of the compiled step (numpy; c takes about 15 s to compile this model: its "
        "~5000 small statements make one very long C function, built at -O1)",
    )
    ap.add_argument("--seed", type=int, default=1337, help="data and weights (1337)")
    ap.add_argument("--out", help="output directory (default: examples/out)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = ap.parse_args(argv)
    if args.n < 2:
        ap.error(f"--n: expected at least 2 points (one per moon), got {args.n}")
    if args.eager_n is None:
        args.eager_n = args.n
    if args.eager_n > args.n:
        ap.error(f"--eager-n: expected at most --n ({args.n}) points, got {args.eager_n}")
    bar = not args.no_progress

    X, y = make_moons(args.n, seed=args.seed)
    random.seed(args.seed)
    model = MLP(2, [16, 16, 1])
    init = [p.data for p in model.parameters()]
    print(f"moons: {args.n} points; {model}")
    print(f"{len(model.parameters())} parameters")

    agree = True
    if args.eager_steps > 0:
        banner(f"(a) eager, micrograd's loop: {args.eager_steps} steps on {args.eager_n} points")
        sub = np.random.default_rng(args.seed).permutation(args.n)[: args.eager_n]
        t0 = time.perf_counter()
        eager_losses = eager(model, X[sub], y[sub], args.eager_steps, bar)
        dt = (time.perf_counter() - t0) / args.eager_steps
        shown = ", ".join(f"{v:.6f}" for v in eager_losses[:5])
        print(
            f"eager: {dt * 1e3:.1f} ms per step; losses {shown}{', ...' * (len(eager_losses) > 5)}"
        )
        set_weights(model, init)
        opt = sg.optim.SGD(model.parameters(), lr=1.0)
        check = sg.compile_step(
            batched_loss(model), X[sub], y[sub], optimizer=opt, backend=args.backend
        )
        same = []
        for k in range(args.eager_steps):
            opt.lr = learning_rate(k, 100)
            same.append(check(X[sub], y[sub]))
        diff = max(abs(a - b) for a, b in zip(eager_losses, same, strict=True))
        agree = diff < 1e-9
        print(f"the compiled step from the same weights: max loss difference {diff:.1e}")
        set_weights(model, init)

    banner(f"(b) compiled with symgrad.compile_step: {args.steps} steps on {args.n} points")
    t0 = time.perf_counter()
    losses, scores = compiled(model, X, y, args.steps, args.backend, bar)
    total = time.perf_counter() - t0
    acc = float(np.mean((scores(X) > 0) == (y > 0)))
    print(f"compiled: {total:.2f} s in all; loss {losses[0]:.4f} -> {losses[-1]:.4f}")
    path = plot(scores, X, y, out_dir(args.out) / "moons.png")
    if path is not None:
        print(f"decision boundary: {path}")
    print(
        f"\nmoons: final loss {losses[-1]:.6f}, accuracy {acc * 100:.1f}%, "
        f"eager and compiled agree: {agree}"
    )
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
