"""Element types of graph values.

Owns: the four dtypes (float32, float64, int64, bool), their short names used in the text form
(``f32``, ``f64``, ``i64``, ``bool``) and conversion from user spellings. May import: numpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True, slots=True)
class DType:
    """One element type; compare with ``is`` or ``==`` (instances are singletons)."""

    name: str  # numpy name: "float32"
    short: str  # text-form name: "f32"
    c_type: str  # C99 spelling
    is_float: bool

    @property
    def np(self) -> np.dtype[Any]:
        return _NP_DTYPES[self.name]

    @property
    def family(self) -> str:
        """``"float"``, ``"int"`` or ``"bool"``: how lowerings are keyed across widths."""
        return "float" if self.is_float else "bool" if self.name == "bool" else "int"

    def __repr__(self) -> str:
        return self.name

    def __str__(self) -> str:
        return self.name


FLOAT32 = DType("float32", "f32", "float", True)
FLOAT64 = DType("float64", "f64", "double", True)
INT64 = DType("int64", "i64", "int64_t", False)
BOOL = DType("bool", "bool", "_Bool", False)

ALL_DTYPES: tuple[DType, ...] = (FLOAT32, FLOAT64, INT64, BOOL)
# each dtype's NumPy dtype, made once (``DType.np`` is read for every array symgrad makes)
_NP_DTYPES: dict[str, np.dtype[Any]] = {d.name: np.dtype(d.name) for d in ALL_DTYPES}
_BY_NP: dict[np.dtype[Any], DType] = {np.dtype(d.name): d for d in ALL_DTYPES}
_BY_NAME = {d.name: d for d in ALL_DTYPES} | {d.short: d for d in ALL_DTYPES}


def as_dtype(x: Any) -> DType:
    """Convert a DType, a name (``"float32"``, ``"f32"``), a NumPy dtype or a Python type."""
    if isinstance(x, DType):
        return x
    if isinstance(x, np.dtype):  # (every eager leaf: an array's dtype)
        found = _BY_NP.get(x)
        if found is not None:
            return found
    if x is float:
        return FLOAT64
    if x is int:
        return INT64
    if x is bool:
        return BOOL
    if isinstance(x, str) and x in _BY_NAME:
        return _BY_NAME[x]
    try:
        npd = np.dtype(x)
    except TypeError:
        npd = None
    if npd is not None:
        if npd.kind == "f" and npd.itemsize == 4:
            return FLOAT32
        if npd.kind == "f" and npd.itemsize == 8:
            return FLOAT64
        if npd.kind in "iu":
            return INT64
        if npd.kind == "b":
            return BOOL
    raise TypeError(f"unsupported dtype: expected one of float32, float64, int64, bool, got {x!r}")
