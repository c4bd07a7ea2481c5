"""PyTorch's module-level functions that are a tensor method: ``symgrad.sum(x, dim)``,
``symgrad.max(x, dim)``, ``symgrad.transpose(x, d0, d1)``, ``symgrad.cat(xs, dim)``, ...

Owns: those functions, each ``x``'s method (``tensor_reduce``, ``tensor_shape``,
``tensor_torch``) on ``x`` made a tensor, so function and method never differ; ``cat``/``stack``
with ``dim=``. The NumPy functions of the same names keep NumPy's meanings (``np.transpose(t)``,
``numpy_interop``). May import: numpy, ``symgrad.frontend.tensor`` and
``symgrad.frontend.functional``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from symgrad.frontend import functional
from symgrad.frontend.tensor import Tensor, as_tensor


def _t(x: Any) -> Tensor:
    return as_tensor(x)


def sum(x: Any, *args: Any, **kwargs: Any) -> Any:
    return _t(x).sum(*args, **kwargs)


def mean(x: Any, *args: Any, **kwargs: Any) -> Any:
    return _t(x).mean(*args, **kwargs)


def max(x: Any, *args: Any, **kwargs: Any) -> Any:
    """``max(x)``, ``max(x, dim)`` (values and indices) or ``max(a, b)`` (elementwise)."""
    return _t(x).max(*args, **kwargs)


def min(x: Any, *args: Any, **kwargs: Any) -> Any:
    return _t(x).min(*args, **kwargs)


def amax(x: Any, *args: Any, **kwargs: Any) -> Any:
    return _t(x).amax(*args, **kwargs)


def amin(x: Any, *args: Any, **kwargs: Any) -> Any:
    return _t(x).amin(*args, **kwargs)


def argmax(x: Any, *args: Any, **kwargs: Any) -> Any:
    return _t(x).argmax(*args, **kwargs)


def argmin(x: Any, *args: Any, **kwargs: Any) -> Any:
    return _t(x).argmin(*args, **kwargs)


def var(x: Any, *args: Any, **kwargs: Any) -> Any:
    return _t(x).var(*args, **kwargs)


def std(x: Any, *args: Any, **kwargs: Any) -> Any:
    return _t(x).std(*args, **kwargs)


def transpose(x: Any, dim0: int, dim1: int) -> Tensor:
    """Swap two dims (PyTorch's ``torch.transpose``)."""
    return _t(x).transpose(dim0, dim1)


def permute(x: Any, dims: Any) -> Tensor:
    return _t(x).permute(dims)


def reshape(x: Any, shape: Any) -> Tensor:
    return _t(x).reshape(shape)


def squeeze(x: Any, dim: Any = None) -> Tensor:
    return _t(x).squeeze(dim)


def unsqueeze(x: Any, dim: int) -> Tensor:
    return _t(x).unsqueeze(dim)


def flatten(x: Any, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    return _t(x).flatten(start_dim, end_dim)


def tril(x: Any, diagonal: int = 0) -> Tensor:
    return _t(x).tril(diagonal)


def triu(x: Any, diagonal: int = 0) -> Tensor:
    return _t(x).triu(diagonal)


def masked_fill(x: Any, mask: Any, value: Any) -> Tensor:
    return _t(x).masked_fill(mask, value)


def cumsum(x: Any, dim: int, dtype: Any = None) -> Tensor:
    return _t(x).cumsum(dim, dtype)


def prod(x: Any, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    return _t(x).prod(dim, keepdim, dtype=dtype)


def gather(x: Any, dim: int, index: Any) -> Tensor:
    return _t(x).gather(dim, index)


def sort(x: Any, dim: int = -1, descending: bool = False, stable: bool = True) -> Any:
    return _t(x).sort(dim, descending, stable)


def argsort(x: Any, dim: int = -1, descending: bool = False, stable: bool = True) -> Tensor:
    return _t(x).argsort(dim, descending, stable)


def topk(x: Any, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> Any:
    return _t(x).topk(k, dim, largest, sorted)


def clamp(x: Any, min: Any = None, max: Any = None) -> Tensor:
    return _t(x).clamp(min, max)


clip = clamp


def log10(x: Any) -> Tensor:
    return _t(x).log10()


def log2(x: Any) -> Tensor:
    return _t(x).log2()


def exp2(x: Any) -> Tensor:
    return _t(x).exp2()


def square(x: Any) -> Tensor:
    return _t(x).square()


def all(x: Any, *args: Any, **kwargs: Any) -> Any:
    return _t(x).all(*args, **kwargs)


def any(x: Any, *args: Any, **kwargs: Any) -> Any:
    return _t(x).any(*args, **kwargs)


def abs(x: Any) -> Tensor:
    return _t(x).abs()


def pow(x: Any, exponent: Any) -> Tensor:
    return _t(x) ** exponent


def matmul(a: Any, b: Any) -> Tensor:
    return _t(a) @ b


mm = bmm = matmul


def allclose(a: Any, b: Any, rtol: float = 1e-5, atol: float = 1e-8) -> bool:
    """Whether two tensors with data are close elementwise (PyTorch's and NumPy's rule)."""
    return bool(np.allclose(_t(a).numpy(), _t(b).numpy(), rtol=rtol, atol=atol))


def numel(x: Any) -> Any:
    return _t(x).numel()


def clone(x: Any) -> Tensor:
    return _t(x).clone()


def cat(tensors: Sequence[Any], dim: int = 0, *, axis: int | None = None) -> Tensor:
    """Join ``tensors`` along an existing dim (PyTorch's ``torch.cat``)."""
    return functional.concatenate(list(tensors), dim if axis is None else axis)


concat = cat
