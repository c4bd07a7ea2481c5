"""Vectorising grids of isomorphic scalar nodes (the analysis half of ``passes/reroll.py``).

Owns: :class:`Vectorizer` (a grid of nodes that apply the same elementwise ops to elements of
known tensors, shared nodes or constants, as one tensor), :func:`slice_element` (``X[i, k]``,
``X[:, k]`` as an element of ``X``), :func:`pick` (an element back as a node) and
:func:`shape_key` (the shape of a node's computation, to group terms that may vectorise) and
:func:`grid_provenance` (what a vector statement cites).
May import: numpy, ``symgrad.ir``, ``symgrad.ops``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from symgrad.ir.node import Node, Shape
from symgrad.ir.opdef import Kind, apply, registry
from symgrad.ir.provenance import Provenance
from symgrad.ops import api, api_index
from symgrad.ops.source import make_constant

Grid = tuple[Node, ...]  # a grid, row-major


def slice_element(n: Node) -> tuple[Node, tuple[int, ...]] | None:
    """``n`` as ``T[..., k0, k1]`` when it is a reshape of a slice taking unit ranges on the
    trailing axes of ``T`` and whole leading axes (``X[i, 0]``, ``X[:, 1]``)."""
    if n.op != "reshape" or n.inputs[0].op != "slice":
        return None
    s = n.inputs[0]
    t = s.inputs[0]
    index = s.attrs["index"]
    if len(index) != len(t.shape):
        return None
    lead = 0
    while lead < len(index) and index[lead] == (0, t.shape[lead], 1):
        lead += 1
    tail = index[lead:]
    if any(not isinstance(a, int) or b != a + 1 for a, b, _ in tail):
        return None
    if n.shape != t.shape[:lead]:
        return None
    return t, tuple(a for a, _, _ in tail)


class Vectorizer:
    """Builds tensors for grids of isomorphic nodes; ``elements`` maps a node to ``(T, idx)``
    with the node equal to ``T[..., *idx]``."""

    def __init__(self, elements: dict[Node, tuple[Node, tuple[int, ...]]]) -> None:
        self.elements = elements
        self.new: dict[Node, Node] = {}  # original -> rebuilt (filled by the caller)
        self.memo: dict[tuple[tuple[int, ...], Grid], tuple[Node, bool] | None] = {}
        self.interior: set[Node] = set()  # adds whose one user continues their chain
        self.lazy: dict[Node, Callable[[], None]] = {}  # node -> what builds its element

    def element(self, n: Node) -> tuple[Node, tuple[int, ...]] | None:
        build = self.lazy.get(n)
        if build is not None:
            build()
        got = self.elements.get(n)
        return got if got is not None else slice_element(n)

    def tensor(self, grid: Grid, gshape: tuple[int, ...]) -> Node | None:
        """A tensor of shape ``S + gshape`` (S: the nodes' shape) holding the (row-major) grid."""
        got = self.vec(grid, gshape)
        if got is None:
            return None
        node, uniform = got
        if uniform:
            s = grid[0].shape
            node = api.broadcast_to(api.reshape(node, (*s, *(1,) * len(gshape))), (*s, *gshape))
        return node

    def vec(self, grid: Grid, gshape: tuple[int, ...]) -> tuple[Node, bool] | None:
        """(tensor, uniform): uniform means one node for the whole grid, shaped to broadcast."""
        key = (gshape, grid)
        if key in self.memo:
            return self.memo[key]
        try:
            got = self._vec(grid, gshape)
        except RecursionError:
            got = None
        self.memo[key] = got
        return got

    def _vec(self, grid: Grid, gshape: tuple[int, ...]) -> tuple[Node, bool] | None:
        first = grid[0]
        s = first.shape
        if all(n is first for n in grid):
            node = self.new.get(first, first)
            return (api.reshape(node, (*s, *(1,) * len(gshape))) if s else node), True
        if any(n.shape != s or n.dtype is not first.dtype for n in grid):
            return None
        if all(n.op == "const" for n in grid):
            vals = np.array([n.attrs["value"] for n in grid], dtype=first.dtype.np)
            return make_constant(vals.reshape(gshape)), False
        elems = [self.element(n) for n in grid]
        if all(e is not None for e in elems):
            got = _from_elements(elems, gshape, s)  # type: ignore[arg-type]
            if got is not None:
                return got, False
        if all(n.op == "input" for n in grid) and s == ():  # parameters of no layer: gathered
            return api.reshape(api.stack(list(grid)), gshape), False
        op = registry()[first.op]
        if op.kind is not Kind.ELEMENTWISE or first.op == "input":
            return None
        if any(n.op != first.op or n.attrs != first.attrs for n in grid):
            return None
        operands = []
        for k in range(len(first.inputs)):
            sub = self.vec(tuple(n.inputs[k] for n in grid), gshape)
            if sub is None:
                return None
            operands.append(sub)
        if all(u for _, u in operands):  # (interned: cannot happen; kept for safety)
            return None
        ins = tuple(node for node, _ in operands)
        prov = grid_provenance(grid)
        return apply(first.op, ins, dict(first.attrs), provenance=prov), False


def grid_provenance(grid: Grid, siblings: bool = False) -> Provenance | None:
    """The provenance of a vector statement standing for ``grid``: its first node's, with the
    module path cut to the parent the nodes share when they come from sibling modules
    (``model.layers[0]`` for ``model.layers[0].neurons[k]``; ``siblings``: the nodes are
    known to come from one each, even when there is only one)."""
    prov = grid[0].provenance
    if prov is None or not prov.module:
        return prov
    paths = {n.provenance.module if n.provenance is not None else "" for n in grid}
    if len(paths) == 1 and not siblings:
        return prov
    parents = {p.rsplit(".", 1)[0] for p in paths if p.endswith("]") and "." in p}
    if len(parents) != 1:
        return prov.single
    return replace(prov.single, module=parents.pop())


def _from_elements(
    elems: list[tuple[Node, tuple[int, ...]]], gshape: tuple[int, ...], s: Shape
) -> Node | None:
    t = elems[0][0]
    if any(e[0] is not t for e in elems):
        return None
    extra = t.shape[len(s) :]
    idx = [e[1] for e in elems]
    sizes = [d for d in extra if isinstance(d, int)]
    if len(sizes) != len(extra):
        return None
    positions = list(itertools.product(*(range(d) for d in sizes)))
    if tuple(extra) == gshape and idx == positions:
        return t
    if len(gshape) == 1 and idx == positions:  # every element, row-major
        return api.reshape(t, (*s, gshape[0]))
    if s:  # a gather along trailing axes: not needed by micrograd's patterns
        return None
    arrays = [
        make_constant(np.array([i[a] for i in idx], dtype=np.int64).reshape(gshape))
        for a in range(len(extra))
    ]
    return api.gather(t, *arrays)


def pick(t: Node, idx: tuple[int, ...], like: Node) -> Node:
    """``t[..., *idx]`` as a node of ``like``'s shape."""
    lead = len(t.shape) - len(idx)
    if all(d == 1 for d in t.shape[lead:]):  # the one element on those axes: a reshape
        return api.reshape(t, like.shape)
    key = (*(slice(None),) * lead, *idx)
    return api_index.index(t, key)


def shape_key(vz: Vectorizer, n: Node, depth: int = 6) -> object:
    """The shape of ``n``'s computation: ops and attributes down to ``depth``, leaves by the
    tensor they are elements of (terms with equal keys are likely to vectorise together)."""
    e = vz.element(n)
    if e is not None:
        return ("element", e[0], len(e[1]))
    if n.op in ("input", "const", "constant") or depth == 0:
        return (n.op, n.shape)
    return (
        n.op,
        tuple(sorted(n.attrs.items(), key=lambda kv: kv[0])) if n.op != "slice" else n.op,
        n.shape,
        tuple(shape_key(vz, i, depth - 1) for i in n.inputs),
    )
