"""``Tensor``'s item assignment: ``x[key] = v`` and ``x[key] += v``, as PyTorch's eager code
writes them (makemore part 4's manual backprop: ``dlogits[range(n), Yb] -= 1``,
``dC[ix] += demb[k, j]``).

Owns: :class:`ItemAssignment`, a base class of ``Tensor`` (``tensor.py``). The key is NumPy's
(ints, slices, ``None``, ``...``, ``range``, lists, integer or boolean arrays and tensors), and
so is the assignment: the new value is the old array with the indexed elements replaced (the
old array is never written: results computed from it keep their values). The tensor object
then stands for the new value:

- nothing takes part in backward (neither the tensor nor ``v`` requires grad, or under
  ``no_grad()``): it becomes a leaf holding the new array;
- otherwise the new value is recorded in the graph: ``where(mask, new, x)`` when ``v`` needs
  no gradient (the gradient reaches ``x`` outside the written elements), and ``x`` with the
  written elements zeroed plus ``v`` scattered into them when it does (the gradient reaches
  both). A leaf that requires grad cannot be assigned into while gradients are recorded
  (PyTorch refuses it too), nor can a traced tensor (build the new value instead).

May import: numpy, ``symgrad.ir``, ``symgrad.ops`` and ``symgrad.frontend.grad_mode``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from symgrad.frontend.grad_mode import GRAD
from symgrad.ir.errors import IndexRangeError, ShapeError, TraceError, UnsupportedError
from symgrad.ir.opdef import as_node
from symgrad.ir.provenance import Provenance
from symgrad.ops import api

if TYPE_CHECKING:
    from collections.abc import Callable

    from symgrad.ir.node import Node


def _is_tensor(x: Any) -> bool:
    return hasattr(x, "node") and hasattr(x, "_data") and hasattr(x, "_rg")


def _concrete(x: Any, what: str) -> Any:
    if x._data is None:
        raise UnsupportedError(
            f"item assignment with a traced {what}: symgrad records each op as a new value "
            "and cannot write into one. Build the new tensor instead, e.g. "
            "`torch.where(mask, v, x)` or `x + F.one_hot(i, C) * v`",
            Provenance.capture(),
        )
    return x._data


def numpy_key(key: Any) -> tuple[Any, ...]:
    """``key`` with its tensors and ranges as NumPy indices (a 0-d integer tensor: an int)."""
    out: list[Any] = []
    for k in key if isinstance(key, tuple) else (key,):
        if _is_tensor(k):
            k = _concrete(k, "index")
            if k.ndim == 0 and k.dtype.kind in "iu":
                k = int(k)
        elif isinstance(k, range):
            k = np.arange(k.start, k.stop, k.step)
        elif isinstance(k, list):
            k = np.asarray([_concrete(e, "index") if _is_tensor(e) else e for e in k])
        out.append(k)
    return tuple(out)


class ItemAssignment:
    __slots__ = ()

    if TYPE_CHECKING:
        node: Node
        _data: np.ndarray | None
        _parents: tuple[Any, ...]
        _pin: tuple[Any, ...]
        _rg: bool

        def _apply(self, build: Callable[..., Node], *others: Any) -> Any: ...
        @classmethod
        def _wrap(cls, node: Node, data: Any, parents: tuple[Any, ...], rg: bool) -> Any: ...
        def _is_data_leaf(self) -> bool: ...

    def __setitem__(self, key: Any, value: Any) -> None:
        old = _concrete(self, "tensor")
        k = numpy_key(key)
        v = value if _is_tensor(value) else None
        vdata = _concrete(value, "value") if v is not None else value
        new = np.array(old, copy=True)
        try:
            new[k] = vdata
        except IndexError as e:
            raise IndexRangeError(f"x[...] = v: {e}", Provenance.capture()) from None
        except ValueError as e:
            raise ShapeError(
                f"x[...] = v into shape {old.shape}: {e}", Provenance.capture()
            ) from None
        grads = GRAD.enabled and (self._rg or (v is not None and v._rg))
        if self._is_data_leaf() and self._rg and GRAD.enabled:
            raise TraceError(
                "item assignment into a leaf tensor that requires grad: the update would have "
                "to be differentiated. Initialise or update parameters under "
                "`with symgrad.no_grad():` (or assign p.data[...] = ...)",
                Provenance.capture(),
            )
        t: Any = self  # (a Tensor: its slots are Tensor's)
        if not grads:  # a new leaf version holding the new array
            from symgrad.ops.source import make_input

            label = getattr(self, "label", "")
            t.node = make_input(new.shape, self.node.dtype, label, Provenance.capture())
            t._data, t._parents, t._pin = new, (), ()
            t._rg = self._rg and not self._parents
            return
        # the old value as a tensor of its own (its history, not this object): the new one
        # is computed from it
        base = type(self)._wrap(self.node, old, self._parents, self._rg)
        mask = np.zeros(old.shape, dtype=bool)
        mask[k] = True
        if v is None or not v._rg:
            result = base._apply(lambda x, m, n: api.where(m, n, x), mask, new)
        else:
            result = _scatter_into(base, mask, k, v)
        t.node, t._data = result.node, result._data
        t._parents, t._pin, t._rg = result._parents, result._pin, result._rg


def _scatter_into(base: Any, mask: np.ndarray, key: tuple[Any, ...], v: Any) -> Any:
    """``base`` with the elements at ``key`` replaced by ``v`` (which requires grad): the other
    elements of ``base`` plus ``v`` scattered into the written positions."""
    shape = mask.shape
    pos = np.arange(mask.size, dtype=np.int64).reshape(shape)[key]
    flat_pos = np.asarray(pos, dtype=np.int64).reshape(-1)
    if np.unique(flat_pos).size != flat_pos.size:
        raise UnsupportedError(
            "x[key] = v with a key naming an element twice, and a v that requires grad: which "
            "write wins is not defined. Write each element once (a loop over distinct "
            "indices), or build the sum from one_hot products",
            Provenance.capture(),
        )
    dtype = base.node.dtype
    vv = v if v.node.dtype is dtype else v._apply(lambda n: api.cast(n, dtype))
    spread = vv + np.zeros(np.shape(pos), dtype=dtype.np)  # v broadcast to the written part
    flat = spread.reshape(-1)
    size = int(mask.size)
    scattered = flat._apply(lambda f, i: api.scatter_add(f, i, shape=(size,)), flat_pos).reshape(
        shape
    )
    kept = base._apply(lambda x, m: api.where(m, as_node(0.0, x), x), mask)
    return kept + scattered
