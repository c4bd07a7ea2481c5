"""The interned Node, provenance and dtypes."""

from __future__ import annotations

import gc
import math
import os
import sys

import numpy as np
import pytest

import symgrad
from symgrad.autodiff.vjp import grad
from symgrad.ir import BOOL, FLOAT32, FLOAT64, INT64, as_dtype
from symgrad.ir.node import live_node_count
from symgrad.ir.opdef import apply, const
from symgrad.ir.provenance import Provenance, provenance_override
from symgrad.ops import api
from symgrad.ops.source import make_constant, make_input


def _here() -> int:
    return sys._getframe(1).f_lineno + 1


# -- interning -------------------------------------------------------------------------------------


def test_same_op_inputs_and_attrs_give_the_same_object():
    x = make_input((2, 3), "float64", name="x")
    y = make_input((2, 3), "float64", name="y")
    assert apply("add", (x, y)) is apply("add", (x, y))
    assert (x * 2.0) is (x * 2.0)
    assert x.T is x.T
    s1 = apply("sum", (x,), {"axis": (1,), "keepdims": False})
    s2 = apply("sum", (x,), {"keepdims": False, "axis": (1,)})  # attr order does not matter
    assert s1 is s2
    assert api.sum(x, 1) is s1 and api.sum(x, -1) is s1  # axes are normalised first
    # structurally equal subexpressions are shared by construction
    e1 = apply("tanh", (x * y,)) + x
    e2 = apply("tanh", (x * y,)) + x
    assert e1 is e2
    assert e1 == e2 and hash(e1) == hash(e2)


def test_different_op_inputs_attrs_or_types_give_different_nodes():
    x = make_input((2, 3), "float64", name="x")
    y = make_input((2, 3), "float64", name="y")
    assert apply("add", (x, y)) is not apply("add", (y, x))  # operand order matters
    assert apply("add", (x, y)) is not apply("mul", (x, y))
    assert api.sum(x, 0) is not api.sum(x, 1)
    assert api.sum(x, 0) is not api.sum(x, 0, keepdims=True)
    assert const(1, INT64) is not const(1.0, FLOAT64)
    assert const(1.0, FLOAT32) is not const(1.0, FLOAT64)
    assert const(True, BOOL) is not const(1, INT64)


def test_inputs_are_distinct_even_when_alike():
    a = make_input((3,), "float64", name="x")
    b = make_input((3,), "float64", name="x")
    assert a is not b
    assert (a + 1.0) is not (b + 1.0)


def test_zero_and_negative_zero_constants_differ():
    z, nz = const(0.0, FLOAT64), const(-0.0, FLOAT64)
    assert z is not nz
    assert math.copysign(1.0, z.attrs["value"]) == 1.0
    assert math.copysign(1.0, nz.attrs["value"]) == -1.0
    assert const(0.0, FLOAT64) is z and const(-0.0, FLOAT64) is nz
    x = make_input((2,), "float64", name="x")
    assert (x * 0.0) is not (x * -0.0)
    (val,) = symgrad.ir.graph.evaluate([1.0 / (x * -0.0)], {x: np.array([1.0, 2.0])})
    np.testing.assert_array_equal(val, [-np.inf, -np.inf])


def test_nan_constants_are_interned_by_bits():
    assert const(float("nan"), FLOAT64) is const(float("nan"), FLOAT64)


def test_float32_constants_are_rounded_to_float32():
    c = const(0.1, FLOAT32)
    assert c.attrs["value"] == float(np.float32(0.1))
    assert c is const(float(np.float32(0.1)), FLOAT32)


def test_array_constants_are_interned_by_content():
    a = make_constant(np.arange(3))
    b = make_constant(np.arange(3))
    c = make_constant(np.arange(3).astype(np.float64))
    d = make_constant(np.array([0, 1, 3]))
    assert a is b
    assert a is not c and a is not d
    assert a.dtype is INT64 and c.dtype is FLOAT64
    src = np.arange(3)
    e = make_constant(src)
    src[0] = 99  # the constant holds a private, read-only copy
    assert e.attrs["value"].array[0] == 0
    assert not e.attrs["value"].array.flags.writeable


def test_constant_folding_of_scalars():
    c = const(2.0, FLOAT64) * const(3.0, FLOAT64) + 1.0
    assert c.op == "const" and c.attrs["value"] == 7.0
    assert apply("exp", (const(0.0, FLOAT64),)) is const(1.0, FLOAT64)


def test_nodes_are_immutable():
    x = make_input((2,), "float64", name="x")
    with pytest.raises(AttributeError):
        x.op = "const"
    with pytest.raises(AttributeError):
        x.shape = (3,)


def test_the_intern_table_does_not_keep_dead_nodes():
    x = make_input((2,), "float64", name="x")
    gc.collect()
    before = live_node_count()
    ys = [x * float(k) for k in range(500)]
    assert live_node_count() >= before + 500
    del ys
    gc.collect()
    assert live_node_count() < before + 10


def test_node_metadata():
    x = make_input(("n", 3), "float32", name="x")
    assert x.shape == ("n", 3) and x.ndim == 2 and x.is_symbolic
    assert x.dtype is FLOAT32
    assert not make_input((2,), "float64").is_symbolic
    assert repr(x).startswith("<Node input f32[n,3] at 0x")
    assert list(apply("add", (x, x)).iter_inputs()) == [x, x]


# -- provenance -----------------------------------------------------------------------------------


def test_provenance_points_at_the_user_line():
    x = make_input((2,), "float64", name="x")
    line = _here()
    y = apply("tanh", (x,)) * 3.0
    p = y.provenance
    assert p is not None
    assert os.path.samefile(p.file, __file__)
    assert p.line == line
    assert p.function == "test_provenance_points_at_the_user_line"
    assert p.via == ""
    assert p.short == f"test_node.py:{line}"
    assert p.source == 'y = apply("tanh", (x,)) * 3.0'
    assert p.describe() == f"{p.file}:{line}: {p.source}"


def test_provenance_of_frontend_tensors_skips_symgrad_frames():
    t = symgrad.Tensor(np.ones((4, 2)))
    line = _here()
    y = symgrad.softmax(t)  # built deep inside symgrad.ops.api
    assert os.path.samefile(y.node.provenance.file, __file__)
    assert y.node.provenance.line == line
    for n in symgrad.ir.graph.toposort([y.node]):
        if n.provenance is not None and n.op != "input":
            assert n.provenance.line == line, n


def test_provenance_of_eager_ops_leaves_and_data_assignments():
    # the eager hot paths capture the provenance from their caller's frame (fewer frames walked)
    w = symgrad.Tensor(np.ones((3, 2)), requires_grad=True)
    x = symgrad.Tensor(np.ones((4, 3)))
    lines: dict[str, int] = {}
    lines["leaf"] = _here()
    leaf = symgrad.Tensor(np.zeros(2))
    lines["binary"] = _here()
    h = x @ w
    lines["unary"] = _here()
    t = h.tanh()
    lines["number"] = _here()
    s = t * 2.0
    lines["index"] = _here()
    e = w[np.array([0, 2])]
    lines["composite"] = _here()
    ce = symgrad.cross_entropy(s, np.array([0, 1, 1, 0]))
    lines["data"] = _here()
    w.data = w.data * 0.5
    got = {
        "leaf": leaf.node,
        "binary": h.node,
        "unary": t.node,
        "number": s.node,
        "index": e.node,
        "composite": ce.node,
        "data": w.node,
    }
    for what, node in got.items():
        p = node.provenance
        assert p is not None and os.path.samefile(p.file, __file__), what
        assert (p.line, p.function) == (
            lines[what],
            "test_provenance_of_eager_ops_leaves_and_data_assignments",
        ), what
    for n in symgrad.ir.graph.toposort([ce.node]):  # a composite's nodes and its target leaf
        if n.provenance is not None and n not in (s.node, x.node, w.node, h.node, t.node):
            if n.op == "input" and n.shape == (3, 2):
                continue  # (w's first version: made above)
            assert n.provenance.line == lines["composite"], n


def test_provenance_is_not_part_of_identity_and_first_site_wins():
    x = make_input((2,), "float64", name="x")
    first = _here()
    a = apply("exp", (x,))
    b = apply("exp", (x,))
    assert a is b
    assert a.provenance.line == first


def test_backward_nodes_carry_the_forward_line_and_the_rule():
    x = make_input((3,), "float64", name="x")
    line = _here()
    y = api.sum(apply("tanh", (x,)))
    (g,) = grad(y, [x])
    assert g.provenance.line == line
    vias = {n.provenance.via for n in symgrad.ir.graph.toposort([g]) if n.provenance}
    assert "vjp tanh" in vias
    assert "vjp sum" in vias


def test_provenance_override():
    p = Provenance("model.py", 7, "forward", via="test")
    x = make_input((2,), "float64", name="x")
    with provenance_override(p):
        y = apply("neg", (x,))
    assert y.provenance == p
    assert Provenance.capture() is not None and Provenance.capture().file != "model.py"


def test_provenance_of_a_file_that_cannot_be_read():
    p = Provenance("/no/such/file.py", 3, "f")
    assert p.source == ""
    assert p.describe() == "/no/such/file.py:3"


# -- dtypes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        ("float32", FLOAT32),
        ("f32", FLOAT32),
        (np.float32, FLOAT32),
        (np.dtype("<f4"), FLOAT32),
        ("float64", FLOAT64),
        ("f64", FLOAT64),
        (float, FLOAT64),
        (np.float64, FLOAT64),
        ("int64", INT64),
        ("i64", INT64),
        (int, INT64),
        (np.int32, INT64),
        (np.uint8, INT64),
        ("bool", BOOL),
        (bool, BOOL),
        (np.bool_, BOOL),
        (FLOAT32, FLOAT32),
    ],
)
def test_as_dtype(spelling, expected):
    assert as_dtype(spelling) is expected


@pytest.mark.parametrize("bad", ["float16", np.float16, np.complex128, "x", object])
def test_as_dtype_rejects_unsupported(bad):
    with pytest.raises(TypeError, match="unsupported dtype"):
        as_dtype(bad)


def test_dtype_properties():
    assert FLOAT32.np == np.dtype("float32")
    assert FLOAT64.c_type == "double" and FLOAT32.c_type == "float"
    assert FLOAT64.is_float and not INT64.is_float and not BOOL.is_float
    assert str(INT64) == repr(INT64) == "int64"
    assert (FLOAT32.short, FLOAT64.short, INT64.short, BOOL.short) == ("f32", "f64", "i64", "bool")
