"""Every Python snippet in the README runs, and documented output matches what symgrad prints."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"```(\w*)\n(.*?)```", re.S)


def blocks() -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer(README.read_text())]


def python_blocks() -> list[str]:
    return [code for lang, code in blocks() if lang == "python"]


@pytest.mark.parametrize("code", python_blocks(), ids=lambda c: c.splitlines()[0][:40])
def test_snippet_runs(code: str) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(README), "exec"), {"__name__": "readme"})


def test_documented_output_matches() -> None:
    """A python block followed by 'prints' and a plain block must print exactly that block."""
    text = README.read_text()
    pattern = re.compile(
        r"```python\n((?:(?!```).)*)```\s*\n\s*prints\s*\n\s*```\n((?:(?!```).)*)```", re.S
    )
    pairs = pattern.findall(text)
    assert pairs, "the README should show at least one snippet with its output"
    for code, expected in pairs:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, str(README), "exec"), {"__name__": "readme"})
        assert out.getvalue() == expected


def test_readme_starts_with_the_two_commands() -> None:
    head = README.read_text().split("\n## ")[0]
    assert "make demo" in head and "make test" in head
