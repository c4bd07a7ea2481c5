"""Module-level functions of the public API (``symgrad.softmax`` etc.) over Tensors.

Owns: turning arrays and numbers into tensors for those functions. May import: numpy,
``symgrad.ir``, ``symgrad.ops`` and ``symgrad.frontend.tensor``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from symgrad.frontend.promote import promote_pair
from symgrad.frontend.tensor import Tensor, _run, as_tensor, lift
from symgrad.ir.dtypes import FLOAT64, INT64
from symgrad.ir.errors import ArgumentError, DTypeError, TraceError
from symgrad.ir.provenance import Provenance, provenance_override
from symgrad.ops import api
from symgrad.ops.elementwise import where as where_node
from symgrad.ops.softmax_nll import check_targets


def _t(x: Any) -> Tensor:
    return as_tensor(x)


def one_hot(indices: Any, num_classes: int, dtype: Any = FLOAT64) -> Tensor:
    """One-hot rows (float64 unless ``dtype`` says otherwise) of integer ``indices``."""
    return _run(lambda i: api.one_hot(i, num_classes, dtype), _t(indices))


# The composites below build several nodes each, deep inside ``symgrad.ops.api``: their
# provenance (the caller's line) is captured once, from the caller's frame, instead of by a walk
# over this package's frames per node (the same result: every frame skipped is symgrad's own).


def _dim(dim: Any, axis: Any, default: Any = -1) -> Any:
    """PyTorch's ``dim=`` or NumPy's ``axis=`` (not both)."""
    if dim is not None and axis is not None:
        raise ArgumentError("pass dim= (PyTorch) or axis= (NumPy), not both")
    return dim if dim is not None else axis if axis is not None else default


def softmax(x: Any, dim: Any = None, *, axis: Any = None, dtype: Any = None) -> Tensor:
    """exp(x) / sum(exp(x)) along ``dim`` (the last by default); ``axis=`` is an alias."""
    d = _dim(dim, axis)
    t = _t(x) if dtype is None else _t(x).astype(dtype)
    with provenance_override(Provenance.capture(sys._getframe(1))):
        return _run(lambda n: api.softmax(n, d), t)


def log_softmax(x: Any, dim: Any = None, *, axis: Any = None, dtype: Any = None) -> Tensor:
    d = _dim(dim, axis)
    t = _t(x) if dtype is None else _t(x).astype(dtype)
    with provenance_override(Provenance.capture(sys._getframe(1))):
        return _run(lambda n: api.log_softmax(n, d), t)


def logsumexp(
    x: Any,
    dim: Any = None,
    keepdim: bool = False,
    *,
    axis: Any = None,
    keepdims: bool | None = None,
) -> Tensor:
    d = _dim(dim, axis)
    k = keepdim if keepdims is None else keepdims
    with provenance_override(Provenance.capture(sys._getframe(1))):
        return _run(lambda n: api.logsumexp(n, d, k), _t(x))


def cross_entropy(logits: Any, targets: Any) -> Tensor:
    """Mean negative log-likelihood of integer class ``targets`` under ``logits`` (n, C).

    Eagerly (both operands have data) the per-row losses are one fused op, a stable pass per
    row whose gradient is one op too: the values of the composite ``-log_softmax(logits)[i, y]``
    that a traced function records (and that ``opt=2`` fuses the same way), for a fraction of
    the nodes in every training step."""
    with provenance_override(Provenance.capture(sys._getframe(1))):  # (see softmax)
        a, b = _t(logits), _t(targets)
        fused = a._data is not None and b._data is not None
        classes = a.shape[1] if a.ndim == 2 else None
        checked = fused and isinstance(classes, int) and b.dtype is INT64
        if checked and isinstance(classes, int):  # eager targets: checked now, not by a node
            try:
                check_targets(b._data, classes)
            except TraceError as e:
                raise type(e)(e.bare_message, Provenance.capture()) from None
        return _run(lambda x, y: api.cross_entropy(x, y, fused=fused, checked=checked), a, b)


def where(cond: Any, a: Any, b: Any) -> Tensor:
    """``a`` where ``cond`` else ``b`` (no gradient flows into ``cond``); branches of different
    dtypes are promoted as in PyTorch (``symgrad.frontend.promote``)."""
    a, b = lift(a), lift(b)
    try:
        return _where(cond, a, b)
    except DTypeError:
        both = promote_pair(a, b)
        if both is None:
            raise
    return _where(cond, *both)


def _where(cond: Any, a: Any, b: Any) -> Tensor:
    like = a if isinstance(a, Tensor) else b if isinstance(b, Tensor) else None
    ta = _t(a) if like is None or isinstance(a, Tensor) else None
    tb = _t(b) if like is None or isinstance(b, Tensor) else None
    from symgrad.ir.opdef import as_node

    if ta is not None and tb is not None:
        return _run(lambda c, x, y: where_node(c, x, y), _t(cond), ta, tb)
    if ta is not None:
        return _run(lambda c, x: where_node(c, x, as_node(b, x)), _t(cond), ta)
    assert tb is not None
    return _run(lambda c, y: where_node(c, as_node(a, y), y), _t(cond), tb)


def concatenate(xs: Sequence[Any], axis: int = 0) -> Tensor:
    return _run(lambda *ns: api.concatenate(ns, axis), *[_t(x) for x in xs])


def stack(xs: Sequence[Any], dim: int | None = None, *, axis: int | None = None) -> Tensor:
    """Join equally shaped tensors along a new dim (``dim=`` or NumPy's ``axis=``, 0 by
    default)."""
    d = _dim(dim, axis, 0)
    return _run(lambda *ns: api.stack(ns, d), *[_t(x) for x in xs])


# The functions of ops that declare one (``Surface.function``), installed from the registry by
# ``symgrad.frontend.surface``; declared here for type checkers.
if TYPE_CHECKING:

    def exp(x: Any) -> Tensor: ...
    def log(x: Any) -> Tensor: ...
    def tanh(x: Any) -> Tensor: ...
    def sigmoid(x: Any) -> Tensor: ...
    def relu(x: Any) -> Tensor: ...
    def sqrt(x: Any) -> Tensor: ...
    def maximum(a: Any, b: Any) -> Tensor: ...
    def minimum(a: Any, b: Any) -> Tensor: ...
