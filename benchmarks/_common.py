"""Shared helpers of the benchmark scripts: data, machine line, timing and the table.

Not a benchmark itself (``make bench`` skips files starting with ``_``). Every script builds a
list of :class:`Row`: ``make()`` does the one-off work (tracing, compiling; timed as *setup*)
and returns ``start``; ``start()`` loads the shared initial weights (not timed) and returns
``step(k) -> loss``, one training step (forward + backward + update) on batch ``k``.
:func:`run_rows` runs every row from the same initial weights, repetitions interleaved so that
machine noise hits the rows alike, and :func:`print_table` prints the Markdown table: setup,
first step (includes lazy work), median step, spread (interquartile range), ratio to the
reference (the first row) and the loss after the last step, plus the largest difference of the
loss trajectory from the reference's (every row computes the same thing).

A failing row is never hidden: its error is printed in the table (and its traceback on stderr)
and the other rows go on.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import importlib
import importlib.metadata
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import numpy as np

#: One training step on batch ``k``; returns the loss as a Python float.
Step = Callable[[int], float]
#: Loads the initial weights and returns the step function.
Start = Callable[[], Step]

#: The makemore names list, beside the repository checkout (``../shared/data/names.txt``).
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "names.txt"


@dataclass
class Row:
    """One line of the table. ``steps``/``reps`` override the script's (e.g. for a slow row)."""

    name: str
    make: Callable[[], Start]
    steps: int | None = None
    reps: int | None = None


@dataclass
class Result:
    name: str
    steps: int
    setup_s: float | None = None
    first_s: float | None = None
    times: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)  # the trajectory of repetition 0
    error: str | None = None


# -- data ---------------------------------------------------------------------------------------


def load_words(path: Path | None) -> list[str]:
    """The names, one per line; exits with a clear message when the file is missing."""
    path = DEFAULT_DATA if path is None else path
    if not path.is_file():
        raise SystemExit(
            f"names file not found: {path}\n"
            "pass --data PATH (a text file of names, one per line, e.g. makemore's names.txt; "
            "the `names` package on PyPI has such lists)"
        )
    words = [w for w in path.read_text().splitlines() if w]
    if not words:
        raise SystemExit(f"{path} has no names in it")
    return words


def vocabulary(words: Sequence[str]) -> dict[str, int]:
    """makemore's ``stoi``: '.' is 0, the other characters 1.. in sorted order."""
    chars = sorted(set("".join(words)))
    return {".": 0} | {ch: i + 1 for i, ch in enumerate(chars)}


# -- environment --------------------------------------------------------------------------------


def private_cache() -> None:
    """Compile into a fresh cache directory (removed at exit) unless ``$SYMGRAD_CACHE_DIR`` is
    set, so the setup column shows a cold compile and the user's cache is left alone."""
    if os.environ.get("SYMGRAD_CACHE_DIR"):
        return
    root = tempfile.mkdtemp(prefix="symgrad-bench-")
    os.environ["SYMGRAD_CACHE_DIR"] = root
    atexit.register(shutil.rmtree, root, True)


def optional_module(name: str) -> ModuleType | None:
    """``torch`` / ``jax`` when installed (the ``bench`` extra), else None."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def c_compiler() -> str | None:
    """The C compiler's ``--version`` line when symgrad's C backend can use it, else None."""
    from symgrad.runtime.cc import NoCompilerError, compiler_available, find_compiler

    if not compiler_available():
        return None
    try:
        return find_compiler().version
    except NoCompilerError:
        return None


def symgrad_rows(make: Callable[[str, int], Start], levels: Sequence[int]) -> list[Row]:
    """``symgrad compile_step, <backend>, opt=<level>`` rows: C (when a compiler works) and
    NumPy at each level; ``make(backend, level)`` builds a row's step."""
    backends = ["c", "numpy"] if c_compiler() is not None else ["numpy"]
    return [
        Row(f"symgrad compile_step, {b}, opt={lv}", lambda b=b, lv=lv: make(b, lv))  # type: ignore[misc]
        for b in backends
        for lv in levels
    ]


def peer_rows(
    no_peers: bool, makers: dict[str, tuple[str, Callable[[ModuleType], Start]]]
) -> tuple[list[Row], list[str]]:
    """Rows of the installed peer frameworks (``makers``: module name -> (row name, maker of
    the step from the module)) and the names of those present, for the machine line."""
    rows: list[Row] = []
    peers: list[str] = []
    for mod_name, (row_name, make) in [] if no_peers else list(makers.items()):
        mod = optional_module(mod_name)
        if mod is not None:
            peers.append(mod_name)
            rows.append(Row(row_name, lambda make=make, mod=mod: make(mod)))  # type: ignore[misc]
    return rows, peers


def reps_text(steps: int, reps: int) -> str:
    """``100 steps × 3 reps`` for table titles."""
    return f"{steps} steps × {reps} rep{'s' if reps > 1 else ''}"


def cpu_model() -> str:
    """The CPU's model name and SIMD extensions, from /proc/cpuinfo where there is one."""
    info: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    model = info.get("model name") or platform.processor() or "unknown CPU"
    have = set(info.get("flags", "").split())
    simd = "/".join(f for f in ("avx2", "fma", "avx512f") if f in have)
    return f"{model} ({simd})" if simd else model


def machine_line(peers: Sequence[str] = ()) -> str:
    """CPU, cores, Python, NumPy, the C compiler and the installed peer frameworks."""
    parts = [
        f"{cpu_model()}, {os.cpu_count()} cores",
        f"Python {platform.python_version()}",
        f"NumPy {np.__version__}",
        c_compiler() or "no C compiler",
    ]
    for name in peers:
        mod = sys.modules.get(name) or optional_module(name)
        if mod is not None:
            extra = ""
            if name == "torch":
                extra = f" ({mod.get_num_threads()} threads)"
            version = getattr(mod, "__version__", None) or importlib.metadata.version(name)
            parts.append(f"{name} {version}{extra}")
    return "machine: " + "; ".join(parts)


# -- command line -------------------------------------------------------------------------------


def add_common_args(ap: argparse.ArgumentParser, steps: int, reps: int) -> None:
    ap.add_argument("--steps", type=int, default=steps, help=f"steps per run (default {steps})")
    ap.add_argument(
        "--reps", type=int, default=reps, help=f"runs per row, interleaved (default {reps})"
    )
    ap.add_argument("--quick", action="store_true", help="a smoke run: 3 steps, 1 repetition")
    ap.add_argument("--no-peers", action="store_true", help="leave out the PyTorch/JAX rows")


def apply_quick(args: argparse.Namespace) -> None:
    if args.quick:
        args.steps, args.reps = min(args.steps, 3), 1
    if args.steps < 1 or args.reps < 1:
        raise SystemExit("--steps and --reps must be at least 1")


# -- running ------------------------------------------------------------------------------------


def _describe(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    text = f"{type(e).__name__}: {lines[0] if lines else ''}".strip()
    return text if len(text) <= 240 else text[:237] + "..."


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_rows(rows: Sequence[Row], steps: int, reps: int) -> list[Result]:
    """Set every row up (timed), then run ``reps`` rounds of ``steps`` steps each from the
    initial weights; a row's first step of round 0 is reported alone (it includes lazy work)."""
    results: list[Result] = []
    starts: list[Start | None] = []
    for row in rows:
        res = Result(row.name, row.steps or steps)
        results.append(res)
        t0 = time.perf_counter()
        try:
            starts.append(row.make())
            res.setup_s = time.perf_counter() - t0
            _log(f"[setup] {row.name}: {res.setup_s:.3f} s")
        except Exception as e:
            starts.append(None)
            res.error = _describe(e)
            traceback.print_exc()
            _log(f"[setup] {row.name}: FAILED: {res.error}")
    for r in range(max([reps] + [row.reps or 0 for row in rows])):
        for row, res, start in zip(rows, results, starts, strict=True):
            if start is None or res.error is not None or r >= (row.reps or reps):
                continue
            try:
                step = start()
                losses = []
                for k in range(res.steps):
                    t0 = time.perf_counter()
                    loss = step(k)
                    dt = time.perf_counter() - t0
                    if r == 0 and k == 0:
                        res.first_s = dt
                    else:
                        res.times.append(dt)
                    losses.append(loss)
                if r == 0:
                    res.losses = losses
                _log(f"[round {r}] {row.name}: last loss {losses[-1]:.9g}")
                # a row's cyclic garbage (micrograd's closures) is collected here, not while
                # the next row is being timed
                gc.collect()
            except Exception as e:
                res.error = _describe(e)
                traceback.print_exc()
                _log(f"[round {r}] {row.name}: FAILED: {res.error}")
    return results


# -- the table ----------------------------------------------------------------------------------


def fmt_time(s: float | None) -> str:
    """Three significant digits in s, ms or µs."""
    if s is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if s >= scale or unit == "µs":
            v = s / scale
            digits = 0 if v >= 100 else 1 if v >= 10 else 2
            return f"{v:.{digits}f} {unit}"
    raise AssertionError("unreachable")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _spread(times: Sequence[float]) -> str:
    if len(times) < 2:
        return "-"
    q = statistics.quantiles(times, n=4, method="inclusive")
    return f"{fmt_time(q[0])} – {fmt_time(q[2])}"


def _median(res: Result) -> float | None:
    if res.times:
        return statistics.median(res.times)
    return res.first_s  # a single step: the first one is all there is


#: An extra column of :func:`print_table`: its header and the cell of each row's result.
Column = tuple[str, Callable[[Result], str]]


def ratio_column(results: Sequence[Result], name: str, header: str) -> Column:
    """A ``× <row>`` column: each row's median step over the median of the row ``name`` ("-"
    when that row is missing or failed)."""
    base = next((r for r in results if r.name == name and r.error is None), None)
    base_med = _median(base) if base is not None else None

    def cell(res: Result) -> str:
        med = _median(res)
        return f"{med / base_med:.3g}" if med is not None and base_med else "-"

    return header, cell


def print_table(
    title: str, machine: str, results: Sequence[Result], columns: Sequence[Column] = ()
) -> None:
    """The Markdown table; the first row is the reference (ratio 1). ``columns`` are added on
    the right."""
    ref = results[0] if results and results[0].error is None else None
    ref_med = _median(ref) if ref is not None else None
    print(f"\n{machine}\n\n{title}\n")
    print(
        "| row | setup | first step | median step | spread (IQR) | × reference "
        "| loss after the last step | max abs Δ loss vs reference |"
        + "".join(f" {_cell(h)} |" for h, _ in columns)
    )
    print("|---|---|---|---|---|---|---|---|" + "---|" * len(columns))
    for res in results:
        name = _cell(res.name)
        if res.error is not None:
            where = "at setup" if res.setup_s is None else "while running"
            empty = " |" * len(columns)
            print(f"| {name} | FAILED {where}: {_cell(res.error)} | | | | | | |{empty}")
            continue
        med = _median(res)
        ratio = f"{med / ref_med:.3g}" if med is not None and ref_med else "-"
        delta = "-"
        if ref is not None and res is not ref and len(res.losses) == len(ref.losses):
            d = np.max(np.abs(np.subtract(res.losses, ref.losses)))
            delta = f"{d:.2g}"
        loss = f"{res.losses[-1]:.12g}" if res.losses else "-"
        extra = "".join(f" {_cell(fn(res))} |" for _, fn in columns)
        print(
            f"| {name} | {fmt_time(res.setup_s)} | {fmt_time(res.first_s)} | {fmt_time(med)} "
            f"| {_spread(res.times)} | {ratio} | {loss} | {delta} |{extra}"
        )
    print(
        "\nsetup: tracing + optimisation + code generation + C compiler (cold cache) or the "
        "framework's explicit compile; first step: the first call, with any lazy work; median "
        "and IQR over the later steps of every repetition; Δ loss: the whole loss trajectory "
        "of repetition 0 against the reference row's."
    )
