"""``symgrad.nn``: ``torch.nn``'s modules and micrograd's (``micrograd.nn`` → ``symgrad.nn``).

Owns: nothing (the public module path). ``module`` has ``Module`` and the containers,
``layers`` the tensor layers, ``modules`` micrograd's ``Neuron``/``Layer``/``MLP``;
``functional`` is imported so that ``torch.nn.functional.softmax`` works after only
``import symgrad as torch``, as in PyTorch.
"""

from symgrad.nn import functional
from symgrad.nn.layers import (
    BatchNorm1d,
    CrossEntropyLoss,
    Dropout,
    Embedding,
    Flatten,
    Identity,
    LayerNorm,
    Linear,
    ReLU,
    Sigmoid,
    Tanh,
)
from symgrad.nn.module import Module, ModuleList, Parameter, Sequential
from symgrad.nn.modules import MLP, Layer, Neuron

__all__ = [
    "MLP",
    "BatchNorm1d",
    "CrossEntropyLoss",
    "Dropout",
    "Embedding",
    "Flatten",
    "Identity",
    "Layer",
    "LayerNorm",
    "Linear",
    "Module",
    "ModuleList",
    "Neuron",
    "Parameter",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Tanh",
    "functional",
]
