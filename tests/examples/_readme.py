"""Helpers to check the README's quoted outputs against what the commands really print.

- :func:`quoted_blocks`: the README's code blocks of one language, with the HTML comment just
  before each (``<!-- output of: COMMAND ... -->``, ``<!-- file: NAME ... -->``).
- :func:`assert_lines_match`: the quoted lines appear in the output in order; a line ``...``
  skips any number of output lines, ``...`` inside a line matches any text, and trailing spaces
  are ignored. Without ``...`` the lines must follow each other.
"""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCK = re.compile(r"(?:<!--(.*?)-->\s*\n)?```(\w*)\n(.*?)```", re.S)


def quoted_blocks(lang: str) -> list[tuple[str, str]]:
    """``(comment, body)`` of every block of language ``lang`` ("" for plain blocks)."""
    return [
        ((m.group(1) or "").strip(), m.group(3))
        for m in BLOCK.finditer(README.read_text(encoding="utf-8"))
        if m.group(2) == lang
    ]


def _line_pattern(line: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in line.rstrip().split("...")))


def assert_lines_match(expected: str, actual: str, what: str) -> None:
    got = [ln.rstrip() for ln in actual.splitlines()]
    at = 0
    skipping = True  # the quote may start anywhere in the output
    for want in expected.splitlines():
        if want.strip() == "...":
            skipping = True
            continue
        pattern = _line_pattern(want)
        if skipping:
            while at < len(got) and not pattern.fullmatch(got[at]):
                at += 1
            assert at < len(got), f"{what}: quoted line not found in order: {want!r}\n{actual}"
        else:
            assert at < len(got) and pattern.fullmatch(got[at]), (
                f"{what}: expected {want!r}, got {got[at] if at < len(got) else '<end>'!r}\n"
                f"{actual}"
            )
        at += 1
        skipping = False
