"""Eager evaluation in the front end: user data as arrays, and a new node's value from the values
of its inputs.

Owns: :func:`to_array` (the arrays tensors hold: float32/float64, int64 or bool),
:func:`eager_value` (the value of a node built on tensors that have data: one op, or a composite
node by node like the interpreter, refusing a result too large for the machine before
allocating it) and :func:`concrete_error` (asking a symbolic tensor for its value). No tensor
objects: ``Tensor`` (``tensor.py``) calls these. May import: numpy and ``symgrad.ir``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from symgrad.ir.dtypes import as_dtype
from symgrad.ir.errors import ConcretizationError
from symgrad.ir.graph import check_memory, machine_memory, toposort, type_str
from symgrad.ir.node import Node
from symgrad.ir.opdef import EvalContext, get_op
from symgrad.ir.provenance import Provenance


def concrete_error(what: str) -> ConcretizationError:
    return ConcretizationError(
        f"{what} needs the value of a symbolic (traced) tensor. Tracing records one graph for "
        "every input, so Python control flow must not depend on traced values: use "
        "symgrad.where(cond, a, b) for data-dependent choices",
        Provenance.capture(),
    )


def to_array(data: Any, dtype: Any = None) -> np.ndarray:
    """``data`` (numbers, nested lists, an array) as a tensor's array: ``dtype`` when given,
    else float32/float64 (other float widths become float64), int64 or bool."""
    if dtype is None and data.__class__ is np.ndarray and data.dtype in _KEPT_DTYPES:
        return np.array(data)  # (an eager leaf: an array of a dtype kept as it is)
    if dtype is not None:
        return np.array(data, dtype=as_dtype(dtype).np)
    arr = np.array(data)
    if arr.dtype.kind == "f":
        return arr if arr.dtype.itemsize in (4, 8) else arr.astype(np.float64)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    if arr.dtype.kind == "b":
        return arr
    raise TypeError(f"expected numbers or an array of them, got {arr.dtype} data")


# NumPy's floating-point error state is a context variable (NumPy >= 2): eager ops evaluate
# under "ignore all" (PyTorch does not warn), set from one prepared state instead of an
# ``np.errstate`` built per op (about a microsecond of every eager op). Another NumPy, or a
# change of these internals: ``np.errstate``.
def _quiet_state() -> tuple[Any, Any]:
    try:
        from numpy._core import _ufunc_config as config

        var, make = config._extobj_contextvar, config._make_extobj  # type: ignore[attr-defined]
        return var, make(all="ignore")
    except (ImportError, AttributeError, TypeError):  # pragma: no cover
        return None, None


_ERR_STATE, _QUIET = _quiet_state()

_KEPT_DTYPES = frozenset(np.dtype(t) for t in ("float32", "float64", "int64", "bool"))


def eager_value(node: Node, env: dict[Node, Any]) -> np.ndarray:
    """The value of a new node from the values of its tensor inputs (``env``, by node)."""
    got = env.get(node)
    if got is not None:
        return got
    for i in node.inputs:
        if i not in env and i.op != "const":
            break
    else:
        if _ERR_STATE is not None:  # (np.errstate(all="ignore"), without rebuilding its state)
            token = _ERR_STATE.set(_QUIET)
            try:
                return _value(node, env)
            finally:
                _ERR_STATE.reset(token)
        with np.errstate(all="ignore"):
            return _value(node, env)
    # a composite (cross_entropy, softmax, ...): its nodes in order, like the interpreter
    vals = dict(env)
    with np.errstate(all="ignore"):
        for n in toposort([node], stop=vals):
            if n not in vals and n.op != "const":
                vals[n] = _value(n, vals)
    return vals[node]


def _value(node: Node, vals: dict[Node, Any]) -> np.ndarray:
    """``node``'s value from the values of its inputs (scalar constants may be missing)."""
    args = [vals[i] if i in vals else np.asarray(i.attrs["value"], i.dtype.np) for i in node.inputs]
    shape: Any = node.shape  # (static: eager values exist only for static shapes)
    npdt = node.dtype.np
    if math.prod(shape) * npdt.itemsize > machine_memory():  # before allocating it
        check_memory(shape, npdt.itemsize, f"{node.op} ({type_str(node)})", node.provenance)
    val = get_op(node.op).eval(EvalContext(node.attrs, shape, npdt, _NO_DIMS), *args)
    if val.__class__ is not np.ndarray:
        val = np.asarray(val)
    return val if val.dtype is npdt or val.dtype == npdt else val.astype(npdt)


_NO_DIMS: Mapping[str, int] = MappingProxyType({})  # (eager shapes are static)
