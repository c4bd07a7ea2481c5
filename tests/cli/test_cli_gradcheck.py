"""``symgrad gradcheck path/to/model.py:function``: the table and exit status 0 when the gradients
agree, the culprit and 1 when they do not, one line on stderr and 2 for a MODEL that cannot be
used; and the MODEL loader (``symgrad.model_ref``) on its own."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from symgrad.cli import main
from symgrad.model_ref import ModelRefError, load, parse

MODEL = """
import numpy as np
import symgrad as sg

def loss(x, w):
    return (x @ w).tanh().sum()

def loss_inputs():
    rng = np.random.default_rng(0)
    return rng.standard_normal((4, 3)), rng.standard_normal((3, 2))

wrongsq = sg.elementwise("wrongsq_cli", lambda x: x**2, derivative=lambda x: 3 * x)

def bad(x):
    return wrongsq(x).sum()  # the wrong derivative

def bad_inputs():
    return np.array([0.5, 1.0, 2.0])  # a single array is the single argument

def kinked(x):
    return sg.relu(x).sum()

def kinked_inputs():
    return (np.array([0.0, 1.0]),)

def lonely(x):
    return x.sum()

def broken(x):
    return x.sum()

def broken_inputs():
    raise RuntimeError("no data today")

def not_scalar(x):
    return x * 2.0

def not_scalar_inputs():
    return (np.ones(3),)

NOT_A_FUNCTION = 3
"""


@pytest.fixture
def model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "model.py"
    path.write_text(textwrap.dedent(MODEL))
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["gradcheck", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_agreeing_gradients_print_the_table_and_exit_0(model: Path, capsys) -> None:
    code, out, err = run(capsys, f"{model}:loss")
    assert code == 0, out + err
    assert out.startswith("gradcheck loss: ok\n")
    assert "backend" in out and "max abs err" in out
    assert any(line.startswith("numpy    x ") for line in out.splitlines())
    assert err == ""


def test_disagreeing_gradients_name_the_rule_and_exit_1(model: Path, capsys) -> None:
    code, out, _ = run(capsys, f"{model}:bad", "--backend", "numpy")
    assert code == 1
    assert out.startswith("gradcheck bad: FAILED\n")
    assert "the VJP of wrongsq_cli (declared with symgrad.elementwise)" in out
    assert f"at {model.resolve()}:15: return wrongsq(x).sum()" in out
    assert "generated code (numpy backward pass):" in out
    assert "generated code (numpy)" in out and "c)" not in out.splitlines()[1]


def test_options_reach_gradcheck(model: Path, capsys) -> None:
    code, out, _ = run(capsys, f"{model}:loss", "--eps", "1e-5", "--atol", "1e-4", "--rtol", "0.01")
    assert code == 0
    assert "eps 1e-05, tolerance atol 0.0001·max|grad| + rtol 0.01" in out
    code, out, _ = run(capsys, f"{model}:kinked", "--backend", "numpy")
    assert code == 0 and "relu at 0" in out
    code, out, _ = run(capsys, f"{model}:kinked", "--backend", "numpy", "--nudge")
    assert code == 0 and "nudged 1 time(s)" in out and "relu at 0" not in out


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("{dir}/missing.py:loss", "no such file: {dir}/missing.py"),
        ("{dir}:loss", "not a file: {dir}"),
        ("{model}", "expected MODEL as path/to/model.py:function"),
        ("{model}:", "expected MODEL as path/to/model.py:function"),
        ("{model}:nope", "{model} has no function 'nope'"),
        ("{model}:NOT_A_FUNCTION", "{model}: NOT_A_FUNCTION is not a function (int)"),
        ("{model}:lonely", "{model} has no lonely_inputs(): define it to return"),
        ("{model}:broken", "{model}: broken_inputs() failed: RuntimeError: no data today"),
        ("{model}:not_scalar", "must be a float scalar"),
        ("{dir}/syntax.py:f", "cannot import {dir}/syntax.py: SyntaxError"),
        ("{dir}/raises.py:f", "cannot import {dir}/raises.py: ImportError: needs torch"),
    ],
)
def test_a_bad_model_is_one_line_on_stderr_and_exit_2(
    model: Path, capsys, ref: str, message: str
) -> None:
    d = model.parent
    (d / "syntax.py").write_text("def f(x):\n    return x +\n")
    (d / "raises.py").write_text("raise ImportError('needs torch')\n")
    code, out, err = run(capsys, ref.format(dir=d, model=model))
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("symgrad gradcheck: error: ")
    assert message.format(dir=d, model=model) in err


def test_help_documents_the_inputs_convention(capsys) -> None:
    assert main(["gradcheck", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: symgrad gradcheck")
    assert "<function>_inputs" in out and "path/to/model.py:function" in out
    for opt in ("--backend", "--eps", "--atol", "--rtol", "--nudge"):
        assert opt in out
    assert main(["--help"]) == 0
    assert "gradcheck" in capsys.readouterr().out


def test_the_console_script_exit_status(model: Path) -> None:
    cmd = [sys.executable, "-m", "symgrad.cli", "gradcheck", "--backend", "numpy"]
    ok = subprocess.run([*cmd, f"{model}:loss"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run([*cmd, f"{model}:bad"], capture_output=True, text=True)
    assert bad.returncode == 1 and "wrongsq_cli" in bad.stdout
    missing = subprocess.run([*cmd, f"{model}:nope"], capture_output=True, text=True)
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.strip().endswith("has no function 'nope'")


def test_model_ref_loads_by_path(model: Path) -> None:
    assert parse("a/b.py:f") == (Path("a/b.py"), "f")
    assert parse(r"C:\models\m.py:f") == (Path(r"C:\models\m.py"), "f")
    ref = load(f"{model}:loss")
    assert ref.name == "loss" and ref.path == model and callable(ref.function)
    x, w = ref.example_inputs()
    assert x.shape == (4, 3) and w.shape == (3, 2)
    assert str(ref) == f"{model}:loss"
    assert load(f"{model}:bad").example_inputs()[0].shape == (3,)
    # the file's directory is importable while it runs, and sys.path is restored afterwards
    (model.parent / "helper.py").write_text("K = 7\n")
    (model.parent / "uses_helper.py").write_text("import helper\n\ndef f():\n    return helper.K\n")
    before = list(sys.path)
    assert load(f"{model.parent / 'uses_helper.py'}:f").function() == 7
    assert sys.path == before
    with pytest.raises(ModelRefError, match="not a function name"):
        parse("m.py:1abc")
