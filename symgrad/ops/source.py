"""Source ops (no inputs): graph inputs, scalar and array constants, arange, symbolic sizes.

Owns: the ``input``, ``const``, ``constant``, ``arange`` and ``dimsize`` declarations,
:class:`ConstArray`, the hashable wrapper that lets an array be a node attribute, and the
validation of user shapes (:func:`check_shape`: ints >= 0 or symbolic dim names; inputs and
constants that would need more memory than the machine has are refused before anything is
allocated, see ``symgrad.ir.graph.check_memory``). May import: numpy and ``symgrad.ir``.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from typing import Any

import numpy as np

from symgrad.ir.dtypes import INT64, DType, as_dtype
from symgrad.ir.errors import ShapeError, TraceError
from symgrad.ir.graph import check_memory, machine_memory
from symgrad.ir.node import Dim, Node, Shape
from symgrad.ir.opdef import Kind, OpDef, register
from symgrad.ir.provenance import Provenance
from symgrad.ir.symdim import plain_dim
from symgrad.ops.c.emitter import Emitter
from symgrad.ops.c.loops import prod

_uids = itertools.count()


class ConstArray:
    """A read-only array usable as a node attribute: equal and hashed by content."""

    __slots__ = ("array", "digest")

    def __init__(self, array: np.ndarray) -> None:
        given = np.asarray(array)
        _check_constant(given.shape, given.dtype.itemsize)
        a = np.array(given, copy=True, order="C")
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
    """Validate a user shape: ints >= 0 and symbolic dim names (identifiers)."""
    if shape.__class__ is tuple:  # the common case, ints >= 0: valid as it is
        for d in shape:
            if d.__class__ is not int or d < 0:
                break
        else:
            return shape
    if isinstance(shape, int | str | np.integer):
        shape = (shape,)
    try:
        dims = tuple(shape)
    except TypeError:
        raise ShapeError(
            f"expected a shape (a tuple of ints >= 0 and str dim names), got {shape!r:.80}"
        ) from None
    out: list[Dim] = []
    for d in dims:
        d = plain_dim(d)  # (a user's SymDim: its name)
        if isinstance(d, bool) or not isinstance(d, int | str | np.integer):
            raise ShapeError(
                f"expected shape entries to be ints >= 0 or str dim names, got {d!r:.40} "
                f"({type(d).__name__}) in {shape!r:.80}"
            )
        if isinstance(d, str):
            if not d.isidentifier():
                raise ShapeError(f"expected symbolic dim names to be identifiers, got {d!r:.80}")
            out.append(d)
        else:
            if d < 0:
                raise ShapeError(f"expected dims >= 0, got {int(d)} in {shape!r:.80}")
            out.append(int(d))
    return tuple(out)


def _check_constant(shape: tuple[int, ...], itemsize: int) -> None:
    if math.prod(shape) * itemsize > machine_memory():  # (the provenance only when failing)
        check_memory(shape, itemsize, "constant", Provenance.capture())


def check_input_shape(shape: Any, dtype: DType, what: str) -> Shape:
    """:func:`check_shape`, and refuse a shape whose array could not fit in memory."""
    shp = check_shape(shape)
    check_memory(shp, dtype.np.itemsize, what)
    return shp


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


def make_input(
    shape: Any, dtype: Any, name: str = "", provenance: Provenance | None = None
) -> Node:
    """A fresh graph input (every call gives a distinct node). ``provenance``: its, when the
    caller has captured it already (by default :meth:`Provenance.capture`)."""
    dt = as_dtype(dtype)
    if shape.__class__ is tuple and name.__class__ is str and _plain_fits(shape, dt):
        # (the common case, an array's shape: every eager leaf and .data assignment) valid as
        # it is, and its attributes' key written out as Node.make would build it
        uid = next(_uids)
        attrs = {"name": name, "uid": uid, "shape": shape, "dtype": dt.name}
        akey = (("dtype", dt.name), ("name", name), ("shape", shape), ("uid", uid))
        prov = provenance if provenance is not None else Provenance.capture()
        return Node.make_keyed("input", (), attrs, akey, shape, dt, prov)
    shp = check_input_shape(shape, dt, f"input {name!r:.80}" if name else "input")
    attrs = {"name": name, "uid": next(_uids), "shape": shp, "dtype": dt.name}
    return Node.make(
        "input", (), attrs, shp, dt, provenance if provenance is not None else Provenance.capture()
    )


def _plain_fits(shape: tuple[Any, ...], dtype: DType) -> bool:
    """Whether ``shape`` is ints >= 0 only (what :func:`check_shape` returns unchanged) of an
    array that fits in memory."""
    for d in shape:
        if d.__class__ is not int or d < 0:
            return False
    return math.prod(shape) * dtype.np.itemsize <= machine_memory()


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
    _check_constant(a.shape, max(a.dtype.itemsize, dt.np.itemsize))
    ca = ConstArray(a.astype(dt.np, copy=False))
    return Node.make("constant", (), {"value": ca}, tuple(a.shape), dt, Provenance.capture())


def _c_arange(e: Emitter, node: Node, out: str) -> list[str]:
    size = e.c(node.attrs["n"])
    return e.fill(out, size, "0" if size == "1" else "_i")  # fill() has no loop for 1


def _c_dimsize(e: Emitter, node: Node, out: str) -> list[str]:
    return [f"{out}[0] = ({node.dtype.c_type})({e.c(prod(node.attrs['dims']))});"]


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
        emit={"numpy": "np.arange({n})", "c": _c_arange},
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
        emit={"numpy": "np.{dtype}({dims})", "c": _c_dimsize},
        doc="the product of some (symbolic) dims, as a scalar: the element count of a mean",
    )
)
