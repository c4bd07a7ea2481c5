"""``symgrad.optim``: optimisers with PyTorch semantics (``SGD``, ``Adam``).

Owns: nothing itself (the public module path); the optimisers are in ``optimizers``.
"""

from symgrad.optim.optimizers import SGD, Adam, Optimizer

__all__ = ["SGD", "Adam", "Optimizer"]
