"""One-hot products as row gathers: ``one_hot(i, C) @ W`` → ``W[i]`` and, in the backward pass,
``one_hot(i, C).T @ G`` → ``scatter_add(G, i)`` (the makemore bigram's ``xenc @ W``).

Owns: those two rules (level 2) and ``cast(one_hot(i, C))`` → ``one_hot(i, C, dtype)`` (exact:
its values are 0 and 1 in every dtype), so that the lecture's ``F.one_hot(xs, 27).float() @ W``
is a gather too. The indices go through ``class_index``, which keeps one_hot's
range check ([0, C): a negative index is an error, not a wrap-around). The rewritten form reads
one row instead of summing C products, so it agrees with the original wherever that is finite;
where W holds ±inf the original gives NaN (0·inf) and the gather gives the inf.
May import: ``symgrad.ir`` and ``symgrad.ops``.
"""

from __future__ import annotations

from symgrad.ir.node import Node
from symgrad.ir.opdef import apply
from symgrad.passes.rewrite import Rule


def _hot(a: Node) -> Node | None:
    """The indices of a 2-D one_hot matrix ``a`` (or None)."""
    if a.op == "one_hot" and a.ndim == 2:
        return apply("class_index", (a.inputs[0],), {"num_classes": a.attrs["num_classes"]})
    return None


def gather_rows(n: Node) -> Node | None:
    a, w = n.inputs
    idx = _hot(a)
    if idx is None or w.ndim != 2:
        return None
    return apply("gather", (w, idx))


def scatter_rows(n: Node) -> Node | None:
    a, g = n.inputs
    if a.op != "transpose" or a.attrs["perm"] != (1, 0) or g.ndim != 2:
        return None
    idx = _hot(a.inputs[0])
    if idx is None:
        return None
    return apply("scatter_add", (g, idx), {"shape": n.shape})


def cast_hot(n: Node) -> Node | None:
    (a,) = n.inputs
    if a.op != "one_hot":
        return None
    attrs = {"num_classes": a.attrs["num_classes"], "dtype": n.dtype.name}
    return apply("one_hot", a.inputs, attrs)


RULES: dict[str, list[Rule]] = {"matmul": [gather_rows, scatter_rows], "cast": [cast_hot]}
