"""The op library: importing this package declares every built-in op in the registry.

Owns: nothing itself; ``elementwise``, ``reduce``, ``movement``, ``indexing``, ``linalg``,
``scan`` (cumsum), ``sort`` (argsort; gather along a dim, sort and topk with it), ``random``
(the counter-based random source), ``softmax_nll`` (the fused cross-entropy) and ``source``
each declare their ops once, with their lowerings (the C ones printed through ``c``), and
``api`` offers node-level functions and composites.
May import: numpy and ``symgrad.ir``.
"""

from symgrad.ops import (
    api,
    elementwise,
    indexing,
    linalg,
    movement,
    random,
    reduce,
    scan,
    softmax_nll,
    sort,
    source,
)

__all__ = [
    "api",
    "elementwise",
    "indexing",
    "linalg",
    "movement",
    "random",
    "reduce",
    "scan",
    "softmax_nll",
    "sort",
    "source",
]
