"""The ``symgrad`` command line: ``main`` (the console script), one module per group of
subcommands (``main``: ops, cache, gradcheck; ``model``: show, graph, export; ``run``: bench,
demo; ``demo``: the built-in tour)."""

from symgrad.cli.main import main

__all__ = ["main"]
