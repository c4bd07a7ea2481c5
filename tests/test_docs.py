"""Generated documentation is up to date."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_op_catalogue_is_current() -> None:
    # a fresh process, so ops declared by other tests (symgrad.elementwise) do not appear
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from symgrad.ops.catalogue import catalogue_markdown as c; print(c(), end='')",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    assert (ROOT / "docs" / "ops.md").read_text() == out, (
        "docs/ops.md is stale: regenerate it with `symgrad ops > docs/ops.md`"
    )
    assert "| `matmul` |" in out
