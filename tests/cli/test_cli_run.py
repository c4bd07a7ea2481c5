"""``symgrad bench`` and ``symgrad demo``: finding ``benchmarks/`` and ``examples/`` (a clear error
when they are missing, as in an installed wheel), listing and running their scripts, exit
statuses; the built-in tour; ``--help`` on every subcommand."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from symgrad.cli import run as cli_run
from symgrad.cli.main import build_parser, main

REPO_ROOT = Path(__file__).resolve().parents[2]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def scripts(tmp_path: Path) -> Path:
    d = tmp_path / "checkout" / "benchmarks"
    d.mkdir(parents=True)
    (d / "fast.py").write_text(
        '"""A fast benchmark: prints its arguments."""\nimport sys\n'
        'print("fast ran with", sys.argv[1:])\n'
    )
    (d / "broken.py").write_text('"""Always fails."""\nraise SystemExit(3)\n')
    (d / "_helper.py").write_text("raise SystemExit('helpers are not run')\n")
    return d


def subcommands() -> list[str]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return sorted(action.choices)  # type: ignore[arg-type]


def test_every_subcommand_has_help(capsys) -> None:
    names = subcommands()
    assert {"show", "graph", "gradcheck", "export", "cache", "bench", "demo", "ops"} <= set(names)
    for name in names:
        assert main([name, "--help"]) == 0
        out = capsys.readouterr().out
        assert out.startswith(f"usage: symgrad {name}"), name
        assert len(out.splitlines()) > 4, name


def test_bench_lists_and_runs_scripts(scripts: Path, capsys) -> None:
    code, out, _ = run(capsys, "bench", "--dir", str(scripts), "--list")
    assert code == 0
    assert "fast    A fast benchmark: prints its arguments." in out and "_helper" not in out
    code, out, err = run(capsys, "bench", "--dir", str(scripts), "fast", "--args", "--steps 3")
    assert code == 0, err
    assert "== fast: A fast benchmark" in out


def test_bench_script_output_and_status(scripts: Path, capfd) -> None:
    assert main(["bench", "--dir", str(scripts), "fast.py", "--args", "--steps 3"]) == 0
    assert "fast ran with ['--steps', '3']" in capfd.readouterr().out
    assert main(["bench", "--dir", str(scripts)]) == 1  # every script: broken fails
    captured = capfd.readouterr()
    assert "fast ran with []" in captured.out
    assert "symgrad bench: failed: broken (exit 3)" in captured.err
    assert "helpers are not run" not in captured.err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["bench", "--dir", "{d}", "nope"],
            "no benchmark named 'nope'; expected one of: broken, fast",
        ),
        (["bench", "--dir", "{d}/missing"], "--dir {d}/missing: no such directory"),
        (["bench", "--dir", "{d}", "--args", "'unclosed"], "--args: No closing quotation"),
        (["demo", "--dir", "{d}", "nope"], "no example named 'nope'"),
    ],
)
def test_bench_and_demo_errors(scripts: Path, capsys, argv: list[str], message: str) -> None:
    code, out, err = run(capsys, *(a.format(d=scripts) for a in argv))
    assert code == 2 and out == "" and err.count("\n") == 1
    assert message.format(d=scripts) in err


def test_missing_checkout_is_a_clear_error(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli_run, "CHECKOUT", tmp_path / "site-packages")
    for command, kind in (("bench", "benchmarks"), ("demo", "examples")):
        argv = [command, "--list"]
        code, out, err = run(capsys, *argv)
        assert code == 2 and out == ""
        assert err.startswith(f"symgrad {command}: error: no {kind}/ directory found")
        assert "ship with the source checkout, not the installed package" in err
        assert err.count("\n") == 1
    (tmp_path / "benchmarks").mkdir()
    code, _, err = run(capsys, "bench")
    assert code == 2 and f"no benchmark scripts (*.py) in {tmp_path / 'benchmarks'}" in err


def test_bench_finds_the_repository_benchmarks(capsys, monkeypatch) -> None:
    monkeypatch.chdir(REPO_ROOT)
    code, out, _ = run(capsys, "bench", "--list")
    assert code == 0 and f"benchmarks in {REPO_ROOT / 'benchmarks'}:" in out
    assert "  moons " in out


def test_demo_lists_the_examples(capsys, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # found beside the package, not in the working directory
    code, out, _ = run(capsys, "demo", "--list")
    assert code == 0 and out.startswith(f"examples in {REPO_ROOT / 'examples'}:")
    for name in ("micrograd_lecture", "micrograd_moons", "bigram", "mlp_makemore", "custom_op"):
        assert f"  {name} " in out
    assert "_common" not in out


def test_demo_runs_an_example(capfd, monkeypatch) -> None:
    monkeypatch.chdir(REPO_ROOT)
    code = main(["demo", "custom_op", "--args", "--steps 50 --backend numpy"])
    out = capfd.readouterr().out
    assert code == 0
    assert "wrong derivative caught in legendre4_by_hand" in out


def test_demo_tour(capsys) -> None:
    code, out, _ = run(capsys, "demo")
    assert code == 0
    assert "x1    f64[]  input" in out and "-1.5000" in out
    assert "def backward(g_out, saved, x1, x2, w1, w2, b):" in out
    assert "gradcheck neuron: ok" in out
    assert "o = 0.707107, grads = [-1.5, 0.5, 1.0, 0.0, 0.5]" in out
    # the generated code cites the demo model's lines (before: the console script's frame)
    assert re.search(r"\(vjp tanh\)  demo\.py:\d+  return n\.tanh\(\)", out)
    assert re.search(r"\(vjp mul\)  demo\.py:\d+  n = x1 \* w1 \+ x2 \* w2 \+ b", out)


def test_run_script_uses_this_interpreter(scripts: Path, capfd) -> None:
    (scripts / "which.py").write_text("import sys\nprint(sys.executable)\n")
    assert cli_run.run_script(scripts / "which.py", []) == 0
    assert capfd.readouterr().out.strip() == sys.executable
