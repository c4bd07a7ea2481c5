"""``symgrad.nn.functional`` (``import symgrad.nn.functional as F``): PyTorch's functional names.

Owns: :func:`one_hot` with PyTorch's meaning (int64 rows; ``num_classes=-1`` means one more than
the largest index, for tensors with data). Everything else is a re-export of
``symgrad.frontend.functional`` (``softmax(x, dim)``, ``log_softmax``, ``cross_entropy``, the
activations) or of ``symgrad.nn.layers`` (``dropout``). May import: ``symgrad.frontend``.
"""

from __future__ import annotations

from typing import Any

from symgrad.frontend.functional import (
    cross_entropy,
    log_softmax,
    logsumexp,
    relu,
    sigmoid,
    softmax,
    tanh,
)
from symgrad.frontend.functional import one_hot as _one_hot
from symgrad.frontend.tensor import Tensor, as_tensor
from symgrad.ir.dtypes import INT64
from symgrad.ir.errors import ArgumentError, ConcretizationError
from symgrad.ir.provenance import Provenance
from symgrad.nn.layers import dropout


def one_hot(tensor: Any, num_classes: int = -1) -> Tensor:
    """One-hot int64 rows of integer ``tensor`` (PyTorch's ``F.one_hot``; ``.float()`` them
    for a matrix product). ``num_classes=-1``: one more than the largest index."""
    t = as_tensor(tensor)
    if num_classes == -1:
        if t._data is None:
            raise ConcretizationError(
                "one_hot(x) without num_classes needs the largest index of x, which a traced "
                "function does not know: pass num_classes=",
                Provenance.capture(),
            )
        num_classes = int(t._data.max()) + 1 if t._data.size else 0
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
        raise ArgumentError(f"one_hot: num_classes must be an int >= 0, got {num_classes!r:.40}")
    return _one_hot(t, num_classes, INT64)


__all__ = [
    "cross_entropy",
    "dropout",
    "log_softmax",
    "logsumexp",
    "one_hot",
    "relu",
    "sigmoid",
    "softmax",
    "tanh",
]
