"""NumPy functions (``__array_function__``) applied to symgrad tensors.

Owns: the table of NumPy functions that map to symgrad operations (``np.sum(t)``,
``np.concatenate([a, b])``, ``np.where(c, a, b)``, ...), and the refusal of every other NumPy
function on a traced tensor with an :class:`~symgrad.ir.errors.UnsupportedError` naming it. On
eager tensors (which have data) a function without a symgrad equivalent runs on ``.data`` and
returns a NumPy array, as before: no gradient flows through it. NumPy *ufuncs* are handled by
``Tensor.__array_ufunc__``. May import: numpy, ``symgrad.ir`` and ``symgrad.frontend``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from symgrad.frontend import functional as F
from symgrad.frontend.tensor import _HOOKS, Tensor, as_tensor
from symgrad.ir.errors import SymgradError, UnsupportedError
from symgrad.ir.provenance import Provenance


def _t(x: Any) -> Tensor:
    return as_tensor(x)


def _sum(a: Any, axis: Any = None, *, keepdims: bool = False) -> Any:
    return _t(a).sum(axis=axis, keepdims=keepdims)


def _mean(a: Any, axis: Any = None, *, keepdims: bool = False) -> Any:
    return _t(a).mean(axis=axis, keepdims=keepdims)


def _max(a: Any, axis: Any = None, *, keepdims: bool = False) -> Any:
    return _t(a).max(axis=axis, keepdims=keepdims)


def _min(a: Any, axis: Any = None, *, keepdims: bool = False) -> Any:
    return _t(a).min(axis=axis, keepdims=keepdims)


def _argmax(a: Any, axis: Any = None) -> Any:
    return _t(a).argmax(axis=axis)


def _argmin(a: Any, axis: Any = None) -> Any:
    return _t(a).argmin(axis=axis)


def _var(a: Any, axis: Any = None, *, ddof: float = 0, keepdims: bool = False) -> Any:
    return _t(a).var(axis=axis, ddof=ddof, keepdims=keepdims)  # (NumPy's default: ddof=0)


def _std(a: Any, axis: Any = None, *, ddof: float = 0, keepdims: bool = False) -> Any:
    return _t(a).std(axis=axis, ddof=ddof, keepdims=keepdims)


def _cumsum(a: Any, axis: Any = None) -> Any:
    t = _t(a)
    return t.reshape(-1).cumsum(0) if axis is None else t.cumsum(axis)


def _swapaxes(a: Any, axis1: int, axis2: int) -> Any:
    return _t(a).swapaxes(axis1, axis2)


def _expand_dims(a: Any, axis: int) -> Any:
    return _t(a).unsqueeze(axis)


def _reshape(a: Any, shape: Any = None, *, newshape: Any = None) -> Any:
    return _t(a).reshape(shape if shape is not None else newshape)


def _transpose(a: Any, axes: Any = None) -> Any:
    return _t(a)._np_transpose(axes)  # (NumPy's meaning, not PyTorch's transpose(d0, d1))


def _concatenate(arrays: Any, axis: int = 0) -> Any:
    return F.concatenate(list(arrays), axis)


def _stack(arrays: Any, axis: int = 0) -> Any:
    return F.stack(list(arrays), axis)


def _where(condition: Any, x: Any, y: Any) -> Any:
    return F.where(condition, x, y)


def _shape(a: Any) -> Any:
    return _t(a).shape


def _ndim(a: Any) -> Any:
    return _t(a).ndim


#: NumPy function -> its symgrad meaning (only the arguments listed are accepted).
SUPPORTED: dict[Callable[..., Any], Callable[..., Any]] = {
    np.sum: _sum,
    np.mean: _mean,
    np.max: _max,
    np.amax: _max,
    np.min: _min,
    np.amin: _min,
    np.argmax: _argmax,
    np.argmin: _argmin,
    np.var: _var,
    np.std: _std,
    np.cumsum: _cumsum,
    np.swapaxes: _swapaxes,
    np.expand_dims: _expand_dims,
    np.reshape: _reshape,
    np.transpose: _transpose,
    np.concatenate: _concatenate,
    np.stack: _stack,
    np.where: _where,
    np.shape: _shape,
    np.ndim: _ndim,
}


def _traced(args: Any, kwargs: Any) -> bool:
    def traced(x: Any) -> bool:
        if isinstance(x, Tensor):
            return x._data is None
        if isinstance(x, list | tuple):
            return any(isinstance(y, Tensor) and y._data is None for y in x)
        return False

    return any(traced(a) for a in args) or any(traced(v) for v in kwargs.values())


def _refuse(name: str, why: str) -> UnsupportedError:
    return UnsupportedError(
        f"numpy.{name}{why} is not supported on traced symgrad tensors: symgrad cannot record "
        f"it in the graph. Use a symgrad op instead (NumPy functions that map to one: "
        f"{', '.join(sorted(f.__name__ for f in SUPPORTED))}; ufuncs such as numpy.exp also "
        "work); see docs/ops.md",
        Provenance.capture(),
    )


def array_function(func: Any, args: Any, kwargs: Any) -> Any:
    """``Tensor.__array_function__``: a symgrad op for the functions in :data:`SUPPORTED`."""
    name = getattr(func, "__name__", str(func))
    impl = SUPPORTED.get(func)
    if impl is not None:
        try:
            return impl(*args, **kwargs)
        except TypeError as e:
            if isinstance(e, SymgradError) or "argument" not in str(e):
                raise
            if _traced(args, kwargs):
                raise _refuse(name, f" with arguments {sorted(kwargs)}") from None
    elif _traced(args, kwargs):
        raise _refuse(name, "")
    # an eager tensor: NumPy computes on its data (no gradient flows through the result)
    return func._implementation(*args, **kwargs)


_HOOKS.array_function = array_function
