"""Tensor layers with PyTorch's names, shapes, initialisation and modes: ``Linear``,
``Embedding``, ``BatchNorm1d``, ``LayerNorm``, ``Dropout``, ``ReLU``, ``Tanh``, ``Sigmoid``,
``Identity``, ``Flatten``, ``CrossEntropyLoss``.

Owns: the layers' forward passes and state. ``Linear.weight`` is (out_features, in_features)
and the layer computes ``x @ weight.T + bias``, initialised U(-1/√in, 1/√in) like PyTorch's.
Weights are drawn from symgrad's default generator (``symgrad.manual_seed``) or the one passed as
``generator=``; ``rng=`` (a NumPy generator or seed) is the older symgrad spelling. BatchNorm1d
keeps ``running_mean``/``running_var`` as buffers, updated under ``no_grad`` in training mode
(``momentum``, unbiased variance, as PyTorch); ``compile_step`` carries them as state.
May import: numpy and ``symgrad.frontend``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from symgrad.frontend import functional as F
from symgrad.frontend.grad_mode import no_grad
from symgrad.frontend.random import Generator, default_float, rand, randn
from symgrad.frontend.tensor import Tensor
from symgrad.ir.dtypes import FLOAT64, as_dtype
from symgrad.nn.module import Module


def _dtype(dtype: Any, rng: Any) -> Any:
    """A layer's dtype: as given; else float64 with the older ``rng=`` spelling, else the
    default float dtype (PyTorch's float32)."""
    if dtype is not None:
        return as_dtype(dtype)
    return FLOAT64 if rng is not None else default_float()


def _uniform(shape: tuple[int, ...], k: float, dtype: Any, generator: Any, rng: Any) -> Tensor:
    if rng is not None:
        g = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        return Tensor(g.uniform(-k, k, shape), requires_grad=True, dtype=dtype)
    u = rand(*shape, generator=generator, dtype=as_dtype(dtype))
    return Tensor(u.data * (2 * k) - k, requires_grad=True, dtype=dtype)


class Linear(Module):
    """``x @ weight.T + bias`` with ``weight`` of shape (out_features, in_features)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        dtype: Any = None,
        generator: Generator | None = None,
        rng: Any = None,
    ) -> None:
        super().__init__()
        dtype = _dtype(dtype, rng)
        self.in_features, self.out_features = int(in_features), int(out_features)
        k = 1.0 / np.sqrt(in_features)
        self.weight = _uniform((out_features, in_features), k, dtype, generator, rng)
        self.weight.label = "weight"
        self.bias = _uniform((out_features,), k, dtype, generator, rng) if bias else None
        if self.bias is not None:
            self.bias.label = "bias"

    def forward(self, x: Tensor) -> Tensor:
        out = x @ self.weight.T
        return out + self.bias if self.bias is not None else out

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, " + (
            f"bias={self.bias is not None}"
        )


class Embedding(Module):
    """A table of ``num_embeddings`` rows of size ``embedding_dim``, N(0, 1) initialised:
    ``emb(idx)`` is ``weight[idx]``."""

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        dtype: Any = None,
        generator: Generator | None = None,
        rng: Any = None,
    ) -> None:
        super().__init__()
        dtype = _dtype(dtype, rng)
        shape = (int(num_embeddings), int(embedding_dim))
        if rng is not None:
            g = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
            data = g.standard_normal(shape)
        else:
            data = randn(*shape, generator=generator, dtype=as_dtype(dtype)).data
        self.weight = Tensor(data, requires_grad=True, dtype=dtype, label="embedding")

    def forward(self, idx: Any) -> Tensor:
        return self.weight[idx]

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, {self.weight.shape[1]}"


def _moments(x: Tensor, axes: tuple[int, ...]) -> tuple[Tensor, Tensor]:
    """Mean and biased variance over ``axes`` (kept as size-1 dims)."""
    mean = x.mean(axis=axes, keepdims=True)
    xc = x - mean
    return mean, (xc * xc).mean(axis=axes, keepdims=True)


_MEAN, _VAR = "running_mean", "running_var"


class BatchNorm1d(Module):
    """Batch normalisation of (N, C) or (N, C, L) inputs over all dims but C, as PyTorch's."""

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        dtype = _dtype(dtype, None)
        self.num_features = int(num_features)
        self.eps, self.momentum = float(eps), float(momentum)
        n = self.num_features
        self.weight = Tensor(np.ones(n), requires_grad=True, dtype=dtype) if affine else None
        self.bias = Tensor(np.zeros(n), requires_grad=True, dtype=dtype) if affine else None
        self.track_running_stats = track_running_stats
        self.running_mean: Tensor
        self.running_var: Tensor
        if track_running_stats:  # (labelled: an export names its weights after them)
            self.register_buffer("running_mean", Tensor(np.zeros(n), dtype=dtype, label=_MEAN))
            self.register_buffer("running_var", Tensor(np.ones(n), dtype=dtype, label=_VAR))

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim not in (2, 3) or x.shape[1] != self.num_features:
            raise ValueError(
                f"BatchNorm1d({self.num_features}): expected (N, {self.num_features}) or "
                f"(N, {self.num_features}, L) input, got shape {tuple(x.shape)}"
            )
        axes = (0,) if x.ndim == 2 else (0, 2)
        shape = (1, self.num_features) if x.ndim == 2 else (1, self.num_features, 1)
        if self.training or not self.track_running_stats:
            mean, var = _moments(x, axes)
            if self.training and self.track_running_stats:
                count: int | None = 1
                for a in axes:
                    d = x.shape[a]
                    count = count * d if count is not None and isinstance(d, int) else None
                self._update_running(mean, var, count)
        else:
            mean = self.running_mean.reshape(shape)
            var = self.running_var.reshape(shape)
        out = (x - mean) / (var + self.eps).sqrt()
        if self.weight is not None and self.bias is not None:
            out = out * self.weight.reshape(shape) + self.bias.reshape(shape)
        return out

    def _update_running(self, mean: Tensor, var: Tensor, count: int | None) -> None:
        if count is None:
            raise ValueError(
                "BatchNorm1d: training-mode statistics need a static batch size to correct "
                "the variance (n / (n - 1)); trace with a concrete batch size"
            )
        m = self.momentum
        unbiased = count / (count - 1) if count > 1 else 1.0
        with no_grad():
            self.running_mean = self.running_mean * (1 - m) + mean.reshape(-1) * m
            self.running_var = self.running_var * (1 - m) + var.reshape(-1) * (m * unbiased)
        self.running_mean.label, self.running_var.label = _MEAN, _VAR

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class LayerNorm(Module):
    """Normalise over the last ``len(normalized_shape)`` dims, with an elementwise affine."""

    def __init__(
        self,
        normalized_shape: int | Sequence[int],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        shp = (
            (int(normalized_shape),)
            if isinstance(normalized_shape, int)
            else tuple(int(d) for d in normalized_shape)
        )
        self.normalized_shape = shp
        self.eps = float(eps)
        dtype = _dtype(dtype, None)
        self.weight = (
            Tensor(np.ones(shp), requires_grad=True, dtype=dtype) if elementwise_affine else None
        )
        self.bias = (
            Tensor(np.zeros(shp), requires_grad=True, dtype=dtype)
            if elementwise_affine and bias
            else None
        )

    def forward(self, x: Tensor) -> Tensor:
        k = len(self.normalized_shape)
        if tuple(x.shape[x.ndim - k :]) != self.normalized_shape:
            raise ValueError(
                f"LayerNorm{self.normalized_shape}: the input's last dims are "
                f"{tuple(x.shape[x.ndim - k :])}"
            )
        mean, var = _moments(x, tuple(range(x.ndim - k, x.ndim)))
        out = (x - mean) / (var + self.eps).sqrt()
        if self.weight is not None:
            out = out * self.weight
        if self.bias is not None:
            out = out + self.bias
        return out

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}"


def dropout(
    x: Tensor, p: float = 0.5, training: bool = True, generator: Generator | None = None
) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p) (training only).
    The mask comes from symgrad's generator: inside compiled code, a new one every call."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    keep = rand(*x.shape, generator=generator, dtype=x.dtype) >= p
    return x * keep.astype(x.dtype) * (1.0 / (1.0 - p))


class Dropout(Module):
    def __init__(self, p: float = 0.5, generator: Generator | None = None) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability must be in [0, 1], got {p}")
        self.p = float(p)
        self.generator = generator

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training, self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class ReLU(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.relu()


class Tanh(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.tanh()


class Sigmoid(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.sigmoid()


class Identity(Module):
    def forward(self, x: Any) -> Any:
        return x


class Flatten(Module):
    """Flatten dims ``start_dim`` .. ``end_dim`` into one (by default all but the first)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        nd = x.ndim
        a = self.start_dim % nd if nd else 0
        b = self.end_dim % nd if nd else 0
        inner = 1
        for d in x.shape[a : b + 1]:
            if not isinstance(d, int):
                raise ValueError(f"Flatten: the flattened dims must be static, got {x.shape}")
            inner *= d
        return x.reshape(*x.shape[:a], inner, *x.shape[b + 1 :])


class CrossEntropyLoss(Module):
    """``F.cross_entropy(logits, targets)``: the mean over the batch."""

    def forward(self, logits: Tensor, targets: Any) -> Tensor:
        return F.cross_entropy(logits, targets)
