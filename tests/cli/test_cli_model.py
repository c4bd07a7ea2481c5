"""``symgrad show``, ``symgrad graph`` and ``symgrad export`` on MODEL references, including the
``@specs`` convention and every way a MODEL cannot be used (one line on stderr, exit status 2);
syntax highlighting only on a terminal; the graph drawing module (``symgrad.draw``)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import symgrad as sg
from symgrad import draw
from symgrad.cli import main
from symgrad.cli import model as cli_model

MODEL = """
import numpy as np
import symgrad as sg
from symgrad.model_ref import specs

rng = np.random.default_rng(0)
W = sg.Tensor(rng.standard_normal((3, 2)), requires_grad=True, label="W")
b = sg.Tensor(np.zeros(2), requires_grad=True, label="b")

def loss(x, w):
    return (x @ w).tanh().sum()

def loss_inputs():
    rng = np.random.default_rng(0)
    return rng.standard_normal((4, 3)), rng.standard_normal((3, 2))

@specs(sg.Spec(("n", 3)))
def net(x):
    return (x @ W + b).tanh()

@specs(sg.Spec(("n", 3)))
def net_loss(x):
    return ((x @ W + b).tanh() ** 2).mean()

@specs(sg.Spec(("n", 3)), sg.Spec(("n",), "int64"))
def needs_ints(x, i):
    return (x @ W)[sg.arange(x.shape[0]), i].sum()

def mismatched(x):
    return x @ W

def mismatched_inputs():
    return (np.ones((2, 4)),)

@specs((2, 3))
def plain(x):
    return (x * 2.0).sum()
"""


@pytest.fixture
def model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "model.py"
    path.write_text(textwrap.dedent(MODEL))
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- show ---------------------------------------------------------------------------------------
def test_show_prints_both_passes_with_provenance(model: Path, capsys) -> None:
    code, out, err = run(capsys, "show", f"{model}:loss")
    assert code == 0, err
    assert "def forward(x, w):" in out and "def backward(g_out, saved, x, w):" in out
    assert "# matmul (vjp matmul)  model.py:11  return (x @ w).tanh().sum()" in out
    assert "\x1b[" not in out  # not a terminal: no colours


def test_show_one_pass_and_symbolic_specs(model: Path, capsys) -> None:
    code, out, _ = run(capsys, "show", f"{model}:net_loss", "--pass", "backward")
    assert code == 0
    assert out.startswith("def backward(g_out, saved, x, W, b):")
    assert "n = " in out and "def forward" not in out  # n: the symbolic batch dim
    code, out, _ = run(capsys, "show", f"{model}:net", "--pass", "forward")
    assert code == 0 and out.startswith("def forward(x, W, b):")


def test_show_graph_and_opt_levels(model: Path, capsys) -> None:
    code, out, _ = run(capsys, "show", f"{model}:net_loss", "--graph", "--no-provenance")
    assert code == 0
    assert out.startswith("graph(x: f64[n,3], W: f64[3,2], b: f64[2], g_out: f64[])")
    assert "model.py" not in out and "= tanh" in out
    code, with_prov, _ = run(capsys, "show", f"{model}:net_loss", "--graph", "--opt", "0")
    assert code == 0 and "# model.py:" in with_prov
    assert len(with_prov.splitlines()) > len(out.splitlines())  # opt 0 keeps every VJP statement


@pytest.mark.cc
def test_show_c_backend(model: Path, capsys) -> None:
    from symgrad.runtime.cc import compiler_available

    if not compiler_available():
        pytest.skip("no working C compiler")
    code, out, _ = run(capsys, "show", f"{model}:loss", "--backend", "c", "--pass", "backward")
    assert code == 0
    assert "sg_backward(" in out and "/* g_w: matmul (vjp matmul)  model.py:11" in out


def test_show_colours_on_a_terminal_only(model: Path, capsys, monkeypatch) -> None:
    pytest.importorskip("pygments")
    code, out, _ = run(capsys, "show", f"{model}:loss", "--color", "always")
    assert code == 0 and "\x1b[" in out
    code, out, _ = run(capsys, "show", f"{model}:loss", "--color", "never")
    assert code == 0 and "\x1b[" not in out

    class Terminal:
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdout", Terminal())
    assert cli_model.use_color("auto") and not cli_model.use_color("never")
    monkeypatch.undo()
    assert not cli_model.use_color("auto")  # pytest's captured stdout is not a terminal


def test_highlight_without_pygments_is_plain(monkeypatch) -> None:
    import importlib

    real = importlib.import_module

    def fake(name: str, *a: object) -> object:
        if name.startswith("pygments"):
            raise ImportError(name)
        return real(name, *a)

    monkeypatch.setattr(importlib, "import_module", fake)
    assert cli_model.highlight("x = 1\n", "python", color=True) == "x = 1\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{model}:net", "--pass", "backward"], "the first output is f64[n,2], not a float scalar"),
        (["{dir}/missing.py:f"], "no such file: {dir}/missing.py"),
        (["{model}:nope"], "{model} has no function 'nope'"),
        (["{model}:mismatched"], "{model}:mismatched: ShapeError: matmul"),
        (["{model}:W"], "{model}: W is not a function (Tensor)"),
        (["{model}"], "expected MODEL as path/to/model.py:function"),
    ],
)
def test_show_bad_model_is_one_line_and_exit_2(model: Path, capsys, args, message) -> None:
    fmt = {"model": model, "dir": model.parent}
    code, out, err = run(capsys, "show", *(a.format(**fmt) for a in args))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("symgrad show: error: ")
    assert message.format(**fmt) in err


def test_show_without_inputs_or_specs(tmp_path: Path, capsys) -> None:
    (tmp_path / "m.py").write_text("def f(x):\n    return x.sum()\n")
    code, _, err = run(capsys, "show", f"{tmp_path / 'm.py'}:f")
    assert code == 2 and "has no f_inputs(): define it" in err and "@symgrad.model_ref.specs" in err


# -- graph --------------------------------------------------------------------------------------
def test_graph_prints_dot_with_values_and_grads(model: Path, capsys) -> None:
    code, out, _ = run(capsys, "graph", f"{model}:loss")
    assert code == 0
    assert out.startswith("digraph symgrad {") and out.rstrip().endswith("}")
    assert 'label="{ x : f64[4,3] | data mean' in out and "| grad mean" in out
    assert '[label="tanh"]' in out and '[label="@"]' in out


def test_graph_table_and_options(model: Path, capsys) -> None:
    code, out, _ = run(capsys, "graph", f"{model}:plain", "--table")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["node", "type", "computed", "as", "data", "grad"]
    # generated inputs from @specs: x is standard normal; d(sum(2x))/dx = 2 everywhere
    row = next(ln for ln in lines if ln.startswith("x "))
    assert "mean 2, max|·| 2" in row
    code, out, _ = run(capsys, "graph", f"{model}:loss", "--no-values", "--rankdir", "TB")
    assert code == 0 and "data" not in out and "rankdir=TB" in out
    code, out, _ = run(capsys, "graph", f"{model}:loss", "--backward", "--table")
    assert code == 0 and "transpose(" in out  # the VJP of matmul appears


def test_graph_writes_dot_files(model: Path, capsys, tmp_path: Path) -> None:
    target = tmp_path / "g.dot"
    code, out, _ = run(capsys, "graph", f"{model}:net_loss", "-o", str(target))
    assert code == 0 and out.startswith(f"wrote {target}")
    assert target.read_text().startswith("digraph symgrad {")


def test_graph_without_graphviz_writes_dot_and_hints(model, capsys, tmp_path, monkeypatch):
    import symgrad.draw.dot as dot_module  # (where the renderer looks the program up)

    monkeypatch.setattr(dot_module, "dot_program", lambda: None)
    target = tmp_path / "g.svg"
    code, out, err = run(capsys, "graph", f"{model}:loss", "-o", str(target))
    assert code == 0 and out == "" and not target.exists()
    assert "Graphviz's `dot` program is not installed" in err
    assert f"dot -Tsvg {tmp_path / 'g.dot'} -o {target}" in err
    assert (tmp_path / "g.dot").read_text().startswith("digraph")


def test_graph_renders_with_graphviz(model: Path, capsys, tmp_path: Path) -> None:
    if draw.dot_program() is None:
        pytest.skip("Graphviz is not installed")
    for suffix in (".svg", ".png"):
        target = tmp_path / f"g{suffix}"
        code, _, err = run(capsys, "graph", f"{model}:loss", "-o", str(target))
        assert code == 0, err
        assert target.stat().st_size > 1000
    assert "<svg" in (tmp_path / "g.svg").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{model}:loss", "-o", "{dir}/g.txt"], "cannot tell the picture format from 'g.txt'"),
        (["{model}:net", "--backward"], "--backward needs a float scalar first output"),
        (["{dir}/missing.py:f"], "no such file"),
    ],
)
def test_graph_errors(model: Path, capsys, args, message) -> None:
    fmt = {"model": model, "dir": model.parent}
    code, out, err = run(capsys, "graph", *(a.format(**fmt) for a in args))
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("symgrad graph: error: ") and message in err


def test_graph_of_int_model_without_values(model: Path, capsys) -> None:
    code, out, err = run(capsys, "graph", f"{model}:needs_ints", "--no-values")
    assert code == 0 and "i : i64[n]" in out and err == ""
    code, out, err = run(capsys, "graph", f"{model}:needs_ints")
    assert code == 0 and "i : i64[n]" in out and "data" not in out
    assert err.strip() == (
        "symgrad graph: note: drawn without values: needs_ints_inputs() is needed for example "
        "inputs of integer or boolean arguments"
    )
    code, _, err = run(capsys, "gradcheck", f"{model}:needs_ints")
    assert code == 2 and "argument 1 of needs_ints is int64: define needs_ints_inputs()" in err


def test_draw_dot_of_an_eager_value_escapes_labels() -> None:
    a = sg.Value(2.0, label='a{|"}')
    b = a * a + 1.0
    b.backward()
    dot = draw.draw_dot(b, title="t<1>")
    assert 'a\\{\\|\\"\\} | data 2.0000 | grad 4.0000' in dot
    assert 'label="t\\<1\\>"' in dot
    assert '[shape=plaintext, fontcolor="#777777", label="1"]' in dot  # the constant
    assert draw.fmt_value(np.arange(3.0)) == "[0. 1. 2.]"
    assert draw.fmt_value(np.ones((3, 3))) == "mean 1, max|·| 1"


def test_traced_values_checks_its_arguments() -> None:
    g = sg.trace(lambda x: (x * x).sum(), sg.Spec((2,)))
    with pytest.raises(ValueError, match="expected 1 input arrays, got 2"):
        draw.traced_values(g, [np.ones(2), np.ones(2)])
    values, grads = draw.traced_values(g, [np.array([1.0, 3.0])])
    assert float(values[g.outputs[0]]) == 10.0
    np.testing.assert_array_equal(grads[g.inputs[0]], [2.0, 6.0])


# -- export -------------------------------------------------------------------------------------
def _import(path: Path, name: str) -> object:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_export_numpy_matches_the_model(model: Path, capsys, tmp_path: Path) -> None:
    out_dir = tmp_path / "exp"
    code, out, err = run(capsys, "export", f"{model}:net", "-o", str(out_dir))
    assert code == 0, err
    assert out.startswith(f"exported {model}:net to {out_dir} (numpy): README.md, net.npz, net.py")
    exported = _import(out_dir / "net.py", "net_cli_export")
    mod = _import(model, "model_for_export_check")
    x = np.random.default_rng(1).standard_normal((5, 3))
    want = np.tanh(x @ mod.W.data + mod.b.data)  # type: ignore[attr-defined]
    np.testing.assert_allclose(exported.forward(x), want, rtol=1e-12)  # type: ignore[attr-defined]


@pytest.mark.cc
def test_export_c_builds_and_checks(model: Path, capsys, tmp_path: Path) -> None:
    import shutil

    from symgrad.runtime.cc import compiler_available

    if not compiler_available() or shutil.which("make") is None:
        pytest.skip("no working C compiler or make")
    out_dir = tmp_path / "cexp"
    code, out, _ = run(
        capsys, "export", f"{model}:net", "-o", str(out_dir), "--backend", "c", "--name", "mynet"
    )
    assert code == 0 and "make -C" in out
    assert {"mynet.h", "mynet.c", "Makefile"} <= {p.name for p in out_dir.iterdir()}
    proc = subprocess.run(
        ["make", "-s", "-C", str(out_dir), "check"], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0 and "self-test passed" in proc.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{model}:loss"], "export: the model captures no weights"),
        (["{model}:net", "--name", "1x"], "name must be a plain identifier"),
        (["{model}:nope"], "has no function 'nope'"),
    ],
)
def test_export_errors(model: Path, capsys, tmp_path: Path, args, message) -> None:
    fmt = {"model": model}
    argv = [a.format(**fmt) for a in args]
    code, out, err = run(capsys, "export", argv[0], "-o", str(tmp_path / "e"), *argv[1:])
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("symgrad export: error: ") and message in err


def test_export_needs_an_output_dir(model: Path, capsys) -> None:
    code, _, err = run(capsys, "export", f"{model}:net")
    assert code == 2 and "-o/--output" in err


# -- gradcheck with @specs, the console script ----------------------------------------------------
def test_gradcheck_with_generated_inputs(model: Path, capsys) -> None:
    code, out, _ = run(capsys, "gradcheck", f"{model}:net_loss", "--backend", "numpy")
    assert code == 0 and out.startswith("gradcheck net_loss: ok")
    assert "numpy    x      (3, 3)" in out  # the symbolic dim n became 3


def test_specs_decorator_rejects_bad_specs() -> None:
    from symgrad.model_ref import ModelRefError, specs

    with pytest.raises(ModelRefError, match="@specs: expected Specs or shape tuples"):
        specs(("n", object()))
    with pytest.raises(ModelRefError, match="@specs decorates a function, got int"):
        specs((3,))(3)  # type: ignore[type-var]


def test_console_script_show_exit_status(model: Path) -> None:
    cmd = [sys.executable, "-m", "symgrad.cli", "show"]
    ok = subprocess.run([*cmd, f"{model}:loss"], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and "def backward" in ok.stdout and "\x1b[" not in ok.stdout
    bad = subprocess.run([*cmd, f"{model}:nope"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip() == f"symgrad show: error: {model} has no function 'nope'"


def test_the_cli_opt_default_is_the_library_default():
    from symgrad.cli import model
    from symgrad.passes import DEFAULT_OPT

    assert model.OPT == DEFAULT_OPT
