"""The user's objects around a trace: what a traced function can reach, and putting it back.

Owns: :func:`snapshot` (the attributes, list items and dict values of the objects reachable
from a function: its closure and the globals it names, through attributes, lists, tuples and
dicts — the model, its layers, their tensors) and :meth:`Snapshot.restore_tensors`, which
``symgrad.trace`` runs after every trace: a tensor the trace stored in those objects (a layer's
``self.out = x @ self.weight``, BatchNorm's rebound running statistics) is put back as it was, so
nothing traced outlives the trace. (``compile_step`` carries such state: ``symgrad.train.state``.)
May import: numpy and ``symgrad.frontend.tensor``.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from symgrad.frontend.tensor import Tensor

_MAX_DEPTH = 8
_OPAQUE = (
    types.ModuleType,
    type,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    np.ndarray,
    np.generic,
    str,
    bytes,
    int,
    float,
    complex,
    bool,
)


@dataclass
class Snapshot:
    """The attributes, list items and dict values of the objects reachable from the roots."""

    objects: list[tuple[Any, dict[Any, Any]]] = field(default_factory=list)

    def changed(self) -> Iterator[tuple[Any, Any, Any, Any]]:
        """(container, key, value before, value now) for every slot that changed (MISSING
        before: a new attribute)."""
        for obj, before in self.objects:
            now = _slots(obj)
            for k, v in now.items():
                old = before.get(k, _MISSING)
                if old is not v:
                    yield obj, k, old, v

    def restore_tensors(self) -> list[tuple[Any, Any, Any, Any]]:
        """Undo every change that put a tensor in (or took one out of) the objects; returns
        them as :meth:`changed` gives them."""
        undone = [c for c in self.changed() if isinstance(c[2], Tensor) or isinstance(c[3], Tensor)]
        for obj, key, old, _ in undone:
            self.restore(obj, key, old)
        return undone

    def restore(self, obj: Any, key: Any, old: Any) -> None:
        if isinstance(obj, list):
            obj[key] = old
        elif isinstance(obj, dict):
            if old is _MISSING:
                del obj[key]
            else:
                obj[key] = old
        elif old is _MISSING:
            delattr(obj, key)
        else:
            setattr(obj, key, old)


_MISSING = object()


def _slots(obj: Any) -> dict[Any, Any]:
    if isinstance(obj, list):
        return dict(enumerate(obj))
    if isinstance(obj, dict):
        return dict(obj)
    return dict(vars(obj))


def _roots(fn: Callable[..., Any]) -> list[Any]:
    out: list[Any] = []
    fn = inspect.unwrap(fn)
    bound = getattr(fn, "__self__", None)
    if bound is not None:
        out.append(bound)
    target = getattr(fn, "__func__", fn)
    if isinstance(target, types.FunctionType):
        cv = inspect.getclosurevars(target)
        out += list(cv.nonlocals.values()) + list(cv.globals.values())
    elif not isinstance(target, _OPAQUE) and hasattr(target, "__dict__"):
        out.append(target)  # a callable object (a model)
    return out


def snapshot(fn: Callable[..., Any]) -> Snapshot:
    snap = Snapshot()
    seen: set[int] = set()
    stack = [(r, 0) for r in _roots(fn)]
    while stack:
        obj, depth = stack.pop()
        if id(obj) in seen or depth > _MAX_DEPTH or isinstance(obj, (*_OPAQUE, Tensor)):
            continue
        seen.add(id(obj))
        if isinstance(obj, tuple):
            stack += [(v, depth + 1) for v in obj]
            continue
        if not isinstance(obj, list | dict) and not hasattr(obj, "__dict__"):
            continue
        try:
            slots = _slots(obj)
        except TypeError:
            continue
        snap.objects.append((obj, slots))
        stack += [(v, depth + 1) for v in slots.values() if not isinstance(v, Tensor)]
    return snap
