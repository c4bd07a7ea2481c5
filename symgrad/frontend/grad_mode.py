"""Grad mode: ``symgrad.no_grad()`` / ``symgrad.enable_grad()`` (context managers and
decorators, as in PyTorch) and ``symgrad.is_grad_enabled()``.

Owns: the one flag that says whether new eager results take part in ``backward()``
(:data:`GRAD`). ``Tensor._wrap`` reads it once per op: with grad disabled a result has no
history (a leaf, like PyTorch's), and inside a traced function it is also cut off from the
gradient (a ``detach`` node), so a ``no_grad`` block in ``compile_step``'s loss contributes no
gradient either. May import: nothing of symgrad.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class _GradState:
    """``enabled``: grad mode; ``tracing``: how many traces are running (``symgrad.trace``
    sets it; while tracing, results without history keep their nodes, so the graph reads the
    captured leaves they come from)."""

    __slots__ = ("enabled", "tracing")

    def __init__(self) -> None:
        self.enabled = True
        self.tracing = 0


GRAD = _GradState()


class _Mode:
    """Sets grad mode to ``_value`` for a ``with`` block or a decorated function, and restores
    the previous mode afterwards (also when the block raises)."""

    _value = True

    def __init__(self) -> None:
        self._saved: list[bool] = []

    def __enter__(self) -> None:
        self._saved.append(GRAD.enabled)
        GRAD.enabled = self._value

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        GRAD.enabled = self._saved.pop()

    def __call__(self, fn: F) -> F:
        if not callable(fn):
            raise TypeError(
                f"{type(self).__name__}() decorates a function, got {type(fn).__name__}; "
                f"use `with {type(self).__name__}():` for a block"
            )
        mode = type(self)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with mode():
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


class no_grad(_Mode):
    """``with symgrad.no_grad():`` — results computed in the block have no gradient history:
    use it for parameter updates (``p -= lr * p.grad``), initialisation (``p *= 0.1``),
    evaluation and sampling. Also a decorator (``@symgrad.no_grad()``)."""

    _value = False


class enable_grad(_Mode):
    """Turns gradient recording back on inside a ``no_grad`` block (or as a decorator)."""

    _value = True


class set_grad_enabled(_Mode):
    """``set_grad_enabled(False)`` is ``no_grad()``; ``set_grad_enabled(True)`` ``enable_grad()``.
    Unlike PyTorch, it only takes effect as a context manager or decorator."""

    def __init__(self, mode: bool) -> None:
        super().__init__()
        self._value = bool(mode)

    def __call__(self, fn: F) -> F:
        value = self._value
        if not callable(fn):
            raise TypeError(f"set_grad_enabled() decorates a function, got {type(fn).__name__}")

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with set_grad_enabled(value):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


def is_grad_enabled() -> bool:
    return GRAD.enabled
