"""makemore's MLP (Bengio et al. 2003): the last 3 characters, embedded in 10 dimensions, a tanh
hidden layer of 200 units, cross-entropy over the next character. Trained on minibatches with
one compiled training step (forward + backward + SGD in one generated function), with a
train/dev/test split and the loss curve plotted to DIR/makemore_loss.png; then it samples names
and exports the trained net as a C library (make check runs its self-test).

    python examples/mlp_makemore.py [--data names.txt] [--steps 15000] [--batch 32]
                                     [--backend numpy|c] [--out DIR] [--no-progress]
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import (
    ALPHABET,
    banner,
    count,
    load_words,
    matplotlib_pyplot,
    out_dir,
    positive,
    progress,
    savefig,
)

import symgrad as sg
from symgrad import nn

STOI = {ch: i + 1 for i, ch in enumerate(ALPHABET)} | {".": 0}
ITOS = {i: ch for ch, i in STOI.items()}
BLOCK = 3  # context length: how many characters predict the next one


def build_dataset(words: list[str]) -> tuple[np.ndarray, np.ndarray]:
    X, Y = [], []
    for w in words:
        context = [0] * BLOCK
        for ch in w + ".":
            ix = STOI[ch]
            X.append(context)
            Y.append(ix)
            context = context[1:] + [ix]
    return np.array(X, dtype=np.int64).reshape(-1, BLOCK), np.array(Y, dtype=np.int64)


def make_model(emb: int, hidden: int, seed: int) -> nn.Sequential:
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        nn.Embedding(27, emb, rng=rng),
        nn.Flatten(),
        nn.Linear(BLOCK * emb, hidden, rng=rng),
        nn.Tanh(),
        nn.Linear(hidden, 27, rng=rng),
    )


def sample(logits_of: Any, n: int, seed: int) -> list[str]:
    """``logits_of(contexts)`` maps an int64 (k, BLOCK) array to (k, 27) logits."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        context, chars = [0] * BLOCK, []
        while len(chars) < 30:
            logits = np.asarray(logits_of(np.array([context], dtype=np.int64)))[0]
            p = np.exp(logits - logits.max())
            ix = int(rng.choice(27, p=p / p.sum()))
            if ix == 0:
                break
            chars.append(ITOS[ix])
            context = context[1:] + [ix]
        out.append("".join(chars))
    return out


def plot(losses: list[float], dev: list[tuple[int, float]], path: Path) -> Path | None:
    plt = matplotlib_pyplot()
    if plt is None:
        print("matplotlib is not installed: no plot (pip install 'symgrad[examples]')")
        return None
    steps = np.arange(1, len(losses) + 1)
    log_loss = np.log10(losses)
    window = max(1, len(losses) // 50)
    smooth = np.convolve(log_loss, np.ones(window) / window, mode="valid")
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(steps, log_loss, color="#b0c4de", lw=0.5, label="minibatch loss")
    ax.plot(steps[window - 1 :], smooth, color="#1f4e9a", lw=1.5, label=f"mean of {window} steps")
    if dev:
        ds, dl = zip(*dev, strict=True)
        ax.plot(ds, np.log10(dl), "o-", color="#d9480f", ms=4, label="dev loss")
    ax.set_xlabel("step")
    ax.set_ylabel("log10 cross-entropy")
    ax.set_title("makemore MLP trained with symgrad.compile_step")
    ax.legend()
    return savefig(fig, path)


def export_c(net: Any, path: Path, examples: np.ndarray) -> bool | None:
    """Export to C, build it and run its self-test; None when no C compiler/make is present."""
    shutil.rmtree(path, ignore_errors=True)  # no stale build products from an earlier run
    out = sg.export(
        net, path, sg.Spec(("n", BLOCK), "int64"), backend="c", name="makemore", examples=[examples]
    )
    print(f"wrote {out}: {', '.join(sorted(p.name for p in out.iterdir()))}")
    from symgrad.runtime.cc import compiler_available

    if shutil.which("make") is None or not compiler_available():
        print("no C compiler or make here: build it elsewhere with `make && make check`")
        return None
    proc = subprocess.run(["make", "-s", "-C", str(out), "check"], capture_output=True, text=True)
    print(f"make check: {(proc.stdout + proc.stderr).strip()}")
    return proc.returncode == 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="a text file with one word per line (default: names package)")
    ap.add_argument("--limit", type=count, default=0, help="use only the first N words (0: all)")
    ap.add_argument("--steps", type=positive, default=15000, help="training steps (15000)")
    ap.add_argument("--batch", type=positive, default=32, help="minibatch size (32)")
    ap.add_argument("--emb", type=positive, default=10, help="embedding size (10)")
    ap.add_argument("--hidden", type=positive, default=200, help="hidden units (200)")
    ap.add_argument("--lr", type=float, default=0.1, help="learning rate, /10 for the last half")
    ap.add_argument("--backend", choices=("numpy", "c"), default=None, help="(c if available)")
    ap.add_argument("--seed", type=int, default=2147483647, help="weights, batches and samples")
    ap.add_argument("--out", help="output directory (default: examples/out)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    out = out_dir(args.out)

    words, source = load_words(args.data)
    if args.limit:
        words = words[: args.limit]
    random.seed(42)
    random.shuffle(words)
    n1, n2 = int(0.8 * len(words)), int(0.9 * len(words))
    Xtr, Ytr = build_dataset(words[:n1])
    Xdev, Ydev = build_dataset(words[n1:n2])
    Xte, Yte = build_dataset(words[n2:])
    print(f"{len(words)} words from {source}")
    print(f"examples: train {len(Xtr)}, dev {len(Xdev)}, test {len(Xte)} (80/10/10 split of words)")

    model = make_model(args.emb, args.hidden, args.seed)
    params = model.parameters()
    print(
        f"MLP: embedding 27x{args.emb}, tanh {BLOCK * args.emb}->{args.hidden}, {args.hidden}->27"
    )
    print(f"{sum(p.data.size for p in params)} parameters")

    def loss_fn(X: sg.Tensor, Y: sg.Tensor) -> sg.Tensor:
        return sg.cross_entropy(model(X), Y)

    xs, ys = sg.Spec(("n", BLOCK), "int64"), sg.Spec(("n",), "int64")
    opt = sg.optim.SGD(params, lr=args.lr)
    t0 = time.perf_counter()
    step = sg.compile_step(loss_fn, xs, ys, optimizer=opt, backend=args.backend, opt=2)
    evaluate = sg.compile(loss_fn, xs, ys, backend=args.backend, opt=2)
    logits_of = sg.compile(model, xs, backend=args.backend, opt=2)
    print(
        f"compiled the training step ({step.backend} backend) in {time.perf_counter() - t0:.2f} s"
    )

    banner(f"Training: {args.steps} steps, minibatches of {args.batch}")
    rng = np.random.default_rng(args.seed)
    losses: list[float] = []
    dev: list[tuple[int, float]] = [(0, float(evaluate(Xdev, Ydev)))]
    every = max(1, args.steps // 10)
    t0 = time.perf_counter()
    it = progress(range(args.steps), args.steps, "training", not args.no_progress)
    for k in it:
        opt.lr = args.lr if k < args.steps // 2 else args.lr / 10
        ix = rng.integers(0, len(Xtr), args.batch)
        losses.append(step(Xtr[ix], Ytr[ix]))
        if (k + 1) % every == 0:
            dev.append((k + 1, float(evaluate(Xdev, Ydev))))
            it.set_postfix_str(f"loss {losses[-1]:.3f}, dev {dev[-1][1]:.3f}")
    dt = time.perf_counter() - t0
    print(f"trained in {dt:.1f} s ({dt / max(1, args.steps) * 1e6:.0f} us per step)")
    train_loss, dev_loss = float(evaluate(Xtr, Ytr)), float(evaluate(Xdev, Ydev))
    test_loss = float(evaluate(Xte, Yte))
    print(
        f"loss: train {train_loss:.4f}, dev {dev_loss:.4f}, test {test_loss:.4f} "
        f"(start: dev {dev[0][1]:.4f})"
    )
    png = plot(losses, dev, out / "makemore_loss.png")
    if png is not None:
        print(f"loss curve: {png}")

    banner("Sampling 20 names (fixed seed)")
    names = sample(logits_of, 20, args.seed)
    print("  " + ", ".join(names))

    banner("Exporting the trained MLP as a C library")
    checked = export_c(model, out / "makemore_c", Xdev[:8])
    print(
        f"\nmakemore: dev loss {dev[0][1]:.4f} -> {dev_loss:.4f}, train {train_loss:.4f}, "
        f"test {test_loss:.4f}; C export self-test: "
        f"{'passed' if checked else 'not run' if checked is None else 'FAILED'}"
    )
    return 0 if checked is not False else 1


if __name__ == "__main__":
    sys.exit(main())
