"""The one Jinja2 environment for generated files.

Owns: finding ``codegen_templates/`` (inside the installed package, or at the top of a source
checkout), rendering with StrictUndefined and trimmed blocks, and :func:`fingerprint`, the hash
of everything that decides generated text (the templates and the printers' modules), which the
cache aliases include so that a changed printer never serves stale code. Templates only lay
out files; expressions come from the printers. Jinja2 is imported on first use, never at
import time. May import: the standard library and jinja2.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

_PKG = Path(__file__).resolve().parent.parent


def templates_dir() -> Path:
    """``symgrad/codegen_templates`` in a wheel, else ``<checkout>/codegen_templates``."""
    for cand in (_PKG / "codegen_templates", _PKG.parent / "codegen_templates"):
        if (cand / "common" / "_header.j2").is_file():
            return cand
    raise FileNotFoundError(
        f"symgrad's code templates are missing (looked in {_PKG / 'codegen_templates'} and "
        f"{_PKG.parent / 'codegen_templates'}); reinstall symgrad"
    )


@functools.cache
def fingerprint() -> str:
    """sha256 of the templates and of the modules that print code (``symgrad/backends`` and
    ``symgrad/ops``, where each op's emission templates live); computed once per process."""
    h = hashlib.sha256()
    files = sorted(templates_dir().rglob("*.j2"))
    for sub in ("backends", "ops"):
        files += sorted((_PKG / sub).glob("*.py"))
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


@functools.cache
def environment() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def render(template: str, **context: Any) -> str:
    """Render ``template`` (a path under codegen_templates/) with ``context``."""
    from symgrad._version import __version__

    return str(
        environment()
        .get_template(template)
        .render(version=__version__, template_name=template, **context)
    )
