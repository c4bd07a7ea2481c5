"""Reverse-mode differentiation of graphs.

Owns: the VJP driver (``vjp``) and the SymPy derivation of elementwise rules (``derive``).
May import: ``symgrad.ir`` and ``symgrad.ops`` (and SymPy, lazily, in ``derive`` only).
"""

from symgrad.autodiff.vjp import grad, unbroadcast, vjp

__all__ = ["grad", "unbroadcast", "vjp"]
