"""The one Jinja2 environment for generated files.

Owns: finding ``symgrad/codegen/templates/`` (shipped inside the package), rendering with
StrictUndefined and trimmed blocks, and :func:`fingerprint`, the hash of everything that decides
generated text (the templates and the printers' modules), which the cache aliases include so
that a changed printer never serves stale code. Templates only lay out files; expressions come
from the printers. Jinja2 is imported on first use, never at import time. May import: the
standard library and jinja2.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

_PKG = Path(__file__).resolve().parent.parent
_TEMPLATES = Path(__file__).resolve().parent / "templates"


def templates_dir() -> Path:
    """``symgrad/codegen/templates``, which ships inside the package."""
    if not (_TEMPLATES / "common" / "_header.j2").is_file():
        raise FileNotFoundError(
            f"symgrad's code templates are missing from {_TEMPLATES}; reinstall symgrad"
        )
    return _TEMPLATES


@functools.cache
def fingerprint() -> str:
    """sha256 of the templates and of the modules that print code (``symgrad/codegen`` and
    ``symgrad/ops``, where each op's emission templates live); computed once per process."""
    h = hashlib.sha256()
    files = sorted(templates_dir().rglob("*.j2"))
    for sub in ("codegen", "ops"):
        files += sorted((_PKG / sub).rglob("*.py"))
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
    """Render ``template`` (a path under symgrad/codegen/templates/) with ``context``."""
    from symgrad._version import __version__

    return str(
        environment()
        .get_template(template)
        .render(version=__version__, template_name=template, **context)
    )
