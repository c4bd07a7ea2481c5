"""The makemore bigram model (lecture 2), written exactly as in the lecture with the Tensor API,
against a hand-written NumPy float64 forward pass and analytic gradient."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import symgrad

N_WORDS = 500
REG = 0.01


@pytest.fixture(scope="module")
def bigrams(names_path):
    words = names_path.read_text().splitlines()[:N_WORDS]
    chars = sorted(set("".join(words)))
    assert chars == [chr(c) for c in range(ord("a"), ord("z") + 1)]
    stoi = {s: i + 1 for i, s in enumerate(chars)}
    stoi["."] = 0
    xs, ys = [], []
    for w in words:
        cs = [".", *w, "."]
        for ch1, ch2 in itertools.pairwise(cs):
            xs.append(stoi[ch1])
            ys.append(stoi[ch2])
    return np.array(xs), np.array(ys)


def _init_weights() -> np.ndarray:
    return np.random.default_rng(2147483647).standard_normal((27, 27))


def _reference(xs: np.ndarray, ys: np.ndarray, W: np.ndarray) -> tuple[float, np.ndarray]:
    """Forward pass and analytic gradient of the bigram loss, by hand, in float64."""
    n = len(xs)
    logits = W[xs]  # one_hot(xs) @ W picks rows
    counts = np.exp(logits)
    probs = counts / counts.sum(1, keepdims=True)
    loss = -np.log(probs[np.arange(n), ys]).mean() + REG * (W**2).mean()
    # d loss / d logits of a softmax + NLL is (probs - onehot(ys)) / n
    dlogits = probs.copy()
    dlogits[np.arange(n), ys] -= 1.0
    dlogits /= n
    dW = np.zeros_like(W)
    np.add.at(dW, xs, dlogits)  # xenc.T @ dlogits
    dW += REG * 2.0 * W / W.size
    return float(loss), dW


def _lecture_loss(xs, ys, W, xenc):
    n = len(xs)
    logits = xenc @ W  # log-counts
    counts = logits.exp()
    probs = counts / counts.sum(1, keepdims=True)
    loss = -probs[symgrad.arange(n), ys].log().mean() + REG * (W**2).mean()
    return loss


def test_bigram_forward_and_backward_float64(bigrams):
    xs, ys = bigrams
    assert len(xs) > 3000  # 500 names make a few thousand bigrams
    Wd = _init_weights()
    W = symgrad.Tensor(Wd, requires_grad=True)
    xenc = symgrad.one_hot(xs, 27)
    assert xenc.dtype == symgrad.FLOAT64
    assert xenc.shape == (len(xs), 27)
    loss = _lecture_loss(xs, ys, W, xenc)
    assert loss.shape == ()
    assert W.grad is None
    loss.backward()
    ref_loss, ref_grad = _reference(xs, ys, Wd)
    assert loss.item() == pytest.approx(ref_loss, rel=1e-9)
    assert isinstance(W.grad, np.ndarray)
    assert W.grad.dtype == np.float64
    np.testing.assert_allclose(W.grad, ref_grad, rtol=1e-9, atol=1e-12)


def test_bigram_gradient_descent_lowers_the_loss(bigrams):
    xs, ys = bigrams
    W = symgrad.Tensor(_init_weights(), requires_grad=True)
    xenc = symgrad.one_hot(xs, 27)
    losses = []
    for _ in range(5):
        loss = _lecture_loss(xs, ys, W, xenc)
        losses.append(loss.item())
        W.grad = None
        loss.backward()
        W.data = W.data - 50 * W.grad  # the lecture's SGD step
    assert all(b < a for a, b in itertools.pairwise(losses)), losses
    ref_loss, _ = _reference(xs, ys, W.data)  # the forward pass sees the updated weights
    assert _lecture_loss(xs, ys, W, xenc).item() == pytest.approx(ref_loss, rel=1e-9)


@pytest.mark.parametrize("spelling", ["one_hot_dtype", "float"])
def test_bigram_float32_stays_float32(bigrams, spelling):
    xs, ys = bigrams
    Wd = _init_weights()
    W = symgrad.Tensor(Wd.astype(np.float32), requires_grad=True)
    if spelling == "one_hot_dtype":
        xenc = symgrad.one_hot(xs, 27, dtype="float32")
    else:
        xenc = symgrad.one_hot(xs, 27).float()
    assert xenc.dtype == symgrad.FLOAT32
    assert xenc.data.dtype == np.float32
    loss = _lecture_loss(xs, ys, W, xenc)
    assert loss.dtype == symgrad.FLOAT32
    assert loss.data.dtype == np.float32
    loss.backward()
    assert W.grad.dtype == np.float32
    ref_loss, ref_grad = _reference(xs, ys, Wd.astype(np.float32).astype(np.float64))
    assert loss.item() == pytest.approx(ref_loss, rel=1e-5)
    np.testing.assert_allclose(W.grad, ref_grad, rtol=1e-3, atol=1e-6)
