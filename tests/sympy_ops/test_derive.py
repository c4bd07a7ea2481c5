"""``symgrad.elementwise``: ops declared by a SymPy expression, derivatives derived by SymPy.

Ops are declared inside the tests (not at import time), so the registry sweep's collection does
not see them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

sympy = pytest.importorskip("sympy")

import symgrad  # noqa: E402
from symgrad.autodiff.vjp import grad  # noqa: E402
from symgrad.ir.graph import evaluate  # noqa: E402
from symgrad.ir.opdef import get_op  # noqa: E402
from symgrad.ops import api  # noqa: E402
from symgrad.ops.source import make_input  # noqa: E402
from symgrad.sympy_ops import budget, declare, derive, printers  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
X = np.array([-3.1, -1.7, -0.6, -0.05, 0.0, 0.3, 1.1, 2.2, 4.0])


def _y():
    return sympy.Symbol("y", real=True)


def _same(a, b) -> bool:
    return sympy.simplify(a - b) == 0


# -- reference functions --------------------------------------------------------------------------
def _softplus(x):
    return np.logaddexp(0.0, x)


def _mish(x):
    return x * np.tanh(_softplus(x))


def _p3(x):
    return (5 * x**3 - 3 * x) / 2


def _mish_op():
    return symgrad.elementwise("mish", lambda x: x * sympy.tanh(sympy.log(1 + sympy.exp(x))))


def _central(f, x, eps=1e-6):
    return (f(x + eps) - f(x - eps)) / (2 * eps)


# -- values and first derivatives ------------------------------------------------------------------
def test_mish_values_match_numpy():
    mish = _mish_op()
    got = mish(symgrad.Tensor(X))
    assert isinstance(got, symgrad.Tensor)
    np.testing.assert_allclose(got.numpy(), _mish(X), rtol=1e-12, atol=1e-15)


def test_mish_gradient_on_values_matches_finite_differences():
    mish = _mish_op()
    for x0 in X:
        v = symgrad.Value(float(x0))
        out = mish(v)
        assert isinstance(out, symgrad.Value)
        assert out.data == pytest.approx(_mish(x0), rel=1e-12, abs=1e-15)
        out.backward()
        assert v.grad == pytest.approx(_central(_mish, x0), rel=1e-6, abs=1e-6)


def test_mish_gradient_on_a_tensor_matches_finite_differences():
    mish = _mish_op()
    t = symgrad.Tensor(X, requires_grad=True)
    (mish(t) * symgrad.Tensor(np.linspace(0.5, 1.5, X.size))).sum().backward()
    expected = _central(_mish, X) * np.linspace(0.5, 1.5, X.size)
    np.testing.assert_allclose(t.grad, expected, rtol=1e-6, atol=1e-6)


def test_legendre_p3_values_and_gradients():
    p3 = symgrad.elementwise("legendre_p3", lambda x: (5 * x**3 - 3 * x) / 2)
    t = symgrad.Tensor(X, requires_grad=True)
    out = p3(t)
    np.testing.assert_allclose(out.numpy(), _p3(X), rtol=1e-12, atol=1e-14)
    out.sum().backward()
    np.testing.assert_allclose(t.grad, (15 * X**2 - 3) / 2, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(t.grad, _central(_p3, X), rtol=1e-6, atol=1e-6)
    assert _same(p3.derivative_expr, (15 * p3.symbol**2 - 3) / 2)


def test_the_op_accepts_arrays_numbers_and_nodes():
    p3 = symgrad.elementwise("legendre_p3", lambda x: (5 * x**3 - 3 * x) / 2)
    a = p3(X)
    assert isinstance(a, symgrad.Tensor) and a.shape == X.shape
    np.testing.assert_allclose(a.numpy(), _p3(X))
    assert p3(2).item() == pytest.approx(_p3(2.0))  # ints become float64
    assert p3(0.5).item() == pytest.approx(_p3(0.5))
    n = make_input((3,), "float64", name="x")
    node = p3(n)
    assert node.op == p3.op_name and node.inputs == (n,)
    (val,) = evaluate([node], {n: X[:3]})
    np.testing.assert_allclose(val, _p3(X[:3]))
    with pytest.raises(TypeError, match="expected a symgrad Value/Tensor"):
        p3("not a number")


def test_ops_work_while_tracing():
    mish = _mish_op()
    traced = symgrad.trace(lambda x: mish(x).sum(), symgrad.Spec(("n",)))
    assert mish.op_name in str(traced)


# -- derived forms -------------------------------------------------------------------------------
def test_tanh_derivative_is_expressed_through_the_output():
    mytanh = symgrad.elementwise("mytanh", sympy.tanh)
    d = mytanh.derivative_expr
    assert _same(d, 1 - _y() ** 2)
    assert mytanh.symbol not in d.free_symbols


def test_exp_and_sigmoid_derivatives_are_expressed_through_the_output():
    myexp = symgrad.elementwise("myexp", sympy.exp)
    assert myexp.derivative_expr == _y()
    sig = symgrad.elementwise("mysigmoid", lambda x: 1 / (1 + sympy.exp(-x)))
    d = sig.derivative_expr
    assert _same(d, _y() * (1 - _y()))
    assert sig.symbol not in d.free_symbols


def test_exp_gradient_reuses_the_output_node():
    myexp = symgrad.elementwise("myexp", sympy.exp)
    x = make_input((4,), "float64", name="x")
    y = myexp(x)
    (g,) = grad(api.sum(y), [x])
    assert y in _ancestors(g)  # the derivative *is* the output: no new op is declared
    assert myexp.op_name + "_d" not in symgrad.ir.opdef.registry()


def test_rewrites_that_hold_on_half_the_domain_are_rejected():
    # solve gives x = sqrt(y) for y = x**2 and y = sin(x) has x = asin(y): 2*sqrt(y) and
    # sqrt(1 - y**2) are right for x > 0 only, and must not be picked
    sq = symgrad.elementwise("square_for_branch_test", lambda x: x**2)
    assert _same(sq.derivative_expr, 2 * sq.symbol)
    sin = symgrad.elementwise("sin_for_branch_test", sympy.sin)
    assert _same(sin.derivative_expr, sympy.cos(sin.symbol))
    t = symgrad.Tensor(X, requires_grad=True)
    (sq(t) + sin(t)).sum().backward()
    np.testing.assert_allclose(t.grad, 2 * X + np.cos(X), rtol=1e-12)


def test_derived_forms_agree_with_sympy_diff():
    x, y = sympy.Symbol("x", real=True), _y()
    for name, f in [
        ("softplus_d", lambda x: sympy.log(1 + sympy.exp(x))),
        ("atan_d", sympy.atan),
        ("sqrt_d", sympy.sqrt),
        ("mish", lambda x: x * sympy.tanh(sympy.log(1 + sympy.exp(x)))),
    ]:
        op = symgrad.elementwise(name, f)
        expr = f(x)
        d = op.derivative_expr.subs(y, expr)
        for x0 in (0.3, 1.7, 4.2):
            assert complex(d.subs(x, x0).evalf(30)) == pytest.approx(
                complex(sympy.diff(expr, x).subs(x, x0).evalf(30)), rel=1e-12
            )


# -- explicit derivatives ----------------------------------------------------------------------
def test_an_explicit_derivative_overrides_the_derived_one():
    # deliberately wrong: the gradient must follow it (gradient checks rely on this)
    wrong = symgrad.elementwise(
        "tanh_wrong_grad", sympy.tanh, derivative=lambda x: 2 * sympy.cosh(x) ** -2
    )
    v = symgrad.Value(0.4)
    out = wrong(v)
    assert out.data == pytest.approx(np.tanh(0.4))
    out.backward()
    assert v.grad == pytest.approx(2 * (1 - np.tanh(0.4) ** 2), rel=1e-12)
    assert _same(
        wrong.derivative_expr.subs(_y(), sympy.tanh(wrong.symbol)),
        2 * sympy.cosh(wrong.symbol) ** -2,
    )


def test_an_explicit_derivative_may_use_the_output():
    op = symgrad.elementwise("tanh_given_in_y", sympy.tanh, derivative=lambda x, y: 1 - y**2)
    assert _same(op.derivative_expr, 1 - _y() ** 2)
    t = symgrad.Tensor(X, requires_grad=True)
    op(t).sum().backward()
    np.testing.assert_allclose(t.grad, 1 - np.tanh(X) ** 2, rtol=1e-12)


# -- second derivatives ----------------------------------------------------------------------------
def _second(op, x0):
    x = make_input((len(x0),), "float64", name="x")
    (d1,) = grad(api.sum(op(x)), [x])
    (d2,) = grad(api.sum(d1), [x])
    return evaluate([d1, d2], {x: x0})


def test_second_derivative_of_mish_matches_the_analytic_one():
    mish = _mish_op()
    xs = sympy.Symbol("x", real=True)
    e = xs * sympy.tanh(sympy.log(1 + sympy.exp(xs)))
    f1 = sympy.lambdify(xs, sympy.diff(e, xs), "numpy")
    f2 = sympy.lambdify(xs, sympy.diff(e, xs, 2), "numpy")
    d1, d2 = _second(mish, X)
    np.testing.assert_allclose(d1, f1(X), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(d2, f2(X), rtol=1e-10, atol=1e-12)


def test_second_and_third_derivatives_of_tanh():
    mytanh = symgrad.elementwise("mytanh", sympy.tanh)
    t = np.tanh(X)
    d1, d2 = _second(mytanh, X)
    np.testing.assert_allclose(d1, 1 - t**2, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(d2, -2 * t * (1 - t**2), rtol=1e-12, atol=1e-14)
    x = make_input((len(X),), "float64", name="x")
    (g1,) = grad(api.sum(mytanh(x)), [x])
    (g2,) = grad(api.sum(g1), [x])
    (g3,) = grad(api.sum(g2), [x])
    (v3,) = evaluate([g3], {x: X})
    np.testing.assert_allclose(v3, -2 * (1 - t**2) * (1 - 3 * t**2), rtol=1e-10, atol=1e-12)


def test_the_derivative_op_is_an_elementwise_op_of_x_and_y():
    mytanh = symgrad.elementwise("mytanh", sympy.tanh)
    x = make_input((3,), "float64", name="x")
    y = mytanh(x)
    (g,) = grad(api.sum(y), [x])
    d_ops = [n for n in _ancestors(g) if n.op == mytanh.op_name + "_d"]
    assert len(d_ops) == 1 and d_ops[0].inputs == (x, y)
    opdef = get_op(mytanh.op_name + "_d")
    assert opdef.arity == 2 and opdef.kind is symgrad.ir.opdef.Kind.ELEMENTWISE
    assert opdef.sympy_fn is not None


# -- dtypes --------------------------------------------------------------------------------------
def test_float32_stays_float32():
    mish = _mish_op()
    x32 = X.astype(np.float32)
    t = symgrad.Tensor(x32, requires_grad=True)
    out = mish(t)
    assert out.dtype is symgrad.FLOAT32 and out.numpy().dtype == np.float32
    np.testing.assert_allclose(out.numpy(), _mish(X), rtol=2e-6, atol=1e-6)
    out.sum().backward()
    assert t.grad.dtype == np.float32
    np.testing.assert_allclose(t.grad, _central(_mish, X), rtol=1e-4, atol=1e-5)


def test_integer_tensors_are_refused_like_the_built_in_ops():
    mish = _mish_op()
    with pytest.raises(symgrad.DTypeError):
        mish(symgrad.Tensor(np.arange(3)))


# -- declaration rules ---------------------------------------------------------------------------
def test_constants_are_valid_ops_with_zero_gradient():
    three = symgrad.elementwise("three", lambda x: 3)
    t = symgrad.Tensor(X, requires_grad=True)
    out = three(t)
    np.testing.assert_array_equal(out.numpy(), np.full_like(X, 3.0))
    assert three.derivative_expr == 0
    out.sum().backward()
    np.testing.assert_array_equal(t.grad, np.zeros_like(X))


def test_redeclaring_is_idempotent_and_a_different_expression_is_refused():
    a = symgrad.elementwise("redeclared", lambda x: x**2 + 1)
    b = symgrad.elementwise("redeclared", lambda x: 1 + x**2)
    assert a is b
    with pytest.raises(ValueError, match="already declared with a different expression"):
        symgrad.elementwise("redeclared", lambda x: x**3)
    with pytest.raises(ValueError, match="different derivative"):
        symgrad.elementwise("redeclared", lambda x: x**2 + 1, derivative=lambda x: 2 * x)


def test_f_must_return_a_sympy_expression():
    with pytest.raises(TypeError, match="must be a SymPy expression, got str"):
        symgrad.elementwise("returns_str", lambda x: "x**2")
    with pytest.raises(TypeError, match="must be a SymPy expression, got list"):
        symgrad.elementwise("returns_list", lambda x: [x])
    with pytest.raises(TypeError, match="got the bool"):
        symgrad.elementwise("returns_bool", lambda x: True)
    with pytest.raises(TypeError, match="must be a SymPy expression, got StrictGreaterThan"):
        symgrad.elementwise("returns_relation", lambda x: x > 0)
    with pytest.raises(TypeError, match=r"f\(x\) raised"):
        symgrad.elementwise("uses_numpy", np.tanh)
    with pytest.raises(TypeError, match="name must be a str"):
        symgrad.elementwise(3, sympy.tanh)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must not be empty"):
        symgrad.elementwise("  ", sympy.tanh)


def test_foreign_symbols_and_made_up_functions_are_refused():
    other = sympy.Symbol("x")  # not the symbol handed to f (no real=True)
    with pytest.raises(TypeError, match="may only use the symbol"):
        symgrad.elementwise("foreign", lambda x: x + other)
    evil = sympy.Function("__import__('os').system('echo pwned')")
    with pytest.raises(TypeError, match="not one of SymPy's own"):
        symgrad.elementwise("undefined_function", lambda x: evil(x))
    with pytest.raises(TypeError, match="real-valued"):
        symgrad.elementwise("complex_valued", lambda x: sympy.I * x)
    with pytest.raises(TypeError, match="may only use the symbol"):
        symgrad.elementwise("bad_derivative", sympy.tanh, derivative=lambda x: other)


def test_hostile_names_never_become_code():
    name = "x'); import os; os.system('rm -rf /') #\n{0}|`"
    op = symgrad.elementwise(name, lambda x: 2 * x)
    assert re.fullmatch(r"ew_[A-Za-z0-9_]+_[0-9a-f]{8}", op.op_name)
    assert op.name == name
    assert declare.display_name(op.op_name) == name
    assert declare.display_name("add") == "add"
    opdef = get_op(op.op_name)
    assert "\n" not in opdef.doc  # the name is shown as its repr
    assert re.search(r"(?<!\\)\|", opdef.doc) is None  # no bare | to break the op catalogue
    for template in opdef.emit.values():
        assert "os" not in template and "rm" not in template
    # names that sanitise to the same text still get distinct ops
    a = symgrad.elementwise("sanitised!", lambda x: 3 * x)
    b = symgrad.elementwise("sanitised?", lambda x: 4 * x)
    assert a.op_name != b.op_name
    u = symgrad.elementwise("ünïcödé λ", lambda x: 5 * x)
    assert re.fullmatch(r"ew_[A-Za-z0-9_]+_[0-9a-f]{8}", u.op_name)


def test_repr_shows_the_name_and_the_expression():
    mish = _mish_op()
    r = repr(mish)
    assert "'mish'" in r and "tanh" in r and mish.op_name in r


def test_functions_numpy_lacks_fall_back_to_scalar_evaluation():
    myerf = symgrad.elementwise("myerf", sympy.erf)
    import math

    got = myerf(X).numpy()
    np.testing.assert_allclose(got, [math.erf(v) for v in X], rtol=1e-14)
    assert "numpy" not in get_op(myerf.op_name).emit  # NumPy has no erf: no NumPy template
    t = symgrad.Tensor(X, requires_grad=True)
    myerf(t).sum().backward()
    np.testing.assert_allclose(t.grad, 2 / np.sqrt(np.pi) * np.exp(-(X**2)), rtol=1e-12)


# -- derivation machinery ------------------------------------------------------------------------
def test_derivation_is_cached_by_expression():
    mish = _mish_op()
    d = mish.derivative_expr
    key = (sympy.srepr(mish.expr), 0, "")
    assert derive._PARTIAL_CACHE[key] is d
    same = symgrad.elementwise("mish_again", lambda x: x * sympy.tanh(sympy.log(1 + sympy.exp(x))))
    assert same.op_name != mish.op_name
    assert same.derivative_expr is d  # taken from the cache, not derived again


def test_slow_steps_fall_back(monkeypatch):
    import time

    monkeypatch.setattr(budget, "_STEP_SECONDS", 0.2)
    t0 = time.monotonic()
    assert budget._bounded(lambda: time.sleep(5) or "done", "fallback", t0 + 10, None) == (
        "fallback"
    )
    assert time.monotonic() - t0 < 2
    assert budget._bounded(lambda: "done", "fallback", time.monotonic() + 10, None) == "done"
    assert budget._bounded(lambda: 1 / 0, "fallback", time.monotonic() + 10, None) == "fallback"


def test_derivation_works_off_the_main_thread():
    results = {}

    def work():
        op = symgrad.elementwise("softsign_thread", lambda x: x / (1 + x**2))
        results["d"] = op.derivative_expr
        t = symgrad.Tensor(X, requires_grad=True)
        op(t).sum().backward()
        results["g"] = t.grad

    th = threading.Thread(target=work)
    th.start()
    th.join(60)
    np.testing.assert_allclose(results["g"], (1 - X**2) / (1 + X**2) ** 2, rtol=1e-12)


def test_cost_model_prefers_arithmetic_over_transcendental_calls():
    x, y = sympy.symbols("x y", real=True)
    assert derive._cost(1 - y**2) < derive._cost(sympy.cosh(x) ** -2)
    assert derive._cost(y) < derive._cost(sympy.exp(x))
    assert derive._cost(1 / (x**2 + 1)) < derive._cost(sympy.cos(y) ** 2)


# -- emission ------------------------------------------------------------------------------------
EMIT_CASES = {
    "mish": (lambda x: x * sympy.tanh(sympy.log(1 + sympy.exp(x))), _mish),
    "legendre_p3": (lambda x: (5 * x**3 - 3 * x) / 2, _p3),
    "emit_pi_max": (
        lambda x: sympy.Max(x, 0) * sympy.pi + sympy.E,
        lambda x: np.maximum(x, 0) * np.pi + np.e,
    ),
    "emit_sigmoid": (lambda x: 1 / (1 + sympy.exp(-x)), lambda x: 1 / (1 + np.exp(-x))),
}


@pytest.mark.parametrize("name", sorted(EMIT_CASES))
def test_numpy_templates_evaluate_to_the_op(name):
    f, ref = EMIT_CASES[name]
    op = symgrad.elementwise(name, f)
    template = get_op(op.op_name).emit["numpy"]
    assert "numpy." not in template and "{0}" in template
    got = eval(template.format("xs"), {"np": np, "__builtins__": {}}, {"xs": X})
    np.testing.assert_allclose(got, ref(X), rtol=1e-12, atol=1e-14)


def test_derivative_ops_get_templates_with_two_operands():
    mytanh = symgrad.elementwise("mytanh", sympy.tanh)
    x = make_input((3,), "float64", name="x")
    grad(api.sum(mytanh(x)), [x])
    emit = get_op(mytanh.op_name + "_d").emit
    assert set(emit) >= {"numpy", "c", "c:float32"}
    t = np.tanh(X)
    got = eval(emit["numpy"].format("xs", "ys"), {"np": np}, {"xs": X, "ys": t})
    np.testing.assert_allclose(got, 1 - t**2)


def test_c_templates_use_float_functions_for_float32():
    mish = _mish_op()
    emit = get_op(mish.op_name).emit
    assert "expf(" in emit["c:float32"] and "tanhf(" in emit["c:float32"]
    assert "expf(" not in emit["c"] and "exp(" in emit["c"]
    braces = symgrad.elementwise("emit_pi_max", EMIT_CASES["emit_pi_max"][0])
    for key in ("c", "c:float32"):
        assert "M_PI" not in get_op(braces.op_name).emit[key]  # not in strict C99


def test_literal_braces_in_printed_code_are_escaped():
    assert printers._template("f({__sg_arg0__}) + __sg_arg1__") == "f({{({0})}}) + ({1})"
    assert printers._template("g(__sg_arg10__, __sg_arg1__)") == "g(({10}), ({1}))"


def _cc() -> str | None:
    return shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")


@pytest.mark.cc
@pytest.mark.parametrize("name", sorted(EMIT_CASES))
def test_c_templates_compile_and_evaluate_to_the_op(name, tmp_path):
    cc = _cc()
    if cc is None:
        pytest.skip("no C compiler")
    f, ref = EMIT_CASES[name]
    op = symgrad.elementwise(name, f)
    emit = get_op(op.op_name).emit
    xs = ", ".join(repr(float(v)) for v in X)
    src = f"""
#include <math.h>
#include <stdio.h>
int main(void) {{
    const double xs[] = {{{xs}}};
    for (int i = 0; i < {X.size}; i++) {{
        double x = xs[i];
        float xf = (float)xs[i];
        double d = {emit["c"].format("x")};
        float s = {emit["c:float32"].format("xf")};
        printf("%.17g %.9g\\n", d, (double)s);
    }}
    return 0;
}}
"""
    (tmp_path / "t.c").write_text(src)
    exe = tmp_path / "t"
    build = subprocess.run(
        [cc, "-std=c99", "-O1", "-Wall", "-Werror", "-o", str(exe), str(tmp_path / "t.c"), "-lm"],
        capture_output=True,
        text=True,
    )
    if build.returncode != 0:
        pytest.fail(f"C compile failed:\n{build.stderr}\n{src}")
    rows = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split("\n")
    vals = np.array([[float(v) for v in r.split()] for r in rows if r.strip()])
    np.testing.assert_allclose(vals[:, 0], ref(X), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(vals[:, 1], ref(X), rtol=2e-6, atol=2e-6)


# -- import cost -----------------------------------------------------------------------------------
def test_importing_symgrad_does_not_import_sympy():
    code = "import symgrad, sys; assert 'sympy' not in sys.modules, 'sympy was imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(REPO_ROOT))


def test_declaring_an_op_imports_sympy_only_then():
    code = (
        "import sys, symgrad, sympy\n"
        "op = symgrad.elementwise('cube', lambda x: x**3)\n"
        "print(op(2.0).item())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        cwd=str(REPO_ROOT),
        capture_output=True,
        text=True,
    )
    assert float(out.stdout) == 8.0


# -- helpers ---------------------------------------------------------------------------------------
def _ancestors(node):
    from symgrad.ir.graph import toposort

    return set(toposort([node]))
