"""makemore part 2: the MLP of Bengio et al. (2003), float32, minibatch SGD (lr 0.1), one
training step (forward + backward + update) timed per framework, all from the same initial
weights and on the same minibatches.

Workload (as ../shared/peers/wl3_mlp.py): contexts of 3 characters over every name (no split),
embedding table C (27×10), hidden layer 30→200 tanh, output 200→27, cross-entropy, batch 32,
1000 steps. Initial weights: ``default_rng(2147483647).standard_normal`` for C, W1, b1, W2, b2 in
that order (unscaled, as in the lecture), float32. Minibatch indices:
``default_rng(42).integers(0, n, (steps, 32))``, drawn once; step k of every row uses batch k.

Rows: NumPy hand-written backprop (the reference), symgrad ``compile_step`` on the C and NumPy
backends at optimisation levels 1 and 2, and PyTorch eager / JAX jit when installed
(``pip install -e '.[bench]'``). Prints setup (cold compile), first step, median step, spread,
ratio to the reference and the loss after the last step. float32 summation order differs
between rows, so the losses agree to about 1e-6 after a few steps and drift apart slowly
(~1e-4 relative) over 1000 steps.

    .venv/bin/python benchmarks/mlp.py [--steps 1000] [--reps 3] [--data PATH]
    .venv/bin/python benchmarks/mlp.py --quick      # 3 steps, 1 rep
"""

from __future__ import annotations

import argparse
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

BLOCK = 3  # context length
EMB = 10  # embedding size
HID = 200  # hidden units
BS = 32  # minibatch
LR = 0.1
INIT_SEED = 2147483647
BATCH_SEED = 42


def contexts(words: list[str]) -> tuple[np.ndarray, np.ndarray, int]:
    """(context of BLOCK indices, next index) for every character of every name, and the
    vocabulary size."""
    stoi = vocabulary(words)
    X, Y = [], []
    for w in words:
        context = [0] * BLOCK
        for ch in w + ".":
            ix = stoi[ch]
            X.append(context)
            Y.append(ix)
            context = context[1:] + [ix]
    return np.array(X, dtype=np.int64), np.array(Y, dtype=np.int64), len(stoi)


def minibatches(X: np.ndarray, Y: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """The batches of every step, (steps, BS, BLOCK) and (steps, BS), drawn once."""
    idx = np.random.default_rng(BATCH_SEED).integers(0, len(Y), size=(steps, BS))
    return X[idx], Y[idx]


def init(V: int) -> list[np.ndarray]:
    g = np.random.default_rng(INIT_SEED)
    shapes = [(V, EMB), (BLOCK * EMB, HID), (HID,), (HID, V), (V,)]
    return [g.standard_normal(s).astype(np.float32) for s in shapes]


# -- NumPy by hand --------------------------------------------------------------------------------


def make_numpy(XB: np.ndarray, YB: np.ndarray, V: int) -> Start:
    ar = np.arange(BS)
    lr = np.float32(LR)
    P0 = init(V)

    def start() -> Step:
        C, W1, b1, W2, b2 = P = [p.copy() for p in P0]

        def step(k: int) -> float:
            X, Y = XB[k], YB[k]
            embcat = C[X].reshape(BS, BLOCK * EMB)
            h = np.tanh(embcat @ W1 + b1)
            logits = h @ W2 + b2
            m = logits.max(1, keepdims=True)
            e = np.exp(logits - m)
            s = e.sum(1, keepdims=True)
            loss = (np.log(s[:, 0]) + m[:, 0] - logits[ar, Y]).mean()
            dlogits = e / s
            dlogits[ar, Y] -= 1
            dlogits *= np.float32(1.0 / BS)
            dW2 = h.T @ dlogits
            db2 = dlogits.sum(0)
            dhpre = (dlogits @ W2.T) * (1 - h * h)
            dW1 = embcat.T @ dhpre
            db1 = dhpre.sum(0)
            demb = (dhpre @ W1.T).reshape(BS * BLOCK, EMB)
            dC = np.zeros_like(C)
            np.add.at(dC, X.ravel(), demb)
            for p, g in zip(P, (dC, dW1, db1, dW2, db2), strict=True):
                p -= lr * g
            return float(loss)

        return step

    return start


# -- symgrad ------------------------------------------------------------------------------------


def make_symgrad(XB: np.ndarray, YB: np.ndarray, V: int, backend: str, opt: int) -> Start:
    P0 = init(V)
    params = [sg.Tensor(p.copy(), requires_grad=True) for p in P0]

    def loss(X: sg.Tensor, Y: sg.Tensor) -> sg.Tensor:
        C, W1, b1, W2, b2 = params
        emb = C[X]  # (batch, BLOCK, EMB)
        h = (emb.reshape(X.shape[0], BLOCK * EMB) @ W1 + b1).tanh()
        logits = h @ W2 + b2
        return sg.cross_entropy(logits, Y)

    optimizer = sg.optim.SGD(params, lr=LR)
    step = sg.compile_step(loss, XB[0], YB[0], optimizer=optimizer, backend=backend, opt=opt)

    def start() -> Step:
        for p, p0 in zip(params, P0, strict=True):
            np.copyto(p.data, p0)  # in place: the compiled step reads the arrays at every call
        return lambda k: step(XB[k], YB[k])

    return start


# -- peers (optional) ---------------------------------------------------------------------------


def make_torch(torch: Any, XB: np.ndarray, YB: np.ndarray, V: int) -> Start:
    F = torch.nn.functional
    xb = [torch.from_numpy(x) for x in XB]
    yb = [torch.from_numpy(y) for y in YB]
    P0 = init(V)

    def start() -> Step:
        P = [torch.tensor(p, requires_grad=True) for p in P0]

        def step(k: int) -> float:
            C, W1, b1, W2, b2 = P
            emb = C[xb[k]]
            h = torch.tanh(emb.view(-1, BLOCK * EMB) @ W1 + b1)
            logits = h @ W2 + b2
            loss = F.cross_entropy(logits, yb[k])
            for p in P:
                p.grad = None
            loss.backward()
            for p in P:
                p.data += -LR * p.grad
            return float(loss.item())

        return step

    return start


def make_jax(jax: Any, XB: np.ndarray, YB: np.ndarray, V: int) -> Start:
    jnp = jax.numpy
    xb = [jnp.asarray(x.astype(np.int32)) for x in XB]
    yb = [jnp.asarray(y.astype(np.int32)) for y in YB]
    P0 = init(V)

    def loss_fn(P: list[Any], X: Any, Y: Any) -> Any:
        C, W1, b1, W2, b2 = P
        h = jnp.tanh(C[X].reshape(-1, BLOCK * EMB) @ W1 + b1)
        logp = jax.nn.log_softmax(h @ W2 + b2, axis=-1)
        return -jnp.take_along_axis(logp, Y[:, None], axis=1).mean()

    def train(P: list[Any], X: Any, Y: Any) -> tuple[list[Any], Any]:
        loss, g = jax.value_and_grad(loss_fn)(P, X, Y)
        return [p - LR * gp for p, gp in zip(P, g, strict=True)], loss

    compiled = jax.jit(train).lower([jnp.asarray(p) for p in P0], xb[0], yb[0]).compile()

    def start() -> Step:
        state = [[jnp.asarray(p) for p in P0]]

        def step(k: int) -> float:
            state[0], loss = compiled(state[0], xb[k], yb[k])
            return float(loss)

        return step

    return start


# -- main ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(ap, steps=1000, reps=3)
    ap.add_argument("--data", type=Path, default=None, help="names file, one name per line")
    ap.add_argument(
        "--levels", default="1,2", help="symgrad optimisation levels, comma-separated (default 1,2)"
    )
    args = ap.parse_args(argv)
    apply_quick(args)
    levels = [int(s) for s in args.levels.split(",") if s.strip()]
    private_cache()
    t_start = time.perf_counter()

    X, Y, V = contexts(load_words(args.data))
    XB, YB = minibatches(X, Y, args.steps)
    rows = [Row("NumPy hand-written backprop (reference)", lambda: make_numpy(XB, YB, V))]
    rows += symgrad_rows(lambda b, lv: make_symgrad(XB, YB, V, b, lv), levels)
    peer, peers = peer_rows(
        args.no_peers,
        {
            "torch": ("PyTorch eager (F.cross_entropy)", lambda t: make_torch(t, XB, YB, V)),
            "jax": ("JAX jit (whole step compiled in setup)", lambda j: make_jax(j, XB, YB, V)),
        },
    )
    rows += peer

    results = run_rows(rows, args.steps, args.reps)
    n_params = sum(p.size for p in init(V))
    macs = BS * (BLOCK * EMB * HID + HID * V)
    title = (
        f"makemore MLP {BLOCK}×{EMB}→{HID} tanh→{V}, {n_params:,} parameters, {len(Y):,} "
        f"examples, batch {BS}, float32, lr {LR:g}, {reps_text(args.steps, args.reps)}; "
        f"about {6 * macs / 1e6:.1f} Mflop per step"
    )
    print_table(title, machine_line(peers), results)
    print(f"\ntotal wall time {time.perf_counter() - t_start:.1f} s")


if __name__ == "__main__":
    main()
