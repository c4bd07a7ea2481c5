"""``Tensor``'s in-place operations: ``+=``, ``-=``, ``*=``, ``/=`` and PyTorch's ``add_``,
``sub_``, ``mul_``, ``div_``, ``zero_``, ``fill_``, ``copy_``, ``normal_``, ``uniform_`` and
``requires_grad_``.

Owns: :class:`InplaceMethods`, a base class of ``Tensor`` (``tensor.py``), and PyTorch's rules
for them. On a leaf with data (a tensor made by ``Tensor(...)``, ``randn`` or any op without
gradient history) the update gives the leaf new data and it stays a leaf (unless the operand
requires grad: then, as in PyTorch, the tensor becomes the result, with gradient history), so
``W *= 0.1; W.requires_grad = True`` and ``with no_grad(): p -= lr * p.grad`` work as in
PyTorch. A leaf that requires grad may be updated in place only under ``no_grad()`` (otherwise
the update would have to be differentiated: PyTorch refuses it too). On any other tensor
(a result with history, a traced tensor) ``x += y`` rebinds the name to the new result, as
for immutable Python values; the explicit ``add_``-style methods refuse, naming what to write
instead. Inside ``compile_step``'s trace, an in-place update of a captured leaf (a BatchNorm
buffer: ``running_mean.mul_(0.9).add_(0.1 * mean)``) is recorded in :data:`INPLACE` and
becomes state the step writes back. May import: numpy, ``symgrad.ir``, ``symgrad.ops`` and
``symgrad.frontend.grad_mode``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from symgrad.frontend.grad_mode import GRAD
from symgrad.ir.errors import DTypeError, ShapeError, TraceError
from symgrad.ir.provenance import Provenance

if TYPE_CHECKING:
    from symgrad.ir.node import Node


class _InplaceLog:
    """The in-place updates of captured leaves made while ``compile_step`` traces (``log`` is
    None outside it): ``(leaf, its node before the first update, its data)``."""

    __slots__ = ("entries",)

    def __init__(self) -> None:
        self.entries: list[tuple[Any, Node, np.ndarray]] | None = None


INPLACE = _InplaceLog()

# (installed by symgrad.frontend.random: fill a tensor's shape from a generator)
RandomFill = Callable[[Any, int, float, float, Any], np.ndarray]
_RANDOM: list[RandomFill] = []


def install_random(fill: RandomFill) -> None:
    _RANDOM[:] = [fill]


def _not_leaf(what: str, value: bool) -> TraceError:
    fix = (
        "For a new leaf with these values write `x = x.detach().requires_grad_()`; to read this "
        "result's gradient after backward(), call `x.retain_grad()` before it"
        if value
        else "For a copy without gradient history write `x = x.detach()`"
    )
    return TraceError(
        f"{what} on a tensor that is not a leaf: it is the result of ops on tensors that "
        f"require grad, and only leaves can change requires_grad (PyTorch refuses it too). {fix}",
        Provenance.capture(),
    )


def _not_float(what: str, dtype: Any) -> DTypeError:
    return DTypeError(
        f"{what} on a tensor of dtype {dtype}: only floating-point tensors can require "
        "gradients. "
        "Convert it first: `x = x.float().requires_grad_()` (or create it with a float dtype)",
        Provenance.capture(),
    )


def _set_requires_grad(self: Any, value: Any) -> None:
    """``x.requires_grad = value``: only on leaves, and True only on float tensors."""
    value = bool(value)
    if self._parents and (self._rg or value):
        raise _not_leaf(f"requires_grad = {value}", value)
    if value and not self.node.dtype.is_float:
        raise _not_float("requires_grad = True", self.node.dtype)
    self._rg = value


class InplaceMethods:
    __slots__ = ()

    if TYPE_CHECKING:
        node: Node
        _data: np.ndarray | None
        _parents: tuple[Any, ...]
        _pin: tuple[Any, ...]
        _rg: bool

        @property
        def requires_grad(self) -> bool: ...
        @requires_grad.setter
        def requires_grad(self, value: bool) -> None: ...
        def _assign(self, arr: np.ndarray) -> None: ...
    else:
        # (read at C speed: a property over the ``_rg`` slot; assignment is checked)
        requires_grad = property(operator.attrgetter("_rg"), _set_requires_grad)

    # -- the rules -------------------------------------------------------------------------------
    def _is_data_leaf(self) -> bool:
        return not self._parents and self._data is not None and self.node.op == "input"

    def _update(self, what: str, new: Any, rebind: bool) -> Any:
        """Make ``new`` (a Tensor) this tensor's value in place, or (``rebind``) return it."""
        if self._is_data_leaf():
            if self.requires_grad and GRAD.enabled:
                raise TraceError(
                    f"{what} on a leaf tensor that requires grad: the update would have to be "
                    "differentiated. Do parameter updates and initialisation under "
                    "`with symgrad.no_grad():` (or assign p.data = ...)",
                    Provenance.capture(),
                )
            data = new._data
            if data is None or GRAD.tracing:
                return self._record_traced(what, new, rebind)
            return self._store(what, data)
        if rebind:
            return new
        raise TraceError(
            f"{what} on a tensor that is not a leaf with data (the result of an op with gradient "
            "history, or a traced tensor): symgrad records each op as a new value. Write "
            "`x = x + y` (or `x += y`) instead",
            Provenance.capture(),
        )

    def _store(self, what: str, data: np.ndarray) -> Any:
        arr = np.asarray(data)
        if arr.shape != tuple(self.node.shape):
            raise ShapeError(
                f"{what}: the result has shape {arr.shape}, the tensor updated in place "
                f"{tuple(self.node.shape)}"
            )
        want = self.node.dtype
        if arr.dtype != want.np:
            if arr.dtype.kind == "f" and not want.is_float:
                raise DTypeError(
                    f"{what}: a {arr.dtype} result cannot be stored in place in a {want} tensor"
                )
            arr = arr.astype(want.np)
        self._assign(np.array(arr, copy=True))
        return self

    def _record_traced(self, what: str, new: Any, rebind: bool) -> Any:
        raise TraceError(
            f"{what}: an in-place update of a captured tensor with a traced value is "
            "supported inside symgrad.compile_step only (its result becomes state the "
            "step writes back); inside symgrad.compile, return the new value instead",
            Provenance.capture(),
        )

    def _traced_update(self, what: str, fn: Callable[[Any, Any], Any], other: Any) -> Any:
        """Inside compile_step's trace: ``self`` (a captured leaf) stands for its new value for
        the rest of the trace; compile_step restores it afterwards and writes the new value
        into its array after every step."""
        log = INPLACE.entries
        assert log is not None
        if self.requires_grad and GRAD.enabled:
            raise TraceError(
                f"{what} on a leaf tensor that requires grad: the update would have to be "
                "differentiated. Update parameters with the optimizer, and buffers under "
                "`with symgrad.no_grad():`",
                Provenance.capture(),
            )
        cls: Any = type(self)
        if not any(e[0] is self for e in log):
            assert self._data is not None  # (a leaf with data: see _inplace)
            log.append((self, self.node, self._data))
        # a copy standing for this tensor's current value (at first: a leaf with its input node
        # and array, what the graph reads), so that the chain of updates has no loop
        base = cls._wrap(self.node, self._data, self._parents, False)
        base.label = getattr(self, "label", "")
        new = fn(base, other)
        if new.node.shape != self.node.shape:
            raise ShapeError(
                f"{what}: the result has shape {new.node.shape}, the tensor updated in place "
                f"{self.node.shape}"
            )
        t: Any = self  # (a Tensor: its slots are Tensor's)
        t.node, t._data = new.node, new._data
        t._parents = (new,)
        t._pin = ((new.node, new._data),)
        return self

    def _inplace(self, what: str, fn: Callable[[Any, Any], Any], other: Any, rebind: bool) -> Any:
        from symgrad.frontend.grad_mode import no_grad

        if INPLACE.entries is not None and (
            self._is_data_leaf() or any(e[0] is self for e in INPLACE.entries)
        ):
            return self._traced_update(what, fn, other)
        if self._is_data_leaf() and not (self.requires_grad and GRAD.enabled):
            if GRAD.enabled and getattr(other, "_rg", False):
                return self._join_graph(fn, other)
            with no_grad():
                return self._update(what, fn(self, other), rebind)
        return self._update(what, fn(self, other), rebind)

    def _join_graph(self, fn: Callable[[Any, Any], Any], other: Any) -> Any:
        """``x += v`` on a leaf that needs no gradient, with a ``v`` that does: as in PyTorch,
        ``x`` becomes the result (a tensor with gradient history through ``v``)."""
        t: Any = self  # (a Tensor: its slots are Tensor's)
        cls: Any = type(self)
        base = cls._wrap(self.node, self._data, (), False)  # the old value, on its own
        new = fn(base, other)
        t.node, t._data = new.node, new._data
        t._parents, t._pin, t._rg = new._parents, new._pin, new._rg
        return self

    # -- Python's augmented assignment ---------------------------------------------------------
    def __iadd__(self, other: Any) -> Any:
        return self._inplace("+=", operator.add, other, True)

    def __isub__(self, other: Any) -> Any:
        return self._inplace("-=", operator.sub, other, True)

    def __imul__(self, other: Any) -> Any:
        return self._inplace("*=", operator.mul, other, True)

    def __itruediv__(self, other: Any) -> Any:
        return self._inplace("/=", operator.truediv, other, True)

    # -- PyTorch's in-place methods ----------------------------------------------------------------
    def add_(self, other: Any, alpha: float = 1.0) -> Any:
        o = other if alpha == 1.0 else other * alpha
        return self._inplace("add_()", operator.add, o, False)

    def sub_(self, other: Any, alpha: float = 1.0) -> Any:
        o = other if alpha == 1.0 else other * alpha
        return self._inplace("sub_()", operator.sub, o, False)

    def mul_(self, other: Any) -> Any:
        return self._inplace("mul_()", operator.mul, other, False)

    def div_(self, other: Any) -> Any:
        return self._inplace("div_()", operator.truediv, other, False)

    def zero_(self) -> Any:
        return self.fill_(0)

    def fill_(self, value: Any) -> Any:
        self._leaf_only("fill_()")
        full = np.full(self._static_shape(), value, dtype=self.node.dtype.np)
        return self._store("fill_()", full)

    def copy_(self, src: Any) -> Any:
        self._leaf_only("copy_()")
        data = np.asarray(src._data if hasattr(src, "_data") else src)
        return self._store("copy_()", np.broadcast_to(data, self._static_shape()))

    def normal_(self, mean: float = 0.0, std: float = 1.0, generator: Any = None) -> Any:
        """Fill with N(mean, std²) numbers from ``generator`` (symgrad's default one)."""
        self._leaf_only("normal_()")
        return self._store("normal_()", _RANDOM[0](self, 1, mean, std, generator))

    def uniform_(self, a: float = 0.0, b: float = 1.0, generator: Any = None) -> Any:
        """Fill with U[a, b) numbers from ``generator`` (symgrad's default one)."""
        self._leaf_only("uniform_()")
        return self._store("uniform_()", _RANDOM[0](self, 0, a, b, generator))

    def requires_grad_(self, requires_grad: bool = True) -> Any:
        """Set ``requires_grad`` on a leaf (PyTorch refuses it on other tensors, and so does
        symgrad: a result's gradient comes from its leaves). On a result that already requires
        grad, ``requires_grad_()`` changes nothing (as PyTorch)."""
        value = bool(requires_grad)
        if self._parents and (self._rg or value):
            if self._rg and value:
                return self
            raise _not_leaf(f"requires_grad_({value})", value)
        if value and not self.node.dtype.is_float:
            raise _not_float("requires_grad_()", self.node.dtype)
        t: Any = self
        t._rg = value
        return self

    def _static_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.node.shape)

    def _leaf_only(self, what: str) -> None:
        if not self._is_data_leaf():
            raise TraceError(
                f"{what} needs a leaf tensor with data (made by Tensor(...), randn, zeros, or "
                "an op without gradient history); this one is the result of an op with history "
                "or a traced tensor",
                Provenance.capture(),
            )
        if self.requires_grad and GRAD.enabled:
            raise TraceError(
                f"{what} on a leaf tensor that requires grad: do initialisation under "
                "`with symgrad.no_grad():`",
                Provenance.capture(),
            )
