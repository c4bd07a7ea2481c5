"""The user-facing front ends: ``Value`` (micrograd), ``Tensor`` (PyTorch-like), tracing, ``nn``.

Owns: the traced objects and how they record graphs. May import: numpy, ``symgrad.ir``,
``symgrad.ops`` and ``symgrad.autodiff`` (``Tensor.backward`` builds the backward graph).
Importing the package installs Tensor's backward pass and NumPy-function dispatch (modules above
``frontend.tensor`` that hook themselves in).
"""

from symgrad.frontend import backward, numpy_interop  # noqa: F401  (they install hooks)
