"""No C compiler, or a broken one: an explicit ``backend="c"`` raises an error quoting the
compiler; the default backend falls back to NumPy with a warning and gives correct results
(docs/reliability.md, "Toolchain faults")."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import symgrad as sg
from symgrad import Spec
from symgrad.runtime import modules
from symgrad.runtime.cc import CompileError, NoCompilerError
from symgrad.runtime.load import LoadError

FAILING = """#!/bin/sh
if [ "$1" = "--version" ]; then echo "fakecc 1.0 (reliability test)"; exit 0; fi
echo "fakecc: error: simulated failure: the licence server is unreachable" >&2
exit 1
"""

GARBAGE = """#!/bin/sh
if [ "$1" = "--version" ]; then echo "fakecc 1.0 (reliability test)"; exit 0; fi
out=""
while [ $# -gt 0 ]; do
  if [ "$1" = "-o" ]; then out="$2"; fi
  shift
done
echo "this is not a shared library" > "$out"
"""


def _script(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    path.chmod(0o755)
    return str(path)


@pytest.fixture(autouse=True)
def _fresh_fallback_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    # the "no working C compiler" warning is given once per process: let each test see it
    monkeypatch.setattr(modules, "_warned_fallback", False)


def _fn(k: float) -> Any:
    """A function no other test compiles (the constant differs), so nothing is cached."""
    return lambda x: (x * k).tanh().sum()


def _check(f: Any, k: float) -> None:
    x = np.array([0.5, -1.0, 2.0])
    out, (g,) = f(x)
    assert out == pytest.approx(np.tanh(x * k).sum(), rel=1e-12)
    np.testing.assert_allclose(g, k * (1 - np.tanh(x * k) ** 2), rtol=1e-12)


@pytest.mark.parametrize("cc", ["false", "/nonexistent/bin/cc"])
def test_no_compiler_explicit_c_raises_and_default_falls_back(
    cc: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CC", cc)
    with pytest.raises(NoCompilerError) as info:
        sg.compile(_fn(1.25), Spec((3,)), wrt=0, backend="c")
    msg = str(info.value)
    assert isinstance(info.value, sg.SymgradError)
    assert cc in msg
    assert ("exited with status 1" in msg) if cc == "false" else ("not found" in msg)
    with pytest.warns(RuntimeWarning, match="no working C compiler") as record:
        f = sg.compile(_fn(1.5), Spec((3,)), wrt=0)
    assert cc in str(record[0].message)
    assert f.backend == "numpy"
    _check(f, 1.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one warning per process, not one per function
        g = sg.compile(_fn(1.75), Spec((3,)), wrt=0)
    _check(g, 1.75)


def test_a_failing_compiler_is_quoted_and_the_default_falls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CC", _script(tmp_path, "fakecc", FAILING))
    with pytest.raises(CompileError) as info:
        sg.compile(_fn(2.25), Spec((3,)), wrt=0, backend="c")
    msg = str(info.value)
    assert "C compilation failed (exit status 1)" in msg
    assert "simulated failure: the licence server is unreachable" in msg  # the stderr
    assert "fakecc" in msg and "module.c" in msg  # the command
    with pytest.warns(RuntimeWarning, match="the C backend failed") as record:
        f = sg.compile(_fn(2.5), Spec((3,)), wrt=0)
    assert "simulated failure" in str(record[0].message)
    assert f.backend == "numpy"
    _check(f, 2.5)


def test_a_compiler_writing_garbage_is_refused_and_the_default_falls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CC", _script(tmp_path, "fakecc", GARBAGE))
    with pytest.raises(LoadError) as info:
        sg.compile(_fn(3.25), Spec((3,)), wrt=0, backend="c")
    assert isinstance(info.value, sg.SymgradError)
    with pytest.warns(RuntimeWarning, match="the C backend failed"):
        f = sg.compile(_fn(3.5), Spec((3,)), wrt=0)
    assert f.backend == "numpy"
    _check(f, 3.5)


def test_eager_backward_falls_back_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SYMGRAD_BACKEND", raising=False)  # the suite forces NumPy for eager
    monkeypatch.setenv("CC", _script(tmp_path, "fakecc", FAILING))
    x = sg.Tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    with pytest.warns(RuntimeWarning, match="the C backend failed"):
        (x * 4.125).tanh().sum().backward()
    np.testing.assert_allclose(x.grad, 4.125 * (1 - np.tanh(x.data * 4.125) ** 2), rtol=1e-12)


def test_the_fallback_is_explained_in_a_fresh_process(tmp_path: Path, run_python: Any) -> None:
    """What a user sees: CC=false, a default compile works on NumPy with one warning on
    stderr; an explicit backend="c" raises an error that quotes the compiler."""
    proc = run_python(
        """
        import numpy as np, symgrad as sg
        f = sg.compile(lambda x: (x * x).sum(), sg.Spec((3,)), wrt=0)
        out, (g,) = f(np.arange(3.0))
        assert f.backend == "numpy" and out == 5.0 and list(g) == [0.0, 2.0, 4.0]
        try:
            sg.compile(lambda x: x.sum(), sg.Spec((3,)), backend="c")
        except sg.SymgradError as e:
            print("refused:", str(e).splitlines()[0])
        """,
        env={"CC": "false", "SYMGRAD_CACHE_DIR": str(tmp_path / "c")},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("RuntimeWarning: no working C compiler") == 1
    assert "refused: C compiler 'false' is not usable" in proc.stdout
