"""``symgrad.nn``: micrograd's ``Module/Neuron/Layer/MLP`` on ``Value`` and tensor layers
(``Linear``, ``Embedding``, ``Tanh``, ``Sequential``) for the makemore models.

Owns: model building blocks. Scalar modules draw weights with Python's ``random`` module exactly
as micrograd does (``random.seed`` reproduces micrograd's networks); tensor layers take a NumPy
``Generator``. May import: numpy and ``symgrad.frontend``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np

from symgrad.frontend.tensor import Tensor
from symgrad.frontend.value import Value

_ACTS = ("relu", "tanh", "linear")


class Module:
    """Base class: ``parameters()`` and ``zero_grad()`` like micrograd and PyTorch."""

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = 0.0 if isinstance(p, Value) else None

    def parameters(self) -> list[Any]:
        return []

    def __call__(self, *args: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not define __call__")


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

    def parameters(self) -> list[Any]:
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

    def parameters(self) -> list[Any]:
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

    def parameters(self) -> list[Any]:
        return [p for layer in self.layers for p in layer.parameters()]

    def __repr__(self) -> str:
        return f"MLP of [{', '.join(str(layer) for layer in self.layers)}]"


# -- tensor layers --------------------------------------------------------------------------------
def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


class Linear(Module):
    """``x @ W + b`` with ``W`` of shape (nin, nout), initialised U(-1/sqrt(nin), 1/sqrt(nin))."""

    def __init__(
        self, nin: int, nout: int, bias: bool = True, dtype: Any = "float64", rng: Any = None
    ) -> None:
        g = _rng(rng)
        k = 1.0 / np.sqrt(nin)
        self.weight = Tensor(
            g.uniform(-k, k, (nin, nout)), requires_grad=True, dtype=dtype, label="weight"
        )
        self.bias = (
            Tensor(g.uniform(-k, k, (nout,)), requires_grad=True, dtype=dtype, label="bias")
            if bias
            else None
        )

    def __call__(self, x: Tensor) -> Tensor:
        out = x @ self.weight
        return out + self.bias if self.bias is not None else out

    def parameters(self) -> list[Any]:
        return [self.weight] + ([self.bias] if self.bias is not None else [])


class Embedding(Module):
    """A lookup table of ``num`` rows of size ``dim``: ``emb(idx)`` is ``table[idx]``."""

    def __init__(self, num: int, dim: int, dtype: Any = "float64", rng: Any = None) -> None:
        self.weight = Tensor(
            _rng(rng).standard_normal((num, dim)),
            requires_grad=True,
            dtype=dtype,
            label="embedding",
        )

    def __call__(self, idx: Any) -> Tensor:
        return self.weight[idx]

    def parameters(self) -> list[Any]:
        return [self.weight]


class Tanh(Module):
    def __call__(self, x: Tensor) -> Tensor:
        return x.tanh()


class Flatten(Module):
    """Flatten every axis after the first (the makemore MLP's ``emb.view(-1, block*dim)``)."""

    def __call__(self, x: Tensor) -> Tensor:
        rest = 1
        for d in x.shape[1:]:
            if not isinstance(d, int):
                raise ValueError("Flatten: only the first dim may be symbolic")
            rest *= d
        return x.reshape(x.shape[0], rest)


class Sequential(Module):
    def __init__(self, *layers: Module) -> None:
        self.layers = list(layers)

    def __call__(self, x: Any) -> Any:
        for layer in self.layers:
            x = layer(x)
        return x

    def parameters(self) -> list[Any]:
        return [p for layer in self.layers for p in layer.parameters()]
