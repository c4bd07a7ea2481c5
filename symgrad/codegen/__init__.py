"""Code generation: schedule a graph into a Program, print it as NumPy or C source.

Owns: ``schedule`` (Graph → Program: ordered statements, deterministic names, provenance),
``text`` (escaping user text into comments and literals), ``templating`` (the one Jinja2
environment; templates only lay out files), ``numpy_backend`` and ``c_backend`` (printers).
May import: numpy, jinja2 (lazily), ``symgrad.ir``, ``symgrad.ops``, ``symgrad.autodiff``.
"""
