"""The op library: importing this package declares every built-in op in the registry.

Owns: nothing itself; ``elementwise``, ``reduce``, ``movement``, ``indexing``, ``linalg``,
``scan`` (cumsum), ``random`` (the counter-based random source), ``softmax_nll`` (the fused
cross-entropy) and ``source`` each declare their ops once, with their lowerings (the C ones
printed through ``c``), and ``api`` offers node-level functions and composites.
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
    "source",
]
