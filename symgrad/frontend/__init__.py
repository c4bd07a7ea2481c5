"""The user-facing front ends: ``Value`` (micrograd), ``Tensor`` (PyTorch-like), tracing, ``nn``.

Owns: the traced objects and how they record graphs. May import: numpy, ``symgrad.ir``,
``symgrad.ops`` and ``symgrad.autodiff`` (``Tensor.backward`` builds the backward graph).
"""
