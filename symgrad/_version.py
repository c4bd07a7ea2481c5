"""The package version, read from the installed metadata (single source: pyproject.toml).

Owns: ``__version__``. May import: the standard library only.
"""

from __future__ import annotations

import re
from pathlib import Path


def _read() -> str:
    try:
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("symgrad")
        except PackageNotFoundError:
            pass
    except ImportError:  # pragma: no cover
        pass
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    if pyproject.is_file():
        m = re.search(r'^version\s*=\s*"([^"]+)"', pyproject.read_text(), re.M)
        if m:
            return m.group(1)
    return "0+unknown"


__version__ = _read()
