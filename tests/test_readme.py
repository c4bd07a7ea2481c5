"""Every Python snippet in the README runs, and documented output matches what symgrad prints."""

from __future__ import annotations

import contextlib
import io
import linecache
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"```(\w*)\n(.*?)```", re.S)


def blocks() -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer(README.read_text())]


def python_blocks() -> list[str]:
    return [code for lang, code in blocks() if lang == "python"]


def run_snippet(code: str) -> str:
    """Run a snippet as the file ``README.md`` (so provenance quotes the snippet's own lines)."""
    linecache.cache["README.md"] = (len(code), None, code.splitlines(True), "README.md")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    return out.getvalue()


@pytest.mark.parametrize("code", python_blocks(), ids=lambda c: c.splitlines()[0][:40])
def test_snippet_runs(code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path))
    run_snippet(code)


def test_documented_output_matches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A python block followed by 'prints ...:' and a plain block prints exactly that block."""
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path))
    text = README.read_text()
    pattern = re.compile(
        r"```python\n((?:(?!```).)*)```\s*\n\s*prints\b[^`]*?\n\s*```\n((?:(?!```).)*)```", re.S
    )
    pairs = pattern.findall(text)
    assert len(pairs) >= 2, "the README should show snippets with their output"
    for code, expected in pairs:
        assert run_snippet(code) == expected


def test_readme_starts_with_the_two_commands() -> None:
    head = README.read_text().split("\n## ")[0]
    assert "make demo" in head and "make test" in head


@pytest.mark.cc
def test_c_excerpt_is_real(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The C excerpt's lines appear, in order, in the C backward pass of the snippet before it."""
    from symgrad.runtime.cc import compiler_available

    if not compiler_available():
        pytest.skip("no working C compiler")
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path))
    text = README.read_text()
    marker = text.index("<!-- excerpt of the C backward pass")
    code = [c for c in python_blocks() if text.index(c) < marker][-1]
    excerpt = text[marker:].split("```c\n", 1)[1].split("```", 1)[0]
    code = code.replace('backend="numpy"', 'backend="c"').replace(
        'print(f.source("backward"), end="")', 'source = f.source("backward")'
    )
    linecache.cache["README.md"] = (len(code), None, code.splitlines(True), "README.md")
    ns: dict[str, object] = {"__name__": "readme"}
    exec(compile(code, "README.md", "exec"), ns)
    lines = str(ns["source"]).splitlines()
    at = 0
    for want in excerpt.splitlines():
        if want.strip() == "...":
            continue
        while at < len(lines) and lines[at] != want:
            at += 1
        assert at < len(lines), f"README C excerpt line not found (in order): {want!r}"
        at += 1


def test_rerolled_moons_excerpt_is_real(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The re-rolled moons step's excerpt: each line (``...`` skipped) starts a line of the
    NumPy step the moons snippet compiles, in order."""
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path))
    text = README.read_text()
    marker = text.index("<!-- excerpt of the re-rolled moons step")
    code = next(c for c in python_blocks() if "sg.nn.MLP(2, [16, 16, 1])" in c)
    assert text.index(code) < marker
    excerpt = text[marker:].split("```py\n", 1)[1].split("```", 1)[0]
    out = run_snippet(code + "\nprint(step.source())\n")
    lines = out.splitlines()
    at = 0
    for want in excerpt.splitlines():
        if want.strip() == "...":
            continue
        while at < len(lines) and not lines[at].startswith(want):
            at += 1
        assert at < len(lines), f"not in the generated step (in order): {want!r}"
        at += 1
