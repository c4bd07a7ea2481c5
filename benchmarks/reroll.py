"""Re-rolling (symgrad/passes/reroll.py) on micrograd's moons step: compile time, lines of
generated code and step time of the step compiled from micrograd's ``Value`` code — in the
README's column form (Value weights times column Tensors) and in micrograd's own per-example
loop — against the tensor form of the same step (``moons.py``'s ``compile_step`` row), all from
the same initial weights. ``--baseline`` adds the same Value code at ``opt=1`` (not re-rolled:
the scalar graph, compacted), which takes seconds to compile. ``--phases`` adds where each
compile's time goes: the trace, re-rolling, packing the parameters, the VJP, the passes and the
schedule, rendering the code and (C) the compiler.

    .venv/bin/python benchmarks/reroll.py [--steps 200] [--backend c|numpy|both] [--baseline]
                                          [--phases]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from _common import c_compiler, machine_line, private_cache
from moons import ALPHA, init, micrograd_model, moons

import symgrad as sg
import symgrad.lower.driver as driver
import symgrad.runtime.cc as cc
import symgrad.runtime.modules as modules
import symgrad.train.step as train_step

# (module, function, phase): the compile's steps, timed by wrapping them (see phases())
PHASES = [
    (train_step, "trace_with_state", "trace"),
    (train_step, "reroll", "reroll"),
    (train_step, "_packed", "pack"),
    (train_step, "vjp", "vjp"),
    (driver, "optimize", "passes"),
    (driver, "schedule", "schedule"),
    (modules, "load", "codegen+cc"),
    (cc, "build_extension", "cc"),
]


@contextlib.contextmanager
def phases(spent: dict[str, float]) -> Iterator[None]:
    """Add the seconds spent in each phase of PHASES to ``spent`` while active."""
    saved = [(mod, name, getattr(mod, name)) for mod, name, _ in PHASES]

    def timed(f: Callable[..., Any], label: str) -> Callable[..., Any]:
        @functools.wraps(f)
        def g(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            try:
                return f(*a, **k)
            finally:
                spent[label] = spent.get(label, 0.0) + time.perf_counter() - t

        return g

    for (mod, name, label), (_, _, f) in zip(PHASES, saved, strict=True):
        setattr(mod, name, timed(f, label))
    try:
        yield
    finally:
        for mod, name, f in saved:
            setattr(mod, name, f)


def tensor_form() -> tuple[Callable[..., Any], list[Any]]:
    params = [sg.Tensor(p.copy(), requires_grad=True) for p in init()]

    def loss(X: Any, y: Any) -> Any:
        W1, b1, W2, b2, W3, b3 = params
        h1 = (X @ W1.T + b1).relu()
        h2 = (h1 @ W2.T + b2).relu()
        s = (h2 @ W3.T).reshape(X.shape[0]) + b3
        reg = sum(((p * p).sum() for p in params), 0.0)
        return (1.0 - y * s).relu().mean() + ALPHA * reg

    return loss, params


def column_form() -> tuple[Callable[..., Any], list[Any]]:
    model = micrograd_model()
    params = model.parameters()

    def loss(X: Any, y: Any) -> Any:
        scores = model([X[:, 0], X[:, 1]])
        return (1 + -y * scores).relu().mean() + ALPHA * sum(p * p for p in params)

    return loss, params


def per_example_form() -> tuple[Callable[..., Any], list[Any]]:
    model = micrograd_model()
    params = model.parameters()

    def loss(X: Any, y: Any) -> Any:
        inputs = [[X[i, 0], X[i, 1]] for i in range(X.shape[0])]
        scores = list(map(model, inputs))
        losses = [(1 + -y[i] * si).relu() for i, si in enumerate(scores)]
        return sum(losses) * (1.0 / len(losses)) + ALPHA * sum(p * p for p in params)

    return loss, params


FORMS = {
    "tensor form": tensor_form,
    "micrograd, column form": column_form,
    "micrograd, per-example loop": per_example_form,
}


def compiled(form: str, backend: str, opt: int) -> dict[str, Any]:
    """The form's step compiled: the step, its compile time and phases, its source's lines."""
    X, y = moons()
    loss, params = FORMS[form]()
    sgd = sg.optim.SGD(params, lr=0.1)
    spent: dict[str, float] = {}
    t0 = time.perf_counter()
    with phases(spent):
        step = sg.compile_step(loss, X, y, optimizer=sgd, backend=backend, opt=opt)
    compile_s = time.perf_counter() - t0
    return {"step": step, "compile": compile_s, "lines": step.source().count("\n"), "phases": spent}


def time_steps(rows: list[dict[str, Any]], steps: int) -> None:
    """Median step time and last loss of each row, the rows' steps interleaved (a burst of load
    on the shared machine then slows every row alike)."""
    X, y = moons()
    times: list[list[float]] = [[] for _ in rows]
    for _ in range(steps):
        for r, ts in zip(rows, times, strict=True):
            t = time.perf_counter()
            r["loss"] = r["step"](X, y)
            ts.append(time.perf_counter() - t)
    for r, ts in zip(rows, times, strict=True):
        r["median"] = statistics.median(ts) * 1e6


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=200, help="timed steps per row, interleaved (200)")
    ap.add_argument("--backend", choices=("c", "numpy", "both"), default="both")
    ap.add_argument("--baseline", action="store_true", help="also the Value code at opt=1")
    ap.add_argument("--phases", action="store_true", help="also where each compile's time goes")
    ap.add_argument("--no-peers", action="store_true", help="(accepted: there are no peer rows)")
    args = ap.parse_args(argv)
    private_cache()
    print(f"machine: {machine_line()}")
    backends = ["c", "numpy"] if args.backend == "both" else [args.backend]
    if c_compiler() is None:
        backends = [b for b in backends if b != "c"]
    print("| row | backend | opt | compile (s) | lines | median step (µs) | × tensor form | loss |")
    print("|---|---|---|---|---|---|---|---|")
    timings: list[tuple[str, str, int, dict[str, float]]] = []
    for backend in backends:
        rows = []
        for form in FORMS:
            for opt in (2, 1) if args.baseline and form != "tensor form" else (2,):
                rows.append({"form": form, "opt": opt, **compiled(form, backend, opt)})
        time_steps(rows, args.steps)
        ref = rows[0]["median"]
        for r in rows:
            print(
                f"| {r['form']} | {backend} | {r['opt']} | {r['compile']:.2f} | {r['lines']:,} | "
                f"{r['median']:.1f} | {r['median'] / ref:.2f} | {r['loss']:.12f} |"
            )
            timings.append((r["form"], backend, r["opt"], r["phases"]))
        sys.stdout.flush()
    if args.phases:
        labels = [label for _, _, label in PHASES]
        print("\nwhere the compile goes (s; codegen+cc includes cc, the C compiler):\n")
        print("| row | backend | opt | " + " | ".join(labels) + " |")
        print("|---|---|---|" + "---|" * len(labels))
        for form, backend, opt, spent in timings:
            cells = " | ".join(f"{spent.get(label, 0.0):.3f}" for label in labels)
            print(f"| {form} | {backend} | {opt} | {cells} |")


if __name__ == "__main__":
    main()
