"""A program in the style of makemore part 4 ("becoming a backprop ninja"), written once against
a torch-like module and run with ``torch`` = PyTorch and ``torch`` = symgrad (only the import
differs): the forward pass one intermediate per line, ``loss.backward()`` with every
intermediate's gradient retained, then every gradient derived by hand -- with item assignment
(``dlogprobs[range(n), Yb] = -1.0 / n``, ``dlogits[range(n), Yb] -= 1``, ``dC[ix] += demb[k, j]``)
-- and checked with the lecture's ``cmp`` (issue 17)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import symgrad
import symgrad.nn.functional as sF

RNG = np.random.default_rng(42)
N_EMBD, N_HIDDEN, VOCAB, BLOCK, N = 10, 64, 27, 3, 32
INIT = {
    "C": RNG.standard_normal((VOCAB, N_EMBD)),
    "W1": RNG.standard_normal((N_EMBD * BLOCK, N_HIDDEN)) * (5 / 3) / (N_EMBD * BLOCK) ** 0.5,
    "b1": RNG.standard_normal(N_HIDDEN) * 0.1,
    "W2": RNG.standard_normal((N_HIDDEN, VOCAB)) * 0.1,
    "b2": RNG.standard_normal(VOCAB) * 0.1,
    "bngain": RNG.standard_normal((1, N_HIDDEN)) * 0.1 + 1.0,
    "bnbias": RNG.standard_normal((1, N_HIDDEN)) * 0.1,
}
XB = RNG.integers(0, VOCAB, (N, BLOCK))
YB = RNG.integers(0, VOCAB, N)


def run(torch: Any, F: Any) -> dict[str, Any]:
    """The lecture's exercise 1 (every intermediate's gradient by hand) and the compact forms
    of exercises 2 and 3, each compared with ``loss.backward()``'s by the lecture's ``cmp``."""
    n = N
    C, W1, b1, W2, b2, bngain, bnbias = (torch.tensor(INIT[k]) for k in INIT)
    parameters = [C, W1, b1, W2, b2, bngain, bnbias]
    for p in parameters:
        p.requires_grad = True
    Xb, Yb = torch.tensor(XB), torch.tensor(YB)

    emb = C[Xb]
    embcat = emb.view(emb.shape[0], -1)
    hprebn = embcat @ W1 + b1
    bnmeani = 1 / n * hprebn.sum(0, keepdim=True)
    bndiff = hprebn - bnmeani
    bndiff2 = bndiff**2
    bnvar = 1 / (n - 1) * (bndiff2).sum(0, keepdim=True)
    bnvar_inv = (bnvar + 1e-5) ** -0.5
    bnraw = bndiff * bnvar_inv
    hpreact = bngain * bnraw + bnbias
    h = torch.tanh(hpreact)
    logits = h @ W2 + b2
    logit_maxes = logits.max(1, keepdim=True).values
    norm_logits = logits - logit_maxes
    counts = norm_logits.exp()
    counts_sum = counts.sum(1, keepdims=True)
    counts_sum_inv = counts_sum**-1
    probs = counts * counts_sum_inv
    logprobs = probs.log()
    loss = -logprobs[range(n), Yb].mean()
    for p in parameters:
        p.grad = None
    for t in [
        logprobs,
        probs,
        counts,
        counts_sum,
        counts_sum_inv,
        norm_logits,
        logit_maxes,
        logits,
        h,
        hpreact,
        bnraw,
        bnvar_inv,
        bnvar,
        bndiff2,
        bndiff,
        hprebn,
        bnmeani,
        embcat,
        emb,
    ]:
        t.retain_grad()
    loss.backward()

    dlogprobs = torch.zeros_like(logprobs)
    dlogprobs[range(n), Yb] = -1.0 / n
    dprobs = (1.0 / probs) * dlogprobs
    dcounts_sum_inv = (counts * dprobs).sum(1, keepdim=True)
    dcounts = counts_sum_inv * dprobs
    dcounts_sum = (-(counts_sum**-2)) * dcounts_sum_inv
    dcounts += torch.ones_like(counts) * dcounts_sum
    dnorm_logits = counts * dcounts
    dlogits = dnorm_logits.clone()
    dlogit_maxes = (-dnorm_logits).sum(1, keepdim=True)
    dlogits += F.one_hot(logits.max(1).indices, num_classes=logits.shape[1]) * dlogit_maxes
    dh = dlogits @ W2.T
    dW2 = h.T @ dlogits
    db2 = dlogits.sum(0)
    dhpreact = (1.0 - h**2) * dh
    dbngain = (bnraw * dhpreact).sum(0, keepdim=True)
    dbnraw = bngain * dhpreact
    dbnbias = dhpreact.sum(0, keepdim=True)
    dbndiff = bnvar_inv * dbnraw
    dbnvar_inv = (bndiff * dbnraw).sum(0, keepdim=True)
    dbnvar = (-0.5 * (bnvar + 1e-5) ** -1.5) * dbnvar_inv
    dbndiff2 = (1.0 / (n - 1)) * torch.ones_like(bndiff2) * dbnvar
    dbndiff += (2 * bndiff) * dbndiff2
    dhprebn = dbndiff.clone()
    dbnmeani = (-dbndiff).sum(0)
    dhprebn += 1.0 / n * (torch.ones_like(hprebn) * dbnmeani)
    dembcat = dhprebn @ W1.T
    dW1 = embcat.T @ dhprebn
    db1 = dhprebn.sum(0)
    demb = dembcat.view(emb.shape)
    dC = torch.zeros_like(C)
    for k in range(Xb.shape[0]):
        for j in range(Xb.shape[1]):
            ix = Xb[k, j]
            dC[ix] += demb[k, j]

    # exercise 2 and 3: the compact forms
    dlogits2 = F.softmax(logits, 1)
    dlogits2[range(n), Yb] -= 1
    dlogits2 /= n
    dhprebn2 = (
        bngain
        * bnvar_inv
        / n
        * (n * dhpreact - dhpreact.sum(0) - n / (n - 1) * bnraw * (dhpreact * bnraw).sum(0))
    )
    loss_fast = F.cross_entropy(logits, Yb)

    def cmp(dt: Any, t: Any) -> tuple[bool, bool, float]:
        ex = torch.all(dt == t.grad).item()
        app = torch.allclose(dt, t.grad)
        maxdiff = (dt - t.grad).abs().max().item()
        return ex, app, maxdiff

    out = {"loss": loss.item(), "loss_fast": loss_fast.item()}
    rows = [
        ("logprobs", dlogprobs, logprobs),
        ("probs", dprobs, probs),
        ("counts", dcounts, counts),
        ("logits", dlogits, logits),
        ("h", dh, h),
        ("W2", dW2, W2),
        ("b2", db2, b2),
        ("hpreact", dhpreact, hpreact),
        ("bngain", dbngain, bngain),
        ("bnbias", dbnbias, bnbias),
        ("bnvar", dbnvar, bnvar),
        ("hprebn", dhprebn, hprebn),
        ("W1", dW1, W1),
        ("b1", db1, b1),
        ("C", dC, C),
        ("logits (exercise 2)", dlogits2, logits),
        ("hprebn (exercise 3)", dhprebn2, hprebn),
    ]
    for name, dt, t in rows:
        out[name] = cmp(dt, t)
        out["manual " + name] = np.asarray(dt.detach())
        out["grad " + name] = np.asarray(t.grad)
    return out


def _torch_names() -> tuple[Any, Any]:
    torch = pytest.importorskip("torch")
    import torch.nn.functional as tF

    return torch, tF


def test_the_manual_backprop_program_runs_with_symgrads_names() -> None:
    r = run(symgrad, sF)
    for name, got in r.items():
        if isinstance(got, tuple):  # cmp's (exact, approximate, maxdiff)
            assert got[1] and got[2] < 1e-15, (name, got)
    assert r["loss"] == pytest.approx(r["loss_fast"], rel=1e-12)


def test_the_manual_backprop_program_matches_pytorch() -> None:
    torch, tF = _torch_names()
    ours, theirs = run(symgrad, sF), run(torch, tF)
    assert ours["loss"] == pytest.approx(theirs["loss"], rel=1e-12)
    for key, want in theirs.items():
        if isinstance(want, np.ndarray):  # every gradient, by hand and by backward()
            np.testing.assert_allclose(ours[key], want, rtol=1e-9, atol=1e-12, err_msg=key)
