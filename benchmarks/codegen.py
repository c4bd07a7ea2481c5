"""Code-generation costs: cold compile of the moons MLP loss, a warm new process's time to its
first result, and the per-call overhead of a compiled function of 8 array arguments.

Prints a table (medians over repetitions) with the targets of the code-generation issue:
cold compile (trace -> vjp -> codegen -> cc) < 1 s; warm new process < 0.15 s beyond the
interpreter start and the NumPy import; per-call overhead <= 3 us for 8 arrays.

    .venv/bin/python benchmarks/codegen.py [--reps 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

MOONS = textwrap.dedent(
    """
    import numpy as np, symgrad as sg
    def loss(W1, b1, W2, b2, W3, b3, X, y):
        h1 = (X @ W1 + b1).relu()
        h2 = (h1 @ W2 + b2).relu()
        s = (h2 @ W3 + b3).reshape(X.shape[0])
        data = (1.0 - y * s).relu().mean()
        reg = sum(((p * p).sum() for p in (W1, b1, W2, b2, W3, b3)), 0.0)
        return data + 1e-4 * reg
    specs = [sg.Spec(s) for s in [(2, 16), (16,), (16, 16), (16,), (16, 1), (1,), ("n", 2), ("n",)]]
    rng = np.random.default_rng(1337)
    args = [rng.uniform(-1, 1, sp.shape if "n" not in sp.shape else (100,) + sp.shape[1:])
            for sp in specs]
    """
)


def run(code: str, env: dict[str, str]) -> float:
    """Wall time of ``python -c code`` in a new process (its output is discarded)."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=env, capture_output=True)
    return time.perf_counter() - t0


def cold_and_warm(backend: str, reps: int) -> tuple[float, float, float]:
    compile_code = MOONS + (
        "import time\nt0 = time.perf_counter()\n"
        f"f = sg.compile(loss, *specs, wrt=list(range(6)), backend={backend!r})\n"
        "out, grads = f(*args)\nprint(time.perf_counter() - t0)\n"
    )
    colds, warms, bases = [], [], []
    for _ in range(reps):
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, SYMGRAD_CACHE_DIR=cache)
            out = subprocess.run(
                [sys.executable, "-c", compile_code],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            colds.append(float(out.split()[-1]))
            warm_env = dict(env, CC="false")  # a warm process never runs the compiler
            warms.append(run(compile_code, warm_env))
            bases.append(run("import numpy", env))
    return statistics.median(colds), statistics.median(warms), statistics.median(bases)


def call_overhead(backend: str, reps: int) -> float:
    import numpy as np

    import symgrad as sg

    f = sg.compile(lambda a, b, c, d, e, g, h, i: a * 1.0, *[sg.Spec((1,))] * 8, backend=backend)
    arrays = [np.ones(1) for _ in range(8)]
    n = 20000
    best = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(n):
            f(*arrays)
        best.append((time.perf_counter() - t0) / n)
    return statistics.median(best)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--backends", default="numpy,c")
    args = ap.parse_args()
    from symgrad.runtime.cc import compiler_available

    rows = []
    for backend in args.backends.split(","):
        if backend == "c" and not compiler_available():
            print("no working C compiler: the C rows are skipped")
            continue
        cold, warm, base = cold_and_warm(backend, args.reps)
        per_call = call_overhead(backend, args.reps)
        rows.append((backend, cold, warm - base, per_call))
    print()
    print(
        "| backend | cold compile, moons loss (target < 1 s) | warm new process beyond "
        "python+numpy (target < 0.15 s) | per-call overhead, 8 arrays (target <= 3 us) |"
    )
    print("|---|---|---|---|")
    for backend, cold, warm, per_call in rows:
        print(f"| {backend} | {cold:.3f} s | {warm:.3f} s | {per_call * 1e6:.2f} us |")


if __name__ == "__main__":
    main()
