"""The README's command-line examples run: the ``console`` blocks' ``$ symgrad ...`` commands are
run (through :func:`symgrad.cli.main`, in a directory holding the README's ``model.py``) and
print what the README quotes; ``$ make ...`` lines run when make and a C compiler exist."""

from __future__ import annotations

import contextlib
import io
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from symgrad.cli import main
from tests.examples._readme import assert_lines_match, quoted_blocks


def files() -> dict[str, str]:
    out = {}
    for comment, body in quoted_blocks("python"):
        if comment.startswith("file: "):
            out[comment.removeprefix("file: ").split()[0]] = body
    return out


def commands() -> list[tuple[str, str]]:
    """``(command line, quoted output)`` of every ``$`` line of the console blocks."""
    out: list[tuple[str, str]] = []
    for _, body in quoted_blocks("console"):
        for chunk in body.split("$ ")[1:]:
            line, _, quoted = chunk.partition("\n")
            out.append((line, quoted))
    return out


def test_the_readme_has_console_examples() -> None:
    ran = {shlex.split(c)[:2][-1] for c, _ in commands() if c.startswith("symgrad ")}
    assert {"show", "graph", "gradcheck", "export"} <= ran
    assert "model.py" in files()


def test_console_examples_print_what_the_readme_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from symgrad.runtime.cc import compiler_available

    for name, text in files().items():
        (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path / "cache"))
    for line, quoted in commands():
        argv = shlex.split(line)
        if argv[0] == "make":
            if shutil.which("make") is None or not compiler_available():
                continue
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
            out = proc.stdout + proc.stderr
            assert proc.returncode == 0, out
        else:
            assert argv[0] == "symgrad", line
            wants_c = "--backend" in argv and argv[argv.index("--backend") + 1] == "c"
            if wants_c and not compiler_available():
                continue
            buf, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(err):
                code = main(argv[1:])
            out = buf.getvalue()
            first = quoted.splitlines()[0] if quoted.strip() else ""
            expected_code = 1 if first.endswith(": FAILED") else 0
            assert code == expected_code, f"$ {line}: exit {code}\n{out}{err.getvalue()}"
        assert_lines_match(quoted, out, f"$ {line}")
