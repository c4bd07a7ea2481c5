"""Differential tests: the generated code of every op, on every backend, in float32 and float64,
agrees with the reference interpreter — values and gradients (float64: 1e-12 relative)."""

from __future__ import annotations

import numpy as np
import pytest

from symgrad.autodiff.joint import split
from symgrad.codegen.schedule import schedule
from symgrad.ir.dtypes import as_dtype
from symgrad.ir.graph import Graph, evaluate
from symgrad.ir.opdef import apply, get_op, registry
from symgrad.ops import api
from symgrad.ops.source import make_constant
from symgrad.runtime import modules
from tests.ops.test_registry_sweep import SWEEP, Case, Variant

CASES = [
    pytest.param(name, v, dt, id=f"{name}-{v.id}-{dt}")
    for name in sorted(SWEEP)
    for v in SWEEP[name]
    for dt in ("float64", "float32")
    if dt == "float64" or v.float_generic
]
BACKENDS = [
    "numpy",
    pytest.param("c", marks=pytest.mark.cc),
]


def _node(name: str, case: Case):  # type: ignore[no-untyped-def]
    return apply(name, tuple(case.inputs), case.attrs)


def _tol(dt: str) -> dict[str, float]:
    return {"rtol": 1e-12, "atol": 1e-300} if dt == "float64" else {"rtol": 2e-5, "atol": 1e-6}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("name", "variant", "dt"), CASES)
def test_generated_code_matches_interpreter(
    name: str, variant: Variant, dt: str, backend: str, c_backend_ready: None
) -> None:
    if name in ("input",):
        pytest.skip("graph inputs are parameters, not statements")
    rng = np.random.default_rng(1234)
    case = variant.build(rng, np.dtype(dt))
    node = _node(name, case)
    params = [n for n in case.inputs if n.op == "input"]
    arrays = [a for n, a in zip(case.inputs, case.arrays, strict=True) if n.op == "input"]
    env = dict(zip(params, arrays, strict=True))
    dims = case.dims
    bound = {d for p in params for d in p.shape if isinstance(d, str)}
    if dims and set(dims) - bound:
        pytest.skip("symbolic dims bound by no input cannot occur in a traced function")
    op = get_op(name)
    diff = (
        op.differentiable
        and node.dtype.is_float
        and not variant.zero_grad
        and any(p.dtype.is_float for p in params)
    )
    if diff:
        shape = (
            tuple(dims[d] if isinstance(d, str) else d for d in node.shape) if dims else node.shape
        )
        weights = make_constant(rng.standard_normal(shape).astype(node.dtype.np))
        loss = api.sum(node * weights) if node.shape else node * 1.0
        graph = Graph(params, [loss])
        wrt = [k for k, p in enumerate(params) if p.dtype.is_float]
        joint = split(graph, wrt)
        prog = schedule(graph, joint)
    else:
        graph = Graph(params, [node])
        joint, prog = None, schedule(graph)
    built = modules.build(prog, backend, graph)
    results, saved = built.module.forward(*arrays)
    ref = evaluate(list(graph.outputs), env, dims=dims)
    assert isinstance(ref, list)
    for got, want in zip(results, ref, strict=True):
        got = np.asarray(got)
        assert got.dtype == want.dtype, f"{backend} gave {got.dtype}, the interpreter {want.dtype}"
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, **_tol(dt))
    if joint is not None:
        seed = np.ones((), dtype=node.dtype.np)
        grads = built.module.backward(seed, saved, *arrays)
        benv = dict(env)
        benv[joint.cotangents[0]] = seed
        want_g = evaluate(list(joint.grads), benv, dims=dims)
        assert isinstance(want_g, list)
        for got, want in zip(grads, want_g, strict=True):
            assert np.asarray(got).dtype == want.dtype
            np.testing.assert_allclose(np.asarray(got), want, **_tol(dt))


def test_every_op_is_covered() -> None:
    assert set(registry()) <= set(SWEEP) | {n for n in registry() if n.startswith("ew_")}
    _ = as_dtype
