"""``symgrad.optim``: optimisers with PyTorch semantics (``SGD``, ``Adam``, ``AdamW``).

Owns: nothing itself (the public module path); the optimisers are in ``optimizers``.
"""

from symgrad.optim.optimizers import SGD, Adam, AdamW, Optimizer

__all__ = ["SGD", "Adam", "AdamW", "Optimizer"]
