"""``symgrad.gradcheck``: every op of the registry passes on both backends, wrong rules are caught
and localised (user ops by the user's name, built-in rules by op and line), non-differentiable
points are reported as such, float32 functions are checked in float64, large inputs by random
projections, and the micrograd and makemore models pass."""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import itertools
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import symgrad as sg
from symgrad.check.gradcheck import GradcheckError, GradcheckReport, available_backends
from symgrad.frontend.tensor import Tensor, _run
from symgrad.ir.opdef import _REGISTRY, apply, get_op, registry
from symgrad.runtime import modules
from tests.ops.test_registry_sweep import SWEEP, Case, Variant, _rng_for

THIS_FILE = str(Path(__file__))

needs_c = pytest.mark.skipif(
    "c" not in available_backends(),
    reason="the C backend is not available (no working compiler, or it does not import)",
)
BACKENDS = ["numpy", pytest.param("c", marks=[pytest.mark.cc, needs_c])]


@pytest.fixture
def fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private compile cache and no loaded modules: code generated while a rule or an emitter
    is patched never leaks into (or comes from) another test."""
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(modules, "_LOADED", {})
    return tmp_path


def line_of(marker: str) -> int:
    """The line of this file that contains ``marker`` (so that tests do not hard-code numbers)."""
    lines = Path(__file__).read_text().splitlines()
    hits = [k for k, line in enumerate(lines, 1) if marker in line and "line_of(" not in line]
    assert len(hits) == 1, marker
    return hits[0]


@contextlib.contextmanager
def corrupted(name: str, factor: float = 1.5) -> Iterator[None]:
    """Replace op ``name``'s VJP rule by one that scales the cotangent of input k by
    ``factor * (1 + k/4)`` (different factors, so that ``x - x`` still shows it)."""
    old = get_op(name)
    assert old.vjp is not None
    rule = old.vjp

    def wrong(g: Any, out: Any, *inputs: Any, **attrs: Any) -> tuple[Any, ...]:
        cts = rule(g, out, *inputs, **attrs)
        return tuple(
            None if ct is None else ct * (factor * (1 + k / 4)) for k, ct in enumerate(cts)
        )

    _REGISTRY[name] = dataclasses.replace(old, vjp=wrong)
    try:
        yield
    finally:
        _REGISTRY[name] = old


def with_parameters(fn: Callable[..., Tensor], prefix: str, n: int) -> Callable[..., Tensor]:
    """``fn(*args)`` seen by tracing as ``fn(<prefix>0, <prefix>1, ...)``."""
    kind = inspect.Parameter.POSITIONAL_ONLY
    params = [inspect.Parameter(f"{prefix}{k}", kind) for k in range(n)]
    fn.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    return fn


def failing(report: GradcheckReport) -> set[str]:
    return {c.backend for c in report.checks if not c.ok}


# -- every op of the registry ----------------------------------------------------------------------


def sweep_cases() -> list[Any]:
    """Every differentiable op's SWEEP variants with a float input and a float output, in
    float64 and (where the builder honours it) float32."""
    out = []
    for name in sorted(SWEEP):
        if name not in registry() or not get_op(name).differentiable:
            continue
        for v in SWEEP[name]:
            for dt in ("float64", "float32") if v.float_generic else ("float64",):
                case = v.build(_rng_for(name, v), np.dtype(dt))
                node = apply(name, tuple(case.inputs), case.attrs)
                if case.dims or not case.float_inputs() or not node.dtype.is_float:
                    continue
                out.append(pytest.param(name, v, dt, id=f"{name}-{v.id}-{dt}"))
    return out


def op_loss(name: str, case: Case) -> tuple[Callable[..., Tensor], list[np.ndarray]]:
    """``sum(op(*inputs) * w)`` with fixed random weights ``w``, and the inputs it takes."""
    node = apply(name, tuple(case.inputs), case.attrs)
    rng = np.random.default_rng(len(name))
    # float32-exact weights: the float32 graph promoted to float64 is the float64 graph, so
    # the C code of the combined graph below is compiled once for both
    w = rng.uniform(0.5, 1.5, tuple(int(d) for d in node.shape)).astype(np.float32)
    w = w.astype(node.dtype.np)

    def build(*nodes: Any) -> Any:
        it = iter(nodes)
        return apply(
            name, tuple(next(it) if n.op == "input" else n for n in case.inputs), case.attrs
        )

    def loss(*args: Tensor) -> Tensor:
        return (_run(build, *args) * w).sum()

    args = [a for n, a in zip(case.inputs, case.arrays, strict=True) if n.op == "input"]
    return loss, args


@pytest.mark.parametrize(("name", "variant", "dtype"), sweep_cases())
def test_every_op_passes_on_the_numpy_backend(name: str, variant: Variant, dtype: str) -> None:
    case = variant.build(_rng_for(name, variant), np.dtype(dtype))
    loss, args = op_loss(name, case)
    report = sg.gradcheck(loss, *args, backend="numpy")
    assert report.ok, str(report)
    assert report.evaluated_in_float64 == any(a.dtype == np.float32 for a in args) or name == "cast"


@pytest.mark.parametrize(
    ("name", "variant", "dtype"), [p for p in sweep_cases() if p.values[2] == "float64"]
)
def test_no_correct_rule_is_blamed(name: str, variant: Variant, dtype: str) -> None:
    """The localiser's own check passes every built-in rule (no false culprits); gradcheck runs
    it on float64 graphs only (float32 ones are promoted first)."""
    from symgrad.check.localise import check_rules, reference_values

    case = variant.build(_rng_for(name, variant), np.dtype(dtype))
    loss, args = op_loss(name, case)
    graph = sg.trace(loss, *args)
    vals = reference_values(graph, args)
    wrt = [n for n in graph.inputs if n.dtype.is_float]
    assert check_rules(graph, vals, wrt, 1e-6, 1e-5, 1e-3, seed=0) == []


def all_ops_loss(dtype: str) -> tuple[Callable[..., Tensor], list[np.ndarray]]:
    """One function that applies every op of the sweep (every variant) to its own inputs."""
    parts: list[tuple[Callable[..., Tensor], int]] = []
    arrays: list[np.ndarray] = []
    for p in sweep_cases():
        name, v, dt = p.values
        if dt != dtype or name == "cast":  # casts change the dtype of the sum: checked above
            continue
        loss, args = op_loss(name, v.build(_rng_for(name, v), np.dtype(dt)))
        parts.append((loss, len(args)))
        arrays += args

    def every_op(*ts: Tensor) -> Tensor:
        total, k = None, 0
        for loss, n in parts:
            term = loss(*ts[k : k + n])
            total = term if total is None else total + term
            k += n
        assert total is not None
        return total

    return with_parameters(every_op, "a", len(arrays)), arrays


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_every_op_passes_in_one_graph(backend: str, dtype: str) -> None:
    fn, arrays = all_ops_loss(dtype)
    report = sg.gradcheck(fn, *arrays, backend=backend)
    assert report.ok, str(report)
    assert report.backends == (backend,)
    assert report.evaluated_in_float64 is (dtype == "float32")
    assert len(report.checks) == sum(a.dtype.kind == "f" for a in arrays)


# -- wrong rules are caught and localised ------------------------------------------------------


badsq = sg.elementwise("badsq", lambda x: x**2, derivative=lambda x: 3 * x)


def uses_badsq(x: Tensor) -> Tensor:
    y = badsq(x) * 2.0  # <- badsq applied here
    return y.tanh().sum()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_wrong_user_derivative_is_named(backend: str) -> None:
    report = sg.gradcheck(uses_badsq, np.array([0.3, -0.4, 0.5]), backend=backend)
    assert not report.ok
    assert failing(report) == {backend}
    c = report.culprit
    assert c is not None and c.kind == "rule" and c.site is not None and c.mismatch is not None
    assert c.site.label == "badsq" and c.site.user_op
    assert (c.site.file, c.site.line) == (THIS_FILE, line_of("<- badsq applied here"))
    assert "badsq(x) * 2.0" in c.site.source
    assert c.mismatch.rel_err == pytest.approx(1 / 3, rel=1e-3)  # 3x against 2x
    assert c.quoted_backend == backend and c.statements
    assert all("(vjp badsq)" in s for s in c.statements if "vjp" in s)
    text = str(report)
    assert "the VJP of badsq (declared with symgrad.elementwise)" in text
    assert f"test_gradcheck.py:{line_of('<- badsq applied here')}" in text
    assert "y = badsq(x) * 2.0" in text
    assert "FAILED" in text.splitlines()[0]


def test_raise_on_failure_raises_an_assertion_error_with_the_report() -> None:
    with pytest.raises(GradcheckError) as info:
        sg.gradcheck(uses_badsq, np.array([0.3, 0.4]), backend="numpy", raise_on_failure=True)
    assert isinstance(info.value, AssertionError)
    assert str(info.value) == str(info.value.report)
    assert "badsq" in str(info.value)


def tanh_model(x: Tensor, w: Tensor) -> Tensor:
    h = (x @ w).tanh()  # <- the tanh
    return (h * h).sum()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_wrong_builtin_rule_is_localised_to_its_op_and_line(
    backend: str, fresh_cache: Path
) -> None:
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((4, 3)), rng.standard_normal((3, 2))
    assert sg.gradcheck(tanh_model, x, w, backend=backend).ok
    old = get_op("tanh")
    assert old.vjp is not None
    _REGISTRY["tanh"] = dataclasses.replace(old, vjp=lambda g, out, x: (g * (1.0 - out),))
    try:
        report = sg.gradcheck(tanh_model, x, w, backend=backend)
    finally:
        _REGISTRY["tanh"] = old
    assert not report.ok
    c = report.culprit
    assert c is not None and c.kind == "rule" and c.site is not None
    assert (c.site.op, c.site.line) == ("tanh", line_of("<- the tanh"))
    assert c.others == 0  # no other rule disagrees
    assert any("(vjp tanh)" in s for s in c.statements)
    assert "the VJP of tanh, for its input 0 (f64[4,2])" in str(report)
    assert sg.gradcheck(tanh_model, x, w, backend=backend).ok  # restored


def test_the_wrong_rule_closest_to_the_output_is_named_first(fresh_cache: Path) -> None:
    with corrupted("tanh"):
        report = sg.gradcheck(uses_badsq, np.array([0.3, -0.4, 0.5]), backend="numpy")
    c = report.culprit
    assert c is not None and c.site is not None
    assert c.site.op == "tanh" and c.others == 1  # badsq is wrong too, further from the output
    assert "the rules of 1 more node(s), further from the output, disagree too" in str(report)


def test_a_code_generation_bug_is_told_apart_from_a_wrong_rule(fresh_cache: Path) -> None:
    def tanh_sum(x: Tensor) -> Tensor:
        return x.tanh().sum()  # backward: 1 - out*out, forward has no sub

    old = get_op("sub")
    _REGISTRY["sub"] = dataclasses.replace(old, emit={**old.emit, "numpy": "{0} + {1}"})
    try:
        report = sg.gradcheck(tanh_sum, np.array([0.5, -1.0]), backend="numpy")
    finally:
        _REGISTRY["sub"] = old
    assert not report.ok
    assert report.culprit is not None and report.culprit.kind == "codegen"
    assert "code generation bug" in str(report) and "numpy" in report.culprit.detail


# -- random graphs (Hypothesis) ------------------------------------------------------------------

UNARY = ("tanh", "sigmoid", "neg", "exp", "square", "halve")
BINARY = ("add", "sub", "mul", "div", "matmul", "sum", "max", "maximum")


@st.composite
def programs(draw: Any) -> tuple[int, list[tuple[str, int, int]]]:
    n_inputs = draw(st.integers(1, 3))
    steps = []
    for k in range(draw(st.integers(1, 4))):
        pool = n_inputs + k
        op = draw(st.sampled_from(UNARY + BINARY))
        steps.append((op, draw(st.integers(0, pool - 1)), draw(st.integers(0, pool - 1))))
    return n_inputs, steps


def run_program(n_inputs: int, steps: list[tuple[str, int, int]]) -> Callable[..., Tensor]:
    rng = np.random.default_rng(len(steps))
    weights = [rng.uniform(0.5, 1.5, (2, 3)) for _ in range(n_inputs + len(steps))]

    def program(*xs: Tensor) -> Tensor:
        pool = list(xs)
        for op, i, j in steps:
            a, b = pool[i], pool[j]
            if op == "square":
                v = a * a
            elif op == "halve":
                v = a * 0.5
            elif op in UNARY:
                v = getattr(sg, op)(a) if op != "neg" else -a
            elif op == "add":
                v = a + b
            elif op == "sub":
                v = a - b
            elif op == "mul":
                v = a * b
            elif op == "div":
                v = a / (b * b + 1.0)
            elif op == "matmul":
                v = (a @ b.T) @ a
            elif op == "sum":
                v = a.sum(1, keepdims=True) + b
            elif op == "max":
                v = a.max(axis=0, keepdims=True) * b
            else:
                v = sg.maximum(a, b + 0.25)
            pool.append(v)
        total = None
        for v, w in zip(pool, weights, strict=True):
            term = (v * w).sum()
            total = term if total is None else total + term
        assert total is not None
        return total

    return with_parameters(program, "x", n_inputs)


def ops_of(report_fn: Callable[..., Tensor], arrays: list[np.ndarray]) -> set[str]:
    graph = sg.trace(report_fn, *arrays)
    return {n.op for n in graph.order if n.inputs and get_op(n.op).differentiable}


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(prog=programs(), data=st.data())
def test_random_graphs_pass_and_a_corrupted_rule_is_localised(
    prog: tuple[int, list[tuple[str, int, int]]], data: Any
) -> None:
    n_inputs, steps = prog
    fn = run_program(n_inputs, steps)
    rng = np.random.default_rng(n_inputs * 100 + len(steps))
    arrays = [rng.uniform(-1.0, 1.0, (2, 3)) for _ in range(n_inputs)]
    report = sg.gradcheck(fn, *arrays, backend="numpy")
    assert report.ok, str(report)
    bad = data.draw(st.sampled_from(sorted(ops_of(fn, arrays))), label="corrupted op")
    with corrupted(bad):
        report = sg.gradcheck(fn, *arrays, backend="numpy")
        wrong = _interpreter_grads(fn, arrays)
    if report.ok:
        # a corruption can be invisible (the op's cotangent is zero, e.g. downstream of x - x);
        # then the gradients really are unchanged -- otherwise gradcheck missed it
        right = _interpreter_grads(fn, arrays)
        changed = any(
            not np.allclose(a, b, rtol=1e-3, atol=1e-5) for a, b in zip(wrong, right, strict=True)
        )
        assert not changed, f"corrupting {bad} changed the gradient unnoticed:\n{report}"
        assume(False)
    c = report.culprit
    assert c is not None and c.kind == "rule" and c.site is not None, str(report)
    assert c.site.op == bad, str(report)
    assert c.site.file == THIS_FILE


def _interpreter_grads(fn: Callable[..., Tensor], arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Gradients of ``fn`` by the reference interpreter (with whatever rules are registered)."""
    from symgrad.autodiff.vjp import grad
    from symgrad.ir.graph import evaluate

    g = sg.trace(fn, *arrays)
    nodes = grad(g.outputs[0], list(g.inputs[: len(arrays)]))
    values = evaluate(nodes, dict(zip(g.inputs, arrays, strict=False)))
    assert isinstance(values, list)
    return values


# -- models ------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_micrograd_mlp_passes(backend: str) -> None:
    random.seed(1337)
    model = sg.nn.MLP(3, [4, 4, 1])
    xs = np.array([[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]])
    ys = [1.0, -1.0, -1.0, 1.0]

    def loss(X: Tensor) -> Tensor:
        total: Any = 0.0
        for row, y in zip(X, ys, strict=True):
            total = total + (model(list(row)) - y) ** 2
        return total

    params = model.parameters()
    report = sg.gradcheck(loss, xs, wrt=params, backend=backend)
    assert report.ok, str(report)
    assert len(report.checks) == len(params) == 41
    # by default: the argument and every captured parameter
    report = sg.gradcheck(loss, xs, backend=backend)
    assert report.ok and len(report.checks) == 42
    assert report.checks[0].input == "X" and report.checks[0].shape == (4, 3)


WORDS = ["emma", "olivia", "ava", "isabella", "sophia"]
STOI = {ch: i + 1 for i, ch in enumerate("abcdefghijklmnopqrstuvwxyz")} | {".": 0}


def bigrams() -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for w in WORDS:
        chs = [".", *w, "."]
        for a, b in itertools.pairwise(chs):
            xs.append(STOI[a])
            ys.append(STOI[b])
    return np.array(xs), np.array(ys)


@pytest.mark.parametrize("backend", BACKENDS)
def test_makemore_bigram_passes(backend: str) -> None:
    xs, ys = bigrams()

    def bigram_loss(W: Tensor) -> Tensor:
        logits = sg.one_hot(xs, 27) @ W
        counts = logits.exp()
        probs = counts / counts.sum(1, keepdims=True)
        return -probs[sg.arange(len(ys)), ys].log().mean() + 0.01 * (W**2).mean()

    W = np.random.default_rng(2147483647).standard_normal((27, 27))
    report = sg.gradcheck(bigram_loss, W, backend=backend)
    assert report.ok, str(report)
    assert report.checks[0].mode == "elementwise"


@pytest.mark.parametrize("backend", BACKENDS)
def test_makemore_mlp_passes(backend: str) -> None:
    block = 3
    X, Y = [], []
    for w in WORDS:
        context = [0] * block
        for ch in [*w, "."]:
            X.append(context)
            Y.append(STOI[ch])
            context = [*context[1:], STOI[ch]]
    Xa, Ya = np.array(X), np.array(Y)
    rng = np.random.default_rng(42)
    C = rng.standard_normal((27, 2))
    W1, b1 = rng.standard_normal((6, 16)) * 0.5, rng.standard_normal(16) * 0.1
    W2, b2 = rng.standard_normal((16, 27)) * 0.1, np.zeros(27)

    def mlp_loss(C: Tensor, W1: Tensor, b1: Tensor, W2: Tensor, b2: Tensor) -> Tensor:
        emb = C[Xa]
        h = (emb.reshape(len(Ya), 6) @ W1 + b1).tanh()
        return sg.cross_entropy(h @ W2 + b2, Ya)

    report = sg.gradcheck(mlp_loss, C, W1, b1, W2, b2, backend=backend)
    assert report.ok, str(report)
    assert [c.input for c in report.checks] == ["C", "W1", "b1", "W2", "b2"]


# -- non-differentiable points -----------------------------------------------------------------


def relu_model(x: Tensor, w: Tensor) -> Tensor:
    return (sg.relu(x) * w).sum()  # <- relu


@pytest.mark.parametrize("backend", BACKENDS)
def test_relu_at_zero_is_non_differentiable_not_a_failure(backend: str) -> None:
    x, w = np.array([0.0, 1.0, -2.0]), np.array([1.0, 2.0, 3.0])
    report = sg.gradcheck(relu_model, x, w, backend=backend)
    assert report.ok, str(report)
    assert report.checks[0].nondifferentiable == 1 and report.checks[0].failed == 0
    (kink,) = report.nondifferentiable
    assert kink.what == "relu at 0" and kink.count == 1
    assert kink.site.line == line_of("<- relu")
    text = str(report)
    assert "non-differentiable points" in text and "relu at 0: 1 element(s)" in text
    assert "ok, 1 non-differentiable" in text
    assert report.culprit is None and report.nudges == 0

    nudged = sg.gradcheck(relu_model, x, w, backend=backend, nudge=True)
    assert nudged.ok and nudged.nudges >= 1 and 0 < nudged.nudge_size < 1e-2
    assert not nudged.nondifferentiable
    assert all(c.nondifferentiable == 0 for c in nudged.checks)
    assert "nudged 1 time(s)" in str(nudged)
    np.testing.assert_array_equal(x, [0.0, 1.0, -2.0])  # the caller's arrays are untouched


def test_ties_and_kinks_that_agree_are_still_reported() -> None:
    def kinky(a: Tensor, b: Tensor) -> Tensor:
        return (sg.maximum(a, b) + a.abs() + sg.stack([a, b]).max(axis=0)).sum()

    a, b = np.array([1.0, 0.0, 2.0]), np.array([1.0, 3.0, -1.0])
    report = sg.gradcheck(kinky, a, b, backend="numpy")
    assert report.ok, str(report)
    whats = {k.what for k in report.nondifferentiable}
    assert {"maximum tie", "abs at 0", "max tie"} <= whats
    assert sg.gradcheck(kinky, a, b, backend="numpy", nudge=True).nondifferentiable == ()


# -- float32, projections, arguments -----------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_float32_model_is_evaluated_in_float64(backend: str) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 3)).astype(np.float32)
    w = sg.Tensor(rng.standard_normal((3, 2)).astype(np.float32), requires_grad=True, label="w")

    def f32_loss(x: Tensor) -> Tensor:
        return ((x @ w).tanh() * 0.5).sum()  # captured float32 leaf, float32 constant

    report = sg.gradcheck(f32_loss, x, backend=backend)
    assert report.ok, str(report)
    assert report.evaluated_in_float64
    assert "float32 function: evaluated in float64" in str(report)
    assert [c.input for c in report.checks] == ["x", "w"]
    assert not sg.gradcheck(
        tanh_model, x.astype(np.float64), w.data.astype(np.float64)
    ).evaluated_in_float64


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_300x300_matrix_is_checked_by_projections_fast(backend: str) -> None:
    rng = np.random.default_rng(1)
    W = rng.standard_normal((300, 300)) / 17
    X = rng.standard_normal((8, 300))

    def layer(W: Tensor, X: Tensor) -> Tensor:
        return ((X @ W).tanh() ** 2).sum()

    t0 = time.perf_counter()
    report = sg.gradcheck(layer, W, X, wrt=0, backend=backend)
    elapsed = time.perf_counter() - t0
    assert report.ok, str(report)
    (check,) = report.checks
    assert check.mode == "projection" and check.checked == 3
    assert "projection x3" in str(report) and "random directions" in str(report)
    assert elapsed < 10, elapsed
    # and the projections do catch a wrong rule
    with corrupted("tanh", 1.01):
        bad = sg.gradcheck(layer, W, X, wrt=0, backend="numpy")
    assert not bad.ok and bad.culprit is not None and bad.culprit.site is not None
    assert bad.culprit.site.op == "tanh"


def test_wrt_selects_inputs_like_compile() -> None:
    w = sg.Tensor(np.array([0.5, -0.25]), requires_grad=True, label="w")
    idx = np.array([1, 0, 1])

    def f(x: Tensor, i: Tensor) -> Tensor:
        return (x[i] * w[i]).tanh().sum()

    x = np.array([0.1, 0.2])
    assert [c.input for c in sg.gradcheck(f, x, idx, backend="numpy").checks] == ["x", "w"]
    assert [c.input for c in sg.gradcheck(f, x, idx, wrt=0, backend="numpy").checks] == ["x"]
    assert [c.input for c in sg.gradcheck(f, x, idx, wrt=[w], backend="numpy").checks] == ["w"]
    with pytest.raises(sg.ArgumentError, match="only float inputs"):
        sg.gradcheck(f, x, idx, wrt=1)
    with pytest.raises(sg.ArgumentError, match="out of range"):
        sg.gradcheck(f, x, idx, wrt=5)


def test_the_output_must_be_a_float_scalar() -> None:
    with pytest.raises(sg.ShapeError, match="float scalar"):
        sg.gradcheck(lambda x: x * 2.0, np.ones(3))


def test_a_function_without_float_inputs_is_an_error() -> None:
    with pytest.raises(sg.ArgumentError, match="no float input"):
        sg.gradcheck(lambda i: sg.one_hot(i, 3).sum(), np.array([0, 2]))


def test_symgrad_gradcheck_is_the_function_and_no_module_shares_its_name() -> None:
    import types

    import symgrad.check.gradcheck as module

    assert isinstance(module, types.ModuleType) and not callable(module)
    assert sg.gradcheck is module.gradcheck  # importing the module does not rebind the name
    report = sg.gradcheck(lambda x: (x * x).sum(), np.ones(2), backend="numpy")
    assert isinstance(report, GradcheckReport) and report.ok


def test_the_report_reads_as_a_table() -> None:
    report = sg.gradcheck(tanh_model, np.ones((2, 3)) * 0.1, np.ones((3, 2)) * 0.2, backend="numpy")
    lines = str(report).splitlines()
    assert lines[0] == "gradcheck tanh_model: ok"
    assert "eps 1e-06" in lines[1] and "atol 1e-05" in lines[1] and "rtol 0.001" in lines[1]
    header = next(line for line in lines if line.startswith("backend"))
    for col in ("input", "shape", "mode", "max abs err", "max rel err", "worst element", "status"):
        assert col in header
    rows = [line for line in lines if line.startswith("numpy")]
    assert len(rows) == 2 and rows[0].split()[1] == "x" and "(2, 3)" in rows[0]
    assert all(r.rstrip().endswith("ok") for r in rows)
    c = report.checks[0]
    assert c.max_abs_err < 1e-8 and c.max_rel_err < 1e-6 and len(c.worst) == 2  # type: ignore[arg-type]
