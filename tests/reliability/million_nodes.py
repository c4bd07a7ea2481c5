"""Scalar graphs of N nodes (micrograd style): trace, differentiate, compile, run -- each stage
timed, with the peak memory of the process.

    python -m tests.reliability.million_nodes [N] [--shape chain|mlp] [--backend numpy|c]

prints one line per stage and a JSON summary. ``N`` counts the nodes of the traced forward
graph (default 10**6); the joint forward+backward graph is about twice as large. Two shapes:

- ``chain``: ``acc = tanh(acc * c_i + b) * 0.5 + x`` with a distinct constant per link, so
  nothing merges and every stage walks a path N nodes deep (any recursion would hit Python's
  limit; the test runs it under a limit of 120 frames of headroom). The worst case for code
  size: no two statements can share a vector statement.
- ``mlp``: micrograd's ``MLP(32, [64, 64, 1])`` (6,337 ``Value`` parameters) on a batch of
  examples, one scalar graph per example, squared-error loss: the shape of real micrograd code.

The stages are those of ``symgrad.compile`` (trace, differentiate, optimise, schedule, generate
+ build + load), run one by one so that each is timed. Used by ``test_large_graph.py`` (small N)
and run by hand for the figures in docs/reliability.md.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import symgrad as sg
from symgrad import Spec

NODES_PER_LINK = 6  # mul, its constant c_i, add, tanh, mul by 0.5 (a shared constant), add
MLP_PARAMETERS = 6_337  # MLP(32, [64, 64, 1]): graph inputs shared by every example
MLP_NODES_PER_EXAMPLE = 12_620  # measured: the network and the squared error, per example


def chain(links: int) -> Callable[..., Any]:
    """The chain model of ``links`` links (about 6 graph nodes each)."""

    def f(x: Any, b: Any) -> Any:
        acc = x
        for i in range(links):
            acc = (acc * (1.0 + i * 1e-9) + b).tanh() * 0.5 + x
        return acc

    return f


def chain_reference(links: int, x: float, b: float) -> tuple[float, float, float]:
    """The chain's value and gradients (d/dx, d/db) by a hand-written forward-mode loop."""
    acc, dx, db = x, 1.0, 0.0
    for i in range(links):
        c = 1.0 + i * 1e-9
        t = np.tanh(acc * c + b)
        d = 1.0 - t * t
        acc, dx, db = t * 0.5 + x, 0.5 * d * c * dx + 1.0, 0.5 * d * (c * db + 1.0)
    return float(acc), float(dx), float(db)


def peak_rss_mib() -> float:
    """The peak resident set size of this process so far (MiB)."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / (1024 * 1024) if sys.platform == "darwin" else kib / 1024


def _model(shape: str, nodes: int) -> tuple[Callable[..., Any], list[Spec], list[Any], Any]:
    """(function, specs, wrt, model-specific data) for a graph of about ``nodes`` nodes."""
    if shape == "chain":
        links = max(1, nodes // NODES_PER_LINK)
        return chain(links), [Spec(()), Spec(())], [0, 1], links
    random.seed(0)
    mlp = sg.nn.MLP(32, [64, 64, 1])
    batch = max(1, round((nodes - MLP_PARAMETERS) / MLP_NODES_PER_EXAMPLE))

    def loss(x: Any, y: Any) -> Any:
        total = sg.Value(0.0)
        for k in range(batch):
            total = total + (mlp(list(x[k])) - y[k]) ** 2
        return total

    return loss, [Spec((batch, 32)), Spec((batch,))], list(mlp.parameters()), (mlp, batch)


def run(
    nodes: int,
    backend: str = "numpy",
    log: Any = None,
    shape: str = "chain",
    forward_only: bool = False,
) -> dict[str, Any]:
    """Trace, differentiate, optimise, schedule, build and run a graph of about ``nodes``
    nodes; the figures of each stage, and the largest relative error of the results."""
    from symgrad.autodiff.joint import split
    from symgrad.codegen.schedule import schedule
    from symgrad.lower.jit import wrt_positions
    from symgrad.passes import optimize
    from symgrad.runtime import modules

    say = log or (lambda *a: None)
    out: dict[str, Any] = {"shape": shape, "backend": backend}
    out["recursion_limit"] = sys.getrecursionlimit()
    fn, specs, wrt, extra = _model(shape, nodes)
    clock = [time.perf_counter()]

    def stage(name: str, what: str = "") -> None:
        now = time.perf_counter()
        out[f"{name}_s"] = round(now - clock[0], 2)
        out[f"{name}_peak_rss_mib"] = round(peak_rss_mib())
        say(f"{name}: {now - clock[0]:.1f} s{what}, peak RSS so far {peak_rss_mib():.0f} MiB")
        clock[0] = time.perf_counter()

    graph = sg.trace(fn, *specs)
    out["nodes"] = len(graph)
    stage("trace", f" ({len(graph)} nodes)")
    if forward_only:
        return _forward_only(graph, shape, extra, out, stage)
    joint = split(graph, wrt_positions(wrt, graph), n_diff=1)
    out["joint_nodes"] = len(joint.graph)
    stage("differentiate", f" ({len(joint.graph)} nodes, forward and backward)")
    mapping: dict[int, Any] = {}
    joint = joint.remap(optimize(joint.graph, 1, mapping), mapping)
    stage("optimise")
    prog = schedule(graph, joint)
    stage("schedule")
    try:
        built = modules.build(prog, backend, joint.graph)
    except (MemoryError, sg.SymgradError) as e:  # (the loader reports a MemoryError as such)
        out["failed"] = f"generate+build+load: {type(e).__name__}: {str(e)[-200:]}"
        stage("generate+build+load", f" -- failed: {out['failed']}")
        return out
    stage("generate+build+load")
    args: list[Any]
    want: list[float]
    if shape == "chain":
        args = [np.float64(0.3), np.float64(0.1)]
        want = list(chain_reference(extra, 0.3, 0.1))
    else:
        _, batch = extra
        rng = np.random.default_rng(0)
        args = [rng.standard_normal((batch, 32)), rng.standard_normal(batch)]
    arrays = [*args, *(t._data for t in graph.captures)]
    try:
        results, saved = built.module.forward(*arrays)
        grads = built.module.backward(np.ones(()), saved, *arrays)
    except Exception as e:  # e.g. a bug in the generated code: record it with the figures
        out["failed"] = f"first call: {type(e).__name__}: {e}"
        stage("first call", f" -- failed: {out['failed']}")
        return out
    stage("first call")
    got = [results[0], *grads]
    if shape != "chain":  # the reference interpreter on the joint graph
        from symgrad.ir.graph import evaluate

        env = dict(zip(joint.graph.inputs, [*arrays, np.ones(())], strict=True))
        ref = evaluate(list(joint.graph.outputs), env)
        assert isinstance(ref, list)
        want = [float(r) for r in ref]
    out["max_rel_error"] = max(
        abs(float(g) - w) / max(abs(w), 1e-12) for g, w in zip(got, want, strict=True)
    )
    out["peak_rss_mib"] = round(peak_rss_mib())
    say(f"value and gradients within {out['max_rel_error']:.1e} of the reference")
    return out


def _forward_only(
    graph: Any, shape: str, extra: Any, out: dict[str, Any], stage: Callable[..., None]
) -> dict[str, Any]:
    """Optimise, schedule, build and run the forward pass only, checked by the interpreter."""
    from symgrad.codegen.schedule import schedule
    from symgrad.ir.graph import evaluate
    from symgrad.passes import optimize
    from symgrad.runtime import modules

    opt = optimize(graph, 1)
    stage("optimise")
    prog = schedule(opt)
    stage("schedule")
    built = modules.build(prog, out["backend"], opt)
    stage("generate+build+load")
    if shape == "chain":
        args: list[Any] = [np.float64(0.3), np.float64(0.1)]
    else:
        rng = np.random.default_rng(0)
        args = [rng.standard_normal((extra[1], 32)), rng.standard_normal(extra[1])]
    arrays = [*args, *(t._data for t in graph.captures)]
    results, _ = built.module.forward(*arrays)
    stage("first call")
    (want,) = evaluate(list(graph.outputs), dict(zip(graph.inputs, arrays, strict=True)))
    out["max_rel_error"] = abs(float(results[0]) - float(want)) / max(abs(float(want)), 1e-12)
    out["peak_rss_mib"] = round(peak_rss_mib())
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("nodes", nargs="?", type=int, default=10**6)
    ap.add_argument("--shape", default="chain", choices=["chain", "mlp"])
    ap.add_argument("--backend", default="numpy", choices=["numpy", "c"])
    ap.add_argument("--forward-only", action="store_true", help="no gradients")
    ap.add_argument(
        "--memory-limit-gib",
        type=float,
        default=0,
        help="cap the address space (RLIMIT_AS): a MemoryError instead of the OOM killer",
    )
    args = ap.parse_args(argv)
    if args.memory_limit_gib:
        cap = int(args.memory_limit_gib * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    say = lambda s: print(s, flush=True)  # noqa: E731
    result = run(args.nodes, args.backend, say, args.shape, args.forward_only)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
