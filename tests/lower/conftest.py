"""Fixtures of the lowering tests.

- tests marked ``@pytest.mark.cc`` are skipped cleanly when no working C compiler is found;
- ``BACKENDS``: parametrise a test over ``"numpy"`` and ``"c"`` (the C case carries the ``cc``
  mark) with ``@pytest.mark.parametrize("backend", BACKENDS)``.
"""

from __future__ import annotations

import pytest

from symgrad.runtime.cc import compiler_available

BACKENDS = ["numpy", pytest.param("c", marks=pytest.mark.cc)]


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("cc") is not None and not compiler_available():
        pytest.skip("needs a working C compiler ($CC, default cc)")
