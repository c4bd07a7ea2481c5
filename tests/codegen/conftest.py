"""Shared fixtures for backend tests: a private cache directory, and skipping C-backend tests
cleanly when there is no working C compiler."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def private_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    root = tmp_path_factory.getbasetemp() / "symgrad-cache"
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(root))
    yield root


@pytest.fixture
def c_backend_ready(request: pytest.FixtureRequest) -> None:
    """Skip a test parametrised with backend="c" when no C compiler works."""
    backend = (
        request.node.callspec.params.get("backend") if hasattr(request.node, "callspec") else None
    )
    if backend != "c":
        return
    from symgrad.runtime.cc import compiler_available

    if not compiler_available():
        pytest.skip("no working C compiler")
    try:
        import symgrad.codegen.c.printer  # noqa: F401
    except ImportError:
        pytest.skip("the C backend is not available")
