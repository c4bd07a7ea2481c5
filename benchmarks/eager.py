"""Eager training loops, as a PyTorch user writes them: build the loss from a new minibatch,
``loss.backward()``, a manual SGD update (``p.data += -lr * p.grad``), every step. symgrad
compiles the backward pass on the first step only (issue 16); this script times the loop beside
PyTorch eager and counts what a long loop compiles.

Workloads (float32, batch 32, lr 0.1, a new minibatch every step, the same initial weights and
batches in every row):

- ``mlp``: makemore part 2 (as benchmarks/mlp.py): embedding 27×10 of 3 characters, tanh
  layer of 200, cross-entropy;
- ``batchnorm``: the same with a hand-written BatchNorm before the tanh (makemore part 3/4:
  batch mean, Bessel-corrected variance, gain and bias; no bias before it);
- ``attention``: a tiny GPT-style block on windows of 8 characters: token and position
  embeddings (32), one causal self-attention head (the mask by ``where``/``masked_fill`` with
  -inf), a residual tanh MLP (32→64→32) and the output layer;
- ``wavenet``: makemore part 5's hierarchical model on contexts of 8 characters: embedding 24,
  three levels of flatten-consecutive-pairs (``view``), Linear 128 without bias, BatchNorm
  over batch and time, tanh; the output layer (see _wavenet.py: one loss function, run by
  symgrad and by PyTorch with only the namespace differing).

Rows: NumPy with hand-written backprop (the reference), symgrad eager on the C backend (when a
compiler works) and on the NumPy backend, and PyTorch eager when installed (``pip install -e
'.[bench]'``). Besides the usual columns (see _common.py): ``× PyTorch eager``, and from an
untimed run of ``--count-steps`` steps made first, on a cold cache: how long step 1 took
(it compiles), and the new cache entries and compiler runs (every process symgrad's compiler
module starts) after step 1 — the targets are 0.

    .venv/bin/python benchmarks/eager.py [--steps 1000] [--reps 3] [--count-steps 1000]
        [--only mlp,batchnorm,attention,wavenet] [--data PATH]
    .venv/bin/python benchmarks/eager.py --quick      # 3 steps, 1 rep
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _wavenet
import mlp
import numpy as np
from _common import (
    Column,
    Result,
    Row,
    Start,
    Step,
    add_common_args,
    apply_quick,
    c_compiler,
    fmt_time,
    load_words,
    machine_line,
    peer_rows,
    print_table,
    private_cache,
    ratio_column,
    reps_text,
    run_rows,
    vocabulary,
)

import symgrad as sg
import symgrad.nn.functional as sF
from symgrad.runtime import cache

BS, LR, SEED = 32, 0.1, 2147483647
T, D, HM = 8, 32, 64  # the attention block: window, embedding, MLP hidden
TORCH_ROW = "PyTorch eager"
F32 = np.float32


# -- workloads: initial weights and a loss written once per framework ----------------------------
def init(workload: str, V: int) -> list[np.ndarray]:
    g = np.random.default_rng(SEED)

    def n(*shape: int, scale: float = 1.0) -> np.ndarray:
        return (g.standard_normal(shape) * scale).astype(F32)

    if workload == "mlp":
        return mlp.init(V)
    if workload == "wavenet":
        return _wavenet.init(V)
    if workload == "batchnorm":  # makemore part 3's initialisation
        fan = mlp.BLOCK * mlp.EMB
        W1 = n(fan, mlp.HID, scale=5 / 3 / math.sqrt(fan))
        ones, zeros = np.ones((1, mlp.HID), F32), np.zeros((1, mlp.HID), F32)
        return [n(V, mlp.EMB), W1, ones, zeros, n(mlp.HID, V, scale=0.01), np.zeros(V, F32)]
    s, sh = 1 / math.sqrt(D), 1 / math.sqrt(HM)
    qkvo = [n(D, D, scale=s) for _ in range(4)]
    return [
        n(V, D, scale=0.3),
        n(T, D, scale=0.3),
        *qkvo,
        n(D, HM, scale=s),
        n(HM, D, scale=sh),
    ] + [n(D, V, scale=s)]


def sg_loss(workload: str, P: list[Any], X: np.ndarray, Y: np.ndarray) -> Any:
    """The loss in symgrad."""
    if workload == "wavenet":
        return _wavenet.loss(sg, sF, P, X, Y)
    if workload == "mlp":
        C, W1, b1, W2, b2 = P
        h = (C[X].reshape(BS, mlp.BLOCK * mlp.EMB) @ W1 + b1).tanh()
        return sg.cross_entropy(h @ W2 + b2, Y)
    if workload == "batchnorm":
        C, W1, gain, bias, W2, b2 = P
        hprebn = C[X].reshape(BS, mlp.BLOCK * mlp.EMB) @ W1
        bndiff = hprebn - hprebn.sum(0, keepdims=True) * (1.0 / BS)
        bnvar = (bndiff**2).sum(0, keepdims=True) * (1.0 / (BS - 1))
        h = (gain * (bndiff * (bnvar + 1e-5) ** -0.5) + bias).tanh()
        return sg.cross_entropy(h @ W2 + b2, Y)
    wte, wpe, Wq, Wk, Wv, Wo, W1, W2, Wh = P
    x = wte[X] + wpe[np.arange(T)]
    att = (x @ Wq) @ (x @ Wk).transpose(0, 2, 1) * (1.0 / math.sqrt(D))
    att = sg.softmax(sg.where(np.tril(np.ones((T, T), dtype=bool)), att, -np.inf), axis=-1)
    x = x + (att @ (x @ Wv)) @ Wo
    x = x + (x @ W1).tanh() @ W2
    return sg.cross_entropy((x @ Wh).reshape(BS * T, -1), Y.reshape(BS * T))


def torch_loss(torch: Any, workload: str, P: list[Any], X: Any, Y: Any) -> Any:
    F = torch.nn.functional
    if workload == "wavenet":
        return _wavenet.loss(torch, F, P, X, Y)
    if workload == "mlp":
        C, W1, b1, W2, b2 = P
        h = torch.tanh(C[X].view(BS, mlp.BLOCK * mlp.EMB) @ W1 + b1)
        return F.cross_entropy(h @ W2 + b2, Y)
    if workload == "batchnorm":
        C, W1, gain, bias, W2, b2 = P
        hprebn = C[X].view(BS, mlp.BLOCK * mlp.EMB) @ W1
        bndiff = hprebn - hprebn.sum(0, keepdim=True) * (1.0 / BS)
        bnvar = (bndiff**2).sum(0, keepdim=True) * (1.0 / (BS - 1))
        h = torch.tanh(gain * (bndiff * (bnvar + 1e-5) ** -0.5) + bias)
        return F.cross_entropy(h @ W2 + b2, Y)
    wte, wpe, Wq, Wk, Wv, Wo, W1, W2, Wh = P
    x = wte[X] + wpe[torch.arange(T)]
    att = (x @ Wq) @ (x @ Wk).transpose(1, 2) * (1.0 / math.sqrt(D))
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    att = F.softmax(att.masked_fill(~causal, float("-inf")), dim=-1)
    x = x + (att @ (x @ Wv)) @ Wo
    x = x + torch.tanh(x @ W1) @ W2
    return F.cross_entropy((x @ Wh).view(BS * T, -1), Y.view(BS * T))


def numpy_step(workload: str, P: list[np.ndarray], X: np.ndarray, Y: np.ndarray) -> float:
    """One step with the backward pass written out by hand (the reference)."""
    if workload == "wavenet":
        return _wavenet.numpy_step(P, X, Y, LR)
    n = len(Y.reshape(-1))
    if workload == "batchnorm":
        C, W1, gain, bias, W2, b2 = P
        embcat = C[X].reshape(BS, -1)
        hprebn = embcat @ W1
        bndiff = hprebn - hprebn.sum(0, keepdims=True) * F32(1.0 / BS)
        bnvar_inv = ((bndiff**2).sum(0, keepdims=True) * F32(1.0 / (BS - 1)) + F32(1e-5)) ** F32(
            -0.5
        )
        bnraw = bndiff * bnvar_inv
        h = np.tanh(gain * bnraw + bias)
        loss, dlogits = _softmax_nll(h @ W2 + b2, Y)
        dh = dlogits @ W2.T
        dhpre = (1 - h * h) * dh
        m = F32(BS)
        dhprebn = (gain * bnvar_inv / m) * (
            m * dhpre - dhpre.sum(0) - m / (m - 1) * bnraw * (dhpre * bnraw).sum(0)
        )
        dC = np.zeros_like(C)
        np.add.at(dC, X.ravel(), (dhprebn @ W1.T).reshape(-1, C.shape[1]))
        grads = [dC, embcat.T @ dhprebn, (bnraw * dhpre).sum(0, keepdims=True)]
        grads += [dhpre.sum(0, keepdims=True), h.T @ dlogits, dlogits.sum(0)]
    else:
        wte, wpe, Wq, Wk, Wv, Wo, W1, W2, Wh = P
        x0 = wte[X] + wpe[None]
        q, k, v = x0 @ Wq, x0 @ Wk, x0 @ Wv
        s = F32(1.0 / math.sqrt(D))
        att = np.where(
            np.tril(np.ones((T, T), dtype=bool)), (q @ k.transpose(0, 2, 1)) * s, -np.inf
        )
        e = np.exp(att - att.max(-1, keepdims=True))
        p = e / e.sum(-1, keepdims=True)
        a = p @ v
        x1 = x0 + a @ Wo
        hh = np.tanh(x1 @ W1)
        x2 = x1 + hh @ W2
        loss, dl = _softmax_nll((x2 @ Wh).reshape(n, -1), Y.reshape(n))
        dl = dl.reshape(BS, T, -1)
        dx2 = dl @ Wh.T
        du = (dx2 @ W2.T) * (1 - hh * hh)
        dx1 = dx2 + du @ W1.T
        da = dx1 @ Wo.T
        dp = da @ v.transpose(0, 2, 1)
        ds = p * (dp - (dp * p).sum(-1, keepdims=True)) * s
        dq, dk, dv = ds @ k, ds.transpose(0, 2, 1) @ q, p.transpose(0, 2, 1) @ da
        dx0 = dx1 + dq @ Wq.T + dk @ Wk.T + dv @ Wv.T
        dwte = np.zeros_like(wte)
        np.add.at(dwte, X.ravel(), dx0.reshape(-1, D))

        def tsum(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # Σ over batch and time of aᵀb
            # (a contiguous aᵀ: OpenBLAS's threads take 0.2-8 ms on some transposed shapes)
            at = np.ascontiguousarray(a.reshape(-1, a.shape[-1]).T)
            return at @ b.reshape(-1, b.shape[-1])

        grads = [dwte, dx0.sum(0), tsum(x0, dq), tsum(x0, dk), tsum(x0, dv), tsum(a, dx1)]
        grads += [tsum(x1, du), tsum(hh, dx2), tsum(x2, dl)]
    for w, g in zip(P, grads, strict=True):
        w -= F32(LR) * g
    return loss


def _softmax_nll(logits: np.ndarray, Y: np.ndarray) -> tuple[float, np.ndarray]:
    m = logits.max(1, keepdims=True)
    e = np.exp(logits - m)
    s = e.sum(1, keepdims=True)
    ar = np.arange(len(Y))
    loss = float((np.log(s[:, 0]) + m[:, 0] - logits[ar, Y]).mean())
    d = e / s
    d[ar, Y] -= 1
    return loss, d * F32(1.0 / len(Y))


# -- rows ---------------------------------------------------------------------------------------
Batches = tuple[np.ndarray, np.ndarray]


def make_numpy(workload: str, data: Batches, V: int) -> Start:
    if workload == "mlp":
        return mlp.make_numpy(*data, V)
    P0 = init(workload, V)

    def start() -> Step:
        P = [p.copy() for p in P0]
        return lambda k: numpy_step(workload, P, data[0][k], data[1][k])

    return start


def make_symgrad(workload: str, data: Batches, V: int, backend: str) -> Start:
    P0 = init(workload, V)
    XB, YB = data

    def start() -> Step:
        os.environ["SYMGRAD_BACKEND"] = backend  # (read when a structure is first seen)
        P = [sg.Tensor(p.copy(), requires_grad=True) for p in P0]

        def step(k: int) -> float:
            loss = sg_loss(workload, P, XB[k], YB[k])
            for p in P:
                p.grad = None
            loss.backward()
            for p in P:
                p.data += -LR * p.grad
            return loss.item()

        return step

    return start


def make_torch(torch: Any, workload: str, data: Batches, V: int) -> Start:
    if workload == "mlp":
        return mlp.make_torch(torch, *data, V)
    xb = [torch.from_numpy(x) for x in data[0]]
    yb = [torch.from_numpy(y) for y in data[1]]
    P0 = init(workload, V)

    def start() -> Step:
        P = [torch.tensor(p, requires_grad=True) for p in P0]

        def step(k: int) -> float:
            loss = torch_loss(torch, workload, P, xb[k], yb[k])
            for p in P:
                p.grad = None
            loss.backward()
            for p in P:
                p.data += -LR * p.grad
            return float(loss.item())

        return step

    return start


def batches(workload: str, words: list[str], steps: int) -> tuple[Batches, int]:
    if workload == "wavenet":
        return _wavenet.minibatches(words, steps, BS)
    if workload != "attention":
        X, Y, V = mlp.contexts(words)
        return mlp.minibatches(X, Y, steps), V
    stoi = vocabulary(words)
    stream = np.array([0] + [stoi[c] for w in words for c in w + "."], dtype=np.int64)
    at = np.random.default_rng(mlp.BATCH_SEED).integers(0, len(stream) - T - 1, (steps, BS, 1))
    return (stream[at + np.arange(T)], stream[at + 1 + np.arange(T)]), len(stoi)


# -- compile counts (untimed, on a cold cache, before the timed rows) -----------------------------
@dataclass
class Counts:
    first_s: float
    first_compiles: int
    later_entries: int
    later_compiler_runs: int


def count_compiles(start: Start, steps: int) -> Counts:
    """Run ``steps`` steps; the new cache entries and compiler processes after the first."""
    runs: list[Any] = []
    real = subprocess.run

    def counting(*args: Any, **kwargs: Any) -> Any:  # symgrad's compiler module runs cc so
        runs.append(args[0] if args else kwargs.get("args"))
        return real(*args, **kwargs)

    subprocess.run = counting  # type: ignore[assignment]
    try:
        step = start()
        compiles = sg.eager_stats().compiles
        t0 = time.perf_counter()
        step(0)
        first_s = time.perf_counter() - t0
        first = sg.eager_stats().compiles - compiles
        entries, n_runs = cache.info()["entries"], len(runs)
        for k in range(1, steps):
            step(k)
        return Counts(first_s, first, cache.info()["entries"] - entries, len(runs) - n_runs)
    finally:
        subprocess.run = real  # type: ignore[assignment]


def count_columns(counts: dict[str, Counts], args: argparse.Namespace) -> list[Column]:
    def col(fn: Callable[[Counts], str]) -> Callable[[Result], str]:
        return lambda res: fn(counts[res.name]) if res.name in counts else "-"

    later = f"steps 2–{args.count_steps}"
    return [
        ("step 1, cold (compiles)", col(lambda c: f"{fmt_time(c.first_s)} ({c.first_compiles})")),
        (f"new cache entries, {later}", col(lambda c: str(c.later_entries))),
        (f"compiler runs, {later}", col(lambda c: str(c.later_compiler_runs))),
    ]


TITLES = {
    "mlp": f"makemore MLP {mlp.BLOCK}×{mlp.EMB}→{mlp.HID} tanh, cross-entropy",
    "batchnorm": f"makemore MLP {mlp.BLOCK}×{mlp.EMB}→{mlp.HID}, hand-written BatchNorm, tanh",
    "attention": f"tiny GPT block: window {T}, embedding {D}, one causal head, tanh MLP {D}→{HM}",
    "wavenet": (
        f"WaveNet (makemore part 5): window {_wavenet.BLOCK}, embedding {_wavenet.EMB}, "
        f"{_wavenet.LEVELS} levels of flatten-pairs, Linear {_wavenet.HID}, BatchNorm, tanh"
    ),
}
TARGETS = {"mlp": 1.5, "batchnorm": 2.0, "attention": 2.0, "wavenet": 2.0}


def run_workload(workload: str, words: list[str], args: argparse.Namespace) -> list[str]:
    """Count, time and print one workload; return its lines of the summary."""
    data, V = batches(workload, words, max(args.steps, args.count_steps))
    backends = ["c", "numpy"] if c_compiler() is not None else ["numpy"]
    sym = {f"symgrad eager loss.backward(), {b}": b for b in backends}
    rows = [Row("NumPy hand-written backprop (reference)", lambda: make_numpy(workload, data, V))]
    rows += [Row(name, lambda b=b: make_symgrad(workload, data, V, b)) for name, b in sym.items()]
    peer, peers = peer_rows(
        args.no_peers, {"torch": (TORCH_ROW, lambda t: make_torch(t, workload, data, V))}
    )
    # first, on a cold cache: what a long loop compiles (untimed)
    counts = {r.name: count_compiles(r.make(), args.count_steps) for r in rows if r.name in sym}
    results = run_rows(rows + peer, args.steps, args.reps)
    vs_torch = ratio_column(results, TORCH_ROW, "× PyTorch eager")
    title = (
        f"{TITLES[workload]}, batch {BS}, float32, a new minibatch every step, lr {LR:g}, "
        f"{reps_text(args.steps, args.reps)}"
    )
    print_table(title, machine_line(peers), results, [vs_torch, *count_columns(counts, args)])
    target = f"target ≤ {TARGETS[workload]:g}"
    return [
        f"{workload}, {res.name}: {vs_torch[1](res)} × PyTorch eager ({target})"
        for res in results
        if res.name in sym and res.error is None
    ]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(ap, steps=1000, reps=3)
    ap.add_argument("--count-steps", type=int, default=1000, help="steps of the counting run")
    ap.add_argument("--only", default=",".join(TITLES), help="workloads, comma-separated")
    ap.add_argument("--data", type=Path, default=None, help="names file, one name per line")
    args = ap.parse_args(argv)
    apply_quick(args)
    if args.quick:
        args.count_steps = min(args.count_steps, 3)
    workloads = [w.strip() for w in args.only.split(",") if w.strip()]
    for w in workloads:
        if w not in TITLES:
            raise SystemExit(f"unknown workload {w!r}; choose from {', '.join(TITLES)}")
    private_cache()
    t_start = time.perf_counter()
    words = load_words(args.data)
    summary = [line for w in workloads for line in run_workload(w, words, args)]
    if summary:
        print("\n" + "\n".join(summary))
    print(f"\ntotal wall time {time.perf_counter() - t_start:.1f} s")


if __name__ == "__main__":
    main()
