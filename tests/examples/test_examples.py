"""Every example (``examples/*.py``) runs end to end at small sizes in a subprocess, on the
session's private cache, and prints the numbers that show it worked: gradients, falling losses,
gradcheck verdicts, exports that match; its pictures are real PNGs (not tiny, not one colour).

The examples need the ``examples`` extra (matplotlib, tqdm, names), which the test extra installs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.examples._readme import assert_lines_match, quoted_blocks

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "examples"


def run(name: str, *args: str, timeout: float = 300) -> str:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), *args],
        capture_output=True,
        text=True,
        cwd=str(REPO_ROOT),
        env=dict(os.environ),
        timeout=timeout,
    )
    code, out, err = proc.returncode, proc.stdout, proc.stderr
    assert code == 0, f"{name}.py exited with {code}:\n{out[-2000:]}\n{err[-2000:]}"
    return proc.stdout


def number(pattern: str, text: str) -> float:
    m = re.search(pattern, text)
    assert m, f"{pattern!r} not found in the output:\n{text[-2000:]}"
    return float(m.group(1))


def assert_real_png(path: Path, min_bytes: int = 5000) -> None:
    """A PNG of some size with many colours (a blank or one-colour image fails)."""
    plt = pytest.importorskip("matplotlib.pyplot")
    assert path.is_file(), f"{path} was not written"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert path.stat().st_size >= min_bytes, f"{path} is only {path.stat().st_size} bytes"
    img = plt.imread(str(path))
    assert img.ndim == 3 and min(img.shape[:2]) >= 100, img.shape
    colours = np.unique(img.reshape(-1, img.shape[2]), axis=0)
    assert len(colours) >= 10, f"{path} has {len(colours)} colour(s)"


def test_micrograd_lecture(tmp_path: Path) -> None:
    out = run("micrograd_lecture", "--out", str(tmp_path))
    assert "lecture: o = 0.707107, x1.grad = -1.5000, gradcheck ok" in out
    # the table of the first expression: L = (a*b + c) * f
    assert re.search(r"^a\s+f64\[\]\s+input\s+2\.0000\s+6\.0000$", out, re.M)
    assert re.search(r"^L\s+f64\[\]\s+\*\(d, f\)\s+-8\.0000\s+1\.0000$", out, re.M)
    # the generated backward pass, quoting the line of the neuron
    assert "def backward(g_out, saved, x1, x2, w1, w2, b):" in out
    assert "(vjp tanh)  micrograd_lecture.py:" in out
    assert "gradcheck lecture_neuron: ok" in out and "b = 6.0, a.grad = 2.0" in out
    dot = (tmp_path / "neuron.dot").read_text()
    assert dot.startswith("digraph symgrad {")
    assert "x1 | data 2.0000 | grad -1.5000" in dot and "o | data 0.7071 | grad 1.0000" in dot
    if "drew the graph" in out:  # Graphviz is installed
        assert_real_png(tmp_path / "neuron.png", min_bytes=2000)
        assert (tmp_path / "neuron.svg").read_text().lstrip().startswith("<?xml")
    else:
        assert "Graphviz is not installed" in out


def test_custom_op() -> None:
    out = run("custom_op", "--steps", "300", "--backend", "numpy")
    assert "legendre4(x) = 35*x**4/8 - 15*x**2/4 + 3/8" in out
    assert "d/dx = 35*x**3/2 - 15*x/2" in out
    assert "dmish/dx (vjp mish)" in out  # the derived rule, as generated code
    assert "gradcheck mish_layer: ok" in out and "gradcheck legendre_fit: ok" in out
    assert "gradcheck legendre_fit_by_hand: FAILED" in out
    assert "the rule that disagrees: the VJP of legendre4_by_hand" in out
    assert "custom_op.py:" in out and "legendre4_by_hand(c[2] * x)" in out
    assert "wrong derivative caught in legendre4_by_hand" in out
    before = number(r"after 300 steps: .*; loss ([0-9.e+-]+) ->", out)
    after = number(r"after 300 steps: .*; loss [0-9.e+-]+ -> ([0-9.e+-]+)", out)
    assert after < 0.5 * before


def test_micrograd_moons(tmp_path: Path) -> None:
    out = run(
        "micrograd_moons",
        *("--n", "60", "--steps", "40", "--eager-n", "4", "--eager-steps", "2"),
        *("--out", str(tmp_path), "--no-progress"),
    )
    assert "eager and compiled agree: True" in out
    assert number(r"max loss difference ([0-9.e+-]+)", out) < 1e-9
    first = number(r"compiled: [0-9.]+ s in all; loss ([0-9.]+) ->", out)
    last = number(r"final loss ([0-9.]+)", out)
    assert last < 0.5 * first
    assert number(r"accuracy ([0-9.]+)%, eager", out) >= 85.0
    assert_real_png(tmp_path / "moons.png")


def test_micrograd_moons_eager_only_steps_can_be_skipped(tmp_path: Path) -> None:
    out = run(
        "micrograd_moons",
        "--n",
        "20",
        "--steps",
        "3",
        "--eager-steps",
        "0",
        "--out",
        str(tmp_path),
        "--no-progress",
    )
    assert "(a) eager" not in out and "(b) compiled" in out


def test_bigram(tmp_path: Path, names_path: Path) -> None:
    out = run(
        "bigram",
        *("--data", str(names_path), "--limit", "2000", "--steps", "40"),
        *("--out", str(tmp_path), "--no-progress"),
    )
    m = re.search(
        r"bigram: loss ([0-9.]+) -> ([0-9.]+), counting optimum ([0-9.]+), gap ([0-9.-]+); "
        r"export matches: (\w+)",
        out,
    )
    assert m, out[-2000:]
    start, end, optimum, gap = (float(m.group(i)) for i in range(1, 5))
    assert end < start and optimum < end and gap == pytest.approx(end - optimum, abs=2e-4)
    assert gap < 0.1 * (start - optimum)  # most of the way to the counting optimum
    assert m.group(5) == "True"
    assert "2000 words from" in out
    section = out.split("Sampling 10 names")[1].split("Exporting")[0]
    samples = [ln.split() for ln in section.splitlines() if ln.startswith("  ")]
    assert len(samples) == 10 and all(len(pair) <= 2 for pair in samples)
    assert (tmp_path / "bigram_export" / "bigram.py").is_file()
    # the same seed gives the same names
    again = run(
        "bigram",
        "--data",
        str(names_path),
        "--limit",
        "2000",
        "--steps",
        "40",
        "--out",
        str(tmp_path / "again"),
        "--no-progress",
    )
    assert (
        again.split("Sampling 10 names")[1].split("Exporting")[0]
        == out.split("Sampling 10 names")[1].split("Exporting")[0]
    )


def test_bigram_reads_the_names_package_by_default(tmp_path: Path) -> None:
    pytest.importorskip("names")
    out = run("bigram", "--limit", "300", "--steps", "3", "--out", str(tmp_path), "--no-progress")
    assert "300 words from the first names of the `names` package" in out
    assert "export matches: True" in out


def test_bigram_bad_data_file(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "bigram.py"), "--data", str(tmp_path / "nope.txt")],
        capture_output=True,
        text=True,
        cwd=str(REPO_ROOT),
        timeout=120,
    )
    assert proc.returncode != 0 and f"--data {tmp_path / 'nope.txt'}: no such file" in proc.stderr


def test_mlp_makemore(tmp_path: Path, names_path: Path) -> None:
    from symgrad.runtime.cc import compiler_available

    out = run(
        "mlp_makemore",
        *("--data", str(names_path), "--limit", "3000", "--steps", "1500", "--hidden", "64"),
        *("--out", str(tmp_path), "--no-progress"),
    )
    start = number(r"dev loss ([0-9.]+) ->", out)
    dev = number(r"dev loss [0-9.]+ -> ([0-9.]+)", out)
    train = number(r", train ([0-9.]+),", out)
    assert start > 3.0 and dev < 2.8 and train < 2.8  # from log(27) = 3.30 to a trained net
    assert "examples: train" in out and "(80/10/10 split of words)" in out
    section = out.split("Sampling 20 names")[1].split("Exporting")[0]
    names = [ln.strip() for ln in section.splitlines() if ln.startswith("  ")]
    assert len(names) == 1 and len(names[0].split(", ")) == 20
    assert_real_png(tmp_path / "makemore_loss.png")
    export = tmp_path / "makemore_c"
    assert {"makemore.h", "makemore.c", "Makefile"} <= {p.name for p in export.iterdir()}
    expected = "passed" if compiler_available() else "not run"
    assert f"C export self-test: {expected}" in out


def test_batchnorm_makemore(tmp_path: Path, names_path: Path) -> None:
    from symgrad.runtime.cc import compiler_available

    out = run(
        "batchnorm_makemore",
        *("--limit", "1000", "--eager-steps", "10", "--steps", "300", "--hidden", "32"),
        *("--data", str(names_path), "--out", str(tmp_path), "--no-progress"),
    )
    first = number(r"compiled: .* loss ([0-9.]+) ->", out)
    dev = number(r"batchnorm makemore: dev loss ([0-9.]+)", out)
    assert first > dev and dev < 3.0  # from log(27) = 3.30 to a trained net
    assert "it carries 4 buffers" in out  # two BatchNorm1d's running mean and variance
    eager_dev = number(r"eager no_grad dev ([0-9.]+)", out)
    assert eager_dev == pytest.approx(number(r"eval: train [0-9.]+, dev ([0-9.]+)", out), abs=1e-4)
    assert "gradcheck ok; NumPy export matches: True" in out
    assert (tmp_path / "bn_makemore_np" / "bn_makemore.py").is_file()
    expected = "passed" if compiler_available() else "not run"
    assert f"C export self-test: {expected}" in out


def test_tiny_gpt(tmp_path: Path, names_path: Path) -> None:
    from symgrad.runtime.cc import compiler_available

    out = run(
        "tiny_gpt",
        *("--limit", "500", "--eager-steps", "2", "--steps", "100", "--embd", "16", "--heads", "2"),
        *("--data", str(names_path), "--out", str(tmp_path), "--no-progress"),
    )
    start = number(r"tiny gpt: loss ([0-9.]+) ->", out)
    val = number(r"tiny gpt: loss [0-9.]+ -> val ([0-9.]+)", out)
    assert val < start and val < 3.1
    assert "gradcheck loss: ok" in out and "NumPy export matches: True" in out
    section = out.split("Sampling 10 names")[1].split("tiny gpt:")[0]
    names = [ln.strip() for ln in section.splitlines() if ln.startswith("  ")]
    assert len(names) == 1 and len(names[0].split(", ")) == 10
    assert all(set(n) <= set("abcdefghijklmnopqrstuvwxyz") for n in names[0].split(", "))
    expected = "passed" if compiler_available() else "not run"
    assert f"C export self-test: {expected}" in out


def test_showcase_quick(tmp_path: Path, names_path: Path) -> None:
    out = run(
        "showcase",
        "--quick",
        "--out",
        str(tmp_path),
        "--data",
        str(names_path),
        "--only",
        "micrograd_checks",
        "custom_op",
    )
    assert "sanity_check: y = -20.0, dy/dx = 46.0" in out
    assert re.search(r"micrograd_checks\s+ok", out) and re.search(r"custom_op\s+ok", out)
    assert "micrograd_lecture" not in out.split("showcase summary")[1]


def test_readme_quotes_real_example_output(tmp_path: Path) -> None:
    """Each README block introduced by ``<!-- output of: python examples/X.py ARGS -->`` is what
    that command prints (``...`` elides lines)."""
    quotes = [(c, b) for c, b in quoted_blocks("") if c.startswith("output of: python examples/")]
    assert quotes, "the README should quote the output of an example"
    for comment, body in quotes:
        command = comment.removeprefix("output of: ").split(" (")[0].split()
        script, args = command[1], command[2:]
        name = Path(script).stem
        out = run(name, *args, *(["--out", str(tmp_path / name)] if "--out" not in args else []))
        assert_lines_match(body, out, f"README quote of {' '.join(command)}")
