"""What ``symgrad.sympy_ops`` knows about each op it declared, and the lock that guards it.

Owns: :class:`_OpInfo` (an op's canonical argument symbols, its SymPy expression, explicit
partial derivatives and the partials derived so far), :func:`_symbol` (the canonical argument
symbols ``x, y, z, u3, ...``) and ``_LOCK`` (one re-entrant lock for every table of the package:
declared user ops, declared infos and the derivation cache).

May import: the standard library; SymPy only lazily, inside functions (importing symgrad must not
import it).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

_LOCK = threading.RLock()


def _symbol(i: int) -> Any:
    """The i-th canonical argument symbol: x, y, z, u3, u4, ... (all real)."""
    import sympy as sp

    return sp.Symbol(("x", "y", "z")[i] if i < 3 else f"u{i}", real=True)


@dataclass
class _OpInfo:
    """What this package knows about one op it declared (the registry holds the OpDef)."""

    op_name: str
    label: str
    args: tuple[Any, ...]  # SymPy symbols, canonical: (x,), (x, y), ...
    expr: Any  # SymPy expression in ``args``
    overrides: tuple[Any, ...]  # per argument: an explicit partial derivative, or None
    partials: dict[int, Any] = field(default_factory=dict)

    @property
    def out(self) -> Any:
        """The symbol that stands for the op's output in its partial derivatives."""
        return _symbol(len(self.args))
