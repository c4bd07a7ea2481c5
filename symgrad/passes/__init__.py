"""Graph → Graph optimisation passes and the optimisation levels.

Owns: the rewrite engine (``rewrite``), algebraic simplification rules (``simplify``), constant
folding (``fold``), canonical ordering of commutative ops (``canonical``) and the pipeline
(``pipeline.optimize(graph, level)``). Every pass preserves values (tested with Hypothesis) and
provenance. May import: numpy, ``symgrad.ir``, ``symgrad.ops`` and ``symgrad.autodiff``.
"""

from symgrad.passes.levels import DEFAULT_OPT, LEVELS, optimize

__all__ = ["DEFAULT_OPT", "LEVELS", "optimize"]
