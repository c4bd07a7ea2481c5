"""Eager ``Value`` leaves as arrays for generated code.

Owns: :class:`LeafArrays` (0-d arrays standing for leaf Values, which ``compile_step`` updates
in place). May import: numpy, ``symgrad.ir``, ``symgrad.ops`` and ``symgrad.frontend``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from symgrad.frontend.tensor import Tensor
from symgrad.frontend.value import Value
from symgrad.ops.tape import LEAF


class LeafArrays:
    """0-d float64 arrays standing for eager leaf Values, for generated code that updates
    parameters in place (``compile_step``): :meth:`arrays` loads the Values' data into one
    buffer and returns a view per Value; :meth:`store` writes the buffer back as their data.
    Other tensors pass through as their ``_data``."""

    def __init__(self, tensors: Sequence[Tensor | Value]) -> None:
        self.tensors = tuple(tensors)
        self._values = [t for t in self.tensors if type(t) is Value and t._code == LEAF]
        self._buf = np.zeros(len(self._values))
        views = {id(v): self._buf[i : i + 1].reshape(()) for i, v in enumerate(self._values)}
        # per tensor: the array standing for it (a leaf Value), or None (its _data, read per call)
        self._fixed = [views.get(id(t)) for t in self.tensors]

    def arrays(self) -> list[Any]:
        if self._values:
            self._buf[:] = [v._v for v in self._values]
        return [t._data if a is None else a for t, a in zip(self.tensors, self._fixed, strict=True)]

    def store(self) -> None:
        if not self._values:
            return
        for v, x in zip(self._values, self._buf.tolist(), strict=True):
            v._v = x
            v._tensor = None
