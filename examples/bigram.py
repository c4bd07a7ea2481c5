"""makemore's bigram net with the Tensor API: one-hot characters times a 27x27 weight matrix,
softmax, negative log-likelihood. Trained with the lecture's loop (`loss.backward()`,
`W.data += -lr * W.grad`), its loss falls to the optimum of counting bigrams, which is computed
and printed. Then it samples 10 names with a fixed seed and exports itself as a standalone
NumPy module, which samples the same names.

    python examples/bigram.py [--data names.txt] [--steps 150] [--lr 50] [--out DIR]

Data: the first names of the `names` package on PyPI (lower-cased), or --data FILE with one
word per line (e.g. makemore's names.txt).
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import shutil
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from _common import ALPHABET, banner, count, load_words, out_dir, positive, progress

import symgrad as sg

STOI = {ch: i + 1 for i, ch in enumerate(ALPHABET)} | {".": 0}
ITOS = {i: ch for ch, i in STOI.items()}


def bigrams(words: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(previous character, next character) index pairs, '.' marking start and end."""
    xs, ys = [], []
    for w in words:
        chs = ["."] + list(w) + ["."]
        for a, b in itertools.pairwise(chs):
            xs.append(STOI[a])
            ys.append(STOI[b])
    return np.array(xs, dtype=np.int64), np.array(ys, dtype=np.int64)


def counting_optimum(xs: np.ndarray, ys: np.ndarray) -> tuple[float, np.ndarray]:
    """The best a bigram model can do on this data: the NLL of the bigram frequencies."""
    N = np.zeros((27, 27))
    np.add.at(N, (xs, ys), 1.0)
    P = N / N.sum(1, keepdims=True).clip(min=1.0)
    return float(-np.log(P[xs, ys]).mean()), P


def train(
    xs: np.ndarray, ys: np.ndarray, steps: int, lr: float, bar: bool
) -> tuple[sg.Tensor, list[float]]:
    """The lecture's training loop, with symgrad in place of torch."""
    W = sg.Tensor(
        np.random.default_rng(2147483647).standard_normal((27, 27)), requires_grad=True, label="W"
    )
    num = len(xs)
    losses = []
    it = progress(range(steps), steps, "training", bar)
    for k in it:
        # forward pass
        xenc = sg.one_hot(xs, 27)  # input to the network: one-hot encoding
        logits = xenc @ W  # predict log-counts
        counts = logits.exp()  # counts, equivalent to N
        probs = counts / counts.sum(1, keepdims=True)  # probabilities for next character
        loss = -probs[sg.arange(num), ys].log().mean()
        # backward pass
        W.grad = None
        loss.backward()
        # update
        W.data += -lr * W.grad
        losses.append(loss.item())
        if k % 10 == 0 or k == steps - 1:
            it.set_postfix_str(f"loss {losses[-1]:.4f}")
    return W, losses


def sample(probs_of: Any, n: int, seed: int) -> list[str]:
    """Sample ``n`` names; ``probs_of(ix)`` gives the next-character distribution."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        ix, chars = 0, []
        while True:
            p = np.asarray(probs_of(ix), dtype=np.float64)
            ix = int(rng.choice(27, p=p / p.sum()))
            if ix == 0 or len(chars) >= 30:
                break
            chars.append(ITOS[ix])
        out.append("".join(chars))
    return out


def import_file(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="a text file with one word per line (default: names package)")
    ap.add_argument("--limit", type=count, default=0, help="use only the first N words (0: all)")
    ap.add_argument("--steps", type=positive, default=150, help="training steps (150)")
    ap.add_argument("--lr", type=float, default=50.0, help="learning rate (50, as in the lecture)")
    ap.add_argument("--seed", type=int, default=2147483647, help="sampling seed")
    ap.add_argument("--out", help="output directory (default: examples/out)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)

    words, source = load_words(args.data)
    if args.limit:
        words = words[: args.limit]
    xs, ys = bigrams(words)
    print(f"{len(words)} words from {source}; {len(xs)} bigrams; e.g. {', '.join(words[:5])}")
    optimum, P = counting_optimum(xs, ys)
    print(f"counting optimum (NLL of the bigram frequencies): {optimum:.4f}")

    banner(f"Training the bigram net: {args.steps} steps of gradient descent, lr {args.lr:g}")
    t0 = time.perf_counter()
    W, losses = train(xs, ys, args.steps, args.lr, not args.no_progress)
    dt = time.perf_counter() - t0
    for k in sorted({0, 9, 49, 99, len(losses) - 1}):
        if k < len(losses):
            print(f"  step {k + 1:4d}  loss {losses[k]:.4f}  (optimum + {losses[k] - optimum:.4f})")
    print(f"trained in {dt:.1f} s ({dt / max(1, args.steps) * 1e3:.1f} ms per step)")

    banner("Sampling 10 names (fixed seed): the net, and the bigram counts it learned")
    Wd = W.data
    net_probs = np.exp(Wd - Wd.max(1, keepdims=True))
    net_probs /= net_probs.sum(1, keepdims=True)
    from_net = sample(lambda ix: net_probs[ix], 10, args.seed)
    from_counts = sample(lambda ix: P[ix], 10, args.seed)
    for a, b in zip(from_net, from_counts, strict=True):
        print(f"  {a:<16} {b}")

    banner("Exporting the trained net as a NumPy module (needs only NumPy)")

    def bigram_net(xs: sg.Tensor) -> sg.Tensor:
        return sg.softmax(sg.one_hot(xs, 27) @ W, axis=1)

    target = out_dir(args.out) / "bigram_export"
    shutil.rmtree(target, ignore_errors=True)  # no stale files from an earlier run
    path = sg.export(bigram_net, target, sg.Spec(("n",), "int64"), name="bigram")
    print(f"wrote {path}: {', '.join(sorted(p.name for p in path.iterdir()))}")
    exported = import_file(path / "bigram.py")
    table = exported.forward(np.arange(27, dtype=np.int64))
    diff = float(np.abs(table - net_probs).max())
    from_export = sample(lambda ix: exported.forward(np.array([ix]))[0], 10, args.seed)
    print(f"exported module vs the trained net: max difference {diff:.1e}")
    print(f"samples from the exported module: {', '.join(from_export)}")
    same = from_export == from_net
    print(
        f"\nbigram: loss {losses[0]:.4f} -> {losses[-1]:.4f}, counting optimum {optimum:.4f}, "
        f"gap {losses[-1] - optimum:.4f}; export matches: {same and diff < 1e-12}"
    )
    return 0 if same and diff < 1e-12 else 1


if __name__ == "__main__":
    sys.exit(main())
