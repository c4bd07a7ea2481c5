"""The WaveNet workload of benchmarks/eager.py (makemore part 5), in one place: its data, its
initial weights, its loss written once for any ``torch``-like namespace (PyTorch or symgrad:
only the import differs), and one step with the backward pass written out in NumPy (the
reference row).

The model is the lecture's hierarchical one: an embedding of ``BLOCK`` = 8 characters, then
three levels of "flatten two consecutive positions" (``x.view(B, T // 2, C * 2)``, squeezing
the time dim when it reaches 1), a Linear without bias, a BatchNorm over every dim but the
channels (the batch mean and the Bessel-corrected ``var``) and a tanh; a Linear to the
vocabulary; cross-entropy. Not a benchmark itself (``make bench`` skips files starting with
``_``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from _common import vocabulary

BLOCK, EMB, HID, LEVELS = 8, 24, 128, 3  # the lecture's n_embd 24, n_hidden 128
SEED, BATCH_SEED = 2147483647, 42
EPS = 1e-5
F32 = np.float32


def contexts(words: list[str]) -> tuple[np.ndarray, np.ndarray, int]:
    """(the BLOCK characters before, the next one) for every character of every name."""
    stoi = vocabulary(words)
    X, Y = [], []
    for w in words:
        context = [0] * BLOCK
        for ch in w + ".":
            X.append(context)
            Y.append(stoi[ch])
            context = context[1:] + [stoi[ch]]
    return np.array(X, dtype=np.int64), np.array(Y, dtype=np.int64), len(stoi)


def minibatches(words: list[str], steps: int, bs: int) -> tuple[tuple[np.ndarray, np.ndarray], int]:
    """Every step's batch, (steps, bs, BLOCK) and (steps, bs), drawn once; and the vocabulary."""
    X, Y, V = contexts(words)
    idx = np.random.default_rng(BATCH_SEED).integers(0, len(Y), size=(steps, bs))
    return (X[idx], Y[idx]), V


def init(V: int) -> list[np.ndarray]:
    """C, then (W, gamma, beta) per level, then the output layer's W and b (float32). Linear
    weights are N(0, 1)/√fan_in as in the lecture, the last one scaled by 0.1."""
    g = np.random.default_rng(SEED)
    P = [g.standard_normal((V, EMB)).astype(F32)]
    fan = 2 * EMB
    for _ in range(LEVELS):
        P.append((g.standard_normal((fan, HID)) / np.sqrt(fan)).astype(F32))
        P += [np.ones(HID, F32), np.zeros(HID, F32)]
        fan = 2 * HID
    P.append((g.standard_normal((HID, V)) / np.sqrt(HID) * 0.1).astype(F32))
    P.append(np.zeros(V, F32))
    return P


def loss(torch: Any, F: Any, P: list[Any], X: Any, Y: Any) -> Any:
    """The loss as the lecture writes it; ``torch`` is PyTorch or symgrad, ``F`` its
    ``nn.functional``."""
    x = P[0][X]  # (B, BLOCK, EMB)
    for level in range(LEVELS):
        W, gamma, beta = P[1 + 3 * level : 4 + 3 * level]
        B, T, C = x.shape  # FlattenConsecutive(2)
        x = x.view(B, T // 2, C * 2)
        if x.shape[1] == 1:
            x = x.squeeze(1)
        x = x @ W  # Linear(bias=False)
        dim = 0 if x.ndim == 2 else (0, 1)  # BatchNorm1d over all dims but the channels
        mean = x.mean(dim, keepdim=True)
        var = x.var(dim, keepdim=True)
        x = torch.tanh(gamma * (x - mean) / torch.sqrt(var + EPS) + beta)
    return F.cross_entropy(x @ P[-2] + P[-1], Y)


def numpy_step(P: list[np.ndarray], X: np.ndarray, Y: np.ndarray, lr: float) -> float:
    """One SGD step with the backward pass written by hand; updates ``P`` in place."""
    x = P[0][X]
    saved = []
    for level in range(LEVELS):
        W, gamma, beta = P[1 + 3 * level : 4 + 3 * level]
        B, T, C = x.shape
        x = x.reshape(B, T // 2, C * 2)
        if x.shape[1] == 1:
            x = x[:, 0]
        hpre = x @ W
        axes = (0,) if hpre.ndim == 2 else (0, 1)
        m = F32(np.prod([hpre.shape[a] for a in axes]))
        diff = hpre - hpre.mean(axes, keepdims=True)
        var_inv = ((diff**2).sum(axes, keepdims=True) / (m - 1) + F32(EPS)) ** F32(-0.5)
        raw = diff * var_inv
        h = np.tanh(gamma * raw + beta)
        saved.append((x, raw, var_inv, h, axes, m))
        x = h
    logits = x @ P[-2] + P[-1]
    mx = logits.max(1, keepdims=True)
    e = np.exp(logits - mx)
    s = e.sum(1, keepdims=True)
    ar = np.arange(len(Y))
    value = float((np.log(s[:, 0]) + mx[:, 0] - logits[ar, Y]).mean())
    dlogits = e / s
    dlogits[ar, Y] -= 1
    dlogits *= F32(1.0 / len(Y))
    grads: list[np.ndarray] = [np.empty(0)] * len(P)
    grads[-2], grads[-1] = x.T @ dlogits, dlogits.sum(0)
    dx = dlogits @ P[-2].T
    for level in reversed(range(LEVELS)):
        xin, raw, var_inv, h, axes, m = saved[level]
        W, gamma = P[1 + 3 * level], P[2 + 3 * level]
        dact = (1 - h * h) * dx
        draw = gamma * dact
        dhpre = (var_inv / m) * (
            m * draw
            - draw.sum(axes, keepdims=True)
            - m / (m - 1) * raw * (draw * raw).sum(axes, keepdims=True)
        )
        x2, d2 = xin.reshape(-1, xin.shape[-1]), dhpre.reshape(-1, HID)
        grads[1 + 3 * level] = x2.T @ d2
        grads[2 + 3 * level] = (raw * dact).reshape(-1, HID).sum(0)
        grads[3 + 3 * level] = dact.reshape(-1, HID).sum(0)
        dx = (d2 @ W.T).reshape(X.shape[0], -1, xin.shape[-1] // 2)
    dC = np.zeros_like(P[0])
    np.add.at(dC, X.ravel(), dx.reshape(-1, EMB))
    grads[0] = dC
    for w, g in zip(P, grads, strict=True):
        w -= F32(lr) * g
    return value
