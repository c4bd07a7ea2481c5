"""makemore part 3: the MLP with batch normalisation, written with PyTorch's names
(``import symgrad as torch``). An embedding of the last 3 characters, a few
Linear(no bias) -> BatchNorm1d -> Tanh layers, cross-entropy. It trains eagerly
(``loss.backward()`` and ``p.data += -lr * p.grad``), then goes on with one compiled step
(``compile_step``, the running statistics carried as state), evaluates in eval mode,
gradchecks the loss on a small batch, exports the eval-mode net as a NumPy module and a C
library and checks that both give symgrad's outputs.

    python examples/batchnorm_makemore.py [--data names.txt] [--limit N] [--eager-steps 200]
                                          [--steps 10000] [--hidden 100] [--layers 2]
                                          [--out DIR] [--no-progress]
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import time
import warnings
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

STOI = {ch: i + 1 for i, ch in enumerate(ALPHABET)} | {".": 0}
ITOS = {i: ch for ch, i in STOI.items()}
BLOCK = 3
VOCAB = 27
DT = torch.float64  # float64 throughout: gradcheck and the export comparisons are exact


def build_dataset(words: list[str]) -> tuple[np.ndarray, np.ndarray]:
    X, Y = [], []
    for w in words:
        context = [0] * BLOCK
        for ch in w + ".":
            X.append(context)
            Y.append(STOI[ch])
            context = context[1:] + [STOI[ch]]
    return np.array(X, dtype=np.int64).reshape(-1, BLOCK), np.array(Y, dtype=np.int64)


class MLP(nn.Module):
    """Embedding, then ``layers`` x (Linear without bias -> BatchNorm1d -> Tanh), then a
    Linear to the 27 logits (its weights scaled down: a less confident start)."""

    def __init__(self, emb: int, hidden: int, layers: int, g: Any) -> None:
        super().__init__()
        self.C = nn.Embedding(VOCAB, emb, generator=g, dtype=DT)
        blocks: list[nn.Module] = [nn.Flatten()]
        fan_in = BLOCK * emb
        for _ in range(layers):
            lin = nn.Linear(fan_in, hidden, bias=False, generator=g, dtype=DT)
            with torch.no_grad():
                lin.weight *= 5 / 3 * 3**0.5  # Kaiming for tanh: U(-1/sqrt(n), ..) to gain 5/3
            blocks += [lin, nn.BatchNorm1d(hidden, dtype=DT), nn.Tanh()]
            fan_in = hidden
        self.body = nn.Sequential(*blocks)
        self.head = nn.Linear(hidden, VOCAB, generator=g, dtype=DT)
        with torch.no_grad():
            self.head.weight *= 0.1

    def forward(self, X: Any) -> Any:
        return self.head(self.body(self.C(X)))


def sample(logits_of: Any, n: int, g: Any) -> list[str]:
    out = []
    for _ in range(n):
        context, chars = [0] * BLOCK, []
        while len(chars) < 30:
            logits = torch.tensor(logits_of(np.array([context], dtype=np.int64)))
            probs = F.softmax(logits, dim=1)
            ix = torch.multinomial(probs, num_samples=1, generator=g).item()
            if ix == 0:
                break
            chars.append(ITOS[ix])
            context = context[1:] + [ix]
        out.append("".join(chars))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="a text file with one word per line (default: names package)")
    ap.add_argument("--limit", type=count, default=0, help="use only the first N words (0: all)")
    ap.add_argument("--eager-steps", type=count, default=200, help="eager steps (200)")
    ap.add_argument("--steps", type=count, default=10000, help="compiled steps (10000)")
    ap.add_argument("--batch", type=positive, default=32, help="minibatch size (32)")
    ap.add_argument("--emb", type=positive, default=10, help="embedding size (10)")
    ap.add_argument("--hidden", type=positive, default=100, help="units per layer (100)")
    ap.add_argument("--layers", type=positive, default=2, help="BatchNorm tanh layers (2)")
    ap.add_argument("--lr", type=float, default=0.1, help="learning rate, /10 for the last half")
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
    n1 = int(0.9 * len(words))
    Xtr, Ytr = build_dataset(words[:n1])
    Xdev, Ydev = build_dataset(words[n1:])
    print(f"{len(words)} words from {source}; examples: train {len(Xtr)}, dev {len(Xdev)}")

    g = torch.Generator().manual_seed(args.seed)
    model = MLP(args.emb, args.hidden, args.layers, g)
    params = model.parameters()
    print(
        f"{sum(p.numel() for p in params)} parameters in {len(params)} tensors; buffers: "
        f"{', '.join(name for name, _ in model.named_buffers())}"
    )

    def loss_fn(Xb: Any, Yb: Any) -> Any:
        return F.cross_entropy(model(Xb), Yb)

    total = args.eager_steps + args.steps

    def lr_at(k: int) -> float:
        return args.lr if k < total // 2 else args.lr / 10

    def batch() -> tuple[np.ndarray, np.ndarray]:
        ix = torch.randint(0, len(Xtr), (args.batch,), generator=g).numpy()
        return Xtr[ix], Ytr[ix]

    banner(f"(a) eager: {args.eager_steps} steps of loss.backward() and p.data += -lr * p.grad")
    eager: list[float] = []
    t0 = time.perf_counter()
    for k in progress(range(args.eager_steps), args.eager_steps, "eager", not args.no_progress):
        Xb, Yb = batch()
        loss = loss_fn(torch.tensor(Xb), torch.tensor(Yb))
        for p in params:
            p.grad = None
        loss.backward()
        for p in params:
            p.data += -lr_at(k) * p.grad
        eager.append(loss.item())
    dt = time.perf_counter() - t0
    if eager:
        print(
            f"eager: {dt:.1f} s ({dt / len(eager) * 1e3:.1f} ms per step); "
            f"loss {eager[0]:.4f} -> {np.mean(eager[-10:]):.4f} (mean of the last 10)"
        )

    banner(f"(b) compiled: {args.steps} steps of one compile_step (running statistics carried)")
    opt = torch.optim.SGD(params, lr=args.lr)
    spec = (torch.Spec((args.batch, BLOCK), "int64"), torch.Spec((args.batch,), "int64"))
    t0 = time.perf_counter()
    step = torch.compile_step(loss_fn, *spec, optimizer=opt, opt=2)
    print(
        f"compiled the step ({step.backend} backend) in {time.perf_counter() - t0:.2f} s; "
        f"it carries {len(step.buffers)} buffers"
    )
    compiled: list[float] = []
    t0 = time.perf_counter()
    it = progress(range(args.steps), args.steps, "compiled", not args.no_progress)
    for k in it:
        opt.lr = lr_at(args.eager_steps + k)
        compiled.append(step(*batch()))
        if (k + 1) % max(1, args.steps // 10) == 0:
            it.set_postfix_str(f"loss {compiled[-1]:.3f}")
    dt = time.perf_counter() - t0
    if compiled:
        print(
            f"compiled: {dt:.1f} s ({dt / len(compiled) * 1e6:.0f} us per step); "
            f"loss {compiled[0]:.4f} -> {np.mean(compiled[-100:]):.4f} (mean of the last 100)"
        )
    bn = model.body[2]
    print(f"first BatchNorm's running mean[:4]: {np.round(bn.running_mean.numpy()[:4], 4)}")

    banner("Evaluation (eval mode: BatchNorm uses its running statistics)")
    model.eval()
    evaluate = torch.compile(
        loss_fn, torch.Spec(("n", BLOCK), "int64"), torch.Spec(("n",), "int64")
    )
    train_loss, dev_loss = float(evaluate(Xtr, Ytr)), float(evaluate(Xdev, Ydev))
    with torch.no_grad():
        eager_dev = loss_fn(torch.tensor(Xdev), torch.tensor(Ydev)).item()
    print(f"eval: train {train_loss:.4f}, dev {dev_loss:.4f} (eager no_grad dev {eager_dev:.4f})")
    logits_of = torch.compile(model, torch.Spec(("n", BLOCK), "int64"))
    print("samples: " + ", ".join(sample(logits_of, 10, torch.Generator().manual_seed(args.seed))))

    banner("gradcheck of the training-mode loss on a batch of 8")
    model.train()
    with warnings.catch_warnings():  # gradcheck leaves the running statistics as they were,
        warnings.simplefilter("ignore")  # and warns that it does
        report = torch.gradcheck(loss_fn, Xtr[:8], Ytr[:8])
    print(report, end="")
    model.eval()

    banner("Export (eval mode): a NumPy module and a C library")
    ex = Xdev[:16]
    want = np.asarray(logits_of(ex))
    shutil.rmtree(out / "bn_makemore_np", ignore_errors=True)
    shutil.rmtree(out / "bn_makemore_c", ignore_errors=True)
    path = torch.export(
        model, out / "bn_makemore_np", torch.Spec(("n", BLOCK), "int64"), name="bn_makemore"
    )
    diff = float(np.abs(import_file(Path(path) / "bn_makemore.py").forward(ex) - want).max())
    print(f"NumPy module {path}: max difference from symgrad {diff:.1e}")
    cpath = torch.export(
        model,
        out / "bn_makemore_c",
        torch.Spec(("n", BLOCK), "int64"),
        backend="c",
        name="bn_makemore",
        examples=[ex],
    )
    print(f"C library {cpath}: {', '.join(sorted(p.name for p in Path(cpath).iterdir()))}")
    checked = make_check(Path(cpath))
    ok = report.ok and diff < 1e-12 and checked is not False
    print(
        f"\nbatchnorm makemore: dev loss {dev_loss:.4f}, train {train_loss:.4f}; gradcheck "
        f"{'ok' if report.ok else 'FAILED'}; NumPy export matches: {diff < 1e-12}; C export "
        f"self-test: {'passed' if checked else 'not run' if checked is None else 'FAILED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
