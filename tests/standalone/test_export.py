"""``symgrad.export``: standalone NumPy modules and C libraries of trained models."""

from __future__ import annotations

import ctypes
import itertools
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import symgrad as sg

BLOCKED = ("symgrad", "sympy", "jinja2")
RUNNER = """
import importlib, sys
for name in {blocked!r}:
    sys.modules[name] = None
sys.path.insert(0, {path!r})
import numpy as np
m = importlib.import_module({name!r})
ins = np.load({ins!r}, allow_pickle=False)
out = m.forward(*[ins[f"a{{k}}"] for k in range(len(ins.files))])
out = out if isinstance(out, tuple) else (out,)
np.savez({out!r}, *out)
"""


def run_isolated(d: Path, name: str, inputs: list[np.ndarray], tmp: Path) -> list[np.ndarray]:
    """Import the exported module with symgrad, sympy and jinja2 blocked and run forward."""
    ins, out = tmp / "ins.npz", tmp / "out.npz"
    np.savez(ins, **{f"a{k}": a for k, a in enumerate(inputs)})
    code = RUNNER.format(blocked=BLOCKED, path=str(d), name=name, ins=str(ins), out=str(out))
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp, timeout=60)
    with np.load(out, allow_pickle=False) as z:
        return [z[f"arr_{k}"] for k in range(len(z.files))]


def load(d: Path, name: str) -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"exported_{name}_{id(d)}", d / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def needs_cc() -> None:
    from symgrad.runtime.cc import compiler_available

    if not compiler_available() or shutil.which("make") is None:
        pytest.skip("no working C compiler or make")


def make(d: Path, *targets: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "-C", str(d), *targets], capture_output=True, text=True, timeout=120
    )


# -- models -----------------------------------------------------------------------------------


def micrograd_mlp() -> tuple[Any, list[list[float]]]:
    random.seed(1337)
    model = sg.nn.MLP(3, [4, 4, 1], act="tanh", nonlin_last=True)
    xs = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
    ys = [1.0, -1.0, -1.0, 1.0]
    for _ in range(5):
        loss = sum((model(x) - y) ** 2 for x, y in zip(xs, ys, strict=True))
        model.zero_grad()
        loss.backward()  # type: ignore[union-attr]
        for p in model.parameters():
            p.data -= 0.1 * p.grad
    return model, xs


def tensor_mlp() -> tuple[Any, np.ndarray]:
    rng = np.random.default_rng(0)
    model = sg.nn.Sequential(sg.nn.Linear(3, 8, rng=rng), sg.nn.Tanh(), sg.nn.Linear(8, 2, rng=rng))
    x = rng.standard_normal((5, 3))
    y = rng.standard_normal((5, 2))
    opt = sg.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(3):
        loss = ((model(sg.Tensor(x)) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model, x


# -- NumPy ------------------------------------------------------------------------------------


def test_micrograd_mlp_numpy_isolated(tmp_path: Path) -> None:
    model, xs = micrograd_mlp()

    def f(x: Any) -> Any:
        return model(list(x))

    d = sg.export(f, tmp_path / "mlp", sg.Spec((3,)), name="mlp")
    assert {p.name for p in d.iterdir()} == {"mlp.py", "mlp.npz", "README.md"}
    for x in xs:
        (got,) = run_isolated(d, "mlp", [np.array(x)], tmp_path)
        assert abs(float(got) - model(x).data) <= 1e-12
    m = load(d, "mlp")
    assert m.INPUTS == (("x", (3,), "float64"),)
    assert sg.__version__ == m.SYMGRAD_VERSION and len(m.GRAPH_HASH) == 64 and m.EXPORTED_AT


def test_tensor_mlp_numpy_isolated(tmp_path: Path) -> None:
    model, x = tensor_mlp()
    d = sg.export(model, tmp_path / "t", sg.Spec(("n", 3)))
    (got,) = run_isolated(d, "model", [x], tmp_path)
    want = model(sg.Tensor(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    assert load(d, "model").INPUTS == (("x", ("n", 3), "float64"),)


def test_bad_input_numpy(tmp_path: Path) -> None:
    model, _ = tensor_mlp()

    def two(x: Any, w: Any) -> Any:
        return model(x @ w)

    d = sg.export(two, tmp_path / "b", sg.Spec(("n", 3)), sg.Spec((3, 3)))
    m = load(d, "model")
    x, w = np.zeros((2, 3)), np.zeros((3, 3))
    assert m.forward(x, w).shape == (2, 2)
    with pytest.raises(ValueError, match=r"forward\(\) takes 2 argument\(s\) \(x, w\), got 1"):
        m.forward(x)
    with pytest.raises(ValueError, match=r"w: expected shape \(3, 3\), got \(2, 3\)"):
        m.forward(x, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="x: expected float64, got float32"):
        m.forward(x.astype(np.float32), w)
    with pytest.raises(ValueError, match="w: expected shape"):
        m.forward(x, np.zeros(3))
    # the same messages as symgrad.compile
    cf = sg.compile(two, sg.Spec(("n", 3)), sg.Spec((3, 3)), backend="numpy")
    for args in [(x,), (x, np.zeros((2, 3))), (x.astype(np.float32), w)]:
        with pytest.raises(ValueError) as a:
            m.forward(*args)
        with pytest.raises(ValueError) as b:
            cf(*args)
        assert str(a.value).split(",")[0].replace("forward", "two") == str(b.value).split(",")[
            0
        ].replace("forward", "two")


def test_symbolic_dim_consistency(tmp_path: Path) -> None:
    W = sg.Tensor(np.ones((3, 3)), requires_grad=True)
    d = sg.export(lambda a, b: (a @ W) * b, tmp_path, sg.Spec(("n", 3)), sg.Spec(("n", 3)))
    m = load(d, "model")
    with pytest.raises(ValueError, match="symbolic dim 'n' is 4 here but 2 in a"):
        m.forward(np.ones((2, 3)), np.ones((4, 3)))


WORDS = ["emma", "olivia", "ava", "isabella", "sophia", "mia", "amelia", "harper", "evelyn"]
STOI = {ch: i + 1 for i, ch in enumerate("abcdefghijklmnopqrstuvwxyz")} | {".": 0}
ITOS = {i: c for c, i in STOI.items()}


def trained_bigram() -> sg.Tensor:
    xs, ys = [], []
    for w in WORDS:
        chs = [".", *w, "."]
        for a, c in itertools.pairwise(chs):
            xs.append(STOI[a])
            ys.append(STOI[c])
    X, Y = np.array(xs), np.array(ys)
    W = sg.Tensor(np.random.default_rng(2147483647).standard_normal((27, 27)), requires_grad=True)
    for _ in range(5):
        counts = (sg.one_hot(X, 27) @ W).exp()
        probs = counts / counts.sum(1, keepdims=True)
        loss = -probs[sg.arange(len(Y)), Y].log().mean() + 0.01 * (W**2).mean()
        W.grad = None
        loss.backward()
        W.data += -50 * W.grad
    return W


def sample(probs_of: Any, seed: int, n: int = 8) -> list[str]:
    rng = np.random.default_rng(seed)
    names = []
    for _ in range(n):
        ix, out = 0, []
        while True:
            p = np.asarray(probs_of(np.array([ix])))[0]
            ix = int(rng.choice(27, p=p / p.sum()))
            if ix == 0:
                break
            out.append(ITOS[ix])
        names.append("".join(out))
    return names


def test_bigram_sampling(tmp_path: Path) -> None:
    W = trained_bigram()

    def probs(xs: Any) -> Any:
        counts = (sg.one_hot(xs, 27) @ W).exp()
        return counts / counts.sum(1, keepdims=True)

    d = sg.export(probs, tmp_path, sg.Spec(("n",), "int64"), name="bigram")
    m = load(d, "bigram")
    mine = sample(lambda i: probs(sg.Tensor(i)).numpy(), 42)
    theirs = sample(m.forward, 42)
    assert mine == theirs and any(mine)
    with pytest.raises(IndexError):
        m.forward(np.array([27]))


# -- training step ----------------------------------------------------------------------------


def step_setup() -> tuple[Any, Any, Any, np.ndarray, np.ndarray]:
    model, x = tensor_mlp()
    y = np.random.default_rng(5).standard_normal((5, 2))

    def loss_fn(x: Any, y: Any) -> Any:
        return ((model(x) - y) ** 2).mean()

    opt = sg.optim.Adam(model.parameters(), lr=0.01)
    return model, loss_fn, opt, x, y


def reference_trajectory(steps: int) -> tuple[list[float], list[np.ndarray]]:
    model, loss_fn, opt, x, y = step_setup()
    step = sg.compile_step(
        loss_fn, sg.Spec(("n", 3)), sg.Spec(("n", 2)), optimizer=opt, backend="numpy"
    )
    losses = [step(x, y) for _ in range(steps)]
    return losses, [p.numpy().copy() for p in model.parameters()]


def export_step(tmp_path: Path, backend: str) -> tuple[Path, np.ndarray, np.ndarray]:
    model, loss_fn, opt, x, y = step_setup()
    specs = (sg.Spec(("n", 3)), sg.Spec(("n", 2)))
    d = sg.export(
        model,
        tmp_path,
        sg.Spec(("n", 3)),
        backend=backend,
        name="net",
        train_step=(loss_fn, opt, *specs),
    )
    return d, x, y


def test_train_step_numpy(tmp_path: Path) -> None:
    losses, params = reference_trajectory(10)
    d, x, y = export_step(tmp_path, "numpy")
    m = load(d, "net")
    got = [m.train_step(x, y) for _ in range(10)]
    np.testing.assert_allclose(got, losses, rtol=0, atol=1e-12)
    assert m.step_count == 10
    for a, b in zip(m.params, params, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    assert m.forward(x).shape == (5, 2)


# -- C ----------------------------------------------------------------------------------------


@pytest.mark.cc
def test_c_export_check_and_ctypes(tmp_path: Path) -> None:
    needs_cc()
    model, x = tensor_mlp()
    d = sg.export(model, tmp_path, sg.Spec(("n", 3)), backend="c", name="mlp")
    r = make(d, "all", "check")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "warning" not in r.stderr and "self-test passed" in r.stdout
    lib = ctypes.CDLL(str(d / "libmlp.so"))
    lib.mlp_forward_scratch_bytes.restype = ctypes.c_size_t
    lib.mlp_forward_scratch_bytes.argtypes = [ctypes.c_int64]
    n = x.shape[0]
    nbytes = lib.mlp_forward_scratch_bytes(n)
    scratch = ctypes.create_string_buffer(max(1, nbytes))
    out = np.zeros((n, 2))
    dp = ctypes.POINTER(ctypes.c_double)
    lib.mlp_forward.argtypes = [
        ctypes.c_void_p,
        ctypes.c_int64,
        dp,
        dp,
        ctypes.c_void_p,
        ctypes.c_size_t,
    ]
    xc = np.ascontiguousarray(x)
    rc = lib.mlp_forward(None, n, xc.ctypes.data_as(dp), out.ctypes.data_as(dp), scratch, nbytes)
    assert rc == 0
    np.testing.assert_allclose(out, model(sg.Tensor(x)).numpy(), rtol=0, atol=1e-12)
    # bad input: return codes documented in the header
    header = (d / "mlp.h").read_text()
    assert "#define MLP_ERR_DIM 5" in header and "#define MLP_ERR_SCRATCH 1" in header
    assert (
        lib.mlp_forward(None, -1, xc.ctypes.data_as(dp), out.ctypes.data_as(dp), scratch, nbytes)
        == 5
    )
    assert lib.mlp_forward(None, n, None, out.ctypes.data_as(dp), scratch, nbytes) == 6
    if nbytes > 0:
        assert (
            lib.mlp_forward(None, n, xc.ctypes.data_as(dp), out.ctypes.data_as(dp), None, nbytes)
            == 1
        )
    assert "malloc(" not in (d / "mlp.c").read_text()


@pytest.mark.cc
def test_c_bigram_class_error(tmp_path: Path) -> None:
    needs_cc()
    W = trained_bigram()

    def probs(xs: Any) -> Any:
        counts = (sg.one_hot(xs, 27) @ W).exp()
        return counts / counts.sum(1, keepdims=True)

    d = sg.export(
        probs,
        tmp_path,
        sg.Spec(("n",), "int64"),
        backend="c",
        name="bigram",
        examples=[np.array([0, 5, 26])],
    )
    r = make(d, "check")
    assert r.returncode == 0, r.stdout + r.stderr
    lib = ctypes.CDLL(str(d / "libbigram.so")) if make(d).returncode == 0 else None
    assert lib is not None
    lib.bigram_forward_scratch_bytes.restype = ctypes.c_size_t
    idx = np.array([3, 27], dtype=np.int64)
    out = np.zeros((2, 27))
    nbytes = lib.bigram_forward_scratch_bytes(ctypes.c_int64(2))
    scratch = ctypes.create_string_buffer(max(1, nbytes))
    rc = lib.bigram_forward(
        None,
        ctypes.c_int64(2),
        ctypes.c_void_p(idx.ctypes.data),
        ctypes.c_void_p(out.ctypes.data),
        scratch,
        ctypes.c_size_t(nbytes),
    )
    assert rc == 3  # BIGRAM_ERR_CLASS


@pytest.mark.cc
def test_train_step_c(tmp_path: Path) -> None:
    needs_cc()
    losses, params = reference_trajectory(10)
    d, x, y = export_step(tmp_path, "c")
    r = make(d, "all", "check")
    assert r.returncode == 0, r.stdout + r.stderr
    lib = ctypes.CDLL(str(d / "libnet.so"))
    sizes = [p.size for p in params]
    P = ctypes.c_double * sum(sizes)
    pbuf = P()
    lib.net_init_params(ctypes.byref(pbuf))
    S = ctypes.c_char * (8 + 2 * 8 * sum(sizes))  # int64 t, then the Adam moments
    sbuf = S()
    lib.net_init_opt_state(ctypes.byref(sbuf))
    lib.net_train_step_scratch_bytes.restype = ctypes.c_size_t
    nbytes = lib.net_train_step_scratch_bytes(ctypes.c_int64(5))
    scratch = ctypes.create_string_buffer(nbytes)
    loss = ctypes.c_double()
    got = []
    for _ in range(10):
        rc = lib.net_train_step(
            ctypes.byref(pbuf),
            ctypes.byref(sbuf),
            ctypes.c_int64(5),
            ctypes.c_void_p(x.ctypes.data),
            ctypes.c_void_p(y.ctypes.data),
            ctypes.byref(loss),
            scratch,
            ctypes.c_size_t(nbytes),
        )
        assert rc == 0
        got.append(loss.value)
    np.testing.assert_allclose(got, losses, rtol=0, atol=1e-12)
    flat = np.frombuffer(pbuf, dtype=np.float64)
    np.testing.assert_allclose(flat, np.concatenate([p.ravel() for p in params]), atol=1e-12)


@pytest.mark.cc
def test_user_text_is_escaped(tmp_path: Path) -> None:
    needs_cc()
    evil = 'w */ int evil; /* \n import os; os.system("x") \\'
    W = sg.Tensor(np.ones((2, 2)), requires_grad=True, label=evil)

    def f(x: Any) -> Any:
        return x @ W

    for backend in ("numpy", "c"):
        d = sg.export(f, tmp_path / backend, sg.Spec((2,)), backend=backend)
        for p in d.iterdir():
            if p.suffix in (".py", ".c", ".h", ".md"):
                assert "int evil; /*" not in p.read_text() or p.suffix == ".py"
                assert "\n import os" not in p.read_text()
    m = load(tmp_path / "numpy", "model")
    assert m.WEIGHTS[0][1] == evil
    r = make(tmp_path / "c", "check")
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.cc
def test_c_cross_entropy_target_error_and_scratch_overflow(tmp_path: Path) -> None:
    """A target of -1 or >= C is the error code ``<NAME>_ERR_TARGET`` (7), never class C - 1;
    ``*_scratch_bytes`` of a size whose element count overflows int64 is SIZE_MAX (issue 20)."""
    needs_cc()
    w = sg.Tensor(np.eye(3))
    d = sg.export(
        lambda z, y: sg.cross_entropy(z @ w, y),
        tmp_path / "e",
        sg.Spec(("n", 3)),
        sg.Spec(("n",), "int64"),
        backend="c",
        name="ce",
        examples=[np.zeros((2, 3)), np.array([0, 1])],
    )
    assert make(d).returncode == 0
    assert "#define CE_ERR_TARGET 7" in (d / "ce.h").read_text()
    lib = ctypes.CDLL(str(d / "libce.so"))
    lib.ce_forward_scratch_bytes.restype = ctypes.c_size_t
    lib.ce_strerror.restype = ctypes.c_char_p
    assert lib.ce_forward_scratch_bytes(ctypes.c_int64(0x5555555555555556)) == 2**64 - 1
    z = np.zeros((2, 3))
    out = np.zeros(())
    nbytes = lib.ce_forward_scratch_bytes(ctypes.c_int64(2))
    scratch = ctypes.create_string_buffer(max(1, nbytes))

    def run(y: np.ndarray) -> int:
        return int(
            lib.ce_forward(
                None,
                ctypes.c_int64(2),
                ctypes.c_void_p(z.ctypes.data),
                ctypes.c_void_p(y.ctypes.data),
                ctypes.c_void_p(out.ctypes.data),
                scratch,
                ctypes.c_size_t(nbytes),
            )
        )

    assert run(np.array([0, 1], dtype=np.int64)) == 0
    assert np.isclose(out, np.log(3))
    assert run(np.array([0, -1], dtype=np.int64)) == 7
    assert run(np.array([3, 0], dtype=np.int64)) == 7
    assert b"cross_entropy" in lib.ce_strerror(7)
