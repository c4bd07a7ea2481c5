"""``symgrad.compile`` across processes: concurrent cold compiles build once, a warm process never
runs the compiler, and a default compile without a compiler falls back to NumPy with a warning."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    import numpy as np, symgrad as sg
    barrier = sys.argv[1]
    open(os.path.join(barrier, f"ready.{os.getpid()}"), "w").close()
    while len([f for f in os.listdir(barrier) if f.startswith("ready.")]) < int(sys.argv[2]):
        time.sleep(0.01)
    def model(x, w):
        return (x @ w).tanh().sum() * 1.2345  # a function no other test compiles
    f = sg.compile(model, sg.Spec(("n", 3)), sg.Spec((3, 2)), wrt=1, backend=sys.argv[3])
    x, w = np.ones((2, 3)), np.full((3, 2), 0.5)
    out, (gw,) = f(x, w)
    assert abs(out - np.tanh(1.5) * 4 * 1.2345) < 1e-12, out
    print("ok", f.backend)
    """
)


def _need_c() -> None:
    from symgrad.runtime.cc import compiler_available

    if not compiler_available():
        pytest.skip("no working C compiler")
    pytest.importorskip("symgrad.codegen.c.printer")


def _run(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, *args],
        env=env,
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.mark.cc
@pytest.mark.slow
@pytest.mark.parametrize("n", [4])
def test_concurrent_processes_compile_once(tmp_path: Path, n: int) -> None:
    _need_c()
    log = tmp_path / "cc.log"
    wrapper = tmp_path / "cc-logging"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> "{log}"\nexec cc "$@"\n')
    wrapper.chmod(0o755)
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    env = dict(os.environ, SYMGRAD_CACHE_DIR=str(tmp_path / "cache"), CC=str(wrapper))
    procs = [_run([str(barrier), str(n), "c"], env) for _ in range(n)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert out.strip() == "ok c"
    # the log also holds the compiler's flag probes (empty files); count extension builds
    builds = [line for line in log.read_text().splitlines() if "module.c" in line]
    assert len(builds) == 1, f"expected one compile of the extension, got {len(builds)}"


@pytest.mark.cc
def test_a_warm_process_never_runs_the_compiler(tmp_path: Path) -> None:
    _need_c()
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    env = dict(os.environ, SYMGRAD_CACHE_DIR=str(tmp_path / "cache"))
    cold = _run([str(barrier), "1", "c"], env)
    out, err = cold.communicate(timeout=300)
    assert cold.returncode == 0, err
    warm = _run([str(barrier), "1", "c"], dict(env, CC="false"))
    out, err = warm.communicate(timeout=300)
    assert warm.returncode == 0, err
    assert out.strip() == "ok c"


def test_default_backend_falls_back_to_numpy_without_a_compiler(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import warnings, numpy as np, symgrad as sg
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            f = sg.compile(lambda x: (x * x).sum(), sg.Spec((3,)), wrt=0)
            g = sg.compile(lambda x: (x * 3.0).sum(), sg.Spec((3,)), wrt=0)
        out, (gx,) = f(np.arange(3.0))
        assert f.backend == "numpy" and float(out) == 5.0, (f.backend, out)
        msgs = [str(w.message) for w in caught if "C compiler" in str(w.message)]
        assert len(msgs) == 1, msgs  # one warning, not one per compile
        try:
            sg.compile(lambda x: x.sum(), sg.Spec((3,)), backend="c")
        except sg.SymgradError as e:
            assert "false" in str(e), e
            print("explicit c refused")
        """
    )
    env = dict(os.environ, SYMGRAD_CACHE_DIR=str(tmp_path), CC="false")
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert "explicit c refused" in proc.stdout
