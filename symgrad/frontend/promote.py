"""PyTorch's type promotion for elementwise binary ops on tensors of different dtypes.

Owns: :func:`promoted`, which the front end's binary operators call when an op refused its
operands' dtypes (the IR itself never mixes dtypes: every op sees one dtype, and a promotion
is an explicit ``cast`` node, differentiable like any other). PyTorch's rule, by category
(bool < integer < float) and then by priority (tensors with dims > 0-d tensors > Python
numbers):

- the result's category is the highest among all operands;
- its dtype is the widest of that category among the operands with dims; if none has that
  category, among the 0-d tensors; else a Python number's: the default float dtype
  (float32 unless ``set_default_dtype``) for a float, int64 for an int.

So ``float64 tensor * float32 tensor`` is float64, ``float32 tensor * 0-d float64 tensor``
float32 (as PyTorch), ``int64 tensor * 0.5`` float32, ``int64 tensor + float32 tensor``
float32. True division of integers or bools gives the default float dtype (``/``). NumPy
arrays count as tensors (NumPy scalars as Python numbers). ``matmul`` is not promoted
(PyTorch refuses mixed dtypes there too). May import: numpy, ``symgrad.ir`` and the
``tensor*`` modules.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from symgrad.frontend.tensor import Tensor
from symgrad.frontend.tensor_create import get_default_dtype
from symgrad.ir.dtypes import BOOL, FLOAT32, FLOAT64, INT64, DType, as_dtype
from symgrad.ir.opdef import Kind, registry

_CATEGORY = {BOOL: 0, INT64: 1, FLOAT32: 2, FLOAT64: 2}
_WIDTH = {BOOL: 0, INT64: 1, FLOAT32: 1, FLOAT64: 2}
_DIMS, _ZERO_D, _NUMBER = 0, 1, 2  # an operand's priority


def _describe(x: Any) -> tuple[DType, int] | None:
    """An operand's dtype and priority; None for what promotion does not know."""
    if isinstance(x, Tensor):
        return x.dtype, _DIMS if x.ndim else _ZERO_D
    if isinstance(x, bool | np.bool_):
        return BOOL, _NUMBER
    if isinstance(x, int | np.integer):
        return INT64, _NUMBER
    if isinstance(x, float | np.floating):
        return get_default_dtype(), _NUMBER
    if isinstance(x, np.ndarray | list | tuple):
        try:
            arr = np.asarray(x)
            return as_dtype(arr.dtype), _DIMS if arr.ndim else _ZERO_D
        except (TypeError, ValueError):
            return None
    return None


def result_dtype(*operands: Any) -> DType | None:
    """The dtype PyTorch gives an elementwise op on ``operands`` (None if one is unknown)."""
    described = [_describe(x) for x in operands]
    if any(d is None for d in described):
        return None
    kinds = [d for d in described if d is not None]
    top = max(_CATEGORY[dt] for dt, _ in kinds)
    for priority in (_DIMS, _ZERO_D, _NUMBER):
        found = [dt for dt, p in kinds if p == priority and _CATEGORY[dt] == top]
        if found:
            return max(found, key=lambda dt: _WIDTH[dt])
    return None  # (unreachable: some operand has the top category)


def _cast(x: Any, dt: DType) -> Any:
    if isinstance(x, Tensor):
        return x if x.dtype is dt else x.astype(dt)
    if isinstance(x, np.ndarray | list | tuple):
        arr = np.asarray(x)
        return arr if arr.dtype == dt.np else arr.astype(dt.np)
    if dt.is_float and not isinstance(x, float | np.floating):
        return float(x)
    return x


def promoted(name: str, a: Any, b: Any) -> tuple[Any, Any] | None:
    """``a`` and ``b`` cast to their common dtype for the elementwise op ``name``, or None when
    promotion does not apply (not elementwise, unknown operands, or nothing to cast)."""
    op = registry().get(name)
    if op is None or op.kind is not Kind.ELEMENTWISE:
        return None
    return promote_pair(a, b, op.surface.operator == "truediv")


def promote_pair(a: Any, b: Any, true_division: bool = False) -> tuple[Any, Any] | None:
    """``a`` and ``b`` cast to their common dtype (``where``'s two branches, a binary op's
    operands), or None when nothing is to cast or an operand is unknown."""
    dt = result_dtype(a, b)
    if dt is None:
        return None
    if true_division and not dt.is_float:
        dt = get_default_dtype()
    pa, pb = _cast(a, dt), _cast(b, dt)
    if pa is a and pb is b:
        return None
    return pa, pb
