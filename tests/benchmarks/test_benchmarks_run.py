"""The benchmark scripts (``benchmarks/*.py``) run end to end at tiny sizes, print their table,
and every symgrad row computes the same loss as the hand-written NumPy reference row.

Each script runs in a subprocess without the PyTorch/JAX rows (``--no-peers``), on the session's
private symgrad cache. The C rows are expected exactly when symgrad finds a working C compiler
(the scripts leave them out otherwise). float32 workloads: rtol 1e-4 after 2 steps.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from symgrad.runtime.cc import compiler_available

REPO_ROOT = Path(__file__).resolve().parents[2]
BENCH = REPO_ROOT / "benchmarks"
RTOL = 1e-4

# script -> (arguments, the suffixes of its symgrad rows after the backend)
CASES: dict[str, tuple[list[str], list[str]]] = {
    "bigram": (["--n", "2000", "--steps", "2"], [", opt=1", ", opt=2"]),
    "mlp": (["--steps", "2"], [", opt=1", ", opt=2"]),
    "moons": (["--steps", "2", "--eager-steps", "2", "--compiled-value-steps", "0"], [""]),
}


def run_script(name: str, args: list[str]) -> str:
    proc = subprocess.run(
        [sys.executable, str(BENCH / f"{name}.py"), *args, "--no-peers"],
        capture_output=True,
        text=True,
        cwd=str(REPO_ROOT),
        env=dict(os.environ),
        timeout=300,
    )
    assert proc.returncode == 0, f"{name}.py exited with {proc.returncode}:\n{proc.stderr}"
    return proc.stdout


def parse_table(out: str) -> dict[str, dict[str, str]]:
    """{row name: {column header: cell}} of the Markdown table in ``out``."""
    lines = [ln for ln in out.splitlines() if ln.startswith("|")]
    assert len(lines) >= 3, f"no table in the output:\n{out}"

    def cells(line: str) -> list[str]:
        return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]

    header = cells(lines[0])
    assert header[0] == "row" and set(cells(lines[1])) == {"---"}
    return {cells(ln)[0]: dict(zip(header, cells(ln), strict=True)) for ln in lines[2:]}


@pytest.mark.parametrize("name", sorted(CASES))
def test_benchmark_runs_and_symgrad_matches_the_reference(name: str, names_path: Path) -> None:
    args, suffixes = CASES[name]
    if name != "moons":
        args = [*args, "--data", str(names_path)]
    out = run_script(name, args)
    assert out.lstrip().startswith("machine: "), out
    table = parse_table(out)

    ref_name, ref = next(iter(table.items()))
    assert "reference" in ref_name and ref["× reference"] == "1", ref
    ref_loss = float(ref["loss after the last step"])

    backends = ["c", "numpy"] if compiler_available() else ["numpy"]
    expected = {f"symgrad compile_step, {b}{s}" for b in backends for s in suffixes}
    if name == "moons":  # micrograd's loop on eager Values, from the same weights
        expected.add("symgrad eager, micrograd form (2 steps)")
    symgrad_rows = {k: v for k, v in table.items() if k.startswith("symgrad")}
    assert set(symgrad_rows) == expected, list(table)
    for row_name, row in symgrad_rows.items():
        assert not row["setup"].startswith("FAILED"), f"{row_name}: {row['setup']}"
        loss = float(row["loss after the last step"])
        assert loss == pytest.approx(ref_loss, rel=RTOL), (row_name, loss, ref_loss)


def test_eager_benchmark_compiles_once_and_matches_the_reference(names_path: Path) -> None:
    """benchmarks/eager.py: one table per workload; every symgrad eager row computes the
    reference's losses, compiles on step 1 and writes no cache entry and runs no compiler
    after it."""
    out = run_script("eager", ["--steps", "2", "--count-steps", "3", "--data", str(names_path)])
    tables = [parse_table(part) for part in out.split("\nmachine: ")[1:]]
    assert len(tables) == 4, out  # mlp, batchnorm, attention, wavenet
    backends = ["c", "numpy"] if compiler_available() else ["numpy"]
    for table in tables:
        ref_name, ref = next(iter(table.items()))
        assert "reference" in ref_name and ref["× reference"] == "1", ref
        rows = {k: v for k, v in table.items() if k.startswith("symgrad")}
        assert set(rows) == {f"symgrad eager loss.backward(), {b}" for b in backends}, list(table)
        for name, row in rows.items():
            loss = float(row["loss after the last step"])
            assert loss == pytest.approx(float(ref["loss after the last step"]), rel=RTOL), name
            assert row["step 1, cold (compiles)"].endswith("(1)"), row
            assert row["new cache entries, steps 2–3"] == "0", row
            assert row["compiler runs, steps 2–3"] == "0", row


def test_soak_runs_small_and_reports_nothing_wrong() -> None:
    """benchmarks/soak.py at a tiny size (2 processes x 4 compiles, kills and clears included):
    exit status 0 means no wrong result, corrupt entry or stale lock."""
    proc = subprocess.run(
        [sys.executable, str(BENCH / "soak.py"), "--procs", "2", "--compiles", "4"]
        + ["--pool", "3", "--backend", "numpy", "--kill-every", "1.5", "--janitor-every", "1"],
        capture_output=True,
        text=True,
        cwd=str(REPO_ROOT),
        env=dict(os.environ),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "| **wrong results** | 0 |" in proc.stdout
    assert "| **stale locks** (held with no process left) | 0 |" in proc.stdout
