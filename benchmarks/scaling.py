"""Speed as models grow: one training step (forward + backward + SGD update, float32) of models
from the lecture's size to ~40 GFLOP per step, and the 1024³ matrix product, at one thread and
at two, with symgrad's C backend beside hand-written NumPy (OpenBLAS), PyTorch eager and JAX jit
(each when importable; a missing peer's rows are left out).

Configurations: the makemore MLP (embedding, hidden, batch) at (10,200,32), (10,200,256),
(32,512,256), (64,1024,512), (64,2048,1024) (context 3, 27 characters, cross-entropy; random
contexts: the speed does not depend on the names) and a plain two-layer relu MLP, batch 256,
width 1024 and 4096 (squared error). Each thread count runs in its own subprocess with
``SYMGRAD_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS`` set (and
``torch.set_num_threads``), so every row of a table had the same cores. Times are medians of
interleaved repetitions; GFLOP/s counts the matrix products' multiply-adds (2 flops each);
"÷ best peer" is symgrad's time over the fastest other row of the same configuration.

    .venv/bin/python benchmarks/scaling.py [--threads 1,2] [--quick] [--no-peers]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

BLOCK, VOCAB, LR = 3, 27, 0.1
MAKEMORE = [(10, 200, 32), (10, 200, 256), (32, 512, 256), (64, 1024, 512), (64, 2048, 1024)]
WIDE = [(256, 1024), (256, 4096)]
Step = Callable[[], float]


# -- workloads: (name, flops per step, {row: step maker}) ---------------------------------------


def makemore_flops(e: int, h: int, b: int) -> float:
    return 2.0 * b * (BLOCK * e * h + h * VOCAB) * 3  # forward, and two products back each


def makemore(e: int, h: int, b: int, peers: dict[str, Any]) -> dict[str, Callable[[], Step]]:
    rng = np.random.default_rng(0)
    X = rng.integers(0, VOCAB, (b, BLOCK))
    Y = rng.integers(0, VOCAB, b)
    shapes = [(VOCAB, e), (BLOCK * e, h), (h,), (h, VOCAB), (VOCAB,)]
    P0 = [(rng.standard_normal(s) * 0.1).astype(np.float32) for s in shapes]
    ar = np.arange(b)

    def numpy_step() -> Step:
        C, W1, b1, W2, b2 = P = [p.copy() for p in P0]

        def step() -> float:
            emb = C[X].reshape(b, BLOCK * e)
            hh = np.tanh(emb @ W1 + b1)
            z = hh @ W2 + b2
            m = z.max(1, keepdims=True)
            ex = np.exp(z - m)
            s = ex.sum(1, keepdims=True)
            loss = (np.log(s[:, 0]) + m[:, 0] - z[ar, Y]).mean()
            dz = ex / s
            dz[ar, Y] -= 1
            dz *= np.float32(1.0 / b)
            dpre = (dz @ W2.T) * (1 - hh * hh)
            demb = (dpre @ W1.T).reshape(b * BLOCK, e)
            dC = np.zeros_like(C)
            np.add.at(dC, X.ravel(), demb)
            grads = (dC, emb.T @ dpre, dpre.sum(0), hh.T @ dz, dz.sum(0))
            for p, g in zip(P, grads, strict=True):
                p -= np.float32(LR) * g
            return float(loss)

        return step

    def symgrad_step() -> Step:
        import symgrad as sg

        params = [sg.Tensor(p.copy(), requires_grad=True) for p in P0]

        def loss(x: Any, y: Any) -> Any:
            C, W1, b1, W2, b2 = params
            hh = (C[x].reshape(x.shape[0], BLOCK * e) @ W1 + b1).tanh()
            return sg.cross_entropy(hh @ W2 + b2, y)

        opt = sg.optim.SGD(params, lr=LR)
        step = sg.compile_step(loss, X, Y, optimizer=opt, backend="c")
        return lambda: float(step(X, Y))

    rows = {"symgrad C": symgrad_step, "NumPy": numpy_step}
    torch = peers.get("torch")
    if torch is not None:

        def torch_step() -> Step:
            F = torch.nn.functional
            P = [torch.tensor(p, requires_grad=True) for p in P0]
            xt, yt = torch.from_numpy(X), torch.from_numpy(Y)

            def step() -> float:
                C, W1, b1, W2, b2 = P
                hh = torch.tanh(C[xt].view(-1, BLOCK * e) @ W1 + b1)
                loss = F.cross_entropy(hh @ W2 + b2, yt)
                for p in P:
                    p.grad = None
                loss.backward()
                with torch.no_grad():
                    for p in P:
                        p -= LR * p.grad
                return float(loss)

            return step

        rows["PyTorch eager"] = torch_step
    jax = peers.get("jax")
    if jax is not None:

        def jax_step() -> Step:
            jnp = jax.numpy

            def loss_fn(P: list[Any], x: Any, y: Any) -> Any:
                C, W1, b1, W2, b2 = P
                hh = jnp.tanh(C[x].reshape(-1, BLOCK * e) @ W1 + b1)
                logp = jax.nn.log_softmax(hh @ W2 + b2, axis=-1)
                return -jnp.take_along_axis(logp, y[:, None], axis=1).mean()

            def train(P: list[Any], x: Any, y: Any) -> tuple[list[Any], Any]:
                val, g = jax.value_and_grad(loss_fn)(P, x, y)
                return [p - LR * gp for p, gp in zip(P, g, strict=True)], val

            f = jax.jit(train)
            state = [[jnp.asarray(p) for p in P0]]
            xj, yj = jnp.asarray(X.astype(np.int32)), jnp.asarray(Y.astype(np.int32))

            def step() -> float:
                state[0], val = f(state[0], xj, yj)
                return float(val)

            return step

        rows["JAX jit"] = jax_step
    return rows


def wide_flops(b: int, w: int) -> float:
    return 2.0 * b * w * w * 5  # two products forward; dW2, dh, dW1 back


def wide(b: int, w: int, peers: dict[str, Any]) -> dict[str, Callable[[], Step]]:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((b, w)).astype(np.float32)
    t = rng.standard_normal((b, w)).astype(np.float32)
    s = np.float32(1 / np.sqrt(w))
    P0 = [(rng.standard_normal((w, w)) * s).astype(np.float32), np.zeros(w, np.float32)] * 2

    def numpy_step() -> Step:
        W1, b1, W2, b2 = P = [p.copy() for p in P0]

        def step() -> float:
            pre = x @ W1 + b1
            hh = np.maximum(pre, 0)
            d = hh @ W2 + b2 - t
            loss = float((d * d).mean())
            dy = d * np.float32(2.0 / d.size)
            dh = (dy @ W2.T) * (pre > 0)
            grads = (x.T @ dh, dh.sum(0), hh.T @ dy, dy.sum(0))
            for p, g in zip(P, grads, strict=True):
                p -= np.float32(LR) * g
            return loss

        return step

    def symgrad_step() -> Step:
        import symgrad as sg

        params = [sg.Tensor(p.copy(), requires_grad=True) for p in P0]

        def loss(xx: Any, tt: Any) -> Any:
            W1, b1, W2, b2 = params
            d = (xx @ W1 + b1).relu() @ W2 + b2 - tt
            return (d * d).mean()

        opt = sg.optim.SGD(params, lr=LR)
        step = sg.compile_step(loss, x, t, optimizer=opt, backend="c")
        return lambda: float(step(x, t))

    rows = {"symgrad C": symgrad_step, "NumPy": numpy_step}
    torch = peers.get("torch")
    if torch is not None:

        def torch_step() -> Step:
            P = [torch.tensor(p, requires_grad=True) for p in P0]
            xt, tt = torch.from_numpy(x), torch.from_numpy(t)

            def step() -> float:
                W1, b1, W2, b2 = P
                d = torch.relu(xt @ W1 + b1) @ W2 + b2 - tt
                loss = (d * d).mean()
                for p in P:
                    p.grad = None
                loss.backward()
                with torch.no_grad():
                    for p in P:
                        p -= LR * p.grad
                return float(loss)

            return step

        rows["PyTorch eager"] = torch_step
    jax = peers.get("jax")
    if jax is not None:

        def jax_step() -> Step:
            jnp = jax.numpy

            def loss_fn(P: list[Any], xx: Any, tt: Any) -> Any:
                W1, b1, W2, b2 = P
                d = jax.nn.relu(xx @ W1 + b1) @ W2 + b2 - tt
                return (d * d).mean()

            def train(P: list[Any], xx: Any, tt: Any) -> tuple[list[Any], Any]:
                val, g = jax.value_and_grad(loss_fn)(P, xx, tt)
                return [p - LR * gp for p, gp in zip(P, g, strict=True)], val

            f = jax.jit(train)
            state = [[jnp.asarray(p) for p in P0]]
            xj, tj = jnp.asarray(x), jnp.asarray(t)

            def step() -> float:
                state[0], val = f(state[0], xj, tj)
                return float(val)

            return step

        rows["JAX jit"] = jax_step
    return rows


def gemm(n: int, dtype: str, peers: dict[str, Any]) -> dict[str, Callable[[], Step]]:
    rng = np.random.default_rng(2)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    c = np.empty((n, n), dtype)

    def numpy_step() -> Step:
        return lambda: float(np.matmul(a, b, out=c)[0, 0])

    def symgrad_step() -> Step:
        import symgrad as sg

        f = sg.compile(lambda x, y: x @ y, sg.Spec((n, n), dtype), sg.Spec((n, n), dtype))
        return lambda: float(f(a, b)[0, 0])

    rows = {"symgrad C": symgrad_step, "NumPy": numpy_step}
    torch = peers.get("torch")
    if torch is not None:
        at, bt = torch.from_numpy(a), torch.from_numpy(b)
        rows["PyTorch eager"] = lambda: lambda: float((at @ bt)[0, 0])
    return rows


# -- one thread count, in a subprocess ------------------------------------------------------------


def measure(rows: dict[str, Callable[[], Step]], budget: float, reps: int) -> dict[str, Any]:
    """{row: median seconds per step, or an error text}: repetitions interleaved."""
    steps: dict[str, Step] = {}
    out: dict[str, Any] = {}
    for name, make in rows.items():
        try:
            steps[name] = make()
            steps[name]()  # warm: compile, caches
        except Exception as exc:  # a failing row is reported, never hidden
            out[name] = f"error: {type(exc).__name__}: {exc}"[:80]
    times: dict[str, list[float]] = {k: [] for k in steps}
    counts: dict[str, int] = {}
    for name, step in steps.items():  # steps per repetition: about budget / reps seconds
        t0 = time.perf_counter()
        step()
        counts[name] = max(1, min(200, int(budget / reps / max(time.perf_counter() - t0, 1e-6))))
    for _ in range(reps):
        for name, step in steps.items():
            t0 = time.perf_counter()
            for _ in range(counts[name]):
                step()
            times[name].append((time.perf_counter() - t0) / counts[name])
    out.update({k: statistics.median(v) for k, v in times.items()})
    return out


def worker(threads: int, quick: bool, no_peers: bool) -> None:
    peers: dict[str, Any] = {}
    if not no_peers:
        for mod in ("torch", "jax"):
            with contextlib.suppress(ImportError):
                peers[mod] = __import__(mod)
        if "torch" in peers:
            peers["torch"].set_num_threads(threads)
    budget, reps = (0.05, 1) if quick else (1.5, 5)
    configs: list[tuple[str, float, dict[str, Callable[[], Step]]]] = []
    n = 128 if quick else 1024
    for dt in ("float32", "float64"):
        configs.append((f"{n}³ product {dt}", 2.0 * n**3, gemm(n, dt, peers)))
    for e, h, b in MAKEMORE[:2] if quick else MAKEMORE:
        configs.append(
            (f"makemore MLP ({e},{h},{b})", makemore_flops(e, h, b), makemore(e, h, b, peers))
        )
    for b, w in [(8, 64)] if quick else WIDE:
        configs.append((f"2-layer MLP batch {b} width {w}", wide_flops(b, w), wide(b, w, peers)))
    results = []
    for name, flops, rows in configs:
        results.append({"config": name, "flops": flops, "times": measure(rows, budget, reps)})
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    print(json.dumps(results))


# -- the tables -------------------------------------------------------------------------------


def table(threads: int, results: list[dict[str, Any]]) -> str:
    rows = sorted({r for res in results for r in res["times"]}, key=_row_order)
    head = "| configuration | GFLOP/step | " + " | ".join(rows) + " | symgrad ÷ best peer |"
    lines = [f"### {threads} thread{'s' if threads > 1 else ''} (ms per step, GFLOP/s)", head]
    lines.append("|" + "---|" * (len(rows) + 3))
    for res in results:
        cells, ts = [], res["times"]
        for r in rows:
            t = ts.get(r)
            if isinstance(t, float):
                cells.append(f"{t * 1e3:.3g} ms ({res['flops'] / t / 1e9:.0f})")
            else:
                cells.append(t or "–")
        ours = ts.get("symgrad C")
        peer = [v for k, v in ts.items() if k != "symgrad C" and isinstance(v, float)]
        ratio = f"{ours / min(peer):.2f}" if isinstance(ours, float) and peer else "–"
        lines.append(
            f"| {res['config']} | {res['flops'] / 1e9:.3g} | {' | '.join(cells)} | {ratio} |"
        )
    return "\n".join(lines)


def _row_order(name: str) -> tuple[int, str]:
    order = [
        "symgrad C",
        "NumPy",
        "PyTorch eager",
        "JAX jit",
    ]
    return (order.index(name) if name in order else len(order), name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", default="1,2", help="thread counts, comma-separated")
    ap.add_argument("--quick", action="store_true", help="tiny sizes, one repetition")
    ap.add_argument("--no-peers", action="store_true", help="leave out PyTorch and JAX")
    ap.add_argument("--worker", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.quick, args.no_peers)
        return
    import platform

    print(
        f"# scaling: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"load {os.getloadavg()[0]:.1f}"
    )
    per_threads: dict[int, list[dict[str, Any]]] = {}
    for threads in (int(t) for t in args.threads.split(",")):
        env = dict(os.environ)
        for var in (
            "SYMGRAD_NUM_THREADS",
            "OPENBLAS_NUM_THREADS",
            "OMP_NUM_THREADS",
            "MKL_NUM_THREADS",
        ):
            env[var] = str(threads)
        cmd = [sys.executable, __file__, "--worker", str(threads)]
        cmd += ["--quick"] * args.quick + ["--no-peers"] * args.no_peers
        proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True, check=True)
        per_threads[threads] = json.loads(proc.stdout.strip().splitlines()[-1])
        print()
        print(table(threads, per_threads[threads]), flush=True)
    if 1 in per_threads and 2 in per_threads:
        print("\n### two threads ÷ one thread (rate)")
        for one, two in zip(per_threads[1], per_threads[2], strict=True):
            parts = []
            for row, t1 in one["times"].items():
                t2 = two["times"].get(row)
                if isinstance(t1, float) and isinstance(t2, float):
                    parts.append(f"{row} {t1 / t2:.2f}×")
            print(f"- {one['config']}: " + ", ".join(parts))


if __name__ == "__main__":
    main()
