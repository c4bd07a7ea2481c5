"""Aggregation by value (level 2): a batch reduction whose terms depend on the examples only
through small-range integer indices becomes a weighted sum over a table of counts.

Owns: the rules ``RULES`` (``sum_by_value`` on ``sum``, ``scatter_by_value`` on
``scatter_add``) and :func:`on_grid`, the analysis they share.

The per-example value ``x`` (shape ``B + T``: batch axes ``B``, then trailing axes ``T``)
*depends on the example only through indices* when elementwise ops build it from

- gathers ``M[i0, ..., ik]`` whose index arrays (the *keys*) broadcast to ``B`` and index static
  dims of ``M`` (the key's range: ``d`` values, negative indices wrap as gather's do), and
- values equal for every example: dims 1 (or absent) on ``B``, broadcasts of such values,
  constants equal along ``B``.

Then example ``j``'s value is ``F[key values of j]``, where ``F`` is the same expression on the
*grid* of key values (each gather becomes its table ``M`` laid along the grid axes of its keys),
and with ``counts = bincount(keys)`` (how many examples fall in each cell; one pass over the
keys, shared through CSE by every rewrite of the same keys):

- ``sum_by_value``: a sum over (at least) the batch axes of ``x`` is ``sum(counts * F)`` over the
  grid axes (the bigram's loss: ``sum(lse(W)[r] - W[r, y])`` reads 27×27 cells, not n examples);
- ``scatter_by_value``: ``scatter_add(x, i0..ik)`` is ``counts * F`` summed over the grid axes of
  the other keys; a uniform ``x`` (a mean's backward broadcasts one scalar ``g``) gives
  ``counts * g``.

Cells that no example hits contribute exactly 0 (``where(counts > 0, counts * F, 0)``): ``F``
may be NaN or inf there (an unused row of ``W``) without leaking, as the per-example form never
reads it. Index checks stay: ``bincount`` checks every key like gather (the same
``IndexRangeError``); a ``class_index`` key keeps one_hot's check. The rules fire when the grid
has at most ``MAX_CELLS`` cells and the batch is symbolic or has at least as many examples
(else the per-example form is as cheap).

Values: the sum is reordered (each cell's examples are counted, then the cells summed), so
results agree with the per-example form up to rounding of the result dtype (float32: a few ulp
of the loss; usually closer to the exact sum, with fewer terms). Counts are exact int64,
converted to the result dtype for the product (exact below 2**24 for float32).

May import: ``symgrad.ir``, ``symgrad.ops`` and the other pass modules.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import numpy as np

from symgrad.ir.dtypes import BOOL, INT64
from symgrad.ir.node import Dim, Node, Shape
from symgrad.ir.opdef import Kind, apply, broadcast_shapes, const, get_op, shape_size
from symgrad.ir.provenance import is_rewrite, provenance_override
from symgrad.ops import api
from symgrad.ops.elementwise import cast, where
from symgrad.ops.source import make_constant
from symgrad.passes.rewrite import Rule, rebuild

MAX_CELLS = 1 << 16  # cells of the count table (the product of the keys' ranges)
MAX_NODES = 64  # nodes of the per-example expression looked through


@dataclass(frozen=True)
class Grid:
    """``x`` as a function of its keys' values.

    ``keys`` are the index arrays, one per grid axis, ``cells`` their ranges, ``batch`` the
    number of batch axes of ``x`` and ``value`` the expression on the grid: shape ``cells`` (1
    on the axes it does not depend on) followed by ``x``'s trailing axes."""

    keys: tuple[Node, ...]
    cells: tuple[int, ...]
    batch: int
    value: Node


def _expression(x: Node) -> tuple[list[Node], list[Node]] | None:
    """The gathers and the other leaves of the elementwise expression ``x`` (None when it is
    larger than ``MAX_NODES``); a gather at one index tuple (all index dims 1) is a leaf like
    any value equal for every example."""
    gathers: list[Node] = []
    others: list[Node] = []
    seen: set[int] = set()
    stack = [x]
    while stack:
        u = stack.pop()
        if id(u) in seen:
            continue
        seen.add(id(u))
        if len(seen) > MAX_NODES:
            return None
        if u.op == "gather" and any(d != 1 for i in u.inputs[1:] for d in i.shape):
            gathers.append(u)
        elif u.inputs and get_op(u.op).kind is Kind.ELEMENTWISE:
            stack.extend(reversed(u.inputs))
        else:
            others.append(u)
    return gathers, others


def _keys(
    gathers: list[Node], first: Sequence[tuple[Node, Dim]]
) -> tuple[list[Node], list[int]] | None:
    """The distinct index arrays (``first``'s, then those of the gathers with the most indices
    first, so equal key sets come out in one order) and the range of each (the same in every
    use)."""
    keys: list[Node] = []
    cells: list[int] = []

    def add(i: Node, d: Dim) -> bool:
        if not isinstance(d, int) or i.ndim == 0:
            return False
        for k, key in enumerate(keys):
            if key is i:
                return cells[k] == d
        keys.append(i)
        cells.append(d)
        return True

    for i, d in first:
        if not add(i, d):
            return None
    for g in sorted(gathers, key=lambda g: -len(g.inputs)):
        m, *idx = g.inputs
        if len({id(i) for i in idx}) != len(idx):  # a diagonal, M[r, r]
            return None
        if not all(add(i, d) for i, d in zip(idx, m.shape, strict=False)):
            return None
    return keys, cells


def _lay(m: Node, axes: list[int], cells: list[int]) -> Node:
    """Table ``m``, indexed on its leading axes by the keys of grid ``axes``, laid on the grid:
    shape ``cells`` (1 on the other axes) followed by ``m``'s trailing axes."""
    k = len(axes)
    order = sorted(range(k), key=lambda j: axes[j])
    m = api.transpose(m, [*order, *range(k, m.ndim)])
    used = set(axes)
    grid = tuple(c if a in used else 1 for a, c in enumerate(cells))
    return api.reshape(m, grid + m.shape[k:])


def _uniform(u: Node, trail: int) -> Node | None:
    """``u`` (aligned to the right of ``B + T``) without its batch axes when it is the same for
    every example, else None."""
    lead = u.ndim - trail
    if lead <= 0:
        return u
    if all(d == 1 for d in u.shape[:lead]):
        return api.reshape(u, u.shape[lead:])
    if u.op == "broadcast_to":
        return _uniform(u.inputs[0], trail)
    if u.op == "constant":
        a = u.attrs["value"].array.reshape((-1, *u.shape[lead:]))
        if a.shape[0] and np.array_equal(a, np.broadcast_to(a[:1], a.shape), equal_nan=True):
            return const(a.flat[0].item(), u.dtype) if trail == 0 else make_constant(a[0])
    return None


def on_grid(x: Node, first: Sequence[tuple[Node, Dim]] = ()) -> Grid | None:
    """``x`` as a function of its keys' values, when it depends on the examples only through
    them (``first``: keys that must come first, with their ranges), the grid is small and the
    batch at least as large; else None."""
    found = _expression(x)
    if found is None or not (found[0] or first):
        return None
    gathers, others = found
    ks = _keys(gathers, first)
    if ks is None:
        return None
    keys, cells = ks
    b = broadcast_shapes(*(k.shape for k in keys))
    nb = len(b)
    trail = x.ndim - nb
    size, examples = math.prod(cells), shape_size(b)
    if x.shape[:nb] != b or size > MAX_CELLS or (examples is not None and examples < size):
        return None
    pos = {id(k): a for a, k in enumerate(keys)}
    lifted: dict[int, Node] = {}
    for g in gathers:
        m, *idx = g.inputs
        if m.ndim - len(idx) != trail:  # its rows must line up with x's trailing axes
            return None
        lifted[id(g)] = _lay(m, [pos[id(i)] for i in idx], cells)
    for u in others:
        v = _uniform(u, trail)
        if v is None:
            return None
        lifted[id(u)] = v

    def lift(u: Node) -> Node:
        if id(u) not in lifted:
            lifted[id(u)] = rebuild(u, [lift(i) for i in u.inputs])
        return lifted[id(u)]

    return Grid(tuple(keys), tuple(cells), nb, lift(x))


def weighted(grid: Grid, trail: Shape) -> Node:
    """``where(counts > 0, counts * F, 0)`` of shape ``cells + trail`` (a sum of bools counts
    the true cells, in int64)."""
    counts = apply("bincount", grid.keys, {"shape": grid.cells})
    c = api.reshape(counts, grid.cells + (1,) * len(trail))
    value = grid.value if grid.value.dtype is not BOOL else cast(grid.value, INT64)
    hit = apply("gt", (c, const(0, INT64)))
    out = where(hit, cast(c, value.dtype) * value, const(0, value.dtype))
    return api.broadcast_to(out, grid.cells + tuple(trail))


def _site(n: Node) -> AbstractContextManager[None]:
    """Attribute what a rule builds for ``n`` to the rewrite that made its summand, when one
    did (``fused softmax-NLL``: the gradient of the fused op stays labelled so), else to ``n``
    (the engine's default)."""
    for x in n.inputs[:1]:
        p = x.provenance
        if p is not None and is_rewrite(p.via):
            return provenance_override(p)
    return nullcontext()


def sum_by_value(n: Node) -> Node | None:
    """sum(x) over the batch axes (and maybe others) → sum(counts * F) over the grid."""
    with _site(n):
        return _sum_by_value(n)


def scatter_by_value(n: Node) -> Node | None:
    """scatter_add(x, i0..ik) → counts * F, summed over the grid axes of the other keys."""
    with _site(n):
        return _scatter_by_value(n)


def _sum_by_value(n: Node) -> Node | None:
    (x,) = n.inputs
    axes = n.attrs["axis"]
    grid = on_grid(x)
    if grid is None or not set(range(grid.batch)) <= set(axes):
        return None
    nb, g = grid.batch, len(grid.keys)
    w = weighted(grid, x.shape[nb:])
    out = api.sum(w, (*range(g), *(a - nb + g for a in sorted(axes) if a >= nb)))
    return api.reshape(out, n.shape)


def _scatter_by_value(n: Node) -> Node | None:
    x, *idx = n.inputs
    shape: Shape = n.attrs["shape"]
    k = len(idx)
    if len({id(i) for i in idx}) != k:
        return None
    grid = on_grid(x, list(zip(idx, shape[:k], strict=False)))
    if grid is None or x.shape[grid.batch :] != shape[k:]:
        return None
    w = weighted(grid, shape[k:])
    return api.sum(w, tuple(range(k, len(grid.keys))))


RULES: dict[str, list[Rule]] = {"sum": [sum_by_value], "scatter_add": [scatter_by_value]}
