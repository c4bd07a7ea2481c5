"""Programs in the style of the Zero-to-Hero lectures, written once against a ``torch``-like
module and run with ``torch`` = PyTorch and ``torch`` = symgrad (only the import differs): the
losses and gradients agree eagerly, and through ``compile_step`` (issue 17, item 1)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import symgrad
import symgrad.nn.functional as sF
from symgrad.optim import SGD

RNG = np.random.default_rng(5)
V, BLOCK, EMB, HID, N = 11, 3, 4, 16, 24
XS = RNG.integers(0, V, size=(N, BLOCK))
YS = RNG.integers(0, V, size=N)
W0 = {
    "C": RNG.standard_normal((V, EMB)),
    "W1": RNG.standard_normal((BLOCK * EMB, HID)) * 0.3,
    "b1": RNG.standard_normal(HID) * 0.1,
    "W2": RNG.standard_normal((HID, V)) * 0.1,
    "b2": np.zeros(V),
    "gain": np.ones(HID),
    "bias": np.zeros(HID),
}


def mlp_loss(torch: Any, F: Any, p: dict[str, Any], X: Any, Y: Any) -> Any:
    """makemore part 3: embedding, a batch-normalised tanh layer, cross-entropy."""
    emb = p["C"][X]  # (N, BLOCK, EMB)
    h_pre = emb.view(emb.shape[0], -1) @ p["W1"] + p["b1"]
    mean = h_pre.mean(0, keepdim=True)
    var = h_pre.var(0, keepdim=True, unbiased=True)
    h = torch.tanh(p["gain"] * (h_pre - mean) / torch.sqrt(var + 1e-5) + p["bias"])
    logits = h @ p["W2"] + p["b2"]
    return F.cross_entropy(logits, Y)


def attention_loss(torch: Any, F: Any, p: dict[str, Any], X: Any, Y: Any) -> Any:
    """One causal self-attention head over the embeddings (the GPT lecture's Head)."""
    emb = p["C"][X]  # (N, T, EMB)
    _, T, C = emb.shape
    tril = torch.tril(torch.ones(BLOCK, BLOCK, dtype=torch.float64))
    wei = emb @ emb.transpose(-2, -1) * C**-0.5
    wei = wei.masked_fill(tril[:T, :T] == 0, float("-inf"))
    wei = F.softmax(wei, dim=-1)
    out = (wei @ emb).sum(1)  # (N, EMB)
    logits = out @ p["W1"][:EMB, :V]
    return F.cross_entropy(logits, Y) + logits.std(dim=1).mean() * 0.1


def _torch_run(loss_fn: Any) -> tuple[float, dict[str, np.ndarray]]:
    torch = pytest.importorskip("torch")
    p = {k: torch.tensor(v, requires_grad=True) for k, v in W0.items()}
    loss = loss_fn(torch, torch.nn.functional, p, torch.tensor(XS), torch.tensor(YS))
    loss.backward()
    return loss.item(), {k: v.grad.numpy() if v.grad is not None else None for k, v in p.items()}


def _params() -> dict[str, Any]:
    return {k: symgrad.tensor(v, requires_grad=True) for k, v in W0.items()}


@pytest.mark.parametrize("loss_fn", [mlp_loss, attention_loss])
def test_the_same_program_matches_pytorch_eagerly(loss_fn: Any) -> None:
    want, grads = _torch_run(loss_fn)
    p = _params()
    loss = loss_fn(symgrad, sF, p, symgrad.tensor(XS), symgrad.tensor(YS))
    loss.backward()
    assert loss.item() == pytest.approx(want, rel=1e-12)
    for k, g in grads.items():
        if g is not None:
            np.testing.assert_allclose(p[k].grad, g, rtol=1e-9, atol=1e-12, err_msg=k)


@pytest.mark.parametrize(("loss_fn", "used"), [(mlp_loss, list(W0)), (attention_loss, ["C", "W1"])])
def test_the_same_program_trains_through_compile_step_like_pytorch(
    loss_fn: Any, used: list[str]
) -> None:
    torch = pytest.importorskip("torch")
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in W0.items()}
    topt = torch.optim.SGD([tp[k] for k in used], lr=0.1)
    p = _params()
    step = symgrad.compile_step(
        lambda X, Y: loss_fn(symgrad, sF, p, X, Y),
        XS,
        YS,
        optimizer=SGD([p[k] for k in used], lr=0.1),
        backend="numpy",
    )
    for _ in range(3):
        topt.zero_grad()
        want = loss_fn(torch, torch.nn.functional, tp, torch.tensor(XS), torch.tensor(YS))
        want.backward()
        topt.step()
        got = step(XS, YS)
        assert got == pytest.approx(want.item(), rel=1e-10)
    for k in W0:
        np.testing.assert_allclose(p[k].data, tp[k].detach().numpy(), rtol=1e-9, atol=1e-12)


def test_sampling_code_runs_with_pytorch_names() -> None:
    """The sampling loop of makemore: argmax picks, .item() of elements, .tolist()."""
    p = _params()
    context = [0] * BLOCK
    out = []
    for _ in range(5):
        emb = p["C"][symgrad.tensor([context])]
        h = symgrad.tanh(emb.view(1, -1) @ p["W1"] + p["b1"])
        probs = sF.softmax(h @ p["W2"] + p["b2"], dim=1)
        ix = probs.argmax(dim=1).item()
        assert isinstance(ix, int)
        context = context[1:] + [ix]
        out.append(ix)
    assert len(out) == 5 and all(0 <= i < V for i in out)
    assert probs[0].tolist() == pytest.approx(probs.tolist()[0])
