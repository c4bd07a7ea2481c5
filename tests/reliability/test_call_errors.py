"""Calling compiled and exported functions with bad arguments: an ``ArgumentError`` naming the
argument, what was expected and what was given -- never a crash, never garbage read from a
buffer. Views, Fortran-ordered, read-only and byte-swapped arrays are copied or refused, never
misread (docs/reliability.md, "Bad input: calls")."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import symgrad as sg
from symgrad import Spec
from tests.reliability.conftest import BACKENDS


def model(x: Any, w: Any, y: Any) -> Any:
    return sg.cross_entropy((x @ w).tanh(), y)


SPECS = (Spec(("n", 3)), Spec((3, 4)), Spec(("n",), "int64"))
X = np.linspace(-1.0, 1.0, 15).reshape(5, 3)
W = np.linspace(0.5, -0.5, 12).reshape(3, 4)
Y = np.array([0, 1, 2, 3, 0])


def _reference() -> tuple[float, np.ndarray]:
    wt = sg.Tensor(W, requires_grad=True)
    loss = model(sg.Tensor(X), wt, Y)
    loss.backward()
    return loss.item(), wt.grad


BAD_CALLS: list[tuple[str, tuple[Any, ...], str]] = [
    ("too-few", (X, W), r"model\(\) takes 3 argument\(s\) \(x, w, y\), got 2"),
    ("too-many", (X, W, Y, Y), r"takes 3 argument\(s\) \(x, w, y\), got 4"),
    ("dtype", (X.astype(np.float32), W, Y), r"x: expected float64, got float32"),
    ("int-dtype", (X, W, Y.astype(np.int32)), r"y: expected int64, got int32"),
    ("rank", (X[0], W, Y), r"x: expected shape \(n, 3\), got \(3,\)"),
    ("static-dim", (X, W[:2], Y), r"w: expected shape \(3, 4\), got \(2, 4\)"),
    ("symbolic-dim", (X, W, Y[:4]), r"y: symbolic dim 'n' is 4 here but 5 in x"),
    ("none", (None, W, Y), r"x: expected float64 data, got None"),
    ("string", (X, W, "0 1 2 3 0"), r"y: expected int64 data, got '0 1 2 3 0'"),
    ("numeric-string", ("1.5", W, Y), r"x: expected float64 data, got '1.5'"),
    ("float-for-int", (X, W, [0.0, 1.5, 2.0, 3.0, 0.0]), r"y: expected int64 data, got float64"),
    ("complex", (X + 0j, W, Y), r"x: expected float64, got complex128"),
    ("object", (X, W, [0, 1, None, 3, 0]), r"y: expected int64 data"),
    ("ragged", ([[1.0, 2.0, 3.0], [1.0]], W, Y), r"x: expected float64 data"),
    ("big-endian", (X.astype(">f8"), W, Y), r"x: expected float64, got"),
]


def _compiled(backend: str) -> Any:
    return sg.compile(model, *SPECS, wrt=1, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("args", "match"), [pytest.param(*c[1:], id=c[0]) for c in BAD_CALLS])
def test_bad_arguments_raise_argument_error(
    backend: str, args: tuple[Any, ...], match: str
) -> None:
    f = _compiled(backend)
    with pytest.raises(sg.ArgumentError, match=match) as info:
        f(*args)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("backend", BACKENDS)
def test_odd_layouts_are_copied_not_misread(backend: str) -> None:
    f = _compiled(backend)
    loss, gw = _reference()
    big = np.zeros((10, 6))
    big[::2, ::2] = X  # a strided view holding X
    readonly = X.copy()
    readonly.flags.writeable = False
    layouts = {
        "contiguous": X,
        "fortran": np.asfortranarray(X),
        "strided view": big[::2, ::2],
        "read-only": readonly,
        "negative strides": X[::-1][::-1],
        "list": X.tolist(),
        "tensor": sg.Tensor(X),
    }
    for name, x in layouts.items():
        out, (g,) = f(x, W, Y)
        assert out == pytest.approx(loss, rel=1e-12), name
        np.testing.assert_allclose(g, gw, rtol=1e-12, err_msg=name)
    assert readonly.flags.writeable is False  # nothing wrote into the caller's array


@pytest.mark.parametrize("backend", BACKENDS)
def test_python_numbers_and_lists_are_converted_exactly(backend: str) -> None:
    f = sg.compile(lambda a, k: a * 2.0 + k.astype("float64"), Spec(()), Spec((2,), "int64"))
    out = f(1.5, [3, 4])
    np.testing.assert_array_equal(out, [6.0, 7.0])
    assert f(True, np.array([0, 1])).tolist() == [2.0, 3.0]  # bools are numbers
    with pytest.raises(sg.ArgumentError, match=r"k: expected int64 data, got float64"):
        f(1.5, [3.0, 4.5])  # 4.5 would be truncated: refused


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_failing_call_leaves_the_function_usable(backend: str) -> None:
    f = _compiled(backend)
    loss, _ = _reference()
    for _, args, _ in BAD_CALLS:
        with pytest.raises(sg.ArgumentError):
            f(*args)
        assert f(X, W, Y)[0] == pytest.approx(loss, rel=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_out_of_range_classes_are_checked_by_generated_code(backend: str) -> None:
    f = sg.compile(lambda y: sg.one_hot(y, 4).sum(0), Spec(("n",), "int64"), backend=backend)
    np.testing.assert_array_equal(f(np.array([0, 3, 3])), [1.0, 0.0, 0.0, 2.0])
    for bad in (4, -1):
        with pytest.raises(sg.IndexRangeError, match=rf"class {bad} is out of range \[0, 4\)") as e:
            f(np.array([0, bad]))
        assert isinstance(e.value, IndexError)  # what NumPy users catch
        assert "test_call_errors.py" in str(e.value)  # the model's line
    g = _compiled(backend)
    big = r"cross_entropy: target 4 is out of range \[0, 4\)"
    with pytest.raises(sg.IndexRangeError, match=big):
        g(X, W, np.array([0, 1, 2, 4, 0]))  # a target class >= 4
    with pytest.raises(sg.IndexRangeError, match="cross_entropy: target -1 is out of range"):
        g(X, W, np.array([0, 1, 2, -1, 0]))  # "-1 = unknown" is refused, not class 3
    # a call that fails this way leaves the function usable
    assert g(X, W, Y)[0] == pytest.approx(_reference()[0], rel=1e-12)


# -- the exported NumPy module checks like compile --------------------------------------------


def _load(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(f"exported_{id(path)}", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_exported_module_refuses_bad_arguments_like_compile(tmp_path: Path) -> None:
    wt = sg.Tensor(W)
    fn = lambda x, y: sg.cross_entropy((x @ wt).tanh(), y)  # noqa: E731
    specs = (Spec(("n", 3)), Spec(("n",), "int64"))
    d = sg.export(fn, tmp_path / "m", *specs)
    mod = _load(d / "model.py")
    f = sg.compile(fn, *specs, backend="numpy")
    np.testing.assert_allclose(mod.forward(X, Y), f(X, Y), rtol=1e-12)
    readonly = X.copy()
    readonly.flags.writeable = False
    for x in (np.asfortranarray(X), readonly, np.repeat(X, 2, axis=1)[:, ::2], X.tolist()):
        np.testing.assert_allclose(mod.forward(x, Y), f(X, Y), rtol=1e-12)
    cases = [(X,), (X.astype(np.float32), Y), (X, Y[:4]), (None, Y), (X, "01230")]
    cases += [(X, [0.0, 1.5, 2.0, 3.0, 0.0]), ("1.5", Y)]
    for args in cases:
        with pytest.raises(ValueError) as exported:
            mod.forward(*args)
        with pytest.raises(sg.ArgumentError) as compiled:
            f(*args)
        assert type(exported.value).__name__ == "ArgumentError"
        assert str(exported.value).replace("forward", "<lambda>") == str(compiled.value)
