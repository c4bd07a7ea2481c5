"""Where in the user's code a graph node came from.

Owns: :class:`Provenance` (file, line, function and the rule that made a derived node), the
capture of the innermost user frame outside the symgrad package, and
:func:`provenance_override` (attribute every node made inside a block to one provenance).
May import: the standard library only.
"""

from __future__ import annotations

import linecache
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import CodeType, FrameType

_PKG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where in the user's code a node was created; ``via`` says which rule made it (e.g.
    ``"vjp tanh"`` for nodes of a backward pass, which carry their forward node's location)."""

    file: str
    line: int
    function: str
    via: str = ""

    @staticmethod
    def capture(frame: FrameType | None = None) -> Provenance | None:
        """The innermost stack frame outside the symgrad package (None if there is none), or
        the provenance set by :func:`provenance_override`."""
        if _OVERRIDE:
            return _OVERRIDE[-1]
        f: FrameType | None = frame if frame is not None else sys._getframe(1)
        pkg = _PKG_CODES
        while f is not None:
            code = f.f_code
            if code in pkg:  # (a set test, no call: most frames walked are symgrad's own)
                f = f.f_back
                continue
            if code not in _USER_CODES:
                if code.co_filename.startswith(_PKG_DIR):
                    if len(pkg) > _CACHE_LIMIT:
                        pkg.clear()
                    pkg.add(code)
                    f = f.f_back
                    continue
                if len(_USER_CODES) > _CACHE_LIMIT:
                    _USER_CODES.clear()
                _USER_CODES.add(code)
            # one object per user line: tracing makes a node per operation, often thousands
            # from one line
            key = (code, f.f_lineno)
            p = _CAPTURED.get(key)
            if p is None:
                if len(_CAPTURED) > _CACHE_LIMIT:
                    _CAPTURED.clear()
                p = _CAPTURED[key] = Provenance(code.co_filename, key[1], code.co_name)
            return p
        return None

    @property
    def source(self) -> str:
        """The text of the user's line (stripped), or "" when unavailable."""
        entry = linecache.cache.get(self.file)
        if entry is not None and len(entry) == 4:  # a file linecache has read: its lines
            lines = entry[2]
            return lines[self.line - 1].strip() if 1 <= self.line <= len(lines) else ""
        return linecache.getline(self.file, self.line).strip()

    @property
    def short(self) -> str:
        return f"{os.path.basename(self.file)}:{self.line}"

    def describe(self) -> str:
        src = self.source
        return f"{self.file}:{self.line}" + (f": {src}" if src else "")


_OVERRIDE: list[Provenance | None] = []
# Provenance.capture's memos: which code objects are symgrad's own, and the provenance of a
# user line (bounded: code objects made on the fly, e.g. by exec, would otherwise pile up)
_CACHE_LIMIT = 100_000
_PKG_CODES: set[CodeType] = set()  # code objects of symgrad's own modules
_USER_CODES: set[CodeType] = set()  # code objects outside the package
_CAPTURED: dict[tuple[CodeType, int], Provenance] = {}


@contextmanager
def provenance_override(p: Provenance | None) -> Iterator[None]:
    """Attribute every node created inside the block to ``p`` (used for derived nodes)."""
    _OVERRIDE.append(p)
    try:
        yield
    finally:
        _OVERRIDE.pop()
