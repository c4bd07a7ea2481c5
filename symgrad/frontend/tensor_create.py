"""Making tensors under PyTorch's names and defaults: ``tensor``, ``zeros``, ``ones``, ``full``,
``empty``, ``zeros_like``, ``ones_like``, ``full_like``, ``arange``, ``linspace``, ``eye``, and the
default float dtype (``get_default_dtype``/``set_default_dtype``, float32 as in PyTorch).

Owns: those functions. Eagerly (every size an int) each returns a leaf with data, which a traced
function reads as a constant; a shape with a symbolic dim (``x.shape[0]`` while tracing) gives a
traced tensor (a broadcast constant, or ``arange`` of the dim) instead. Floats default to
:func:`get_default_dtype` (like ``torch.tensor([1.0])``; ``symgrad.Tensor([1.0])`` keeps NumPy's
float64), integers to int64, bools to bool. ``device=`` is accepted and ignored (symgrad runs on
the CPU). May import: numpy, ``symgrad.ir``, ``symgrad.ops`` and ``symgrad.frontend.tensor``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from symgrad.frontend.tensor import Tensor
from symgrad.frontend.tensor_torch import Size, SymbolicSize
from symgrad.ir.dtypes import BOOL, FLOAT32, INT64, DType, as_dtype
from symgrad.ir.errors import ArgumentError, ShapeError
from symgrad.ir.provenance import Provenance
from symgrad.ops import api, api_torch

_DEFAULT: list[DType] = [FLOAT32]


def get_default_dtype() -> DType:
    """The dtype of float tensors made without a ``dtype`` (float32, as in PyTorch)."""
    return _DEFAULT[0]


def set_default_dtype(dtype: Any) -> None:
    """Make ``tensor``, ``zeros``, ``ones``, ``full``, ``arange``, ... default to ``dtype``
    (float32 or float64) for float values."""
    dt = as_dtype(dtype)
    if not dt.is_float:
        raise ArgumentError(f"set_default_dtype: expected float32 or float64, got {dt}")
    _DEFAULT[0] = dt


def _shape(size: tuple[Any, ...]) -> tuple[Any, ...]:
    """``zeros(2, 3)``, ``zeros((2, 3))``, ``zeros([2, 3])`` or ``zeros(x.size())``."""
    if len(size) == 1 and isinstance(size[0], tuple | list):
        return tuple(size[0])
    if len(size) == 1 and isinstance(size[0], Size | SymbolicSize):
        return tuple(size[0]())  # (``x.size`` itself, uncalled: its shape)
    return tuple(size)


def _leaf(arr: np.ndarray, requires_grad: bool) -> Tensor:
    return Tensor(arr, requires_grad=requires_grad)


def _dtype(dtype: Any, value: Any = 0.0) -> DType:
    if dtype is not None:
        return as_dtype(dtype)
    if isinstance(value, bool | np.bool_):
        return BOOL
    if isinstance(value, int | np.integer):
        return INT64
    return get_default_dtype()


def _filled(shape: tuple[Any, ...], value: Any, dt: DType, requires_grad: bool) -> Tensor:
    if all(isinstance(d, int | np.integer) for d in shape):
        return _leaf(np.full(tuple(int(d) for d in shape), value, dtype=dt.np), requires_grad)
    node = api_torch.full(shape, value, dt)  # a symbolic dim: a traced constant
    return Tensor._wrap(node, None, (), False)


def tensor(data: Any, dtype: Any = None, requires_grad: bool = False, device: Any = None) -> Tensor:
    """A new leaf holding ``data`` (copied); Python floats become the default float dtype
    (NumPy arrays and scalars keep theirs, as in PyTorch)."""
    if isinstance(data, Tensor):
        data = data.numpy()
    arr = np.array(data)
    if dtype is None and arr.dtype.kind == "f" and not isinstance(data, np.ndarray | np.generic):
        dtype = get_default_dtype()
    return Tensor(arr, requires_grad=requires_grad, dtype=dtype)


def zeros(*size: Any, dtype: Any = None, requires_grad: bool = False, device: Any = None) -> Tensor:
    return _filled(_shape(size), 0, _dtype(dtype), requires_grad)


def ones(*size: Any, dtype: Any = None, requires_grad: bool = False, device: Any = None) -> Tensor:
    return _filled(_shape(size), 1, _dtype(dtype), requires_grad)


def empty(*size: Any, dtype: Any = None, requires_grad: bool = False, device: Any = None) -> Tensor:
    """Zeros (symgrad has no uninitialised memory)."""
    return zeros(*size, dtype=dtype, requires_grad=requires_grad)


def full(
    size: Any, fill_value: Any, dtype: Any = None, requires_grad: bool = False, device: Any = None
) -> Tensor:
    return _filled(_shape((size,)), fill_value, _dtype(dtype, fill_value), requires_grad)


def _like(x: Any, value: Any, dtype: Any, requires_grad: bool) -> Tensor:
    t = x if isinstance(x, Tensor) else Tensor(x)
    dt = as_dtype(dtype) if dtype is not None else t.dtype
    if t._data is None:  # a traced tensor: a constant of its (possibly symbolic) shape
        return Tensor._wrap(api_torch.full(t.node.shape, value, dt), None, (), False)
    return _filled(t.node.shape, value, dt, requires_grad)


def zeros_like(x: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _like(x, 0, dtype, requires_grad)


def ones_like(x: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _like(x, 1, dtype, requires_grad)


def full_like(x: Any, fill_value: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _like(x, fill_value, dtype, requires_grad)


def arange(
    start: Any,
    end: Any = None,
    step: Any = 1,
    dtype: Any = None,
    requires_grad: bool = False,
    device: Any = None,
) -> Tensor:
    """``arange(n)``, ``arange(start, end, step)`` like PyTorch (int64 for integer arguments,
    else the default float dtype); ``arange(T)`` of a symbolic dim ``T`` while tracing."""
    if isinstance(end, str) and step == 1 and not isinstance(start, str) and start == 0:
        start, end = end, None  # arange(0, T)
    if end is None and step == 1 and isinstance(start, str):  # a symbolic dim
        out = Tensor._wrap(api.arange(start), None, (), False)
        return out if dtype is None else out.astype(dtype)
    lo, hi = (0, start) if end is None else (start, end)
    for v in (lo, hi, step):
        if isinstance(v, str):
            raise ShapeError(
                f"arange({start!r}, {end!r}, {step!r}): only arange(T) and arange(0, T) of a "
                "symbolic dim T are supported; its other ranges have sizes a graph shape "
                "cannot hold",
                Provenance.capture(),
            )
    ints = all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in (lo, hi, step))
    dt = as_dtype(dtype) if dtype is not None else INT64 if ints else get_default_dtype()
    if ints and dt is INT64:
        if lo == 0 and step == 1 and not requires_grad:  # the arange op, with its data (passes
            n = max(int(hi), 0)  # match ``x[arange(n), y]``; a trace keeps it symbolic-ready)
            return Tensor._wrap(api.arange(n), np.arange(n, dtype=np.int64), (), False)
        return _leaf(np.arange(lo, hi, step, dtype=np.int64), requires_grad)
    # (float ranges: the count and values as PyTorch computes them, in float64 then cast)
    n = max(0, int(np.ceil((float(hi) - float(lo)) / float(step))))
    vals = float(lo) + np.arange(n, dtype=np.float64) * float(step)
    return _leaf(vals.astype(dt.np), requires_grad)


def linspace(
    start: float,
    end: float,
    steps: int,
    dtype: Any = None,
    requires_grad: bool = False,
    device: Any = None,
) -> Tensor:
    """``steps`` values from ``start`` to ``end`` as PyTorch computes them: the step in the
    dtype, then the first half up from ``start`` and the second half down from ``end``, each
    value rounded once (a fused multiply-add)."""
    dt = as_dtype(dtype) if dtype is not None else get_default_dtype()
    f = dt.np.type
    lo, hi = f(start), f(end)
    step = np.float64((hi - lo) / f(steps - 1)) if steps > 1 else np.float64(0)
    i = np.arange(steps, dtype=np.float64)
    up = np.float64(lo) + step * i
    down = np.float64(hi) - step * (steps - 1 - i)
    vals = np.where(i < steps // 2, up, down)
    return _leaf(vals.astype(dt.np), requires_grad)


def eye(
    n: int, m: int | None = None, dtype: Any = None, requires_grad: bool = False, device: Any = None
) -> Tensor:
    dt = as_dtype(dtype) if dtype is not None else get_default_dtype()
    return _leaf(api_torch.eye_array(n, m, dt), requires_grad)
