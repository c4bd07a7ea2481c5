"""The exception types symgrad raises, all subclasses of :class:`SymgradError`.

Owns: error classes and the formatting of "where in the user's code" suffixes.
May import: the standard library and ``symgrad.ir.node`` (for provenance) lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from symgrad.ir.provenance import Provenance


class SymgradError(Exception):
    """Base class of every error symgrad raises on purpose."""


class TraceError(SymgradError, ValueError):
    """A model cannot be traced: bad shapes, dtypes, indices or control flow.

    The message names the op, what was expected and what was given, and the user's file:line.
    """

    def __init__(self, message: str, provenance: Provenance | None = None) -> None:
        self.provenance = provenance
        self.bare_message = message
        if provenance is not None:
            message = f"{message}\n  at {provenance.describe()}"
        super().__init__(message)


class ShapeError(TraceError):
    """Shapes (or symbolic dims) do not fit the op."""


class DTypeError(TraceError, TypeError):
    """Dtypes do not fit the op (e.g. float32 mixed with float64 without an explicit cast)."""


class IndexRangeError(ShapeError, IndexError):
    """An index array (integer-array indexing, ``one_hot`` classes, ``cross_entropy`` targets)
    holds a value outside the indexed axis: at trace time for data known then, and when a
    compiled function runs (the generated code checks every index)."""


class ConcretizationError(TraceError):
    """Python control flow or conversion asked for the value of a symbolic (traced) quantity."""


class ArgumentError(SymgradError, ValueError):
    """A compiled function was called with the wrong count, shape or dtype of arguments."""


class UnsupportedError(TraceError, TypeError):
    """An operation symgrad cannot record: a NumPy function or ufunc without a symgrad op
    applied to a symgrad tensor. The message names the function and suggests the symgrad op."""


class NonFiniteError(SymgradError, FloatingPointError):
    """``check_finite=True``: an input, output or gradient holds NaN or ±inf.

    ``origin`` names the first graph node that produced a non-finite value from finite inputs
    (its op and, in ``provenance``, the user's file:line; ``provenance.via`` is ``"vjp <op>"``
    when the node belongs to the backward pass); ``None`` when an input was non-finite.
    """

    def __init__(
        self, message: str, provenance: Provenance | None = None, origin: str | None = None
    ) -> None:
        self.provenance = provenance
        self.origin = origin
        self.bare_message = message
        if provenance is not None:
            message = f"{message}\n  at {provenance.describe()}"
        super().__init__(message)
