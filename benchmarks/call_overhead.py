"""Per-call overhead of the generated C extension module for a function of 8 array arguments.

The function does almost no work (8 arrays of 2 elements), so the time per call is the cost of
the binding: argument parsing (METH_FASTCALL), buffer acquisition and dtype/shape checks,
allocating the results with ``numpy.empty``, the kernel call and packing the result tuples.
Prints a table of medians (over repetitions of timed loops) next to reference points: a Python
call with 8 arguments, ``numpy.empty``, and the NumPy backend's module. Target: <= 3 us for the
C ``forward`` of 8 arrays.

    .venv/bin/python benchmarks/call_overhead.py [--reps 7] [--number 20000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import timeit
from collections.abc import Callable
from typing import Any

import numpy as np


def loss(a, b, c, d, e, f, g, h):  # type: ignore[no-untyped-def]
    return (a * b + c * d + e * f + g * h).sum()


def per_call_us(fn: Callable[[], Any], number: int, reps: int) -> float:
    times = timeit.repeat(fn, number=number, repeat=reps)
    return statistics.median(times) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--number", type=int, default=20000)
    args = parser.parse_args()
    os.environ.setdefault("SYMGRAD_CACHE_DIR", tempfile.mkdtemp(prefix="symgrad-bench-"))

    import symgrad as sg
    from symgrad.autodiff.joint import split
    from symgrad.codegen.schedule import schedule
    from symgrad.runtime import modules

    specs = [sg.Spec((2,)) for _ in range(8)]
    graph = sg.trace(loss, *specs)
    fwd_prog = schedule(graph)
    joint = split(graph, list(range(8)))
    prog = schedule(graph, joint)
    c_fwd = modules.build(fwd_prog, "c", graph).module
    c_mod = modules.build(prog, "c", joint.graph).module
    np_mod = modules.build(prog, "numpy", joint.graph).module
    compiled = sg.compile(loss, *specs, backend="c")

    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(2) for _ in range(8)]
    seed = np.ones(())
    _, saved = c_mod.forward(*arrays)
    _, np_saved = np_mod.forward(*arrays)

    def py_call(*xs: Any) -> None:
        return None

    rows: list[tuple[str, Callable[[], Any]]] = [
        ("Python call, 8 arguments (reference)", lambda: py_call(*arrays)),
        ("numpy.empty((2,), 'float64') (reference)", lambda: np.empty((2,), "float64")),
        ("C forward, no backward pass (8 arrays)", lambda: c_fwd.forward(*arrays)),
        ("C forward, differentiated (8 arrays -> 1 + 0 saved)", lambda: c_mod.forward(*arrays)),
        ("C backward (1 + 0 saved + 8 -> 8 grads)", lambda: c_mod.backward(seed, saved, *arrays)),
        ("NumPy module forward (reference)", lambda: np_mod.forward(*arrays)),
        ("NumPy module backward (reference)", lambda: np_mod.backward(seed, np_saved, *arrays)),
        ("symgrad.compile(backend='c') call (validation in Python)", lambda: compiled(*arrays)),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"{'call':<{width}}  us/call")
    print(f"{'-' * width}  -------")
    measured = []
    for name, fn in rows:
        measured.append(per_call_us(fn, args.number, args.reps))
        print(f"{name:<{width}}  {measured[-1]:7.2f}")
    target = measured[2]
    verdict = "meets" if target <= 3.0 else "MISSES"
    print(f"\nC forward of 8 arrays: {target:.2f} us per call ({verdict} the <= 3 us target)")


if __name__ == "__main__":
    main()
