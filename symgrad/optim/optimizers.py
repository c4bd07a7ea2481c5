"""Optimisers with PyTorch semantics: ``SGD`` (momentum, weight decay), ``Adam`` and ``AdamW``
(decoupled weight decay).

Owns: the eager ``step()`` / ``zero_grad()`` over ``Value``/``Tensor`` parameters, and each
optimiser's update written as graph nodes (``update_nodes``), which ``symgrad.compile_step``
fuses with the forward and backward passes into one generated function.
May import: numpy, ``symgrad.ir``, ``symgrad.ops`` and ``symgrad.frontend``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from symgrad.frontend.tensor import Tensor
from symgrad.frontend.value import Value
from symgrad.ir.node import Node

Param = Tensor | Value  # a parameter: a float Tensor or a Value


class Optimizer:
    """Base class: holds the parameters and the per-parameter state arrays."""

    def __init__(self, params: Iterable[Param], lr: float) -> None:
        self.params: list[Param] = list(params)
        if not self.params:
            raise ValueError("the optimizer got an empty parameter list")
        for p in self.params:
            if not isinstance(p, Tensor | Value) or not p.dtype.is_float:
                raise TypeError(f"parameters must be float Values or Tensors, got {p!r:.60}")
        if lr < 0:
            raise ValueError(f"lr must be >= 0, got {lr}")
        # PyTorch's one parameter group: `opt.param_groups[0]["lr"] = 0.01` changes the step size
        self.param_groups: list[dict[str, Any]] = [{"params": self.params, "lr": float(lr)}]
        self.t = 0  # steps taken

    @property
    def lr(self) -> float:
        return float(self.param_groups[0]["lr"])

    @lr.setter
    def lr(self, value: float) -> None:
        self.param_groups[0]["lr"] = float(value)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients: ``None`` (PyTorch's default), or zeros with
        ``set_to_none=False``; a ``Value``'s becomes 0.0 (micrograd)."""
        for p in self.params:
            if isinstance(p, Value):
                p.grad = 0.0
            elif set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad = np.zeros_like(np.asarray(p.grad))

    # -- state as arrays, so the compiled step can carry it ------------------------------------
    def state_names(self) -> tuple[str, ...]:
        return ()

    def state(self) -> list[np.ndarray]:
        return []

    def set_state(self, arrays: Sequence[np.ndarray]) -> None:
        pass

    def scalars(self) -> list[float]:
        """Per-step scalar inputs of the fused update (e.g. the bias-corrected step size)."""
        return [self.lr]

    def update_nodes(
        self,
        params: Sequence[Node],
        grads: Sequence[Node],
        state: Sequence[Node],
        scalars: Sequence[Node],
    ) -> tuple[list[Node], list[Node]]:
        """New parameters and new state as graph nodes."""
        raise NotImplementedError

    # -- eager -----------------------------------------------------------------------------------
    def step(self) -> None:
        """Update every parameter from its ``.grad`` (parameters without a gradient are kept)."""
        grads = [_grad_array(p) for p in self.params]
        new_params, new_state = self.apply_arrays(
            [np.asarray(p.data) for p in self.params], grads, self.state(), self.scalars_next()
        )
        for p, v in zip(self.params, new_params, strict=True):
            p.data = v
        self.set_state(new_state)

    def scalars_next(self) -> list[float]:
        self.t += 1
        return self.scalars()

    def apply_arrays(
        self,
        params: list[np.ndarray],
        grads: list[np.ndarray],
        state: list[np.ndarray],
        scalars: list[float],
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The same update as :meth:`update_nodes`, evaluated by the reference interpreter."""
        from symgrad.ir.graph import evaluate
        from symgrad.ops.source import make_input

        def inp(a: np.ndarray, k: str) -> Node:
            return make_input(np.shape(a), np.asarray(a).dtype, k)

        pn = [inp(a, "p") for a in params]
        gn = [inp(a, "g") for a in grads]
        sn = [inp(a, "s") for a in state]
        dt = params[0].dtype if params else np.float64
        cn = [inp(np.asarray(c, dtype=dt), "c") for c in scalars]
        new_p, new_s = self.update_nodes(pn, gn, sn, cn)
        env: dict[Node, Any] = dict(zip(pn, params, strict=True))
        env.update(zip(gn, grads, strict=True))
        env.update(zip(sn, state, strict=True))
        env.update(zip(cn, [np.asarray(c, dtype=dt) for c in scalars], strict=True))
        out = evaluate([*new_p, *new_s], env)
        assert isinstance(out, list)
        return out[: len(new_p)], out[len(new_p) :]


def _grad_array(p: Param) -> np.ndarray:
    g = p.grad
    if g is None:
        return np.zeros(p.numpy().shape, dtype=p.dtype.np)
    return np.asarray(g, dtype=p.dtype.np).reshape(p.numpy().shape)


def _scale(x: Node, c: Node) -> Node:
    return x * c


class SGD(Optimizer):
    """``p -= lr * (g + weight_decay * p)``, with PyTorch's momentum (``b = μ b + g``)."""

    def __init__(
        self,
        params: Iterable[Param],
        lr: float = 0.1,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr)
        self.momentum = float(momentum)
        self.weight_decay = float(weight_decay)
        self.buf = [np.zeros(p.numpy().shape, dtype=p.dtype.np) for p in self.params]

    def state_names(self) -> tuple[str, ...]:
        return ("momentum_buffer",) if self.momentum else ()

    def state(self) -> list[np.ndarray]:
        return list(self.buf) if self.momentum else []

    def set_state(self, arrays: Sequence[np.ndarray]) -> None:
        if self.momentum:
            self.buf = [np.asarray(a) for a in arrays]

    def update_nodes(
        self,
        params: Sequence[Node],
        grads: Sequence[Node],
        state: Sequence[Node],
        scalars: Sequence[Node],
    ) -> tuple[list[Node], list[Node]]:
        (lr,) = scalars
        new_p, new_s = [], []
        for k, (p, g) in enumerate(zip(params, grads, strict=True)):
            if self.weight_decay:
                g = g + p * self.weight_decay
            if self.momentum:
                # PyTorch: the first step's buffer is g itself; with b0 = 0 this is mu*0 + g
                b = state[k] * self.momentum + g
                new_s.append(b)
                g = b
            new_p.append(p - _scale(g, lr))
        return new_p, new_s


class Adam(Optimizer):
    """Adam (Kingma & Ba) as in PyTorch: bias-corrected moments, ``eps`` outside the sqrt."""

    def __init__(
        self,
        params: Iterable[Param],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr)
        self.b1, self.b2 = (float(b) for b in betas)
        self.eps = float(eps)
        self.weight_decay = float(weight_decay)
        self.m = [np.zeros(p.numpy().shape, dtype=p.dtype.np) for p in self.params]
        self.v = [np.zeros(p.numpy().shape, dtype=p.dtype.np) for p in self.params]

    def state_names(self) -> tuple[str, ...]:
        return ("exp_avg", "exp_avg_sq")

    def state(self) -> list[np.ndarray]:
        return [*self.m, *self.v]

    def set_state(self, arrays: Sequence[np.ndarray]) -> None:
        n = len(self.params)
        self.m = [np.asarray(a) for a in arrays[:n]]
        self.v = [np.asarray(a) for a in arrays[n:]]

    def scalars(self) -> list[float]:
        t = max(self.t, 1)
        c1 = 1.0 - self.b1**t
        c2 = 1.0 - self.b2**t
        return [self.lr / c1, math.sqrt(c2)]  # step size, sqrt of the 2nd-moment correction

    def update_nodes(
        self,
        params: Sequence[Node],
        grads: Sequence[Node],
        state: Sequence[Node],
        scalars: Sequence[Node],
    ) -> tuple[list[Node], list[Node]]:
        step, sqrt_c2 = scalars
        n = len(params)
        new_p, new_m, new_v = [], [], []
        for p, g, m, v in zip(params, grads, state[:n], state[n:], strict=True):
            if self.weight_decay:
                g = g + p * self.weight_decay
            m2 = m + (g - m) * (1.0 - self.b1)  # PyTorch: exp_avg.lerp_(grad, 1 - beta1)
            v2 = v * self.b2 + (g * g) * (1.0 - self.b2)
            denom = v2.sqrt() / sqrt_c2 + self.eps
            new_p.append(p - _scale(m2 / denom, step))
            new_m.append(m2)
            new_v.append(v2)
        return new_p, [*new_m, *new_v]


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter) as in PyTorch: the weight decay is decoupled from the
    gradient, ``p *= 1 - lr * weight_decay`` before the Adam step (default 0.01)."""

    def __init__(
        self,
        params: Iterable[Param],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
    ) -> None:
        super().__init__(params, lr, betas, eps, 0.0)
        self.decoupled = float(weight_decay)

    def scalars(self) -> list[float]:
        return [*super().scalars(), 1.0 - self.lr * self.decoupled]

    def update_nodes(
        self,
        params: Sequence[Node],
        grads: Sequence[Node],
        state: Sequence[Node],
        scalars: Sequence[Node],
    ) -> tuple[list[Node], list[Node]]:
        *adam, decay = scalars
        decayed = [p * decay for p in params] if self.decoupled else list(params)
        return super().update_nodes(decayed, grads, state, adam)
