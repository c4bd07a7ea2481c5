"""The symgrad showcase run by `make demo`: every example in turn, at its default sizes (each
under a minute), then a summary with how long each took.

    python examples/showcase.py [--quick] [--only NAME ...] [--out DIR] [--data names.txt]

--quick runs every example at small sizes (seconds each), as the tests do.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections.abc import Callable

from _common import banner

import symgrad as sg

# (module, title, extra argv at --quick)
EXAMPLES: list[tuple[str, str, list[str]]] = [
    (
        "micrograd_lecture",
        "micrograd's lecture: expressions, the neuron drawn, its backward code",
        [],
    ),
    ("micrograd_checks", "micrograd's test expressions, against micrograd's numbers", []),
    ("custom_op", "new ops from SymPy expressions; a wrong derivative caught", ["--steps", "200"]),
    (
        "micrograd_moons",
        "micrograd's moons demo: eager and compiled training, decision boundary",
        ["--n", "40", "--steps", "30", "--eager-n", "4", "--eager-steps", "1"],
    ),
    (
        "bigram",
        "makemore's bigram net with the Tensor API; export",
        ["--steps", "20", "--limit", "2000"],
    ),
    (
        "mlp_makemore",
        "makemore's MLP: minibatches, train/dev split, loss curve, export to C",
        ["--steps", "300", "--hidden", "32", "--limit", "1000"],
    ),
    (
        "batchnorm_makemore",
        "makemore part 3: BatchNorm MLP with PyTorch's names, eager and compiled; export",
        ["--limit", "1000", "--eager-steps", "10", "--steps", "300", "--hidden", "32"],
    ),
    (
        "backprop_ninja",
        "makemore part 4: the generated backward pass beside the one derived by hand",
        ["--limit", "1000", "--steps", "50"],
    ),
    (
        "tiny_gpt",
        "a tiny GPT: causal self-attention, eager and compiled, gradcheck, export, samples",
        ["--limit", "500", "--eager-steps", "2", "--steps", "100", "--embd", "16", "--heads", "2"],
    ),
]
MAKEMORE = {"bigram", "mlp_makemore", "batchnorm_makemore", "tiny_gpt"}
TAKES_DATA = MAKEMORE | {"backprop_ninja"}
TAKES_OUT = {"micrograd_lecture", "micrograd_moons", "backprop_ninja"} | MAKEMORE
TAKES_PROGRESS = {"micrograd_moons"} | MAKEMORE


def micrograd_checks(argv: list[str]) -> int:
    """micrograd's own tests (test_engine.py), with the values PyTorch gives."""
    del argv
    x = sg.Value(-4.0)
    z = 2 * x + 2 + x
    q = z.relu() + z * x
    h = (z * z).relu()
    y = h + q + q * x
    y.backward()
    print(f"sanity_check: y = {y.data}, dy/dx = {x.grad}   (PyTorch: -20.0, 46.0)")
    ok = (y.data, x.grad) == (-20.0, 46.0)

    a, b = sg.Value(-4.0), sg.Value(2.0)
    c = a + b
    d = a * b + b**3
    c += c + 1
    c += 1 + c + (-a)
    d += d * 2 + (b + a).relu()
    d += 3 * d + (b - a).relu()
    e = c - d
    f = e**2
    g = f / 2.0
    g += 10.0 / f
    g.backward()
    print(f"more_ops: g = {g.data!r}, dg/da = {a.grad!r}, dg/db = {b.grad!r}")
    print("          (PyTorch: 24.70408163265306, 138.83381924198252, 645.5772594752187)")
    expected = (24.70408163265306, 138.83381924198252, 645.5772594752187)
    ok = ok and all(
        abs(u - v) < 1e-6 for u, v in zip((g.data, a.grad, b.grad), expected, strict=True)
    )
    return 0 if ok else 1


def runner(name: str) -> Callable[[list[str]], int]:
    if name == "micrograd_checks":
        return micrograd_checks
    main: Callable[[list[str]], int] = importlib.import_module(name).main
    return main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes: seconds per example")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="run only these examples")
    ap.add_argument("--out", help="output directory (default: examples/out)")
    ap.add_argument("--data", help="names file for the makemore examples (default: names package)")
    args = ap.parse_args(argv)
    known = [name for name, _, _ in EXAMPLES]
    for name in args.only or []:
        if name not in known:
            ap.error(f"--only: no example {name!r}; expected one of {', '.join(known)}")

    results: list[tuple[str, int, float]] = []
    for name, title, quick in EXAMPLES:
        if args.only and name not in args.only:
            continue
        banner(f"### {name}: {title}")
        argv_ex = list(quick) if args.quick else []
        if args.out is not None and name in TAKES_OUT:
            argv_ex += ["--out", args.out]
        if args.data is not None and name in TAKES_DATA:
            argv_ex += ["--data", args.data]
        if args.quick and name in TAKES_PROGRESS:
            argv_ex.append("--no-progress")
        t0 = time.perf_counter()
        code = runner(name)(argv_ex)
        results.append((name, code, time.perf_counter() - t0))

    banner("showcase summary")
    for name, code, dt in results:
        print(f"  {name:<20} {'ok' if code == 0 else 'FAILED':<7} {dt:6.1f} s")
    return 0 if all(code == 0 for _, code, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
