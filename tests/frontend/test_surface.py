"""The front ends' operators and methods come from the op registry (each op's ``Surface``), and
what type checkers are told (the ``if TYPE_CHECKING:`` declarations) matches what is installed."""

from __future__ import annotations

import ast
import inspect
from typing import Any

import numpy as np

import symgrad as sg
from symgrad.frontend import functional, surface
from symgrad.frontend.tensor import Tensor
from symgrad.ir.node import Node
from symgrad.ir.opdef import _REGISTRY, Kind, OpDef, Surface, register, registry, surface_methods
from symgrad.ops.infer import ew_infer


def _declared(obj: Any) -> set[str]:
    """The names declared under ``if TYPE_CHECKING:`` in a class or module body."""
    tree = ast.parse(inspect.getsource(obj))
    first = tree.body[0]
    body = first.body if inspect.isclass(obj) and isinstance(first, ast.ClassDef) else tree.body
    names: set[str] = set()
    for stmt in body:
        if isinstance(stmt, ast.If) and getattr(stmt.test, "id", "") == "TYPE_CHECKING":
            names |= {f.name for f in stmt.body if isinstance(f, ast.FunctionDef)}
    return names


def test_tensor_declarations_match_the_registry() -> None:
    methods, _ = surface.installed()
    assert _declared(Tensor) == set(methods)
    for name in methods:
        assert name in Tensor.__dict__, name


def test_functional_declarations_match_the_registry() -> None:
    _, functions = surface.installed()
    assert _declared(functional) == set(functions)
    for name in functions:
        assert callable(getattr(functional, name)) and getattr(sg, name) is getattr(
            functional, name
        )


def test_node_declarations_match_the_registry() -> None:
    ops = [op for op in registry().values() if op.differentiable]
    operators = {m.name for op in ops for m in surface_methods(op)}
    assert _declared(Node) == operators
    for name in operators:
        assert name in Node.__dict__, name


def test_every_ufunc_of_a_surface_dispatches_to_its_op() -> None:
    # (traced: an eager result without gradient history is a leaf, like PyTorch's)
    for name, op in registry().items():
        for u in op.surface.ufuncs:
            ufunc = getattr(np, u)

            def fn(x: Tensor, ufunc: object = ufunc) -> Tensor:
                out = ufunc(*(x,) * ufunc.nin)  # type: ignore[operator]
                assert isinstance(out, Tensor)
                return out

            graph = sg.trace(fn, np.array([0.5, 2.0]))
            assert graph.outputs[0].op == name, (u, name)


def test_a_new_op_with_a_surface_appears_on_every_front_end() -> None:
    # a throwaway op: registered, installed, then removed again
    name = "test_surface_halve"
    op = OpDef(
        name,
        Kind.ELEMENTWISE,
        1,
        eval=lambda ctx, x: x / 2,
        infer=ew_infer(float_only=True),
        vjp=lambda g, out, x: (g * 0.5,),
        emit={"numpy": "({0} / 2)", "c": "({0} / 2)"},
        surface=Surface(method="halve_for_test", function="halve_for_test"),
    )
    register(op)
    try:
        surface.install()
        t = sg.Tensor(np.array([1.0, 4.0]), requires_grad=True)
        y = t.halve_for_test()  # type: ignore[attr-defined]
        np.testing.assert_array_equal(y.data, [0.5, 2.0])
        z = functional.halve_for_test(t)  # type: ignore[attr-defined]
        assert z.node.op == name
        y.sum().backward()
        np.testing.assert_array_equal(t.grad, [0.5, 0.5])
    finally:
        del _REGISTRY[name]
        delattr(Tensor, "halve_for_test")
        delattr(functional, "halve_for_test")


def test_value_declarations_match_what_value_ops_installs() -> None:
    # Value is no Tensor: its operators are installed by value_ops (eager floats, else the op on
    # the Value's tensor in the graph) and declared in its class body for type checkers
    from symgrad.frontend import value_ops
    from symgrad.frontend.value import Value

    methods, _ = surface.installed()
    assert _declared(Value) == set(value_ops.INSTALLED)
    # every surface method but == and !=, which Value defines itself (identity, as micrograd)
    assert set(methods) - set(value_ops.INSTALLED) == {"__eq__", "__ne__"}
    for name in value_ops.INSTALLED:
        assert name in Value.__dict__, name
