"""Eager ``Value`` leaves as arrays for generated code.

Owns: :class:`LeafArrays` (0-d arrays standing for leaf Values, which ``compile_step`` updates
in place) and :class:`ValuePack` (leaf Values a compiled step takes as one array: a re-rolled
layer's weights, see ``symgrad/passes/pack.py``). May import: numpy, ``symgrad.ir``,
``symgrad.ops`` and ``symgrad.frontend``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from symgrad.frontend.tensor import Tensor
from symgrad.frontend.value import Value
from symgrad.ops.tape import LEAF


class ValuePack:
    """Leaf Values standing for one array of ``shape`` (row-major): a compiled step's packed
    parameter ``name``. ``_data`` is a fresh array of their values."""

    __slots__ = ("members", "name", "shape")

    def __init__(self, members: Sequence[Value], shape: tuple[int, ...], name: str) -> None:
        if int(np.prod(shape)) != len(members):
            n = int(np.prod(shape))
            raise ValueError(f"a pack of shape {shape} needs {n} Values, got {len(members)}")
        self.members = tuple(members)
        self.shape = tuple(shape)
        self.name = name

    @property
    def _data(self) -> np.ndarray:
        return np.array([v._v for v in self.members]).reshape(self.shape)

    def __repr__(self) -> str:
        return f"<ValuePack {self.name} of {len(self.members)} Values, shape {self.shape}>"


class LeafArrays:
    """float64 arrays standing for eager leaf Values, for generated code that updates
    parameters in place (``compile_step``): :meth:`arrays` loads the Values' data into one
    buffer and returns a view per Value (0-d) or per :class:`ValuePack` (its shape);
    :meth:`store` writes the buffer back as their data. Other tensors pass through as their
    ``_data``."""

    def __init__(self, tensors: Sequence[Tensor | Value | ValuePack]) -> None:
        self.tensors = tuple(tensors)
        scalars = [t for t in self.tensors if type(t) is Value and t._code == LEAF]
        packs = [t for t in self.tensors if isinstance(t, ValuePack)]
        self._values: list[Value] = [v for pk in packs for v in pk.members] + scalars
        self._buf = np.zeros(len(self._values))
        views: dict[int, np.ndarray] = {}
        at = 0
        for pk in packs:
            n = len(pk.members)
            views[id(pk)] = self._buf[at : at + n].reshape(pk.shape)
            at += n
        for i, v in enumerate(scalars):
            views.setdefault(id(v), self._buf[at + i : at + i + 1].reshape(()))
        # per tensor: the array standing for it (a leaf Value, a pack), or None (its _data,
        # read per call)
        self._fixed = [views.get(id(t)) for t in self.tensors]
        # (load, store) moving every Value's data in one call (the C tape module's, installed
        # by compile_step), or None: the loops below
        self.io: tuple[Any, Any] | None = None

    @property
    def n_values(self) -> int:
        return len(self._values)

    def arrays(self) -> list[Any]:
        if self.io is not None:
            self.io[0](self._values, self._buf)
        elif self._values:
            self._buf[:] = [v._v for v in self._values]
        return [t._data if a is None else a for t, a in zip(self.tensors, self._fixed, strict=True)]

    def store(self) -> None:
        if self.io is not None:
            self.io[1](self._values, self._buf)
            return
        if not self._values:
            return
        for v, x in zip(self._values, self._buf.tolist(), strict=True):
            v._v = x
            v._tensor = None
