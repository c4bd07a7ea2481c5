"""Fixtures of the security tests (see docs/security.md).

- every test runs with ``$SYMGRAD_CACHE_DIR`` set to a fresh private directory and with a fresh
  working directory (``workdir``), where a payload such as ``open("PWNED", "w")`` or
  ``system("touch PWNED")`` would create its file;
- tests marked ``@pytest.mark.cc`` are skipped cleanly when no working C compiler is found.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from symgrad.runtime.cc import compiler_available


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("cc") is not None and not compiler_available():
        pytest.skip("needs a working C compiler ($CC, default cc)")


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(root))
    return root


@pytest.fixture(autouse=True)
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working directory of the test: a payload that ran would leave PWNED here."""
    wd = tmp_path / "work"
    wd.mkdir()
    monkeypatch.chdir(wd)
    return wd
