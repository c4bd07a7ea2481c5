"""``Tensor``'s indexing and iteration: ``x[key]``, ``len(x)`` and ``for row in x``.

Owns: :class:`Indexing`, a base class of ``Tensor`` (``tensor.py``): which parts of a key are
tensor operands of the index op (tensors, and in eager code integer arrays, which become leaves
so that a new minibatch of indices is new data, not a new graph), ``x[idx]`` with one integer
array as a single gather (an embedding lookup), and the refusal of ``len()`` on a 0-d tensor or a
symbolic first dim. The elements of a 1-D tensor are scalar ``Value``\\ s (``_apply`` with
``indexing=True``, which ``Tensor`` defines). May import: numpy, ``symgrad.ir``, ``symgrad.ops``
and ``symgrad.frontend.tensor_eval``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np

from symgrad.ir.dtypes import INT64, DType
from symgrad.ir.errors import ConcretizationError
from symgrad.ir.node import Node, Shape
from symgrad.ir.provenance import Provenance
from symgrad.ops import api, api_index

TensorT = TypeVar("TensorT")  # the tensor type the methods return (Tensor)


def _int_array(k: Any) -> bool:
    """Whether ``k`` is an integer index array (an operand of an eager ``x[...]``)."""
    return isinstance(k, np.ndarray | list) and np.asarray(k).dtype.kind in "iu"


class Indexing(Generic[TensorT]):
    __slots__ = ()

    if TYPE_CHECKING:
        node: Node
        _data: np.ndarray | None

        @property
        def shape(self) -> Shape: ...
        @property
        def dtype(self) -> DType: ...
        def _apply(
            self, build: Callable[..., Node], *others: Any, indexing: bool = False
        ) -> TensorT: ...

    def __getitem__(self, key: Any) -> TensorT:
        if key.__class__ is tuple:
            for k in key:
                if isinstance(k, range):  # x[range(n), y]: the range as an index array
                    key = tuple(
                        [
                            np.arange(k.start, k.stop, k.step) if isinstance(k, range) else k
                            for k in key
                        ]
                    )
                    break
        elif isinstance(key, range):
            key = np.arange(key.start, key.stop, key.step)
        eager = self._data is not None
        if self.node.shape and (
            (eager and _int_array(key)) or (isinstance(key, Indexing) and key.dtype is INT64)
        ):
            return self._apply(api.gather, key, indexing=True)  # x[idx]: one gather
        items = key if isinstance(key, tuple) else (key,)
        operand = [isinstance(k, Indexing) or (eager and _int_array(k)) for k in items]

        def build(x: Node, *idx: Node) -> Node:
            it = iter(idx)
            mapped = tuple(next(it) if o else k for k, o in zip(items, operand, strict=True))
            return api_index.index(x, mapped if isinstance(key, tuple) else mapped[0])

        others = [k for k, o in zip(items, operand, strict=True) if o]
        return self._apply(build, *others, indexing=True)

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d tensor")
        d = self.node.shape[0]
        if isinstance(d, str):
            raise ConcretizationError(
                f"len() of a tensor whose first dim is the symbolic {d!r}: its size is known only "
                f"when the compiled function runs, and len() must return an int. Use "
                f"x.shape[0] (the dim itself, usable in shapes and slices) instead, or trace "
                "with concrete sizes",
                Provenance.capture(),
            )
        return d

    def __iter__(self) -> Iterator[TensorT]:
        for i in range(len(self)):
            yield self[i]
