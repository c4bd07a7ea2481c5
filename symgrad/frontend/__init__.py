"""The user-facing front ends: ``Value`` (micrograd), ``Tensor`` (PyTorch-like), tracing, ``nn``.

Owns: the traced objects and how they record graphs. May import: numpy, ``symgrad.ir``,
``symgrad.ops`` and ``symgrad.autodiff`` (``Tensor.backward`` builds the backward graph).
Importing the package installs Tensor's backward pass, NumPy-function dispatch and the operators
and methods made from the op registry (modules above ``frontend.tensor`` that hook themselves in).
"""

from symgrad.frontend import backward, numpy_interop, surface  # noqa: F401  (they install)
