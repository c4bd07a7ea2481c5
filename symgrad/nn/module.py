"""``nn.Module`` with PyTorch's bookkeeping, and the containers ``Sequential``, ``ModuleList``.

Owns: finding a module's parameters, buffers and sub-modules by walking its attributes (in the
order they were set, as PyTorch registers them): sub-modules — also inside lists, tuples and
dicts —, parameters (leaf tensors that require grad, and micrograd ``Value``s), and buffers
(tensors named with :meth:`Module.register_buffer`). ``parameters()``/``named_parameters()``,
``buffers()``, ``children()``, ``modules()``, ``train()``/``eval()``, ``zero_grad()``,
``state_dict()``/``load_state_dict()``. A module shared by two parents, or a tensor tied
between two layers, is reported once. ``Parameter(t)`` makes ``t`` a leaf that requires grad.
May import: numpy and ``symgrad.frontend``.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import numpy as np

from symgrad.frontend.tensor import Tensor
from symgrad.frontend.value import Value

_SKIP = frozenset({"training", "_buffer_names"})


def Parameter(data: Any, requires_grad: bool = True) -> Tensor:
    """``nn.Parameter(t)``: a new leaf holding ``t``'s data, requiring grad."""
    arr = data.data if isinstance(data, Tensor) else data
    dtype = data.dtype if isinstance(data, Tensor) else None
    return Tensor(np.array(arr, copy=True), requires_grad=requires_grad, dtype=dtype)


def _is_param(x: Any) -> bool:
    return (isinstance(x, Tensor) and x.requires_grad and x.is_leaf) or x.__class__ is Value


class LoadedKeys(NamedTuple):
    """What ``load_state_dict`` returns: the names it did not find, on either side."""

    missing_keys: list[str]
    unexpected_keys: list[str]


class Module:
    """Base class of models and layers. Subclasses set attributes in ``__init__`` (calling
    ``super().__init__()`` is optional) and define ``forward`` (or ``__call__``)."""

    training = True

    def __init__(self) -> None:
        self.training = True

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    @property
    def __signature__(self) -> inspect.Signature:
        """``forward``'s (what tracing names a model's inputs after: ``x``, not ``args0``)."""
        call = type(self).__call__
        return inspect.signature(self.forward if call is Module.__call__ else self.__call__)

    # -- what a module holds --------------------------------------------------------------------
    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Keep ``tensor`` as state that is not a parameter (BatchNorm's running mean):
        ``buffers()`` lists it, ``state_dict()`` saves it, ``compile_step`` carries it."""
        if not name.isidentifier():
            raise ValueError(f"register_buffer: expected an identifier, got {name!r}")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer: expected a Tensor or None, got {type(tensor)}")
        names = self.__dict__.setdefault("_buffer_names", [])
        if name not in names:
            names.append(name)
        object.__setattr__(self, name, tensor)

    def _items(self) -> Iterator[tuple[str, Any]]:
        for name, value in vars(self).items():
            if name not in _SKIP:
                yield name, value

    def named_children(self) -> Iterator[tuple[str, Module]]:
        seen: set[int] = set()
        for name, value in self._items():
            for sub, m in _modules_in(name, value):
                if id(m) not in seen:
                    seen.add(id(m))
                    yield sub, m

    def children(self) -> Iterator[Module]:
        for _, m in self.named_children():
            yield m

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        seen: set[int] = set()
        stack: list[tuple[str, Module]] = [(prefix, self)]
        while stack:
            name, m = stack.pop(0)
            if id(m) in seen:
                continue
            seen.add(id(m))
            yield name, m
            stack[:0] = [(f"{name}.{n}" if name else n, c) for n, c in m.named_children()]

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def _own_parameters(self) -> Iterator[tuple[str, Any]]:
        buffers = set(self.__dict__.get("_buffer_names", ()))
        for name, value in self._items():
            if name in buffers:
                continue
            if _is_param(value):
                yield name, value
            elif isinstance(value, list | tuple):
                for i, v in enumerate(value):
                    if _is_param(v):
                        yield f"{name}.{i}", v

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Any]]:
        """Each parameter once, with its dotted name: a module's own first, then its
        sub-modules' in attribute order (PyTorch's order). A module that defines
        ``parameters()`` itself (micrograd's ``Neuron``/``Layer``/``MLP``) is asked for them."""
        return _walk_parameters(self, prefix, set(), recurse)

    def parameters(self, recurse: bool = True) -> list[Any]:
        return [p for _, p in self.named_parameters(recurse=recurse)]

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        for mname, m in self.named_modules(prefix):
            for name in m.__dict__.get("_buffer_names", ()):
                b = getattr(m, name)
                if b is not None:
                    yield (f"{mname}.{name}" if mname else name), b

    def buffers(self) -> list[Tensor]:
        return [b for _, b in self.named_buffers()]

    # -- modes and gradients -----------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Training mode (BatchNorm uses batch statistics, Dropout drops) for every sub-module."""
        for m in self.modules():
            m.training = bool(mode)
        return self

    def eval(self) -> Module:
        """Evaluation mode: ``train(False)``."""
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            if p.__class__ is Value:
                p.grad = 0.0
            elif set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad = np.zeros_like(p.grad)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for p in self.parameters():
            if isinstance(p, Tensor):
                p.requires_grad = bool(requires_grad)
        return self

    # -- saving --------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter's and buffer's data, by dotted name."""
        out = {n: np.array(p.data, copy=True) for n, p in self.named_parameters()}
        out.update({n: np.array(b.data, copy=True) for n, b in self.named_buffers()})
        return out

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> LoadedKeys:
        """Copy ``state``'s arrays into the parameters and buffers of the same names; with
        ``strict=False`` names missing on either side are skipped (and returned), as PyTorch."""
        own = dict(self.named_parameters())
        own.update(self.named_buffers())
        missing = sorted(set(own) - set(state))
        extra = sorted(set(state) - set(own))
        if strict and (missing or extra):
            raise KeyError(f"load_state_dict: missing {missing}, unexpected {extra}")
        for name, t in own.items():
            if name not in state:
                continue
            arr = np.asarray(state[name])
            if arr.shape != tuple(np.shape(t.data)):
                raise ValueError(
                    f"load_state_dict: {name} has shape {np.shape(t.data)}, got {arr.shape}"
                )
            t.data = arr
        return LoadedKeys(missing, extra)

    def num_parameters(self) -> int:
        return sum(int(np.size(p.data)) for p in self.parameters())

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        kids = list(self.named_children())
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not kids:
            return head + ")"
        lines = [f"  ({n}): " + repr(m).replace("\n", "\n  ") for n, m in kids]
        return head + "\n" + "\n".join(lines) + "\n)"


def _modules_in(name: str, value: Any) -> Iterator[tuple[str, Module]]:
    if isinstance(value, Module):
        yield name, value
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            if isinstance(v, Module):
                yield f"{name}.{i}", v
    elif isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, Module):
                yield f"{name}.{k}", v


def _walk_parameters(
    m: Module, prefix: str, seen: set[int], recurse: bool
) -> Iterator[tuple[str, Any]]:
    custom = type(m).parameters is not Module.parameters
    own: Iterable[tuple[str, Any]] = (
        ((str(i), p) for i, p in enumerate(m.parameters())) if custom else m._own_parameters()
    )
    for name, p in own:
        if id(p) not in seen:
            seen.add(id(p))
            yield (f"{prefix}.{name}" if prefix else name), p
    if recurse and not custom:
        for cname, c in m.named_children():
            yield from _walk_parameters(c, f"{prefix}.{cname}" if prefix else cname, seen, True)


class ModuleList(Module):
    """A list of modules whose parameters the parent module finds."""

    def __init__(self, modules: Iterable[Module] = ()) -> None:
        super().__init__()
        self._list: list[Module] = []
        for m in modules:
            self.append(m)

    def append(self, m: Module) -> ModuleList:
        if not isinstance(m, Module):
            raise TypeError(f"ModuleList holds modules, got {type(m).__name__}")
        self._list.append(m)
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        for m in modules:
            self.append(m)
        return self

    def _items(self) -> Iterator[tuple[str, Any]]:
        for i, m in enumerate(self._list):
            yield str(i), m

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return type(self)(self._list[i])
        return self._list[i]

    def __len__(self) -> int:
        return len(self._list)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._list)


class Sequential(ModuleList):
    """Calls its modules in order: ``Sequential(Linear(3, 8), Tanh(), Linear(8, 1))``. Also
    holds micrograd-style modules that define only ``__call__``."""

    def __init__(self, *modules: Module) -> None:
        if len(modules) == 1 and isinstance(modules[0], list | tuple):
            modules = tuple(modules[0])
        super().__init__(modules)

    @property
    def layers(self) -> list[Module]:
        """The modules (as makemore's hand-written ``Sequential`` names them)."""
        return self._list

    def forward(self, x: Any) -> Any:
        for m in self._list:
            x = m(x)
        return x
