"""Fixtures of the reliability tests (see docs/reliability.md).

- every test runs with ``$SYMGRAD_CACHE_DIR`` set to a fresh directory (``cache_dir``);
- tests marked ``@pytest.mark.cc`` are skipped cleanly when no working C compiler is found;
- ``backend``: parametrise a test over ``"numpy"`` and ``"c"`` (the C case carries the ``cc``
  mark) with ``@pytest.mark.parametrize("backend", BACKENDS)``;
- ``run_python(code, env=..., timeout=...)`` runs a script in a fresh interpreter from the
  repository root (for cross-process and toolchain tests).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from symgrad.runtime.cc import compiler_available

REPO_ROOT = Path(__file__).resolve().parents[2]

BACKENDS = ["numpy", pytest.param("c", marks=pytest.mark.cc)]

RunPython = Callable[..., subprocess.CompletedProcess[str]]


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("cc") is not None and not compiler_available():
        pytest.skip("needs a working C compiler ($CC, default cc)")


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh cache directory, set as ``$SYMGRAD_CACHE_DIR`` for the test."""
    root = tmp_path / "cache"
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(root))
    return root


@pytest.fixture
def run_python() -> RunPython:
    """``run_python(code, env={...}, timeout=120)``: ``code`` in a fresh interpreter with the
    test's environment plus ``env``; returns the completed process (text output)."""

    def run(
        code: str, env: Mapping[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            capture_output=True,
            text=True,
            env={**os.environ, **(env or {})},
            cwd=str(REPO_ROOT),
            timeout=timeout,
        )

    return run
