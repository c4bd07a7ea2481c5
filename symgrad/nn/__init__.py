"""``symgrad.nn``: re-exports the model building blocks of ``symgrad.frontend.nn``.

Owns: nothing (the public module path). May import: ``symgrad.frontend.nn``.
"""

from symgrad.nn.modules import (
    MLP,
    Embedding,
    Flatten,
    Layer,
    Linear,
    Module,
    Neuron,
    Sequential,
    Tanh,
)

__all__ = [
    "MLP",
    "Embedding",
    "Flatten",
    "Layer",
    "Linear",
    "Module",
    "Neuron",
    "Sequential",
    "Tanh",
]
