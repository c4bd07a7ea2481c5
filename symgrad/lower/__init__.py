"""Lowering: a traced graph becomes generated code that runs.

Owns: the one lowering driver (:mod:`symgrad.lower.driver`: differentiate → optimise →
schedule → print, build, cache, load), on which every entry point stands: ``symgrad.compile``
(:mod:`symgrad.lower.jit`), eager ``Tensor.backward()`` (:mod:`symgrad.lower.eager`),
``compile_step`` (``symgrad.train``), ``symgrad.export`` (``symgrad.standalone``) and
``symgrad.gradcheck`` (``symgrad.check``). This ``__init__`` imports nothing.
"""
