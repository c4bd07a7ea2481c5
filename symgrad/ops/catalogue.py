"""The op catalogue: a Markdown table of every registered op (``symgrad ops`` prints it, and
``docs/ops.md`` is generated from it, so the documentation cannot drift from the registry).

Owns: :func:`catalogue_markdown`. May import: ``symgrad.ir`` and the rest of ``symgrad.ops``.
"""

from __future__ import annotations

import symgrad.ops  # noqa: F401  (declares the built-in ops)
from symgrad.ir.opdef import registry


def catalogue_markdown() -> str:
    """A Markdown table of every registered op, generated from the registry."""
    lines = [
        "# Op catalogue",
        "",
        "Generated from the op registry by `symgrad ops` — do not edit by hand.",
        "",
        "| op | kind | inputs | differentiable | description |",
        "|---|---|---|---|---|",
    ]
    ops = registry()
    for name in sorted(ops):
        op = ops[name]
        arity = "variadic" if op.arity is None else str(op.arity)
        diff = "yes" if op.differentiable else "no"
        doc = " ".join(op.doc.split()) or "-"
        lines.append(f"| `{name}` | {op.kind.value} | {arity} | {diff} | {doc} |")
    return "\n".join(lines) + "\n"
