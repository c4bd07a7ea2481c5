"""micrograd's ``Neuron``, ``Layer`` and ``MLP`` on ``Value`` (``micrograd.nn`` → ``symgrad.nn``).

Owns: the scalar modules. They draw weights with Python's ``random`` module exactly as micrograd
does (``random.seed`` reproduces micrograd's networks) and list their parameters themselves
(``parameters()``), on :class:`symgrad.nn.module.Module` (``zero_grad`` sets a ``Value``'s grad
to 0, as micrograd). The tensor layers are in ``layers.py``. May import: ``symgrad.frontend``
and ``symgrad.nn.module``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from symgrad.frontend.value import Value
from symgrad.nn.module import Module

_ACTS = ("relu", "tanh", "linear")


class Neuron(Module):
    """``act(w · x + b)``; ``nonlin=False`` makes it linear (micrograd's last layer)."""

    def __init__(self, nin: int, nonlin: bool = True, act: str = "relu") -> None:
        if act not in _ACTS:
            raise ValueError(f"act must be one of {_ACTS}, got {act!r}")
        self.w = [Value(random.uniform(-1, 1)) for _ in range(nin)]
        self.b = Value(0)
        self.nonlin = nonlin
        self.act = act if nonlin else "linear"

    def __call__(self, x: Sequence[Any]) -> Value:
        act = sum((wi * xi for wi, xi in zip(self.w, x, strict=True)), self.b)
        if self.act == "relu":
            return act.relu()
        if self.act == "tanh":
            return act.tanh()
        return act

    def parameters(self, recurse: bool = True) -> list[Any]:
        return [*self.w, self.b]

    def __repr__(self) -> str:
        kind = {"relu": "ReLU", "tanh": "Tanh", "linear": "Linear"}[self.act]
        return f"{kind}Neuron({len(self.w)})"


class Layer(Module):
    def __init__(self, nin: int, nout: int, **kwargs: Any) -> None:
        self.neurons = [Neuron(nin, **kwargs) for _ in range(nout)]

    def __call__(self, x: Sequence[Any]) -> Any:
        out = [n(x) for n in self.neurons]
        return out[0] if len(out) == 1 else out

    def parameters(self, recurse: bool = True) -> list[Any]:
        return [p for n in self.neurons for p in n.parameters()]

    def __repr__(self) -> str:
        return f"Layer of [{', '.join(str(n) for n in self.neurons)}]"


class MLP(Module):
    """micrograd's MLP: ReLU hidden layers and a linear last layer. ``act="tanh"`` gives the
    lecture's network; ``nonlin_last=True`` applies the activation to the last layer too."""

    def __init__(
        self, nin: int, nouts: Sequence[int], act: str = "relu", nonlin_last: bool = False
    ) -> None:
        sz = [nin, *nouts]
        self.layers = [
            Layer(sz[i], sz[i + 1], nonlin=nonlin_last or i != len(nouts) - 1, act=act)
            for i in range(len(nouts))
        ]

    def __call__(self, x: Sequence[Any]) -> Any:
        for layer in self.layers:
            x = layer(x)
        return x

    def parameters(self, recurse: bool = True) -> list[Any]:
        return [p for layer in self.layers for p in layer.parameters()]

    def __repr__(self) -> str:
        return f"MLP of [{', '.join(str(layer) for layer in self.layers)}]"
