"""The package version, read from the installed metadata (single source: pyproject.toml).

Owns: ``__version__``. It reads the ``Version:`` line of symgrad's ``*.dist-info/METADATA``
directly (``importlib.metadata`` costs ~20 ms of import time), falling back to
``importlib.metadata`` and, in an uninstalled checkout, to pyproject.toml.
May import: the standard library only.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

_PKG = Path(__file__).resolve().parent


def _from_dist_info() -> str | None:
    for entry in sys.path:
        base = Path(entry or ".")
        try:
            infos = sorted(base.glob("symgrad-*.dist-info"))
        except OSError:
            continue
        for info in infos:
            try:
                head = (info / "METADATA").read_text(encoding="utf-8")[:2000]
            except OSError:
                continue
            m = re.search(r"^Version:\s*(\S+)", head, re.M)
            if m:
                return m.group(1)
    return None


def _read() -> str:
    pyproject = _PKG.parent / "pyproject.toml"
    if pyproject.is_file() and (_PKG.parent / "codegen_templates").is_dir():
        m = re.search(r'^version\s*=\s*"([^"]+)"', pyproject.read_text(), re.M)
        if m:  # a source checkout (editable install): pyproject.toml is the single source
            return m.group(1)
    found = _from_dist_info()
    if found:
        return found
    try:
        from importlib.metadata import PackageNotFoundError, version

        return version("symgrad")
    except (ImportError, PackageNotFoundError):
        return "0+unknown"


__version__ = _read()
