"""symgrad: trace micrograd/PyTorch-style models into a symbolic graph, differentiate it with
local rules, and run (later: emit and compile) the forward and backward passes.

Owns: the public API, by re-export only. May import: every symgrad layer.
"""

from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any

from symgrad import nn
from symgrad import ops as _ops  # declares the built-in ops
from symgrad.frontend.backward import set_executor as _set_executor
from symgrad.frontend.functional import (
    concatenate,
    cross_entropy,
    exp,
    log,
    log_softmax,
    logsumexp,
    maximum,
    minimum,
    one_hot,
    relu,
    sigmoid,
    softmax,
    sqrt,
    stack,
    tanh,
    where,
)

# -- randomness and grad mode (PyTorch's names; issue 17, torch-state) --
from symgrad.frontend.grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from symgrad.frontend.random import (
    FrozenRandomWarning,
    Generator,
    default_generator,
    initial_seed,
    manual_seed,
    multinomial,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    randperm,
    seed,
)

# -- end of randomness and grad mode --
from symgrad.frontend.tensor import Tensor

# PyTorch's names with PyTorch's meanings (README "PyTorch names: supported and differences"):
from symgrad.frontend.tensor_create import (
    arange,
    empty,
    eye,
    full,
    full_like,
    get_default_dtype,
    linspace,
    ones,
    ones_like,
    set_default_dtype,
    tensor,
    zeros,
    zeros_like,
)
from symgrad.frontend.tensor_functions import (
    abs as abs,
)
from symgrad.frontend.tensor_functions import (
    all as all,
)
from symgrad.frontend.tensor_functions import (
    allclose,
    amax,
    amin,
    argmax,
    argmin,
    argsort,
    bmm,
    cat,
    clamp,
    clip,
    clone,
    concat,
    cumsum,
    exp2,
    flatten,
    gather,
    log2,
    log10,
    masked_fill,
    matmul,
    mean,
    mm,
    numel,
    permute,
    prod,
    reshape,
    sort,
    square,
    squeeze,
    std,
    topk,
    transpose,
    tril,
    triu,
    unsqueeze,
    var,
)
from symgrad.frontend.tensor_functions import (
    any as any,
)
from symgrad.frontend.tensor_functions import (
    max as max,
)
from symgrad.frontend.tensor_functions import (
    min as min,
)
from symgrad.frontend.tensor_functions import (
    pow as pow,
)
from symgrad.frontend.tensor_functions import (
    sum as sum,
)
from symgrad.frontend.tensor_reduce import MinMax
from symgrad.frontend.tensor_torch import Size
from symgrad.frontend.trace import Spec, TracedGraph, trace
from symgrad.frontend.value import Value
from symgrad.frontend.value import set_tape_runner as _set_tape_runner
from symgrad.ir import (
    BOOL,
    FLOAT32,
    FLOAT64,
    INT64,
    DType,
    Graph,
    Node,
    SymgradError,
    TraceError,
)
from symgrad.ir.errors import (
    ArgumentError,
    ConcretizationError,
    DTypeError,
    IndexRangeError,
    NonFiniteError,
    ShapeError,
    UnsupportedError,
)
from symgrad.ir.symdim import SymDim
from symgrad.passes.levels import DEFAULT_OPT


def compile(  # the public name shadows the builtin on purpose
    fn: Callable[..., Any],
    *specs_or_arrays: Any,
    wrt: Any = None,
    backend: str | None = None,
    opt: int = DEFAULT_OPT,
    check_finite: bool = False,
) -> "CompiledFunction":
    """Trace ``fn`` once and compile it to C (or NumPy) code; see :mod:`symgrad.lower.jit`.

    ``symgrad.compile(fn, *specs_or_arrays, wrt=None, backend=None)`` returns a
    :class:`~symgrad.runtime.compiled.CompiledFunction`. ``backend=None`` uses C when a working
    compiler is found and otherwise NumPy (with one warning); ``"c"`` or ``"numpy"`` force one.
    ``opt`` is the optimisation level: 0 keeps one statement per VJP rule, 1 (the default)
    simplifies (CSE, constant folding, x·1, x+0, …), 2 adds larger rewrites.
    ``check_finite=True`` checks every call for NaN/inf and names the node that produced one
    (``NonFiniteError``; see docs/reliability.md).
    """
    from symgrad.lower.jit import compile as _compile

    return _compile(
        fn, *specs_or_arrays, wrt=wrt, backend=backend, opt=opt, check_finite=check_finite
    )


class _EagerExecutor:
    """Eager ``backward()`` runs generated code (``symgrad.lower.eager``, imported on first use)."""

    def prepare(
        self, boundary: Sequence[Node], outputs: Sequence[Node], reason: str
    ) -> Callable[[list[Any]], list[Any]]:
        from symgrad.lower.eager import prepare

        return prepare(boundary, outputs, reason)

    def policy(self) -> Hashable:
        from symgrad.lower.eager import policy

        return policy()


_set_executor(_EagerExecutor())


def _tape_runner(root: Value) -> bool:
    from symgrad.runtime.tape import run

    return run(root)


_set_tape_runner(_tape_runner)


_BUILTIN_NAMED_DTYPES = {"float": FLOAT32, "bool": BOOL}


def __getattr__(name: str) -> object:
    # loaded on first use, so that `import symgrad` stays fast
    if name in _BUILTIN_NAMED_DTYPES:  # PyTorch's torch.float, torch.bool
        return _BUILTIN_NAMED_DTYPES[name]
    if name == "__version__":
        from symgrad._version import __version__

        return __version__
    if name == "elementwise":
        from symgrad.sympy_ops.declare import elementwise

        return elementwise
    if name == "compile_step":
        from symgrad.train.step import compile_step

        return compile_step
    if name == "export":
        from symgrad.standalone.export import export

        return export
    if name == "optim":
        import symgrad.optim as optim

        return optim
    if name == "eager_stats":
        from symgrad.lower.eager import eager_stats

        return eager_stats
    if name == "gradcheck":
        from symgrad.check.gradcheck import gradcheck

        return gradcheck
    if name == "draw":
        import symgrad.draw as draw

        return draw
    raise AttributeError(f"module 'symgrad' has no attribute {name!r}")


if TYPE_CHECKING:
    from symgrad import optim
    from symgrad._version import __version__
    from symgrad.check.gradcheck import gradcheck
    from symgrad.lower.eager import eager_stats
    from symgrad.runtime.compiled import CompiledFunction
    from symgrad.standalone.export import export
    from symgrad.sympy_ops.declare import elementwise
    from symgrad.train.step import compile_step

del _ops

# PyTorch's dtype names (``torch.float32``, ``torch.long``, ...); ``symgrad.float`` and
# ``symgrad.bool`` are served by ``__getattr__`` (names of builtins, kept out of this module)
float32, float64, int64, long, double = FLOAT32, FLOAT64, INT64, INT64, FLOAT64

__all__ = [
    "BOOL",
    "FLOAT32",
    "FLOAT64",
    "INT64",
    "ArgumentError",
    "ConcretizationError",
    "DType",
    "DTypeError",
    "Graph",
    "IndexRangeError",
    "MinMax",
    "Node",
    "NonFiniteError",
    "ShapeError",
    "Size",
    "Spec",
    "SymDim",
    "SymgradError",
    "Tensor",
    "TraceError",
    "TracedGraph",
    "UnsupportedError",
    "Value",
    "__version__",
    "allclose",
    "amax",
    "amin",
    "arange",
    "argmax",
    "argmin",
    "argsort",
    "bmm",
    "cat",
    "clamp",
    "clip",
    "clone",
    "compile",
    "compile_step",
    "concat",
    "concatenate",
    "cross_entropy",
    "cumsum",
    "double",
    "eager_stats",
    "elementwise",
    "empty",
    "exp",
    "exp2",
    "export",
    "eye",
    "flatten",
    "float32",
    "float64",
    "full",
    "full_like",
    "gather",
    "get_default_dtype",
    "gradcheck",
    "int64",
    "linspace",
    "log",
    "log2",
    "log10",
    "log_softmax",
    "logsumexp",
    "long",
    "masked_fill",
    "matmul",
    "maximum",
    "mean",
    "minimum",
    "mm",
    "nn",
    "numel",
    "one_hot",
    "ones",
    "ones_like",
    "optim",
    "permute",
    "prod",
    "relu",
    "reshape",
    "set_default_dtype",
    "sigmoid",
    "softmax",
    "sort",
    "sqrt",
    "square",
    "squeeze",
    "stack",
    "std",
    "tanh",
    "tensor",
    "topk",
    "trace",
    "transpose",
    "tril",
    "triu",
    "unsqueeze",
    "var",
    "where",
    "zeros",
    "zeros_like",
]

# randomness and grad mode (PyTorch's names; issue 17, torch-state)
__all__ += [
    "FrozenRandomWarning",
    "Generator",
    "default_generator",
    "enable_grad",
    "initial_seed",
    "is_grad_enabled",
    "manual_seed",
    "multinomial",
    "no_grad",
    "rand",
    "rand_like",
    "randint",
    "randn",
    "randn_like",
    "randperm",
    "seed",
    "set_grad_enabled",
]
