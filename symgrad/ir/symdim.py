"""Symbolic dims that behave like ints in the user's code: :class:`SymDim`.

Owns: what ``x.shape`` holds for a symbolic dim (``Spec(("T", 3))``): a ``str`` subclass (so it
still *is* the dim's name, for every ``isinstance(d, str)`` of the graph machinery) with integer
arithmetic (``T - 1``, ``2 * T``, ``T * C``, ``T // 2`` as polynomials in the dims), comparisons
where the answer does not depend on the sizes (``T == T``, ``T + 1 > T``, ``T >= 0``), and one
clear error where it does (``T == 3``, ``bool(T)``) or where Python needs a concrete int
(``range(T)``, ``len(T)``, ``int(T)``). Graph shapes hold plain names only: :func:`plain_dim`
turns a ``SymDim`` back into its name (and refuses a derived one such as ``T - 1``, which no
graph shape can hold). May import: ``symgrad.ir.errors`` and ``symgrad.ir.provenance``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from symgrad.ir.errors import ConcretizationError, ShapeError
from symgrad.ir.provenance import Provenance

# A polynomial in the dims: monomial (sorted tuple of dim names, () for the constant) -> coefficient
Poly = dict[tuple[str, ...], int]


def _text(poly: Poly) -> str:
    parts: list[str] = []
    for mono, c in sorted(poly.items(), key=lambda kv: (-len(kv[0]), kv[0])):
        if c == 0:
            continue
        body = " * ".join(mono)
        if not mono:
            term = str(abs(c))
        elif abs(c) == 1:
            term = body
        else:
            term = f"{abs(c)} * {body}"
        if parts:
            parts.append(("- " if c < 0 else "+ ") + term)
        else:
            parts.append(("-" if c < 0 else "") + term)
    return " ".join(parts) or "0"


def _poly(x: Any) -> Poly | None:
    """``x`` as a polynomial (a SymDim, an int, or a plain dim name), else None."""
    if isinstance(x, SymDim):
        return x._poly
    if isinstance(x, bool):
        return None
    if isinstance(x, int):
        return {(): x} if x else {}
    if isinstance(x, np.integer):
        v = int(x)
        return {(): v} if v else {}
    if isinstance(x, str) and x.isidentifier():
        return {(x,): 1}
    return None


def _result(poly: Poly) -> Any:
    poly = {m: c for m, c in poly.items() if c}
    if not poly:
        return 0
    if list(poly) == [()]:
        return poly[()]
    return SymDim._of(poly)


def _undecided(what: str, a: Any, b: Any = None) -> ConcretizationError:
    shown = f"{a} {what} {b}" if b is not None else f"{what}({a})"
    return ConcretizationError(
        f"{shown} depends on the size a symbolic dim takes at run time, which a traced "
        "function does not know. Trace with concrete sizes (a Spec of ints, or arrays) if the "
        "code needs it, or compare shapes outside the traced function",
        Provenance.capture(),
    )


def _float_arith(op: str, d: Any, o: Any) -> TypeError:
    return TypeError(
        f"{d} {op} {o!r:.20}: a symbolic dim does integer arithmetic (+, -, *, // with ints and "
        "dims); to scale a tensor by it, use the dim with the tensor (x / T, x * T), which "
        "records the size in the graph"
    )


def _needs_int(what: str, d: SymDim) -> ConcretizationError:
    return ConcretizationError(
        f"{what} needs a concrete int, but {str(d)!r} is a symbolic dim (its size is known only "
        "when the compiled function runs). Use symgrad ops over whole axes instead of Python "
        "loops over it (x.sum(dim), symgrad.arange(T), x[:, :T]), or trace with concrete sizes",
        Provenance.capture(),
    )


class SymDim(str):
    """A symbolic dim, or an integer expression in symbolic dims (``T - 1``)."""

    __slots__ = ("_poly",)
    _poly: Poly

    def __new__(cls, name: str) -> SymDim:
        self = super().__new__(cls, name)
        self._poly = {(str(name),): 1}
        return self

    @classmethod
    def _of(cls, poly: Poly) -> SymDim:
        self = str.__new__(cls, _text(poly))
        self._poly = poly
        return self

    @property
    def is_plain(self) -> bool:
        """Whether this is a dim of the graph itself (not an expression in dims)."""
        return (
            len(self._poly) == 1
            and next(iter(self._poly.items()))[1] == 1
            and (len(next(iter(self._poly))) == 1)
        )

    # -- arithmetic ------------------------------------------------------------------------------
    def _add(self, o: Any, sign: int, reflected: bool = False) -> Any:
        if isinstance(o, float):
            raise _float_arith("+" if sign > 0 else "-", self, o)
        p = _poly(o)
        if p is None or (isinstance(o, str) and not isinstance(o, SymDim)):
            return NotImplemented
        out: Poly = {}
        mine = self._poly if not reflected else {m: sign * c for m, c in self._poly.items()}
        other = {m: (sign if not reflected else 1) * c for m, c in p.items()}
        for src in (mine, other):
            for m, c in src.items():
                out[m] = out.get(m, 0) + c
        return _result(out)

    def __add__(self, o: Any) -> Any:
        return self._add(o, 1)

    def __radd__(self, o: Any) -> Any:
        return self._add(o, 1, reflected=True)

    def __sub__(self, o: Any) -> Any:
        return self._add(o, -1)

    def __rsub__(self, o: Any) -> Any:
        return self._add(o, -1, reflected=True)

    def __neg__(self) -> Any:
        return _result({m: -c for m, c in self._poly.items()})

    def __pos__(self) -> SymDim:
        return self

    def __mul__(self, o: Any) -> Any:
        if isinstance(o, float):
            raise _float_arith("*", self, o)
        p = _poly(o)
        if p is None or (isinstance(o, str) and not isinstance(o, SymDim)):
            return NotImplemented
        out: Poly = {}
        for m1, c1 in self._poly.items():
            for m2, c2 in p.items():
                m = tuple(sorted(m1 + m2))
                out[m] = out.get(m, 0) + c1 * c2
        return _result(out)

    __rmul__ = __mul__

    def __truediv__(self, o: Any) -> Any:
        if isinstance(o, int | float | SymDim):
            raise _float_arith("/", self, o)
        return NotImplemented

    def __rtruediv__(self, o: Any) -> Any:
        if isinstance(o, int | float):
            raise _float_arith("/", o, self)
        return NotImplemented

    def __floordiv__(self, o: Any) -> Any:
        if isinstance(o, bool) or not isinstance(o, int):
            if isinstance(o, SymDim) and o._poly == self._poly:
                return 1
            return NotImplemented
        if o == 0:
            raise ZeroDivisionError(f"{self} // 0")
        if all(c % o == 0 for c in self._poly.values()):
            return _result({m: c // o for m, c in self._poly.items()})
        raise _undecided("//", self, o)

    # -- comparisons -----------------------------------------------------------------------------
    def _diff(self, o: Any, what: str) -> Poly:
        p = _poly(o)
        if p is None:
            raise TypeError(f"cannot compare the symbolic dim {str(self)!r} with {o!r:.40}")
        out = dict(self._poly)
        for m, c in p.items():
            out[m] = out.get(m, 0) - c
        return {m: c for m, c in out.items() if c}

    def _sign(self, o: Any, what: str) -> tuple[bool, bool]:
        """(known >= 0, known > 0) of ``self - o`` for every size >= 0 of the dims."""
        d = self._diff(o, what)
        rest = [c for m, c in d.items() if m]
        k = d.get((), 0)
        return all(c >= 0 for c in rest) and k >= 0, all(c >= 0 for c in rest) and k > 0

    def __eq__(self, o: object) -> bool:
        if isinstance(o, str) and not isinstance(o, SymDim):
            return str.__eq__(self, o)  # a dim name
        if _poly(o) is None:
            return False
        d = self._diff(o, "==")
        if not d:
            return True
        k = d.get((), 0)
        if k and all(c * k > 0 for c in d.values()):
            return False  # (a constant and terms of its sign: never 0 for sizes >= 0)
        raise _undecided("==", self, o)

    def __ne__(self, o: object) -> bool:
        return not self.__eq__(o)

    __hash__ = str.__hash__

    def __ge__(self, o: Any) -> bool:
        ge, _ = self._sign(o, ">=")
        if ge:
            return True
        _, lt = SymDim._sign_of(o, self)
        if lt:
            return False
        raise _undecided(">=", self, o)

    def __gt__(self, o: Any) -> bool:
        _, gt = self._sign(o, ">")
        if gt:
            return True
        le, _ = SymDim._sign_of(o, self)
        if le:
            return False
        raise _undecided(">", self, o)

    def __le__(self, o: Any) -> bool:
        le, _ = SymDim._sign_of(o, self)
        if le:
            return True
        _, gt = self._sign(o, ">")
        if gt:
            return False
        raise _undecided("<=", self, o)

    def __lt__(self, o: Any) -> bool:
        _, lt = SymDim._sign_of(o, self)
        if lt:
            return True
        ge, _ = self._sign(o, ">=")
        if ge:
            return False
        raise _undecided("<", self, o)

    @staticmethod
    def _sign_of(a: Any, b: SymDim) -> tuple[bool, bool]:
        """(known a - b >= 0, known a - b > 0)."""
        neg = b._diff(a, "")  # b - a
        rest = [c for m, c in neg.items() if m]
        k = neg.get((), 0)
        return all(c <= 0 for c in rest) and k <= 0, all(c <= 0 for c in rest) and k < 0

    # -- where Python needs a concrete int -------------------------------------------------------
    def __bool__(self) -> bool:
        raise _undecided("bool", self)

    def __index__(self) -> int:
        raise _needs_int("range(), a Python index or an int", self)

    def __int__(self) -> int:
        raise _needs_int("int()", self)

    def __len__(self) -> int:
        raise _needs_int("len()", self)

    def __iter__(self) -> Any:
        raise _needs_int("iterating", self)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self._poly,))


def _rebuild(poly: Poly) -> Any:
    return _result(poly)


def plain_dim(d: Any) -> Any:
    """A shape entry as the graph stores it: a ``SymDim`` of one dim becomes its plain name (a
    derived one, such as ``T - 1``, cannot be a graph dim: ``ShapeError``); others unchanged."""
    if d.__class__ is not SymDim:
        return d
    if d.is_plain:
        return str.__str__(d)
    raise ShapeError(
        f"the size {str(d)!r} is computed from symbolic dims: a shape can hold only an input's "
        "own symbolic dims (such as 'T') and ints. Give the computed size its own dim in the "
        "Spec, or trace with concrete sizes",
        Provenance.capture(),
    )


def user_shape(shape: tuple[Any, ...]) -> tuple[Any, ...]:
    """A graph shape as user code sees it: each symbolic dim name as a :class:`SymDim`."""
    return tuple([SymDim(d) if isinstance(d, str) else d for d in shape])
