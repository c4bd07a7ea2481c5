"""A tiny GPT in the style of "Let's build GPT", written with PyTorch's names
(``import symgrad as torch``): token and position embeddings, transformer blocks of multi-head
causal self-attention (a ``tril`` mask through ``masked_fill``) and a ReLU MLP, each with
LayerNorm first and a residual around it, Dropout, and a LayerNorm and Linear to the logits;
trained on the characters of names joined by "." (the makemore word list). It trains eagerly
with ``loss.backward()`` and AdamW, then on through one compiled step (``compile_step``: the
dropout masks differ every step), gradchecks the loss, exports the eval-mode model as a NumPy
module and a C library, checks both against symgrad, and samples names.

    python examples/tiny_gpt.py [--data names.txt] [--limit N] [--eager-steps 20]
                                [--steps 1500] [--embd 32] [--heads 4] [--layers 1]
                                [--block 8] [--out DIR] [--no-progress]
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import (
    ALPHABET,
    banner,
    count,
    import_file,
    load_words,
    make_check,
    out_dir,
    positive,
    progress,
)

import symgrad as torch
import symgrad.nn.functional as F
from symgrad import nn

CHARS = "." + ALPHABET  # "." separates the names
STOI = {ch: i for i, ch in enumerate(CHARS)}
VOCAB = len(CHARS)
DT = torch.float64  # float64 throughout: gradcheck and the export comparisons are exact


class Head(nn.Module):
    """One head of causal self-attention."""

    def __init__(self, n_embd: int, head_size: int, block: int, dropout: float, g: Any) -> None:
        super().__init__()
        self.key = nn.Linear(n_embd, head_size, bias=False, generator=g, dtype=DT)
        self.query = nn.Linear(n_embd, head_size, bias=False, generator=g, dtype=DT)
        self.value = nn.Linear(n_embd, head_size, bias=False, generator=g, dtype=DT)
        self.register_buffer("tril", torch.tril(torch.ones(block, block, dtype=DT)))
        self.dropout = nn.Dropout(dropout, generator=g)

    def forward(self, x: Any) -> Any:
        T = x.shape[1]
        k, q = self.key(x), self.query(x)  # (B, T, hs)
        wei = q @ k.transpose(-2, -1) * k.shape[-1] ** -0.5  # (B, T, T)
        wei = wei.masked_fill(self.tril[:T, :T] == 0, float("-inf"))
        wei = self.dropout(F.softmax(wei, dim=-1))
        return wei @ self.value(x)


class MultiHeadAttention(nn.Module):
    def __init__(self, n_embd: int, n_head: int, block: int, dropout: float, g: Any) -> None:
        super().__init__()
        size = n_embd // n_head
        self.heads = nn.ModuleList([Head(n_embd, size, block, dropout, g) for _ in range(n_head)])
        self.proj = nn.Linear(n_embd, n_embd, generator=g, dtype=DT)
        self.dropout = nn.Dropout(dropout, generator=g)

    def forward(self, x: Any) -> Any:
        out = torch.cat([h(x) for h in self.heads], dim=-1)
        return self.dropout(self.proj(out))


class Block(nn.Module):
    """Communication (attention) then computation (MLP), each ``x + f(ln(x))``."""

    def __init__(self, n_embd: int, n_head: int, block: int, dropout: float, g: Any) -> None:
        super().__init__()
        self.sa = MultiHeadAttention(n_embd, n_head, block, dropout, g)
        self.ffwd = nn.Sequential(
            nn.Linear(n_embd, 4 * n_embd, generator=g, dtype=DT),
            nn.ReLU(),
            nn.Linear(4 * n_embd, n_embd, generator=g, dtype=DT),
            nn.Dropout(dropout, generator=g),
        )
        self.ln1 = nn.LayerNorm(n_embd, dtype=DT)
        self.ln2 = nn.LayerNorm(n_embd, dtype=DT)

    def forward(self, x: Any) -> Any:
        x = x + self.sa(self.ln1(x))
        return x + self.ffwd(self.ln2(x))


class GPT(nn.Module):
    def __init__(
        self, n_embd: int, n_head: int, n_layer: int, block: int, dropout: float, g: Any
    ) -> None:
        super().__init__()
        self.block = block
        self.token_embedding_table = nn.Embedding(VOCAB, n_embd, generator=g, dtype=DT)
        self.position_embedding_table = nn.Embedding(block, n_embd, generator=g, dtype=DT)
        self.blocks = nn.Sequential(
            *[Block(n_embd, n_head, block, dropout, g) for _ in range(n_layer)]
        )
        self.ln_f = nn.LayerNorm(n_embd, dtype=DT)
        self.lm_head = nn.Linear(n_embd, VOCAB, generator=g, dtype=DT)

    def forward(self, idx: Any) -> Any:
        T = idx.shape[1]
        tok = self.token_embedding_table(idx)  # (B, T, C)
        pos = self.position_embedding_table(torch.arange(T))  # (T, C)
        return self.lm_head(self.ln_f(self.blocks(tok + pos)))  # (B, T, vocab)

    def loss(self, idx: Any, targets: Any) -> Any:
        logits = self(idx)
        C = logits.shape[-1]
        return F.cross_entropy(logits.view(-1, C), targets.view(-1))

    def generate(self, g: Any, max_chars: int = 30) -> str:
        """One name: from a "." until the next "." (eagerly, under no_grad)."""
        idx = torch.zeros((1, 1), dtype=torch.long)
        chars = []
        with torch.no_grad():
            while len(chars) < max_chars:
                logits = self(idx[:, -self.block :])[:, -1, :]
                probs = F.softmax(logits, dim=-1)
                nxt = torch.multinomial(probs, num_samples=1, generator=g)
                if nxt.item() == 0:
                    break
                chars.append(CHARS[nxt.item()])
                idx = torch.cat([idx, nxt], dim=1)
        return "".join(chars)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="a text file with one word per line (default: names package)")
    ap.add_argument("--limit", type=count, default=0, help="use only the first N words (0: all)")
    ap.add_argument("--eager-steps", type=count, default=20, help="eager steps (20)")
    ap.add_argument("--steps", type=count, default=1500, help="compiled steps (1500)")
    ap.add_argument("--batch", type=positive, default=16, help="sequences per step (16)")
    ap.add_argument("--block", type=positive, default=8, help="context length (8)")
    ap.add_argument("--embd", type=positive, default=32, help="embedding size (32)")
    ap.add_argument("--heads", type=positive, default=4, help="attention heads (4)")
    ap.add_argument("--layers", type=positive, default=1, help="transformer blocks (1)")
    ap.add_argument("--dropout", type=float, default=0.1, help="dropout probability (0.1)")
    ap.add_argument("--lr", type=float, default=3e-3, help="AdamW learning rate (3e-3)")
    ap.add_argument("--seed", type=int, default=1337, help="weights, batches, dropout, samples")
    ap.add_argument("--out", help="output directory (default: examples/out)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    if args.embd % args.heads:
        ap.error(f"--embd {args.embd} is not a multiple of --heads {args.heads}")
    out = out_dir(args.out)

    words, source = load_words(args.data)
    if args.limit:
        words = words[: args.limit]
    random.seed(42)
    random.shuffle(words)
    text = "." + ".".join(words) + "."
    data = np.array([STOI[c] for c in text], dtype=np.int64)
    n = int(0.9 * len(data))
    train_data, val_data = data[:n], data[n:]
    print(f"{len(words)} words from {source}; {len(data)} characters (90% train)")

    g = torch.Generator().manual_seed(args.seed)
    model = GPT(args.embd, args.heads, args.layers, args.block, args.dropout, g)
    params = model.parameters()
    print(
        f"GPT: {args.layers} blocks of {args.heads} heads, n_embd {args.embd}, "
        f"context {args.block}; {sum(p.numel() for p in params)} parameters"
    )

    def get_batch(split: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ix = torch.randint(0, len(split) - args.block, (args.batch,), generator=g).numpy()
        x = np.stack([split[i : i + args.block] for i in ix])
        y = np.stack([split[i + 1 : i + args.block + 1] for i in ix])
        return x, y

    optimizer = torch.optim.AdamW(params, lr=args.lr)
    banner(f"(a) eager: {args.eager_steps} steps of loss.backward() and AdamW")
    eager: list[float] = []
    t0 = time.perf_counter()
    for _ in progress(range(args.eager_steps), args.eager_steps, "eager", not args.no_progress):
        xb, yb = get_batch(train_data)
        loss = model.loss(torch.tensor(xb), torch.tensor(yb))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        eager.append(loss.item())
    dt = time.perf_counter() - t0
    if eager:
        print(
            f"eager: {dt:.1f} s ({dt / len(eager) * 1e3:.0f} ms per step); "
            f"loss {eager[0]:.4f} -> {eager[-1]:.4f}"
        )

    banner(f"(b) compiled: {args.steps} steps of one compile_step (new dropout masks each step)")
    spec = torch.Spec((args.batch, args.block), "int64")
    t0 = time.perf_counter()
    step = torch.compile_step(model.loss, spec, spec, optimizer=optimizer, opt=2)
    print(f"compiled the step ({step.backend} backend) in {time.perf_counter() - t0:.2f} s")
    compiled: list[float] = []
    t0 = time.perf_counter()
    it = progress(range(args.steps), args.steps, "compiled", not args.no_progress)
    for k in it:
        compiled.append(step(*get_batch(train_data)))
        if (k + 1) % max(1, args.steps // 10) == 0:
            it.set_postfix_str(f"loss {compiled[-1]:.3f}")
    dt = time.perf_counter() - t0
    if compiled:
        print(
            f"compiled: {dt:.1f} s ({dt / len(compiled) * 1e3:.2f} ms per step); "
            f"loss {compiled[0]:.4f} -> {np.mean(compiled[-50:]):.4f} (mean of the last 50)"
        )

    banner("Evaluation (eval mode: no dropout)")
    model.eval()
    bspec = torch.Spec(("n", args.block), "int64")
    # concrete sizes: the loss's view(-1, C) of an (n, T, C) tensor needs n * T, a size
    # computed from a symbolic dim, which a shape cannot hold (see the README)
    espec = torch.Spec((200, args.block), "int64")
    evaluate = torch.compile(model.loss, espec, espec)
    eg = torch.Generator().manual_seed(0)
    losses = {}
    for name, split in (("train", train_data), ("val", val_data)):
        starts = torch.randint(0, len(split) - args.block, (200,), generator=eg).numpy()
        x = np.stack([split[i : i + args.block] for i in starts])
        y = np.stack([split[i + 1 : i + args.block + 1] for i in starts])
        losses[name] = float(evaluate(x, y))
    print(
        f"loss: train {losses['train']:.4f}, val {losses['val']:.4f} (uniform: {np.log(VOCAB):.4f})"
    )

    banner("gradcheck of the loss (eval mode) on 2 sequences, for 6 parameter tensors")
    xb, yb = get_batch(train_data)
    t0 = time.perf_counter()
    head = model.blocks[0].sa.heads[0]
    wrt = [
        model.token_embedding_table.weight,
        model.position_embedding_table.weight,
        head.query.weight,
        head.key.weight,
        model.blocks[0].ln2.weight,
        model.lm_head.weight,
    ]
    report = torch.gradcheck(model.loss, xb[:2], yb[:2], wrt=wrt, backend="numpy")
    worst = max(c.max_rel_err for c in report.checks)
    print(
        f"{str(report).splitlines()[0]} (worst "
        f"relative error {worst:.1e}, {time.perf_counter() - t0:.1f} s)"
    )
    # (the masked positions are ties of the mask and of softmax's max: reported by gradcheck
    # as non-differentiable points, which do not count as failures)

    banner("Export (eval mode): a NumPy module and a C library")
    ex = xb[:4]
    t0 = time.perf_counter()
    logits_of = torch.compile(model, bspec)
    want = np.asarray(logits_of(ex))
    shutil.rmtree(out / "tiny_gpt_np", ignore_errors=True)
    shutil.rmtree(out / "tiny_gpt_c", ignore_errors=True)
    path = Path(torch.export(model, out / "tiny_gpt_np", bspec, name="tiny_gpt"))
    diff = float(np.abs(import_file(path / "tiny_gpt.py").forward(ex) - want).max())
    print(f"NumPy module {path}: max difference from symgrad {diff:.1e}")
    cpath = Path(
        torch.export(model, out / "tiny_gpt_c", bspec, backend="c", name="tiny_gpt", examples=[ex])
    )
    print(f"(exported in {time.perf_counter() - t0:.1f} s)")
    print(f"C library {cpath}: {', '.join(sorted(p.name for p in cpath.iterdir()))}")
    checked = make_check(cpath)

    banner("Sampling 10 names (eagerly, fixed seed)")
    sg_ = torch.Generator().manual_seed(args.seed)
    names = [model.generate(sg_) for _ in range(10)]
    print("  " + ", ".join(names))
    ok = report.ok and diff < 1e-12 and checked is not False
    print(
        f"\ntiny gpt: loss {compiled[0] if compiled else float('nan'):.4f} -> val "
        f"{losses['val']:.4f}; gradcheck {'ok' if report.ok else 'FAILED'}; NumPy export "
        f"matches: {diff < 1e-12}; C export self-test: "
        f"{'passed' if checked else 'not run' if checked is None else 'FAILED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
