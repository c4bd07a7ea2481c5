"""Source ops (no inputs): graph inputs, scalar and array constants, arange, symbolic sizes.

Owns: the ``input``, ``const``, ``constant``, ``arange`` and ``dimsize`` declarations and
:class:`ConstArray`, the hashable wrapper that lets an array be a node attribute.
May import: numpy and ``symgrad.ir``.
"""

from __future__ import annotations

import hashlib
import itertools
from typing import Any

import numpy as np

from symgrad.ir.dtypes import INT64, DType, as_dtype
from symgrad.ir.errors import ShapeError, TraceError
from symgrad.ir.node import Dim, Node, Provenance, Shape
from symgrad.ir.opdef import Kind, OpDef, register

_uids = itertools.count()


class ConstArray:
    """A read-only array usable as a node attribute: equal and hashed by content."""

    __slots__ = ("array", "digest")

    def __init__(self, array: np.ndarray) -> None:
        a = np.array(array, copy=True, order="C")
        a.setflags(write=False)
        self.array = a
        h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
        self.digest = h.hexdigest()

    def __hash__(self) -> int:
        return hash(self.digest)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ConstArray) and other.digest == self.digest

    def __repr__(self) -> str:
        return f"array<{self.digest[:8]}>"


def check_shape(shape: Any) -> Shape:
    """Validate a user shape: ints >= 0 and symbolic dim names."""
    if isinstance(shape, int | str):
        shape = (shape,)
    try:
        dims = tuple(shape)
    except TypeError:
        raise ShapeError(f"a shape must be a tuple of ints and str dims, got {shape!r}") from None
    out: list[Dim] = []
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, int | str | np.integer):
            raise ShapeError(f"shape entries must be ints or str dim names, got {d!r} in {shape!r}")
        if isinstance(d, str):
            if not d.isidentifier():
                raise ShapeError(f"symbolic dim names must be identifiers, got {d!r}")
            out.append(d)
        else:
            if d < 0:
                raise ShapeError(f"dims must be >= 0, got {int(d)} in {shape!r}")
            out.append(int(d))
    return tuple(out)


register(
    OpDef(
        "input",
        Kind.SOURCE,
        0,
        eval=lambda ctx: _unbound(ctx),
        infer=lambda inputs, attrs: (attrs["shape"], as_dtype(attrs["dtype"])),
        differentiable=False,
        doc="a graph input (function argument, or a leaf Value/Tensor captured from Python)",
    )
)


def _unbound(ctx: Any) -> Any:
    raise TraceError(f"input {ctx.attrs.get('name')!r} has no value")


def make_input(shape: Any, dtype: Any, name: str = "") -> Node:
    """A fresh graph input (every call gives a distinct node)."""
    shp = check_shape(shape)
    dt = as_dtype(dtype)
    attrs = {"name": name, "uid": next(_uids), "shape": shp, "dtype": dt.name}
    return Node.make("input", (), attrs, shp, dt, Provenance.capture())


register(
    OpDef(
        "const",
        Kind.SOURCE,
        0,
        eval=lambda ctx: np.asarray(ctx.attrs["value"], dtype=ctx.dtype),
        infer=lambda inputs, attrs: ((), as_dtype(attrs["dtype"])),
        differentiable=False,
        doc="a scalar constant",
        emit={"numpy": "{value}", "c": "{value}"},
    )
)


def _constant_infer(inputs: tuple[Node, ...], attrs: dict[str, Any]) -> tuple[Shape, DType]:
    a = attrs["value"].array
    return tuple(int(d) for d in a.shape), as_dtype(a.dtype)


register(
    OpDef(
        "constant",
        Kind.SOURCE,
        0,
        eval=lambda ctx: ctx.attrs["value"].array,
        infer=_constant_infer,
        differentiable=False,
        emit={"numpy": "{const}"},
        doc="an array constant (e.g. a captured tensor that is not differentiated)",
    )
)


def make_constant(array: Any) -> Node:
    a = np.asarray(array)
    dt = as_dtype(a.dtype)
    ca = ConstArray(a.astype(dt.np, copy=False))
    return Node.make("constant", (), {"value": ca}, tuple(a.shape), dt, Provenance.capture())


def _arange_infer(inputs: tuple[Node, ...], attrs: dict[str, Any]) -> tuple[Shape, DType]:
    (n,) = check_shape((attrs["n"],))
    return (n,), INT64


register(
    OpDef(
        "arange",
        Kind.SOURCE,
        0,
        eval=lambda ctx: np.arange(ctx.shape[0], dtype=np.int64),
        infer=_arange_infer,
        differentiable=False,
        emit={"numpy": "np.arange({n})"},
        doc="0, 1, ..., n-1 as int64 (n may be a symbolic dim)",
    )
)


def _dimsize_infer(inputs: tuple[Node, ...], attrs: dict[str, Any]) -> tuple[Shape, DType]:
    check_shape(attrs["dims"])
    return (), as_dtype(attrs["dtype"])


def _dimsize_eval(ctx: Any) -> Any:
    n = 1
    for d in ctx.attrs["dims"]:
        n *= d if isinstance(d, int) else ctx.dims[d]
    return np.asarray(n, dtype=ctx.dtype)


register(
    OpDef(
        "dimsize",
        Kind.SOURCE,
        0,
        eval=_dimsize_eval,
        infer=_dimsize_infer,
        differentiable=False,
        emit={"numpy": "np.{dtype}({dims})"},
        doc="the product of some (symbolic) dims, as a scalar: the element count of a mean",
    )
)
