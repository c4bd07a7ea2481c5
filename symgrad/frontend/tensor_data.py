"""``Tensor``'s data and its conversions: ``.data`` (read, and assigned to a leaf as a new
version), ``.numpy()``, ``.item()``, ``repr()``, the Python protocol (``bool``, ``float``,
``int``, use as an index) and NumPy's ``__array__``.

Owns: :class:`DataMethods`, a base class of ``Tensor`` (``tensor.py``), and the refusals that
keep tracing honest: each conversion of a symbolic (traced) tensor raises a
``ConcretizationError`` (or NumPy's ``TypeError``) saying why, instead of a wrong value.
(Assigning ``.data`` is ``Tensor._assign``'s.) May import: numpy, ``symgrad.ir`` and
``symgrad.frontend.tensor_eval``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from symgrad.frontend.tensor_eval import concrete_error
from symgrad.ir.dtypes import DType
from symgrad.ir.errors import ShapeError
from symgrad.ir.node import Node, Shape


class DataMethods:
    __slots__ = ()

    if TYPE_CHECKING:
        node: Node
        _data: np.ndarray | None
        _parents: tuple[Any, ...]

        @property
        def shape(self) -> Shape: ...
        @property
        def dtype(self) -> DType: ...
        def _assign(self, arr: np.ndarray) -> None: ...
        def _new_version(self) -> None: ...

    @property
    def data(self) -> Any:
        if self._data is None:
            raise concrete_error(".data")
        return self._data

    @data.setter
    def data(self, value: Any) -> None:
        if value is self._data and self.node.op == "input" and not self._parents:
            # ``p.data += u`` (a training step): the leaf's own array, updated in place -- a new
            # version (a new node: results from before keep theirs) of the same array, from
            # the same site; nothing to copy or convert
            self._new_version()
            return
        arr = np.asarray(value, dtype=self.node.dtype.np)
        self._assign(np.array(arr, copy=True) if arr is value else arr)

    def numpy(self) -> np.ndarray:
        """The data as an array of the tensor's dtype (also for a float32 ``Value``, whose
        ``.data`` is a Python float)."""
        if self._data is None:
            raise concrete_error(".numpy()")
        return np.asarray(self._data)

    def item(self) -> Any:
        """The one element as a Python number (float, int or bool, by dtype)."""
        d = self._data
        if d is None:
            raise concrete_error(".item()")
        if d.size != 1:
            raise ShapeError(f"item() needs a tensor with one element, got shape {d.shape}")
        return d.item()

    def __repr__(self) -> str:
        dims = ",".join(str(d) for d in self.shape)
        if self._data is None:
            return f"Tensor(<traced {self.dtype.short}[{dims}]>)"
        return f"Tensor({np.array2string(self._data, threshold=20)}, dtype={self.dtype})"

    # -- Python protocol: refuse to concretise traced values -----------------------------------
    def __bool__(self) -> bool:
        if self._data is None:
            raise concrete_error("bool() (an if/while condition or and/or)")
        return bool(self._data)

    def __float__(self) -> float:
        if self._data is None:
            raise concrete_error("float()")
        return float(self._data)

    def __int__(self) -> int:
        if self._data is None:
            raise concrete_error("int()")
        return int(self._data)

    def __index__(self) -> int:
        if self._data is None:
            raise concrete_error("use as a Python index (range(), list indexing, ...)")
        if self._data.size != 1 or self.dtype.is_float or self.dtype.name == "bool":
            raise TypeError(
                f"only an integer tensor with one element can be used as an index, got "
                f"{self.dtype}{tuple(self.shape)}"
            )
        return int(self._data)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        if self._data is None:
            raise TypeError(
                "a traced symgrad tensor cannot be converted to a NumPy array inside a traced "
                "function; use symgrad ops on it instead"
            )
        return np.asarray(self._data, dtype=dtype)
