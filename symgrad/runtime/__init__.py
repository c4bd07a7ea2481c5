"""The runtime layer: compiling generated source, caching the artefacts, loading them back.

Owns: ``cc.py`` (finding and running the C compiler, default flags, the CPU tag of
``-march=native`` builds), ``cache/`` (the content-addressed on-disk cache: keys, atomic
publication under a per-key cross-process lock, integrity and ownership checks, aliases,
``info`` and ``clear``) and ``load.py`` (loading a built CPython extension or a generated NumPy
module from a file without registering it in ``sys.modules``).

May import: the standard library, numpy, platformdirs, filelock, ``symgrad.ir`` (the error
classes) and ``symgrad._version``. Nothing from ``symgrad.backends``, ``symgrad.frontend``,
``symgrad.autodiff`` or ``symgrad.api``: the backends call into the runtime, never the reverse.
This ``__init__`` imports nothing, so each submodule is imported only when used.
"""
