"""Random numbers with PyTorch's names: ``Generator``, ``manual_seed``, ``rand``, ``randn``,
``randint``, ``randperm``, ``multinomial`` (and ``Tensor.normal_``/``uniform_``).

Owns: :class:`Generator` (a key ``[seed, counter]`` held by an int64 leaf tensor), the default
generator, the draws, and :func:`tracing` (the context ``symgrad.trace`` runs a function in).
Eagerly a draw computes its numbers from the key (``symgrad.ops.random.draw_array``) and
advances the counter. Inside a traced function a draw is a ``counter_random`` node reading the
key, which the trace captures as an input like a parameter: the compiled code draws from the
key's *current* counter, and ``compile_step`` (and ``symgrad.compile``'s functions) advance it
after every call — new dropout masks every step, the same sequence from the same seed. A NumPy
or Python ``random`` draw inside a traced function would be frozen into the graph as a
constant: :func:`tracing` makes them warn (:class:`FrozenRandomWarning`). The streams are
symgrad's own (SplitMix64 keyed by seed, counter, draw and element), not PyTorch's.
May import: numpy, ``symgrad.ir``, ``symgrad.ops`` and ``symgrad.frontend.tensor``.
"""

from __future__ import annotations

import contextlib
import functools
import random as _pyrandom
import warnings
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from symgrad.frontend import tensor_inplace
from symgrad.frontend.grad_mode import GRAD
from symgrad.frontend.tensor import Tensor
from symgrad.ir.dtypes import DType, as_dtype
from symgrad.ir.errors import ArgumentError, ShapeError
from symgrad.ops.random import INTEGERS, NORMAL, UNIFORM, draw, draw_array

DEFAULT_SEED = 67280421310721  # (PyTorch's default seed; the streams differ)


class FrozenRandomWarning(UserWarning):
    """A NumPy or Python ``random`` draw inside a traced function: its numbers become constants
    of the graph, the same at every call."""


class Generator:
    """A source of random numbers: ``g = symgrad.Generator().manual_seed(2147483647)``."""

    def __init__(self, device: str = "cpu") -> None:
        if device != "cpu":
            raise ArgumentError(f"symgrad generators are CPU generators, got device={device!r}")
        self._key = Tensor(np.array([DEFAULT_SEED, 0], dtype=np.int64), label="rng_key")
        _KEYS[id(self._key)] = self._key

    def manual_seed(self, seed: int) -> Generator:
        """Restart the stream of ``seed``; returns the generator."""
        s = int(seed)
        if not -(2**63) <= s < 2**64:
            raise ArgumentError(f"manual_seed: expected a 64-bit integer seed, got {seed!r}")
        key = self._key.data
        key[0] = np.array(s & (2**64 - 1), dtype=np.uint64).view(np.int64)  # (in place: traced
        key[1] = 0  # functions read this array)
        return self

    def seed(self) -> int:
        """Seed from the operating system's randomness; returns the seed."""
        s = int.from_bytes(np.random.SeedSequence().generate_state(2, np.uint32).tobytes())
        self.manual_seed(s)
        return s

    def initial_seed(self) -> int:
        return int(self._key.data[:1].view(np.uint64)[0])

    def get_state(self) -> np.ndarray:
        """The key ``[seed, counter]`` (a copy): ``set_state`` restores the stream from it."""
        return np.array(self._key.data)

    def set_state(self, state: Any) -> Generator:
        s = np.asarray(state, dtype=np.int64)
        if s.shape != (2,):
            raise ArgumentError(f"set_state: expected a state of shape (2,), got {s.shape}")
        self._key.data[:] = s
        return self

    def _next_key(self) -> np.ndarray:
        key = self._key.data
        out = np.array(key)
        key[1] += 1
        return out

    def __repr__(self) -> str:
        seed, counter = (int(v) for v in self._key.data)
        return f"<symgrad.Generator seed={seed} counter={counter}>"


# every generator's key tensor, by id (Tensor's == is elementwise: no sets of tensors)
_KEYS: weakref.WeakValueDictionary[int, Tensor] = weakref.WeakValueDictionary()
default_generator = Generator()


def manual_seed(seed: int) -> Generator:
    """Seed the default generator (the one draws use without ``generator=``)."""
    return default_generator.manual_seed(seed)


def seed() -> int:
    return default_generator.seed()


def initial_seed() -> int:
    return default_generator.initial_seed()


def is_key(t: Any) -> bool:
    """Whether ``t`` is a generator's key tensor (compiled functions advance it every call)."""
    return isinstance(t, Tensor) and _KEYS.get(id(t)) is t


def advance(captures: Sequence[Any]) -> Callable[[], None]:
    """A function that advances the counter of every generator key among ``captures``."""
    keys = [t._data for t in captures if is_key(t)]
    if not keys:
        return _nothing

    def step() -> None:
        for k in keys:
            k[1] += 1

    return step


def _nothing() -> None:
    pass


# -- draws ----------------------------------------------------------------------------------------
class _Streams:
    """Inside a trace: how many draws each generator has made (draw k reads stream k)."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts: dict[int, int] | None = None


_STREAMS = _Streams()


def _shape(size: Sequence[Any], what: str) -> tuple[Any, ...]:
    if len(size) == 1 and isinstance(size[0], tuple | list):
        size = tuple(size[0])
    for d in size:
        if isinstance(d, bool) or not isinstance(d, int | str | np.integer):
            raise ShapeError(f"{what}: expected sizes as ints, got {d!r:.40} in {size!r:.80}")
    return tuple(int(d) if isinstance(d, int | np.integer) else d for d in size)


def _draw(
    shape: tuple[Any, ...],
    dist: int,
    dtype: Any,
    generator: Generator | None,
    requires_grad: bool = False,
    low: int = 0,
    high: int = 1,
) -> Tensor:
    g = default_generator if generator is None else generator
    if not isinstance(g, Generator):
        raise ArgumentError(f"generator: expected a symgrad.Generator, got {type(g).__name__}")
    counts = _STREAMS.counts
    if GRAD.tracing and counts is not None:
        k = counts.get(id(g), 0)
        counts[id(g)] = k + 1
        node = draw(g._key.node, shape, dtype, dist, k, low, high)
        return Tensor._wrap(node, None, (g._key,), False)
    if not all(isinstance(d, int) for d in shape):
        raise ShapeError(f"eager random draws need int sizes, got {shape}")
    arr = draw_array(g._next_key(), 0, dist, low, high, shape, dtype)
    return Tensor(arr, requires_grad=requires_grad)


def rand(
    *size: Any,
    generator: Generator | None = None,
    dtype: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """Uniform numbers on [0, 1) of shape ``size`` (``rand(3, 4)`` or ``rand((3, 4))``)."""
    return _draw(_shape(size, "rand"), UNIFORM, _float(dtype, "rand"), generator, requires_grad)


def randn(
    *size: Any,
    generator: Generator | None = None,
    dtype: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """Standard normal numbers of shape ``size`` (``randn(27, 10, generator=g)``)."""
    return _draw(_shape(size, "randn"), NORMAL, _float(dtype, "randn"), generator, requires_grad)


def rand_like(x: Tensor, generator: Generator | None = None) -> Tensor:
    return _draw(tuple(x.shape), UNIFORM, _float(x.dtype, "rand_like"), generator)


def randn_like(x: Tensor, generator: Generator | None = None) -> Tensor:
    return _draw(tuple(x.shape), NORMAL, _float(x.dtype, "randn_like"), generator)


def randint(
    *args: Any, generator: Generator | None = None, dtype: Any = "int64", **kw: Any
) -> Tensor:
    """``randint(high, size)`` or ``randint(low, high, size)``: int64 numbers in [low, high)."""
    if "size" in kw:
        args = (*args, kw.pop("size"))
    for k in ("low", "high"):
        if k in kw:
            raise ArgumentError(f"randint: pass {k} by position, as randint(low, high, size)")
    if kw:
        raise ArgumentError(f"randint: unexpected arguments {sorted(kw)}")
    if len(args) == 2:
        low, high, size = 0, args[0], args[1]
    elif len(args) == 3:
        low, high, size = args
    else:
        raise ArgumentError("randint: expected randint(high, size) or randint(low, high, size)")
    low, high = int(low), int(high)
    if high <= low:
        raise ArgumentError(f"randint: expected low < high, got low={low}, high={high}")
    if as_dtype(dtype).name != "int64":
        raise ArgumentError(f"randint: only int64 results are supported, got dtype={dtype}")
    shape = _shape(size if isinstance(size, tuple | list) else (size,), "randint")
    return _draw(shape, INTEGERS, "int64", generator, False, low, high)


def randperm(n: int, generator: Generator | None = None) -> Tensor:
    """A random permutation of 0..n-1 (eager)."""
    u = _draw((int(n),), UNIFORM, "float64", generator)
    return Tensor(np.argsort(u.data, kind="stable").astype(np.int64))


def multinomial(
    input: Any, num_samples: int, replacement: bool = False, generator: Generator | None = None
) -> Tensor:
    """Indices drawn with probabilities proportional to the rows of ``input`` (1-D or 2-D,
    non-negative, not necessarily normalised), as in PyTorch; eager only."""
    if isinstance(input, Tensor) and input._data is None:
        raise ArgumentError(
            "multinomial inside a traced function is not supported: sample eagerly (it is "
            "used for generating, outside the training step)"
        )
    p = np.asarray(input.data if isinstance(input, Tensor) else input, dtype=np.float64)
    if p.ndim not in (1, 2):
        raise ShapeError(f"multinomial: expected 1-D or 2-D probabilities, got shape {p.shape}")
    rows = p.reshape(-1, p.shape[-1])
    if (rows < 0).any() or not np.isfinite(rows).all() or (rows.sum(axis=1) <= 0).any():
        raise ArgumentError("multinomial: probabilities must be finite, >= 0, with a positive sum")
    n = int(num_samples)
    k = rows.shape[1]
    if not replacement and n > k:
        raise ArgumentError(f"multinomial: cannot draw {n} samples from {k} without replacement")
    u = _draw((rows.shape[0], n), UNIFORM, "float64", generator).data
    out = np.empty((rows.shape[0], n), dtype=np.int64)
    for r, w in enumerate(rows):
        w = w.copy()
        for j in range(n):
            c = np.cumsum(w)
            if c[-1] <= 0:
                raise ArgumentError(
                    f"multinomial: row {r} has fewer than {n} categories with a positive "
                    "probability (sampling without replacement)"
                )
            i = int(np.searchsorted(c, u[r, j] * c[-1], side="right"))
            i = min(i, k - 1)
            while w[i] == 0:  # (rounding at the top end: the last positive category)
                i -= 1
            out[r, j] = i
            if not replacement:
                w[i] = 0.0
    return Tensor(out if p.ndim == 2 else out[0])


def default_float() -> DType:
    """The dtype of float draws and layers made without ``dtype=``: the default float dtype of
    ``symgrad.frontend.tensor_create`` (PyTorch's float32 unless ``set_default_dtype``)."""
    from symgrad.frontend.tensor_create import get_default_dtype  # (it imports this module)

    return as_dtype(get_default_dtype())


def _float(dtype: Any, what: str) -> str:
    dt = default_float() if dtype is None else as_dtype(dtype)
    if not dt.is_float:
        raise ArgumentError(f"{what}: expected a float dtype, got {dt}")
    return dt.name


def _fill(t: Tensor, dist: int, a: float, b: float, generator: Generator | None) -> np.ndarray:
    """``normal_``/``uniform_``'s numbers (installed into ``tensor_inplace``)."""
    dt = _float(t.dtype, "normal_" if dist == NORMAL else "uniform_")
    x = _draw(tuple(t.shape), dist, dt, generator).data
    return (x * b + a) if dist == NORMAL else (x * (b - a) + a)


tensor_inplace.install_random(_fill)


# -- tracing: draws become nodes, NumPy/Python draws warn --------------------------------------
_NUMPY_DRAWS = (
    "rand", "randn", "random", "random_sample", "uniform", "normal", "standard_normal",
    "randint", "binomial", "choice", "permutation", "shuffle", "default_rng",
)  # fmt: skip
_PYTHON_DRAWS = ("random", "uniform", "gauss", "normalvariate", "randint", "choice", "shuffle")


def _warning(where: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def warned(*args: Any, **kwargs: Any) -> Any:
        warnings.warn(
            f"{where}() inside a traced function: its numbers are drawn once, while tracing, "
            "and become constants of the compiled code (the same mask every step). Use "
            "symgrad.rand/randn/randint (or nn.Dropout), which draw new numbers every call",
            FrozenRandomWarning,
            stacklevel=2,
        )
        return fn(*args, **kwargs)

    return warned


@contextlib.contextmanager
def tracing() -> Iterator[None]:
    """The context of a trace: draws become nodes (fresh streams per trace), results without
    gradient history keep their nodes, NumPy and Python random draws warn."""
    saved_counts = _STREAMS.counts
    _STREAMS.counts = {}
    GRAD.tracing += 1
    patched: list[tuple[Any, str, Any]] = []
    if GRAD.tracing == 1:
        for mod, names, prefix in (
            (np.random, _NUMPY_DRAWS, "numpy.random."),
            (_pyrandom, _PYTHON_DRAWS, "random."),
        ):
            for name in names:
                orig = getattr(mod, name, None)
                if orig is not None:
                    patched.append((mod, name, orig))
                    setattr(mod, name, _warning(prefix + name, orig))
    try:
        yield
    finally:
        for mod, name, orig in patched:
            setattr(mod, name, orig)
        GRAD.tracing -= 1
        _STREAMS.counts = saved_counts
