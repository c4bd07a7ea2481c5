"""The C backend: generated kernels and extension modules against the NumPy backend and the
reference interpreter (float64 to 1e-12 relative, float32 to 1e-5), argument validation and
error messages, index-range errors, user text and names in the C source, and warning-free C.

Every test that compiles is marked ``cc`` and skips cleanly without a working compiler. Each
model is compiled once per test module (module-scoped fixtures, built in parallel into a temporary
directory); the registry-wide differential test puts every op of the sweep table into one graph
per dtype, so that it costs two compiler runs.
"""

from __future__ import annotations

import inspect
import os
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

import symgrad as sg
from symgrad.autodiff.joint import Joint, split
from symgrad.codegen.c.printer import CSource, render_c
from symgrad.codegen.numpy.printer import render_numpy
from symgrad.codegen.program import Program
from symgrad.codegen.schedule import schedule
from symgrad.ir.dtypes import FLOAT64
from symgrad.ir.errors import ArgumentError
from symgrad.ir.graph import Graph, bind_dims, evaluate
from symgrad.ir.node import Node
from symgrad.ir.opdef import apply, const, get_op, registry
from symgrad.ops.source import make_input
from symgrad.runtime import cc
from symgrad.runtime.load import load_extension
from tests.ops.test_registry_sweep import SWEEP, Case, _InputCase

HERE = os.path.basename(__file__)


# -- building ------------------------------------------------------------------------------------


@dataclass
class Built:
    """A compiled model: its Program, joint (if differentiated), C module and NumPy module."""

    graph: Graph
    prog: Program
    joint: Joint | None
    source: CSource
    module: ModuleType
    numpy: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(scope="module")
def compiler() -> cc.Compiler:
    if not cc.compiler_available():
        pytest.skip("needs a working C compiler ($CC, default cc)")
    return cc.find_compiler()


def _numpy_module(prog: Program) -> dict[str, Any]:
    ns: dict[str, Any] = {}
    exec(compile(render_numpy(prog), "<numpy module>", "exec"), ns)
    ns["_C"][:] = [c.array for c in prog.consts]
    return ns


def _build_all(
    compiler: cc.Compiler, out_dir: Path, items: dict[str, tuple[Graph, list[int] | None]]
) -> dict[str, Built]:
    """Schedule, render and compile every graph (compiler runs in parallel), then load."""
    flags = cc.default_flags()
    suffix = cc.extension_suffix()
    jobs: dict[str, tuple[Graph, Program, Joint | None, CSource]] = {}
    for name, (graph, wrt) in items.items():
        joint = split(graph, wrt) if wrt else None
        prog = schedule(graph, joint)
        jobs[name] = (graph, prog, joint, render_c(prog, name))

    def compile_one(name: str) -> Path:
        src = out_dir / f"{name}.c"
        src.write_text(jobs[name][3].binding)
        so = out_dir / f"{name}{suffix}"
        cc.build_shared(compiler, [src], so, flags, cc.python_include_dirs())
        return so

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        paths = dict(zip(jobs, pool.map(compile_one, jobs), strict=True))
    out: dict[str, Built] = {}
    for name, (graph, prog, joint, source) in jobs.items():
        module = load_extension(paths[name], name)
        module._init(np.empty, [c.array for c in prog.consts], ArgumentError)
        out[name] = Built(graph, prog, joint, source, module, _numpy_module(prog))
    return out


def _tol(dt: Any) -> dict[str, float]:
    if np.dtype(dt) == np.float32:
        return {"rtol": 1e-5, "atol": 1e-6}
    return {"rtol": 1e-12, "atol": 1e-14}


def _close(got: Any, want: Any) -> None:
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype, f"dtype {got.dtype} != {want.dtype}"
    assert got.shape == want.shape, f"shape {got.shape} != {want.shape}"
    if got.dtype.kind == "f":
        np.testing.assert_allclose(got, want, **_tol(got.dtype))
    else:
        np.testing.assert_array_equal(got, want)


# -- models --------------------------------------------------------------------------------------


def tanh_mlp(x, W1, b1, W2, b2):  # type: ignore[no-untyped-def]
    h = (x @ W1 + b1).tanh()
    return ((h @ W2 + b2) ** 2).mean()


def bigram(W, xs, ys):  # type: ignore[no-untyped-def]
    logits = sg.one_hot(xs, 27, dtype=W.dtype) @ W
    counts = logits.exp()
    probs = counts / counts.sum(1, keepdims=True)
    return -probs[sg.arange(xs.shape[0]), ys].log().mean() + 0.01 * (W**2).mean()


def softmax_xent(logits, y):  # type: ignore[no-untyped-def]
    return sg.cross_entropy(logits, y) + 0.1 * (sg.softmax(logits, axis=1) * logits).sum()


def max_keepdims(x):  # type: ignore[no-untyped-def]
    m = x.max(axis=1, keepdims=True)
    return (x - m).exp().sum() + x.max(axis=(0, 2)).sum() + (x.max() * 2.0)


def concat_slice(a, b):  # type: ignore[no-untyped-def]
    c = sg.concatenate([a, b], axis=1)
    return (c[:, 1:4] * c[::-1, :3]).sum() + (c[1:, ::2] ** 2).sum() + c.T.sum(axis=1).sum()


def broadcasting(a, b, c):  # type: ignore[no-untyped-def]
    d = sg.maximum(a * b - c, a / (b * b + 1.0)) + sg.where(a > b, a, c)
    return (d.sigmoid() + (d * d).sqrt() + (-d).relu() + sg.minimum(a, b).abs()).sum()


def matmuls(v, A, u, T, M):  # type: ignore[no-untyped-def]
    parts = [v @ A, A @ u, v @ v, T @ A, T @ M, v @ M, M @ u]
    return sum(((p * p).sum() for p in parts), 0.0)


# name -> (function, spec builder (float dtype -> specs), wrt, data builder (rng, dtype, n))
MODELS: dict[str, tuple[Callable[..., Any], Any, list[int], Any]] = {
    "tanh_mlp": (
        tanh_mlp,
        lambda dt: [sg.Spec(("n", 3), dt), *(sg.Spec(s, dt) for s in [(3, 4), (4,), (4, 2), (2,)])],
        [0, 1, 2, 3, 4],
        lambda r, dt, n: [
            r.standard_normal(s).astype(dt) for s in [(n, 3), (3, 4), (4,), (4, 2), (2,)]
        ],
    ),
    "bigram": (
        bigram,
        lambda dt: [sg.Spec((27, 27), dt), sg.Spec(("n",), "int64"), sg.Spec(("n",), "int64")],
        [0],
        lambda r, dt, n: [
            r.standard_normal((27, 27)).astype(dt),
            r.integers(0, 27, n),
            r.integers(-27, 27, n),  # negative indices wrap, like NumPy
        ],
    ),
    "softmax_xent": (
        softmax_xent,
        lambda dt: [sg.Spec(("n", 5), dt), sg.Spec(("n",), "int64")],
        [0],
        lambda r, dt, n: [r.standard_normal((n, 5)).astype(dt), r.integers(0, 5, n)],
    ),
    "max_keepdims": (
        max_keepdims,
        lambda dt: [sg.Spec(("n", 4, 3), dt)],
        [0],
        lambda r, dt, n: [r.standard_normal((n, 4, 3)).astype(dt)],
    ),
    "concat_slice": (
        concat_slice,
        lambda dt: [sg.Spec((3, 2), dt), sg.Spec((3, 3), dt)],
        [0, 1],
        lambda r, dt, n: [
            r.standard_normal((3, 2)).astype(dt),
            r.standard_normal((3, 3)).astype(dt),
        ],
    ),
    "broadcasting": (
        broadcasting,
        lambda dt: [sg.Spec((3, 1), dt), sg.Spec((4,), dt), sg.Spec((), dt)],
        [0, 1, 2],
        lambda r, dt, n: [r.standard_normal(s).astype(dt) for s in [(3, 1), (4,), ()]],
    ),
    "matmuls": (
        matmuls,
        lambda dt: [sg.Spec(s, dt) for s in [(4,), (4, 3), (3,), (2, 5, 4), (2, 4, 3)]],
        [0, 1, 2, 3, 4],
        lambda r, dt, n: [
            r.standard_normal(s).astype(dt) for s in [(4,), (4, 3), (3,), (2, 5, 4), (2, 4, 3)]
        ],
    ),
}
DTYPES = ["float64", "float32"]
MODEL_CASES = [pytest.param(m, dt, id=f"{m}-{dt}") for m in MODELS for dt in DTYPES]


@pytest.fixture(scope="module")
def models(compiler: cc.Compiler, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Built]:
    items: dict[str, tuple[Graph, list[int] | None]] = {}
    for name, (fn, specs, wrt, _) in MODELS.items():
        for dt in DTYPES:
            items[f"sgt_{name}_{dt}"] = (sg.trace(fn, *specs(dt)), wrt)
    return _build_all(compiler, tmp_path_factory.mktemp("c_models"), items)


def _run_model(b: Built, arrays: list[np.ndarray]) -> None:
    """C forward and backward against the NumPy module and the interpreter."""
    results, saved = b.module.forward(*arrays)
    np_results, np_saved = b.numpy["forward"](*arrays)
    env = dict(zip(b.graph.inputs, arrays, strict=True))
    ref = evaluate(list(b.graph.outputs), env)
    assert isinstance(ref, list)
    assert len(results) == len(ref) and len(saved) == len(np_saved)
    for got, want, np_got in zip(results, ref, np_results, strict=True):
        _close(got, want)
        _close(got, np.asarray(np_got))
    for got, np_got in zip(saved, np_saved, strict=True):
        _close(got, np.asarray(np_got))
    if b.joint is None:
        return
    seed = np.asarray(1.5, dtype=b.graph.outputs[0].dtype.np)
    grads = b.module.backward(seed, saved, *arrays)
    np_grads = b.numpy["backward"](seed, np_saved, *arrays)
    want_g = evaluate(list(b.joint.grads), {**env, b.joint.cotangents[0]: seed})
    assert isinstance(want_g, list)
    for got, want, np_got in zip(grads, want_g, np_grads, strict=True):
        _close(got, want)
        _close(got, np.asarray(np_got))


@pytest.mark.cc
@pytest.mark.parametrize(("name", "dt"), MODEL_CASES)
def test_model_matches_numpy_backend_and_interpreter(
    models: dict[str, Built], name: str, dt: str
) -> None:
    b = models[f"sgt_{name}_{dt}"]
    rng = np.random.default_rng(7)
    symbolic = any(isinstance(d, str) for n in b.graph.inputs for d in n.shape)
    for n in (1, 7, 130) if symbolic else (None,):  # 130 > 128: pairwise sums recurse
        _run_model(b, MODELS[name][3](rng, dt, n))


@pytest.mark.cc
def test_results_are_fresh_arrays_of_the_right_type(models: dict[str, Built]) -> None:
    b = models["sgt_tanh_mlp_float32"]
    arrays = MODELS["tanh_mlp"][3](np.random.default_rng(0), "float32", 4)
    (r1,), s1 = b.module.forward(*arrays)
    (r2,), _ = b.module.forward(*arrays)
    assert isinstance(r1, np.ndarray) and r1.dtype == np.float32 and r1.shape == ()
    assert r1 is not r2 and all(isinstance(s, np.ndarray) and s.flags.writeable for s in s1)
    grads = b.module.backward(np.float32(1.0), list(s1), *arrays)  # a list works too
    assert isinstance(grads, tuple) and [g.shape for g in grads] == [a.shape for a in arrays]


@pytest.mark.cc
def test_forward_only_module_returns_empty_saved(compiler: cc.Compiler, tmp_path: Path) -> None:
    g = sg.trace(lambda a, b: (a * b, (a + b).sum()), sg.Spec(("n",)), sg.Spec(("n",)))
    b = _build_all(compiler, tmp_path, {"sgt_forward_only": (g, None)})["sgt_forward_only"]
    assert not hasattr(b.module, "backward")
    (prod, total), saved = b.module.forward(np.array([1.0, 2.0]), np.array([3.0, 4.0]))
    assert saved == ()
    np.testing.assert_array_equal(prod, [3.0, 8.0])
    assert total == 10.0


@pytest.mark.cc
def test_large_arrays_release_the_gil_and_threads_agree(models: dict[str, Built]) -> None:
    b = models["sgt_tanh_mlp_float64"]
    rng = np.random.default_rng(11)
    batches = [MODELS["tanh_mlp"][3](rng, "float64", 20000 + k) for k in range(4)]
    want = [b.numpy["forward"](*arrays)[0][0] for arrays in batches]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda arrays: b.module.forward(*arrays)[0][0], batches * 2))
    for g, w in zip(got, want * 2, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-12)


@pytest.mark.cc
def test_float_sums_equal_numpy_to_the_bit(compiler: cc.Compiler, tmp_path: Path) -> None:
    items: dict[str, tuple[Graph, list[int] | None]] = {}
    for dt in DTYPES:
        x = make_input(("n", "m"), dt, "x")
        outs = [apply("sum", (x,), {"axis": a, "keepdims": False}) for a in [(1,), (0, 1), (0,)]]
        items[f"sgt_sums_{dt}"] = (Graph([x], outs), None)
    built = _build_all(compiler, tmp_path, items)
    rng = np.random.default_rng(5)
    for dt in DTYPES:
        m = built[f"sgt_sums_{dt}"].module
        for shape in [(1, 1), (3, 7), (5, 8), (4, 100), (2, 129), (3, 1000), (1, 70000)]:
            a = rng.standard_normal(shape).astype(dt)
            got, _ = m.forward(a)
            for g, w in zip(got, [a.sum(axis=1), a.sum(), a.sum(axis=0)], strict=True):
                np.testing.assert_array_equal(g, w)


# -- the registry, op by op ------------------------------------------------------------------------


@dataclass
class Sweep:
    """Every sweep case of one float dtype, as one graph: differentiable outputs first."""

    ids: list[str]
    nodes: list[Node]
    params: list[Node]
    arrays: list[np.ndarray]
    n_diff: int


def _softplus() -> Any:
    """A custom SymPy op (emit["c"] and emit["c:float32"]), registered when a fixture needs it: the
    registry sweep enumerates the registry when it is collected."""
    import sympy as sp

    return sg.elementwise("softplus_c_test", lambda x: sp.log(1 + sp.exp(x)))


def _sweep(dt: str, custom: bool = True) -> Sweep:
    diff: list[tuple[str, Node]] = []
    other: list[tuple[str, Node]] = []
    params: dict[Node, np.ndarray] = {}
    for name in sorted(SWEEP):
        for v in SWEEP[name]:
            if dt == "float32" and not v.float_generic:
                continue
            case: Case = v.build(
                np.random.default_rng(list(f"{name}/{v.id}".encode())), np.dtype(dt)
            )
            if isinstance(case, _InputCase):
                continue  # graph inputs are parameters, not statements
            ins = [n for n in case.inputs if n.op == "input"]
            bound = {d for n in ins for d in n.shape if isinstance(d, str)}
            if case.dims and set(case.dims) - bound:
                continue  # symbolic dims bound by no input cannot occur in a traced function
            node = apply(name, tuple(case.inputs), case.attrs)
            params.update(case.env)
            differentiable = (
                get_op(name).differentiable
                and node.dtype.is_float
                and not v.zero_grad
                and any(n.dtype.is_float for n in ins)
            )
            (diff if differentiable else other).append((f"{name}-{v.id}", node))
    # symbolic dims bound by an input: arange and dimsize of a traced length
    z = make_input(("n", 3), dt, "z")
    params[z] = np.ones((4, 3), dtype=dt)
    other.append(("arange-bound", apply("arange", (), {"n": "n"})))
    other.append(("dimsize-bound", apply("dimsize", (), {"dims": (3, "n"), "dtype": dt})))
    if custom:
        x = make_input((6,), dt, "x")
        params[x] = np.linspace(-2.0, 2.0, 6).astype(dt)
        diff.append(("elementwise-softplus", apply(_softplus().op_name, (x,))))
    ids = [i for i, _ in diff + other]
    return Sweep(ids, [n for _, n in diff + other], list(params), list(params.values()), len(diff))


SWEEP_IDS = {dt: [*_sweep(dt, custom=False).ids, "elementwise-softplus"] for dt in DTYPES}


@pytest.fixture(scope="module")
def sweeps(
    compiler: cc.Compiler, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[Sweep, list[Any], list[Any]]]:
    """Per dtype: the sweep, the C module's results and the interpreter's."""
    items: dict[str, tuple[Graph, list[int] | None]] = {}
    data = {dt: _sweep(dt) for dt in DTYPES}
    for dt, sw in data.items():
        items[f"sgt_sweep_{dt}"] = (Graph(sw.params, sw.nodes), None)
    built = _build_all(compiler, tmp_path_factory.mktemp("c_sweep"), items)
    out = {}
    for dt, sw in data.items():
        results, _ = built[f"sgt_sweep_{dt}"].module.forward(*sw.arrays)
        env = dict(zip(sw.params, sw.arrays, strict=True))
        want = evaluate(sw.nodes, env, dims=bind_dims(sw.params, sw.arrays))
        assert isinstance(want, list)
        out[dt] = (sw, list(results), want)
    return out


@pytest.fixture(scope="module")
def sweep_grads(
    compiler: cc.Compiler, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[Sweep, Built]]:
    items: dict[str, tuple[Graph, list[int] | None]] = {}
    data = {dt: _sweep(dt) for dt in DTYPES}
    for dt, sw in data.items():
        wrt = [k for k, p in enumerate(sw.params) if p.dtype.is_float]
        items[f"sgt_sweep_grad_{dt}"] = (Graph(sw.params, sw.nodes[: sw.n_diff]), wrt)
    built = _build_all(compiler, tmp_path_factory.mktemp("c_sweep_grad"), items)
    return {dt: (data[dt], built[f"sgt_sweep_grad_{dt}"]) for dt in DTYPES}


SWEEP_CASES = [pytest.param(dt, i, id=f"{i}-{dt}") for dt in DTYPES for i in SWEEP_IDS[dt]]


@pytest.mark.cc
@pytest.mark.parametrize(("dt", "case_id"), SWEEP_CASES)
def test_every_op_matches_interpreter(
    sweeps: dict[str, tuple[Sweep, list[Any], list[Any]]], dt: str, case_id: str
) -> None:
    sw, results, want = sweeps[dt]
    k = sw.ids.index(case_id)
    _close(results[k], want[k])


@pytest.mark.cc
@pytest.mark.parametrize("dt", DTYPES)
def test_every_op_gradient_matches_interpreter(
    sweep_grads: dict[str, tuple[Sweep, Built]], dt: str
) -> None:
    sw, b = sweep_grads[dt]
    assert b.joint is not None and list(b.graph.inputs) == sw.params
    _, saved = b.module.forward(*sw.arrays)
    rng = np.random.default_rng(3)
    cots = [rng.standard_normal(n.shape).astype(n.dtype.np) for n in b.graph.outputs]
    grads = b.module.backward(*cots, saved, *sw.arrays)
    env = dict(zip(sw.params, sw.arrays, strict=True))
    env.update(zip(b.joint.cotangents, cots, strict=True))
    want = evaluate(list(b.joint.grads), env, dims=bind_dims(sw.params, sw.arrays))
    assert isinstance(want, list)
    assert len(grads) == len(want) == len(b.joint.wrt)
    for got, w, node in zip(grads, want, b.joint.wrt, strict=True):
        assert got.dtype == w.dtype, node
        np.testing.assert_allclose(got, w, **_tol(w.dtype), err_msg=repr(node))


def test_sweep_covers_every_registered_op() -> None:
    covered = {i.split("-")[0] for i in SWEEP_IDS["float64"]}
    builtin = {n for n in registry() if not n.startswith("ew_")}
    assert builtin - covered == {"input"}  # inputs are parameters, never statements


# -- NaN and integer semantics -------------------------------------------------------------------


@pytest.mark.cc
def test_nan_propagation_and_int64_wraparound_match_numpy(
    compiler: cc.Compiler, tmp_path: Path
) -> None:
    x, i = make_input((6,), "float64", "x"), make_input((3,), "int64", "i")
    half = const(0.5, FLOAT64)
    rev = apply("slice", (x,), {"index": ((5, -1, -1),)})
    outs = [
        apply("relu", (x,)),
        apply("maximum", (x, rev)),
        apply("maximum", (rev, x)),
        apply("minimum", (x, half)),
        apply("sign", (x,)),
        apply("max", (x,), {"axis": (0,), "keepdims": False}),
        apply(
            "max", (apply("reshape", (x,), {"shape": (2, 3)}),), {"axis": (0,), "keepdims": True}
        ),
        apply("add", (apply("mul", (i, i)), apply("neg", (i,)))),
        apply("abs", (i,)),
    ]
    g = Graph([x, i], outs)
    b = _build_all(compiler, tmp_path, {"sgt_nan": (g, None)})["sgt_nan"]
    xv = np.array([np.nan, -1.0, 2.0, -0.0, 0.25, np.inf])
    iv = np.array([2**62, -(2**63), 5], dtype=np.int64)
    results, _ = b.module.forward(xv, iv)
    with np.errstate(all="ignore"):
        want = evaluate(outs, {x: xv, i: iv})
    assert isinstance(want, list)
    for got, w in zip(results, want, strict=True):
        np.testing.assert_array_equal(got, w)


# -- argument validation and runtime errors ------------------------------------------------------


@pytest.mark.cc
def test_argument_errors_name_the_parameter(models: dict[str, Built]) -> None:
    m = models["sgt_tanh_mlp_float64"].module
    x, W1, b1, W2, b2 = MODELS["tanh_mlp"][3](np.random.default_rng(0), "float64", 5)
    with pytest.raises(ArgumentError, match=r"^W1: expected shape \(3, 4\), got \(4, 3\)$"):
        m.forward(x, W1.T.copy(), b1, W2, b2)
    with pytest.raises(ArgumentError, match=r"^b1: expected shape \(4,\), got \(4, 1\)$"):
        m.forward(x, W1, b1[:, None], W2, b2)
    with pytest.raises(ArgumentError, match=r"^x: expected shape \(n, 3\), got \(5, 2\)$"):
        m.forward(x[:, :2].copy(), W1, b1, W2, b2)
    with pytest.raises(ArgumentError, match=r"^W2: expected float64, got float32$"):
        m.forward(x, W1, b1, W2.astype(np.float32), b2)
    with pytest.raises(ArgumentError, match=r"^b2: expected float64, got int64$"):
        m.forward(x, W1, b1, W2, np.zeros(2, dtype=np.int64))
    with pytest.raises(ArgumentError, match=r"^x: expected float64, got buffer format '>d'$"):
        m.forward(x.astype(">f8"), W1, b1, W2, b2)
    msg = r"^forward\(\) takes 5 arguments \(x, W1, b1, W2, b2\), got 3$"
    with pytest.raises(ArgumentError, match=msg):
        m.forward(x, W1, b1)
    _, saved = m.forward(x, W1, b1, W2, b2)
    msg = r"^backward\(\) takes 7 arguments \(g_out, saved, x, W1, b1, W2, b2\), got 6$"
    with pytest.raises(ArgumentError, match=msg):
        m.backward(np.ones(()), saved, x, W1, b1, W2)
    with pytest.raises(ArgumentError, match=r"saved: expected a tuple of \d+ arrays .*got 1$"):
        m.backward(np.ones(()), saved[:1], x, W1, b1, W2, b2)
    with pytest.raises(ArgumentError, match=r"saved: expected a tuple .*got dict"):
        m.backward(np.ones(()), {}, x, W1, b1, W2, b2)
    with pytest.raises(TypeError, match=r"x: expected a C-contiguous array, got numpy.ndarray"):
        m.forward(np.asfortranarray(np.ones((5, 3))), W1, b1, W2, b2)
    with pytest.raises(TypeError, match="W1: expected a C-contiguous array, got list"):
        m.forward(x, W1.tolist(), b1, W2, b2)


@pytest.mark.cc
def test_inconsistent_symbolic_dims_use_bind_dims_wording(models: dict[str, Built]) -> None:
    m = models["sgt_bigram_float64"].module
    W = np.zeros((27, 27))
    msg = (
        r"^ys: symbolic dim 'n' is 4 here but 5 in xs "
        r"\(expected shape \(n,\), got \(4,\)\)$"
    )
    with pytest.raises(ArgumentError, match=msg):
        m.forward(W, np.zeros(5, dtype=np.int64), np.zeros(4, dtype=np.int64))
    # the same as the interpreter's check
    g = models["sgt_bigram_float64"].graph
    with pytest.raises(ArgumentError) as info:
        sg.ir.graph.bind_dims(
            list(g.inputs), [W, np.zeros(5, np.int64), np.zeros(4, np.int64)], ["W", "xs", "ys"]
        )
    assert str(info.value).startswith("ys: symbolic dim 'n' is 4 here but 5 in xs")


def _line_of(fn: Callable[..., Any], text: str) -> int:
    lines, start = inspect.getsourcelines(fn)
    return start + next(k for k, line in enumerate(lines) if text in line)


@pytest.mark.cc
def test_out_of_range_index_raises_index_error_naming_the_line(models: dict[str, Built]) -> None:
    b = models["sgt_bigram_float64"]
    W = np.random.default_rng(0).standard_normal((27, 27))
    xs = np.array([0, 5, 26], dtype=np.int64)
    line = _line_of(bigram, "probs[sg.arange")
    with pytest.raises(
        IndexError, match=rf"^index 27 is out of range for a dim of size 27 \({HERE}:{line}\)$"
    ):
        b.module.forward(W, xs, np.array([1, 27, 3], dtype=np.int64))
    with pytest.raises(
        IndexError, match=rf"^index -28 is out of range for a dim of size 27 \({HERE}:{line}\)$"
    ):
        b.module.forward(W, xs, np.array([1, -28, 3], dtype=np.int64))
    line = _line_of(bigram, "one_hot")
    msg = rf"^one_hot: class 30 is out of range \[0, 27\) \({HERE}:{line}\)$"
    with pytest.raises(IndexError, match=msg):
        b.module.forward(W, np.array([0, 30, 1], dtype=np.int64), xs)
    # the NumPy module says the same
    with pytest.raises(IndexError, match=r"index 27 is out of range for a dim of size 27"):
        b.numpy["forward"](W, xs, np.array([1, 27, 3], dtype=np.int64))


@pytest.mark.cc
def test_max_of_an_empty_array_is_an_error(models: dict[str, Built]) -> None:
    m = models["sgt_max_keepdims_float64"].module
    with pytest.raises(ValueError, match=rf"max of an empty array has no value \({HERE}:\d+\)"):
        m.forward(np.zeros((0, 4, 3)))


@pytest.mark.cc
def test_calling_before_init_is_an_error(compiler: cc.Compiler, tmp_path: Path) -> None:
    g = sg.trace(lambda a: a * 2.0, sg.Spec((2,)))
    prog = schedule(g)
    src = tmp_path / "sgt_uninit.c"
    src.write_text(render_c(prog, "sgt_uninit").binding)
    so = tmp_path / f"sgt_uninit{cc.extension_suffix()}"
    cc.build_shared(compiler, [src], so, cc.default_flags(), cc.python_include_dirs())
    m = load_extension(so, "sgt_uninit")
    with pytest.raises(RuntimeError, match="_init"):
        m.forward(np.ones(2))
    with pytest.raises(ValueError, match="expected 0 constants, got 1"):
        m._init(np.empty, [np.ones(2)], ArgumentError)
    m._init(np.empty, [], ArgumentError)
    (r,), _ = m.forward(np.ones(2))
    np.testing.assert_array_equal(r, [2.0, 2.0])


# -- names, user text, warnings --------------------------------------------------------------------


def odd_names(NAN, free, INFINITY):  # type: ignore[no-untyped-def]
    return (NAN * free + INFINITY).sum()  # */ int evil; /* ??/ \


def _odd_graph() -> Any:
    return sg.trace(odd_names, sg.Spec(("EOF", 2)), sg.Spec(("EOF", 2)), sg.Spec((2,)))


@pytest.mark.cc
def test_c_names_avoid_macros_and_library_names(compiler: cc.Compiler, tmp_path: Path) -> None:
    g = _odd_graph()
    b = _build_all(compiler, tmp_path, {"sgt_odd": (g, [0, 1, 2])})["sgt_odd"]
    kernel = b.source.kernel
    for name in ("NAN_", "free_", "INFINITY_", "EOF_"):
        assert name in kernel
    arrays = [np.ones((3, 2)), np.full((3, 2), 2.0), np.array([0.5, -1.0])]
    _run_model(b, arrays)


def test_user_text_only_in_escaped_comments() -> None:
    g = _odd_graph()
    src = render_c(schedule(g, split(g, [0])), "sgt_text")
    for text in (src.kernel, src.binding):
        assert "int evil; /*" not in text and "*/ int evil" not in text
        assert "??/" not in text
        assert "* / int evil; / *" in text  # the model line, escaped, is quoted


def test_rendering_is_deterministic_and_reuses_program_names() -> None:
    fn, specs, wrt, _ = MODELS["tanh_mlp"]
    g = sg.trace(fn, *specs("float64"))
    prog = schedule(g, split(g, wrt))
    a, b = render_c(prog, "sgt_same"), render_c(prog, "sgt_same")
    assert a == b
    for name in ("g_W1", "g_b2", "t0", "int sg_forward(", "int sg_backward("):
        assert name in a.kernel
    assert "PyInit_sgt_same" in a.binding and a.kernel in a.binding
    with pytest.raises(ValueError, match="C identifier"):
        render_c(prog, "not-an-identifier")


def _all_sources() -> Iterator[tuple[str, CSource]]:
    for name, (fn, specs, wrt, _) in MODELS.items():
        for dt in DTYPES:
            g = sg.trace(fn, *specs(dt))
            yield f"{name}_{dt}", render_c(schedule(g, split(g, wrt)), f"sgt_{name}")
    for dt in DTYPES:
        sw = _sweep(dt)
        g = Graph(sw.params, sw.nodes)
        yield f"sweep_{dt}", render_c(schedule(g), "sgt_sweep")
        g = Graph(sw.params, sw.nodes[: sw.n_diff])
        wrt = [k for k, p in enumerate(sw.params) if p.dtype.is_float]
        yield f"sweep_grad_{dt}", render_c(schedule(g, split(g, wrt)), "sgt_sweep_grad")
    g = _odd_graph()
    yield "odd", render_c(schedule(g, split(g, [0, 1, 2])), "sgt_odd")


@pytest.mark.cc
def test_kernels_compile_without_warnings_as_strict_c99(
    compiler: cc.Compiler, tmp_path: Path
) -> None:
    files = []
    for name, src in _all_sources():
        path = tmp_path / f"{name}.c"
        path.write_text(src.kernel)
        files.append(path)
    native = [f for f in cc.default_flags() if f.startswith("-march")]
    strict = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2", *native, "-c"]

    def check(path: Path) -> str:
        argv = [*compiler.argv0, *strict, str(path), "-o", str(path.with_suffix(".o"))]
        proc = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True)
        return proc.stderr if proc.returncode else ""

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        errors = [e for e in pool.map(check, files) if e]
    assert not errors, errors[0][:4000]


@pytest.mark.cc
def test_binding_compiles_without_warnings(compiler: cc.Compiler, tmp_path: Path) -> None:
    fn, specs, wrt, _ = MODELS["bigram"]
    g = sg.trace(fn, *specs("float64"))
    path = tmp_path / "binding.c"
    path.write_text(render_c(schedule(g, split(g, wrt)), "sgt_warn").binding)
    inc = [f"-I{d}" for d in cc.python_include_dirs()]
    argv = [
        *compiler.argv0,
        "-std=c99",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-O2",
        *inc,
        "-fPIC",
        "-c",
        str(path),
    ]
    proc = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[:4000]
