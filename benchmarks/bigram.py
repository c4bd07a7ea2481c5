"""makemore part 1: the bigram neural net, float32, full-batch SGD (lr 50), one whole training
step (forward + backward + update) timed per framework, all from the same initial weights.

Workload (as ../shared/peers/wl2_bigram.py): every (x, y) character pair of the names file with
'.' as start/end token (228,146 pairs for makemore's names.txt), vocabulary 27,
``W = default_rng(2147483647).standard_normal((27, 27))`` as float32, and the lecture's loss
``-log(softmax(one_hot(xs) @ W)[ys]).mean() + 0.01 * mean(W²)``, 100 steps.

Rows: NumPy by hand (row gather, fused softmax-NLL gradient, bincount scatter-add; the
reference), NumPy by hand in the lecture's one-hot-matmul form, NumPy by hand aggregated by
value (the loss depends on the examples only through the (x, y) pair counts: one bincount per
step, then 27×27 work), symgrad ``compile_step`` on the C and NumPy backends at optimisation
levels 1 and 2 (2 is the default; it turns ``one_hot(xs) @ W`` into a row gather, does the
softmax once per row of W and then aggregates by value: the step counts the pairs and works on
the 27×27 table, see ``symgrad/passes/aggregate.py``), and PyTorch eager / JAX jit when installed
(``pip install -e '.[bench]'``). Prints setup (cold compile), first step, median step, spread,
ratio to the reference and the loss after the last step (every row computes the same numbers).

    .venv/bin/python benchmarks/bigram.py [--steps 100] [--reps 1] [--n PAIRS] [--data PATH]
    .venv/bin/python benchmarks/bigram.py --quick      # 3 steps, 1 rep, the first 20,000 pairs
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import (
    Row,
    Start,
    Step,
    add_common_args,
    apply_quick,
    load_words,
    machine_line,
    peer_rows,
    print_table,
    private_cache,
    reps_text,
    run_rows,
    symgrad_rows,
    vocabulary,
)

import symgrad as sg

LR = 50.0
REG = 0.01
SEED = 2147483647
QUICK_PAIRS = 20_000


def bigram_pairs(words: list[str]) -> tuple[np.ndarray, np.ndarray, int]:
    """Every (x, y) character pair with '.' at both ends of each name, and the vocabulary size."""
    stoi = vocabulary(words)
    xs, ys = [], []
    for w in words:
        for a, b in itertools.pairwise([".", *w, "."]):
            xs.append(stoi[a])
            ys.append(stoi[b])
    return np.array(xs, dtype=np.int64), np.array(ys, dtype=np.int64), len(stoi)


def init(V: int) -> np.ndarray:
    return np.random.default_rng(SEED).standard_normal((V, V)).astype(np.float32)


# -- NumPy by hand --------------------------------------------------------------------------------


def make_numpy_gather(XS: np.ndarray, YS: np.ndarray, V: int) -> Start:
    """Row gather instead of the one-hot matmul, fused softmax-NLL gradient, bincount scatter."""
    n = len(XS)
    ar = np.arange(n)
    flat = (XS[:, None] * V + np.arange(V)).ravel()  # scatter index of dW, computed once
    c_reg = np.float32(REG * 2 / (V * V))
    W0 = init(V)

    def start() -> Step:
        W = W0.copy()

        def step(k: int) -> float:
            probs = W[XS]  # (n, V) row gather
            np.exp(probs, out=probs)
            probs /= probs.sum(1, keepdims=True)
            loss = -np.log(probs[ar, YS]).mean() + np.float32(REG) * (W * W).mean()
            probs[ar, YS] -= 1.0  # n * dloss/dlogits
            sums = np.bincount(flat, weights=probs.ravel(), minlength=V * V).reshape(V, V)
            dW = sums.astype(np.float32) * np.float32(1.0 / n) + c_reg * W
            W[...] -= np.float32(LR) * dW
            return float(loss)

        return step

    return start


def make_numpy_lecture(XS: np.ndarray, YS: np.ndarray, V: int) -> Start:
    """The lecture's form: one-hot rows, a matmul forward and its transpose backward."""
    n = len(XS)
    ar = np.arange(n)
    eye = np.eye(V, dtype=np.float32)
    c_reg = np.float32(REG * 2 / (V * V))
    W0 = init(V)

    def start() -> Step:
        W = W0.copy()

        def step(k: int) -> float:
            xenc = eye[XS]
            counts = np.exp(xenc @ W)
            probs = counts / counts.sum(1, keepdims=True)
            loss = -np.log(probs[ar, YS]).mean() + np.float32(REG) * (W * W).mean()
            probs[ar, YS] -= 1.0
            dW = xenc.T @ probs * np.float32(1.0 / n) + c_reg * W
            W[...] -= np.float32(LR) * dW
            return float(loss)

        return step

    return start


def make_numpy_counts(XS: np.ndarray, YS: np.ndarray, V: int) -> Start:
    """Aggregated by value: the (x, y) pair counts (recounted every step), then 27×27 work."""
    n = len(XS)
    c_reg = np.float32(REG * 2 / (V * V))
    W0 = init(V)

    def start() -> Step:
        W = W0.copy()

        def step(k: int) -> float:
            counts = np.bincount(XS * V + YS, minlength=V * V).reshape(V, V).astype(np.float32)
            m = W.max(1, keepdims=True)
            e = np.exp(W - m)
            s = e.sum(1, keepdims=True)
            lse = np.log(s) + m
            loss = (counts * (lse - W)).sum() / np.float32(n) + np.float32(REG) * (W * W).mean()
            dW = (e / s * counts.sum(1, keepdims=True) - counts) / np.float32(n) + c_reg * W
            W[...] -= np.float32(LR) * dW
            return float(loss)

        return step

    return start


# -- symgrad ------------------------------------------------------------------------------------


def make_symgrad(XS: np.ndarray, YS: np.ndarray, V: int, backend: str, opt: int) -> Start:
    W0 = init(V)
    W = sg.Tensor(W0.copy(), requires_grad=True)

    def loss(xs: sg.Tensor, ys: sg.Tensor) -> sg.Tensor:
        # exactly as in the lecture (and the README): a float64 one-hot cast to float32
        xenc = sg.one_hot(xs, V).float()
        logits = xenc @ W
        counts = logits.exp()
        probs = counts / counts.sum(1, keepdims=True)
        return -probs[sg.arange(xs.shape[0]), ys].log().mean() + REG * (W**2).mean()

    optimizer = sg.optim.SGD([W], lr=LR)
    step = sg.compile_step(loss, XS, YS, optimizer=optimizer, backend=backend, opt=opt)

    def start() -> Step:
        np.copyto(W.data, W0)  # in place: the compiled step reads W's array at every call
        return lambda k: step(XS, YS)

    return start


# -- peers (optional) ---------------------------------------------------------------------------


def make_torch(torch: Any, XS: np.ndarray, YS: np.ndarray, V: int) -> Start:
    F = torch.nn.functional
    xs, ys = torch.from_numpy(XS), torch.from_numpy(YS)
    ar = torch.arange(len(XS))
    W0 = init(V)

    def start() -> Step:
        W = torch.tensor(W0, requires_grad=True)

        def step(k: int) -> float:
            xenc = F.one_hot(xs, num_classes=V).float()
            logits = xenc @ W
            counts = logits.exp()
            probs = counts / counts.sum(1, keepdims=True)
            loss = -probs[ar, ys].log().mean() + REG * (W**2).mean()
            W.grad = None
            loss.backward()
            W.data += -LR * W.grad
            return float(loss.item())

        return step

    return start


def make_jax(jax: Any, XS: np.ndarray, YS: np.ndarray, V: int) -> Start:
    jnp = jax.numpy
    xs, ys = jnp.asarray(XS.astype(np.int32)), jnp.asarray(YS.astype(np.int32))
    W0 = init(V)

    def loss_fn(W: Any, xs: Any, ys: Any) -> Any:
        xenc = jax.nn.one_hot(xs, V, dtype=jnp.float32)
        counts = jnp.exp(xenc @ W)
        probs = counts / counts.sum(1, keepdims=True)
        return -jnp.log(probs[jnp.arange(xs.shape[0]), ys]).mean() + REG * (W**2).mean()

    def train(W: Any, xs: Any, ys: Any) -> tuple[Any, Any]:
        loss, g = jax.value_and_grad(loss_fn)(W, xs, ys)
        return W - LR * g, loss

    compiled = jax.jit(train).lower(jnp.asarray(W0), xs, ys).compile()

    def start() -> Step:
        state = [jnp.asarray(W0)]

        def step(k: int) -> float:
            state[0], loss = compiled(state[0], xs, ys)
            return float(loss)

        return step

    return start


# -- main ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(ap, steps=100, reps=1)
    ap.add_argument("--data", type=Path, default=None, help="names file, one name per line")
    ap.add_argument("--n", type=int, default=None, help="use only the first N pairs")
    ap.add_argument(
        "--levels", default="1,2", help="symgrad optimisation levels, comma-separated (default 1,2)"
    )
    args = ap.parse_args(argv)
    apply_quick(args)
    if args.quick and args.n is None:
        args.n = QUICK_PAIRS
    levels = [int(s) for s in args.levels.split(",") if s.strip()]
    private_cache()
    t_start = time.perf_counter()

    XS, YS, V = bigram_pairs(load_words(args.data))
    if args.n is not None:
        XS, YS = XS[: args.n], YS[: args.n]
    rows = [
        Row(
            "NumPy by hand: gather + fused softmax-NLL gradient + bincount (reference)",
            lambda: make_numpy_gather(XS, YS, V),
        ),
        Row("NumPy by hand, lecture form (one_hot @ W)", lambda: make_numpy_lecture(XS, YS, V)),
        Row("NumPy by hand, pair counts (by value)", lambda: make_numpy_counts(XS, YS, V)),
    ]
    rows += symgrad_rows(lambda b, lv: make_symgrad(XS, YS, V, b, lv), levels)
    peer, peers = peer_rows(
        args.no_peers,
        {
            "torch": ("PyTorch eager (lecture form)", lambda t: make_torch(t, XS, YS, V)),
            "jax": ("JAX jit (whole step compiled in setup)", lambda j: make_jax(j, XS, YS, V)),
        },
    )
    rows += peer

    results = run_rows(rows, args.steps, args.reps)
    title = (
        f"makemore bigram, {len(XS):,} pairs, vocabulary {V}, float32, lr {LR:g}, "
        f"{reps_text(args.steps, args.reps)}"
    )
    print_table(title, machine_line(peers), results)
    print(f"\ntotal wall time {time.perf_counter() - t_start:.1f} s")


if __name__ == "__main__":
    main()
