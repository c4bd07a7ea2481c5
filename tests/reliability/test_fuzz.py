"""Hypothesis fuzzing of the public API with random programs (``fuzz_programs.py``): random
shapes (0-size dims included), dtypes, values (NaN, ±inf, signed zeros, extremes), broadcasting
and operands that may not fit. Each program must either give the right values -- eagerly, traced
through the reference interpreter, and compiled on each backend, values and gradients -- or fail
with a documented error type (a ``SymgradError``). Never a crash, a hang or a wrong number
(docs/reliability.md, "Fuzzing").
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, note, settings

import symgrad as sg
from symgrad import Spec, Tensor
from symgrad.ir.graph import evaluate
from tests.reliability.fuzz_programs import Program, programs, run_numpy, run_symgrad

FAST = settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
COMPILED = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)

#: refusals where NumPy would compute something: symgrad promotes dtypes only in elementwise ops
#: (DTypeError) and does not record NumPy functions it has no op for (UnsupportedError)
STRICTER = (sg.DTypeError, sg.UnsupportedError)


def _tol(dtype: np.dtype) -> float:
    return 1e-5 if dtype == np.float32 else 1e-11


def assert_close(got: Any, want: Any, what: str, tol: float | None = None) -> None:
    """Equal dtypes and shapes; equal NaN and infinity positions; values within a relative
    tolerance of the magnitude (orders of summation differ between backends)."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != {want.dtype}"
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    if got.dtype.kind != "f":
        np.testing.assert_array_equal(got, want, err_msg=what)
        return
    t = _tol(got.dtype) if tol is None else tol
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=f"{what}: NaNs")
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want), err_msg=f"{what}: infs")
    fin = np.isfinite(want)
    scale = 1.0 + (np.abs(want[fin]).max() if fin.any() else 0.0)
    np.testing.assert_allclose(got[fin], want[fin], rtol=t, atol=t * scale, err_msg=what)
    np.testing.assert_array_equal(got[~fin], want[~fin], err_msg=what)


def eager(prog: Program) -> tuple[list[Any] | None, BaseException | None]:
    tensors = [Tensor(a.copy(), requires_grad=a.dtype.kind == "f") for a in prog.inputs]
    try:
        with np.errstate(all="raise"):  # symgrad must not warn (or raise) on IEEE hazards
            return run_symgrad(prog, tensors), None
    except sg.SymgradError as e:
        return None, e


def outputs_of(prog: Program) -> Any:
    n = len(prog.inputs)

    def fn(*xs: Any) -> Any:
        return tuple(run_symgrad(prog, list(xs))[n:])

    return fn


def specs_of(prog: Program) -> list[Spec]:
    return [Spec(a.shape, a.dtype) for a in prog.inputs]


def check_program(prog: Program) -> list[np.ndarray] | None:
    """Eager vs NumPy, and traced (reference interpreter) vs eager; returns the step values
    (None when symgrad refused the program with a documented error)."""
    note(repr(prog))
    want, np_fail = run_numpy(prog)
    got, err = eager(prog)
    n = len(prog.inputs)
    if err is not None:
        note(f"symgrad refused: {type(err).__name__}: {err}")
        event(f"refused: {type(err).__name__}")
        assert np_fail is not None or isinstance(err, STRICTER), (
            f"NumPy computes this program but symgrad raised {type(err).__name__}: {err}"
        )
        # tracing refuses it too, the same way -- or, when the error depends on the data (an
        # index or class out of range), running the traced graph on that data does
        with pytest.raises(sg.SymgradError) as traced:
            graph = sg.trace(outputs_of(prog), *specs_of(prog))
            with np.errstate(all="ignore"):
                evaluate(list(graph.outputs), dict(zip(graph.inputs, prog.inputs, strict=True)))
        assert type(traced.value) is type(err), (traced.value, err)
        return None
    assert got is not None
    assert np_fail is None, f"symgrad computed step {np_fail}, which NumPy refuses"
    event("computed")
    values = [t.numpy() for t in got[n:]]
    for k, (g, w) in enumerate(zip(values, want[n:], strict=True)):
        assert_close(g, w, f"step {k} ({prog.steps[k][0]}) vs NumPy", tol=1e-5)
    graph = sg.trace(outputs_of(prog), *specs_of(prog))
    env = dict(zip(graph.inputs, prog.inputs, strict=True))
    with np.errstate(all="ignore"):
        ref = evaluate(list(graph.outputs), env)
    assert isinstance(ref, list)
    for k, (g, r) in enumerate(zip(values, ref, strict=True)):
        assert_close(r, g, f"step {k} ({prog.steps[k][0]}): interpreter vs eager", tol=0.0)
    return values


def check_compiled(prog: Program, values: list[np.ndarray], backend: str) -> None:
    """The compiled program (forward, and gradients of the last float value) on ``backend``
    against the reference interpreter."""
    specs = specs_of(prog)
    f = sg.compile(outputs_of(prog), *specs, backend=backend)
    out = f(*prog.inputs)
    out = out if isinstance(out, tuple) else (out,)
    for k, (g, w) in enumerate(zip(out, values, strict=True)):
        assert_close(g, w, f"{backend} step {k} ({prog.steps[k][0]})")
    floats = [k for k, v in enumerate(values) if v.dtype.kind == "f" and v.size]
    wrt = [i for i, a in enumerate(prog.inputs) if a.dtype.kind == "f"]
    if not floats or not wrt:
        return
    last = floats[-1]
    n = len(prog.inputs)

    def loss(*xs: Any) -> Any:
        return run_symgrad(prog, list(xs))[n + last].sum()

    g = sg.compile(loss, *specs, wrt=wrt, backend=backend)
    value, grads = g(*prog.inputs)
    joint = g.graph  # inputs, then the output's cotangent -> outputs, then gradients
    env = dict(zip(joint.inputs, [*prog.inputs, np.ones((), value.dtype)], strict=True))
    with np.errstate(all="ignore"):
        ref = evaluate(list(joint.outputs), env)
    assert isinstance(ref, list)
    assert_close(value, ref[0], f"{backend} loss")
    for i, got, want in zip(wrt, grads, ref[1:], strict=True):
        assert_close(got, want, f"{backend} gradient of input {i}")


@FAST
@given(programs())
def test_random_programs_are_right_or_refused_clearly(prog: Program) -> None:
    check_program(prog)


@COMPILED
@given(programs(max_steps=3))
def test_random_programs_compiled_with_numpy(prog: Program) -> None:
    values = check_program(prog)
    if values is not None:
        check_compiled(prog, values, "numpy")


@pytest.mark.cc
@settings(COMPILED, max_examples=25)
@given(programs(max_steps=3))
def test_random_programs_compiled_with_c(prog: Program) -> None:
    values = check_program(prog)
    if values is not None:
        check_compiled(prog, values, "c")


@FAST
@given(programs(max_steps=3))
def test_symbolic_dims_trace_or_refuse_clearly(prog: Program) -> None:
    """Every dim of size 2 made symbolic ('n'): tracing succeeds and then agrees with the eager
    values, or fails with a SymgradError (symbolic dims are stricter than static ones)."""
    got, err = eager(prog)
    specs = [Spec(tuple("n" if d == 2 else d for d in a.shape), a.dtype) for a in prog.inputs]
    try:
        graph = sg.trace(outputs_of(prog), *specs)
    except sg.SymgradError:
        return
    assert err is None, f"traced with symbolic dims, but eagerly: {err!r}"
    assert got is not None
    env = dict(zip(graph.inputs, prog.inputs, strict=True))
    with np.errstate(all="ignore"):
        ref = evaluate(list(graph.outputs), env)
    assert isinstance(ref, list)
    n = len(prog.inputs)
    for k, (r, t) in enumerate(zip(ref, got[n:], strict=True)):
        assert_close(r, t.numpy(), f"step {k}: symbolic vs eager", tol=1e-12)
