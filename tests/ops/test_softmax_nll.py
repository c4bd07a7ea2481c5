"""cross_entropy's targets: class indices in [0, C), refused otherwise (issue 20, finding 1).

A target of -1 (an "unknown" label) used to wrap to class C - 1 and a target >= C said only
"index 3 is out of range for a dim of size 3": now both are an ``IndexRangeError`` naming
cross_entropy and its targets, eagerly, traced, on both backends, at every optimisation level.
"""

from __future__ import annotations

import numpy as np
import pytest

import symgrad as sg
from symgrad.ir.errors import IndexRangeError
from symgrad.runtime.cc import compiler_available

Z = np.random.default_rng(0).standard_normal((3, 3))
BACKENDS = ["numpy", pytest.param("c", marks=pytest.mark.cc)]


def _skip_without_cc(backend: str) -> None:
    if backend == "c" and not compiler_available():
        pytest.skip("needs a working C compiler")


@pytest.mark.parametrize("bad", [-1, 3, -3])
def test_eager_target_out_of_range_names_cross_entropy(bad: int) -> None:
    logits = sg.Tensor(Z, requires_grad=True)
    with pytest.raises(IndexRangeError, match=rf"cross_entropy: target {bad} .*\[0, 3\).*targets"):
        sg.cross_entropy(logits, sg.Tensor(np.array([0, 1, bad])))


def test_captured_targets_are_refused() -> None:
    f = sg.compile(lambda z: sg.cross_entropy(z, np.array([0, -1, 2])), sg.Spec((3, 3)))
    with pytest.raises(IndexRangeError, match="cross_entropy: target -1"):
        f(Z)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("opt", [0, 2])
@pytest.mark.parametrize("bad", [-1, 3])
def test_compiled_target_out_of_range(backend: str, opt: int, bad: int) -> None:
    _skip_without_cc(backend)
    f = sg.compile(
        lambda z, y: sg.cross_entropy(z, y),
        sg.Spec(("n", "c")),
        sg.Spec(("n",), "int64"),
        backend=backend,
        opt=opt,
        wrt=[0],
    )
    with pytest.raises(IndexRangeError, match=rf"cross_entropy: target {bad} is out of range"):
        f(Z, np.array([0, 1, bad]))
    loss, (grad,) = f(Z, np.array([0, 1, 2]))  # the function stays usable, and right
    ref = sg.cross_entropy(sg.Tensor(Z, requires_grad=True), sg.Tensor(np.array([0, 1, 2])))
    assert np.isclose(loss, ref.data) and grad.shape == Z.shape


def test_exported_numpy_module_refuses_bad_targets(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import importlib.util

    w = sg.Tensor(np.eye(3))
    d = sg.export(
        lambda z, y: sg.cross_entropy(z @ w, y),
        tmp_path / "e",
        sg.Spec(("n", 3)),
        sg.Spec(("n",), "int64"),
        backend="numpy",
        name="ce",
        examples=[Z, np.array([0, 1, 2])],
    )
    spec = importlib.util.spec_from_file_location("exported_ce", d / "ce.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    with pytest.raises(IndexError, match="cross_entropy: target -1 is out of range"):
        mod.forward(Z, np.array([0, -1, 2]))
