"""The front ends' operators and methods, made from the op registry.

Owns: :func:`install`, which gives ``Tensor`` every operator and elementwise method that an op's
:class:`~symgrad.ir.opdef.Surface` declares (``__add__``/``__radd__`` for ``add``, ``tanh`` for
``tanh``, ...), and the module-level functions of ``symgrad.frontend.functional`` that ops
declare (``Surface.function``). ``Tensor`` and ``functional`` declare the same names for type
checkers; ``tests/frontend/test_surface.py`` checks that declarations and registry agree. An op
added with a surface appears on every front end at once (``Node``'s operators are installed by
the registry itself, ``Value``'s by ``symgrad.frontend.value_ops``, declared in ``Value``).
Binary operators and functions on operands of different dtypes promote them as PyTorch does
(``symgrad.frontend.promote``) when the op refuses the mix: the common case pays nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from symgrad.frontend import functional
from symgrad.frontend.promote import promoted
from symgrad.frontend.tensor import _HOOKS, Tensor, _binary, _run, lift
from symgrad.ir.errors import DTypeError
from symgrad.ir.opdef import OpDef, SurfaceMethod, apply, registry, surface_methods


def binary_op(name: str, a: Any, b: Any) -> Tensor:
    """``_binary(name, a, b)``; when the op refuses the operands' mix of dtypes, again on the
    operands promoted as PyTorch does (float64 with float32 is float64, ...)."""
    try:
        return _binary(name, a, b)
    except DTypeError:
        both = promoted(name, a, b)
        if both is None:
            raise
    return _binary(name, *both)


def tensor_method(m: SurfaceMethod) -> Callable[..., Tensor]:
    """The Tensor method ``m`` (an operator or a named elementwise method)."""
    name = m.op
    if m.form == "binary":

        def binary(self: Tensor, o: Any) -> Tensor:
            try:  # (binary_op inlined: one frame less on every eager op)
                return _binary(name, self, o)
            except DTypeError:
                both = promoted(name, self, o)
                if both is None:
                    raise
            return _binary(name, *both)

        fn: Callable[..., Tensor] = binary
    elif m.form == "reflected":

        def reflected(self: Tensor, o: Any) -> Tensor:
            try:
                return _binary(name, o, self)
            except DTypeError:
                both = promoted(name, o, self)
                if both is None:
                    raise
            return _binary(name, *both)

        fn = reflected
    else:

        def unary(self: Tensor) -> Tensor:
            return self._unary(name)

        fn = unary
    fn.__name__ = fn.__qualname__ = m.name
    fn.__doc__ = registry()[name].doc
    return fn


def module_function(op: OpDef) -> Callable[..., Tensor]:
    """``functional.<op.surface.function>``: the op on tensors, arrays or numbers."""
    name = op.name
    if op.arity == 1:

        def unary(x: Any) -> Tensor:
            return _run(lambda n: apply(name, (n,)), functional._t(x))

        fn: Callable[..., Tensor] = unary
    else:

        def binary(a: Any, b: Any) -> Tensor:
            a, b = lift(a), lift(b)
            either = isinstance(a, Tensor) or isinstance(b, Tensor)
            return binary_op(name, a if either else functional._t(a), b)

        fn = binary
    fn.__name__ = fn.__qualname__ = op.surface.function
    fn.__doc__ = op.doc
    fn.__module__ = functional.__name__
    return fn


def installed() -> tuple[list[str], list[str]]:
    """The Tensor methods and the functional functions the registry's surfaces define."""
    methods = [m.name for op in registry().values() for m in surface_methods(op)]
    functions = [op.surface.function for op in registry().values() if op.surface.function]
    return methods, functions


def install() -> None:
    _HOOKS.binary = binary_op  # (NumPy's binary ufuncs on tensors)
    for op in list(registry().values()):
        for m in surface_methods(op):
            setattr(Tensor, m.name, tensor_method(m))
        if op.surface.function:
            setattr(functional, op.surface.function, module_function(op))


install()
