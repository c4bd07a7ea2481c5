"""Elementwise ops declared by a SymPy expression: the public door, ``symgrad.elementwise``.

``symgrad.elementwise(name, f, derivative=None)`` turns ``f`` (a function from a SymPy symbol to a
SymPy expression) into a registered elementwise op (:class:`ElementwiseOp`), callable on a
``Value``, ``Tensor``, NumPy array, number or graph ``Node``. Its derivative is obtained with
``sympy.diff`` (or taken from ``derivative``) by :mod:`symgrad.sympy_ops.derive`, lazily on the
first VJP, and is itself a registered elementwise op of ``(x, y)``
(:mod:`symgrad.sympy_ops.register`).

Security: a user's op name never becomes code. The op is registered under a generated name
(``ew_<letters, digits, underscores of the name>_<hash>``); the user's name is only kept for
display (in the op's ``doc`` and :func:`display_name`). Expressions are vetted by
:mod:`symgrad.sympy_ops.vet` before anything is printed from them.

Owns: :func:`elementwise`, :class:`ElementwiseOp` (and its dispatch to nodes and tensors),
:func:`display_name`, the generated registry names and the table of user ops by name.

May import: numpy, the standard library, ``symgrad.ir`` and the modules ``opinfo``, ``vet``,
``register`` and ``derive`` of ``symgrad.sympy_ops``; SymPy only lazily, inside functions (this
package is the only symgrad code that imports SymPy, and importing symgrad must not import it);
``symgrad.frontend.tensor`` lazily, to apply an op to tensors.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, overload

import numpy as np

from symgrad.ir.node import Node
from symgrad.ir.opdef import apply, op_label, registry
from symgrad.sympy_ops.derive import _partial
from symgrad.sympy_ops.opinfo import _LOCK, _OpInfo, _symbol
from symgrad.sympy_ops.register import _declare
from symgrad.sympy_ops.vet import _call_builder, _check_expr, _positional_arity

if TYPE_CHECKING:
    import sympy

    from symgrad.frontend.tensor import Tensor

__all__ = ["ElementwiseOp", "display_name", "elementwise"]

_USER_OPS: dict[str, ElementwiseOp] = {}  # by the user's name


class ElementwiseOp:
    """A user-declared elementwise op; call it on a ``Value``, ``Tensor``, NumPy array, number
    or graph ``Node``. Returned by :func:`symgrad.elementwise`."""

    __slots__ = ("_info", "name")

    def __init__(self, name: str, info: _OpInfo) -> None:
        self.name = name
        self._info = info

    @property
    def op_name(self) -> str:
        """The (generated, code-safe) name under which the op is registered."""
        return self._info.op_name

    @property
    def expr(self) -> sympy.Expr:
        """The op as a SymPy expression in the real symbol ``x``."""
        return self._info.expr

    @property
    def symbol(self) -> sympy.Symbol:
        """The SymPy symbol ``x`` of :attr:`expr` (``y`` in :attr:`derivative_expr` is the
        output)."""
        return self._info.args[0]

    @property
    def derivative_expr(self) -> sympy.Expr:
        """d(op)/dx in terms of ``x`` and ``y`` (``y`` stands for the op's output); derived on
        first use (or on the first backward pass) and cached."""
        return _partial(self._info, 0)

    @overload
    def __call__(self, x: Node) -> Node: ...

    @overload
    def __call__(self, x: Any) -> Tensor: ...

    def __call__(self, x: Any) -> Node | Tensor:
        op_name = self._info.op_name
        if isinstance(x, Node):
            return apply(op_name, (x,))
        from symgrad.frontend.tensor import Tensor, _run, lift

        x = lift(x)  # an eager Value: its tensor in the graph
        if not isinstance(x, Tensor):
            arr = np.asarray(x)
            if arr.dtype.kind not in "fiub":
                raise TypeError(
                    f"{self.name}: expected a symgrad Value/Tensor, a NumPy array or a number, "
                    f"got {type(x).__name__}"
                )
            x = Tensor(arr if arr.dtype.kind == "f" else arr.astype(np.float64))
        return _run(lambda n: apply(op_name, (n,)), x)

    def __repr__(self) -> str:
        return f"ElementwiseOp({self.name!r}, x -> {self._info.expr}, op={self.op_name!r})"


def elementwise(
    name: str,
    f: Callable[[sympy.Symbol], sympy.Expr],
    derivative: Callable[..., sympy.Expr] | None = None,
) -> ElementwiseOp:
    """Declare an elementwise op from a SymPy expression.

    ``f`` maps a SymPy symbol (real) to a SymPy expression in that symbol, e.g.
    ``symgrad.elementwise("mish", lambda x: x * sympy.tanh(sympy.log(1 + sympy.exp(x))))``.
    The derivative is derived with SymPy unless ``derivative`` is given: ``derivative(x)`` (an
    expression in ``x``) or ``derivative(x, y)`` (in ``x`` and ``y``, which stands for the op's
    output ``f(x)``). Declaring the same name again with the same expression returns the same
    op; a different expression under a used name is a ``ValueError``.
    """
    import sympy as sp

    if not isinstance(name, str):
        raise TypeError(f"elementwise: name must be a str, got {type(name).__name__}")
    if not name.strip():
        raise ValueError("elementwise: name must not be empty")
    if not callable(f):
        raise TypeError(
            f"elementwise({name!r}): f must be a function from a SymPy symbol to a SymPy "
            f"expression, got {type(f).__name__}"
        )
    if derivative is not None and not callable(derivative):
        raise TypeError(
            f"elementwise({name!r}): derivative must be a function like f or None, got "
            f"{type(derivative).__name__}"
        )
    x, y = _symbol(0), _symbol(1)
    expr = _call_builder(name, "f", f, (x,))
    expr = _check_expr(name, "f(x)", expr, {x})
    override = None
    if derivative is not None:
        params = _positional_arity(derivative)
        dargs = (x, y) if params >= 2 else (x,)
        d = _call_builder(name, "derivative", derivative, dargs)
        override = _check_expr(name, "derivative(" + ", ".join(map(str, dargs)) + ")", d, {x, y})
    key = sp.srepr(expr) + "|" + ("" if override is None else sp.srepr(override))
    with _LOCK:
        old = _USER_OPS.get(name)
        if old is not None:
            info = old._info
            old_key = (
                sp.srepr(info.expr)
                + "|"
                + ("" if info.overrides[0] is None else sp.srepr(info.overrides[0]))
            )
            if old_key == key:
                return old
            what = "expression" if sp.srepr(info.expr) != sp.srepr(expr) else "derivative"
            raise ValueError(
                f"an elementwise op named {name!r} is already declared with a different "
                f"{what} (x -> {info.expr}); choose another name"
            )
        op_name = _registry_name(name)
        doc = f"user op {name!r} declared with symgrad.elementwise: x -> {expr}" + (
            f" (derivative given: {override})" if override is not None else ""
        )
        info = _declare(op_name, name, (x,), expr, (override,), doc.replace("|", "\\|"))
        op = ElementwiseOp(name, info)
        _USER_OPS[name] = op
        return op


def display_name(op_name: str) -> str:
    """The user's name of an op declared with :func:`elementwise` (its registry name is
    generated), e.g. for graph printing; other ops are shown by their registry name."""
    return op_label(op_name)


def _registry_name(name: str) -> str:
    """A code-safe, unique registry name for the user's op name."""
    clean = re.sub(r"[^A-Za-z0-9_]", "", name)[:32].strip("_") or "op"
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()
    for n in (8, 16, 64):
        cand = f"ew_{clean}_{digest[:n]}"
        if cand not in registry():
            return cand
    raise ValueError(f"cannot find a free registry name for the op {name!r}")
