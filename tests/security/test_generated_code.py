"""User text in compiled code (NumPy and C backends): labels, elementwise op names, the model's
file path and source lines, and provenance overrides carrying any text at all.

Each test compiles a model whose every user string is hostile (see ``hostile.py``), checks that
the generated code parses and contains no executable trace of a payload, runs it, compares the
numbers with a hand-written reference, and checks that no payload file was created.
"""

from __future__ import annotations

import importlib.util
import linecache
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import symgrad as sg
from symgrad.ir.provenance import Provenance, provenance_override
from symgrad.runtime.compiled import CompiledFunction
from tests.security.hostile import (
    ALL_IN_ONE,
    MODEL_DIR,
    PAYLOADS,
    X,
    check_c,
    check_python,
    import_model,
    no_payload_ran,
    reference,
)

BACKENDS = ["numpy", pytest.param("c", marks=pytest.mark.cc)]


def sources(cf: CompiledFunction) -> list[str]:
    if cf.backend == "numpy":
        return [cf.source()]
    return [cf.source(), (cf.cache_path / "module.c").read_text(encoding="utf-8")]


def check_sources(cf: CompiledFunction, names: list[str]) -> str:
    texts = sources(cf)
    for text in texts:
        (check_python if cf.backend == "numpy" else check_c)(text, names)
    return "\n".join(texts)


def check_numbers(cf: CompiledFunction, w: np.ndarray, b: np.ndarray) -> None:
    value, grads = cf(X)
    want, want_grads = reference(X, w, b)
    assert float(value) == pytest.approx(want, rel=1e-12)
    for got, ref in zip(grads, want_grads, strict=True):
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_hostile_model_file_compiles_to_inert_code(
    backend: str, tmp_path: Path, workdir: Path
) -> None:
    m = import_model(tmp_path, ALL_IN_ONE, PAYLOADS["py_newline_indented"], ALL_IN_ONE)
    cf = sg.compile(m.f, sg.Spec(("n", 3)), wrt=[0, m.W, m.B], backend=backend)
    text = check_sources(cf, [ALL_IN_ONE])
    # the user's text does reach the generated file (escaped), so the checks above mean something
    assert 'system("touch PWNED")' in text or 'system(\\"touch PWNED\\")' in text
    assert "x @ W" in text and "OP(h) + B" in text
    check_numbers(cf, m.W.data, m.B.data)
    assert no_payload_ran(workdir, tmp_path, tmp_path / MODEL_DIR)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_each_payload_as_label_and_op_name(
    backend: str, payload: str, tmp_path: Path, workdir: Path
) -> None:
    text = PAYLOADS[payload]
    m = import_model(tmp_path, text, text + "b", text)
    cf = sg.compile(m.f, sg.Spec(("n", 3)), wrt=[0, m.W, m.B], backend=backend)
    check_sources(cf, [text, text + "b"])
    check_numbers(cf, m.W.data, m.B.data)
    assert no_payload_ran(workdir, tmp_path)


def test_eager_backward_of_a_hostile_model(tmp_path: Path, workdir: Path) -> None:
    m = import_model(tmp_path, ALL_IN_ONE, ALL_IN_ONE, ALL_IN_ONE)
    x = sg.Tensor(X, requires_grad=True)
    loss = m.f(x)
    loss.backward()
    want, (gx, gw, gb) = reference(X, m.W.data, m.B.data)
    assert loss.item() == pytest.approx(want, rel=1e-12)
    for got, ref in ((x.grad, gx), (m.W.grad, gw), (m.B.grad, gb)):
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)
    assert no_payload_ran(workdir, tmp_path)


# -- provenance that no real file could have: NUL, CR, LF in the file name and the line ----------


def _with_provenance(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any, Any]:
    """A model whose nodes are attributed (by provenance_override) to a fake file whose name
    and source lines are payloads; the lines are served from linecache."""
    fake = "fake\x00" + ALL_IN_ONE
    lines = [f"{v}\n" for v in PAYLOADS.values()]
    monkeypatch.setitem(linecache.cache, fake, (1, None, lines, fake))
    assert Provenance(fake, 1, "f").source  # the source text is served
    W = sg.Tensor(np.linspace(-1.0, 1.0, 6).reshape(3, 2), requires_grad=True, label=ALL_IN_ONE)
    B = sg.Tensor(np.array([0.25, -0.5]), requires_grad=True, label="\x00")
    names = list(PAYLOADS.values())

    def at(k: int) -> Any:
        return provenance_override(Provenance(fake, k + 1, names[k], via=f"vjp {names[k]}"))

    def f(x: Any) -> Any:
        with at(0):
            h = x @ W
        with at(1):
            y = h * h.tanh()
        with at(2):
            y = y + B
        with at(len(names) - 1):
            return (y * y).sum()

    return f, W, B


@pytest.mark.parametrize("backend", BACKENDS)
def test_provenance_overrides_with_any_text(
    backend: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, workdir: Path
) -> None:
    f, W, B = _with_provenance(monkeypatch)
    cf = sg.compile(f, sg.Spec(("n", 3)), wrt=[0, W, B], backend=backend)
    text = check_sources(cf, [])
    assert "%s %n %x:3" in text  # the file name (its last part) and line are quoted
    assert "touch PWNED" in text  # and so are the source lines
    check_numbers(cf, W.data, B.data)
    assert no_payload_ran(workdir, tmp_path)


@pytest.mark.parametrize("backend", BACKENDS)
def test_odd_parameter_and_dim_names_become_generated_identifiers(
    backend: str, tmp_path: Path
) -> None:
    from tests.security.hostile import ODD_IDENTIFIERS

    params = ", ".join(ODD_IDENTIFIERS)
    dims = [nm for nm in ODD_IDENTIFIERS if nm.isidentifier()]
    src = f"def g({params}):\n    return sum((a * a).sum() for a in ({params},))\n"
    scope: dict[str, Any] = {}
    exec(compile(src, str(tmp_path / "odd_names.py"), "exec"), scope)  # the user's own code
    g = scope["g"]
    specs = [sg.Spec((d, 2)) for d in dims]
    cf = sg.compile(g, *specs, wrt=list(range(len(dims))), backend=backend)
    check_sources(cf, ODD_IDENTIFIERS)
    arrays = [np.full((k % 3 + 1, 2), 0.5 + k) for k in range(len(dims))]
    value, grads = cf(*arrays)
    assert float(value) == pytest.approx(sum(float((a * a).sum()) for a in arrays))
    for got, a in zip(grads, arrays, strict=True):
        np.testing.assert_allclose(got, 2 * a)
    assert sys.modules.get("odd_names") is None


@pytest.mark.parametrize("backend", BACKENDS)
def test_micrograd_values_with_hostile_labels(backend: str, tmp_path: Path, workdir: Path) -> None:
    a = sg.Value(2.0, label=ALL_IN_ONE)
    b = sg.Value(-3.0, label=PAYLOADS["py_newline_indented"])

    def neuron(x: Any) -> Any:
        return (x * a + b).tanh()

    cf = sg.compile(neuron, sg.Spec(()), wrt=[0, a, b], backend=backend)
    check_sources(cf, [ALL_IN_ONE, PAYLOADS["py_newline_indented"]])
    value, (gx, ga, gb) = cf(np.array(1.75))
    t = np.tanh(1.75 * 2.0 - 3.0)
    assert float(value) == pytest.approx(t, rel=1e-14)
    d = 1 - t * t
    assert (float(gx), float(ga), float(gb)) == pytest.approx((2.0 * d, 1.75 * d, d), rel=1e-12)
    assert no_payload_ran(workdir, tmp_path)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_fused_training_step_of_a_hostile_model(
    backend: str, tmp_path: Path, workdir: Path
) -> None:
    m = import_model(tmp_path, ALL_IN_ONE, PAYLOADS["c_comment"], ALL_IN_ONE)
    w0, b0 = m.W.data.copy(), m.B.data.copy()
    opt = sg.optim.SGD([m.W, m.B], lr=0.1)
    specs = (sg.Spec(("n", 3)), sg.Spec((2,)), sg.Spec((2,)))
    step = sg.compile_step(m.loss, *specs, optimizer=opt, backend=backend)
    cf = step.function
    check_sources(cf, ["t", "own", "model_forward", ALL_IN_ONE])
    own, mf = np.array([0.5, -2.0]), np.array([3.0, 0.25])
    value, (_, gw, gb) = reference(X, w0, b0)
    assert step(X, own, mf) == pytest.approx(value + float(own @ mf), rel=1e-12)
    np.testing.assert_allclose(m.W.data, w0 - 0.1 * gw, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(m.B.data, b0 - 0.1 * gb, rtol=1e-12, atol=1e-12)
    assert no_payload_ran(workdir, tmp_path)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_model_file_whose_name_is_not_utf8(backend: str, tmp_path: Path) -> None:
    """Its path holds lone surrogates (os.fsdecode); they can be neither code nor UTF-8 text."""
    path = tmp_path / os.fsdecode(b"m\xff\xfe odel.py")
    path.write_text("def f(x, w):\n    return ((x @ w) * 2.0).sum()  # \xe9\n", encoding="utf-8")
    spec = importlib.util.spec_from_file_location("sg_sec_not_utf8", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    w = np.array([[1.0], [2.0], [3.0]])
    cf = sg.compile(mod.f, sg.Spec(("n", 3)), sg.Spec((3, 1)), wrt=[1], backend=backend)
    text = check_sources(cf, [])
    assert "\\udcff" in text  # the file name, escaped
    value, (gw,) = cf(X, w)
    assert float(value) == pytest.approx(float((X @ w).sum() * 2.0), rel=1e-12)
    np.testing.assert_allclose(gw, 2.0 * X.sum(axis=0)[:, None], rtol=1e-12)
    W = sg.Tensor(w, requires_grad=True)
    out = sg.export(lambda x: mod.f(x, W), tmp_path / "export", sg.Spec(("n", 3)), backend=backend)
    assert (out / ("model.py" if backend == "numpy" else "model.c")).is_file()
