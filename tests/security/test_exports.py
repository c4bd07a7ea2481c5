"""User text in exports (``symgrad.export``): the standalone NumPy module and the C library.

The hostile model of ``hostile.py`` (hostile file path, source lines, labels and op name) is
exported with its training step; the NumPy module must import and compute the right numbers and
keep the labels exactly (as string data), the C library must build with ``-Werror -pedantic`` and
pass its self-test, and no payload may run.
"""

from __future__ import annotations

import importlib.util
import itertools
import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

import symgrad as sg
from tests.security.hostile import (
    ALL_IN_ONE,
    PAYLOADS,
    X,
    check_c,
    check_python,
    import_model,
    no_payload_ran,
    reference,
)

OWN = np.array([0.5, -2.0])
MF = np.array([3.0, 0.25])
_count = itertools.count()


def export(tmp_path: Path, backend: str, label_w: str, label_b: str) -> tuple[Path, Any]:
    m = import_model(tmp_path, label_w, label_b, ALL_IN_ONE)
    opt = sg.optim.SGD([m.W, m.B], lr=0.1)
    specs = (sg.Spec(("n", 3)), sg.Spec((2,)), sg.Spec((2,)))
    out = sg.export(
        m.f,
        tmp_path / "export",
        sg.Spec(("n", 3)),
        backend=backend,
        train_step=(m.loss, opt, *specs),
        examples=[X],
    )
    return out, m


def import_export(folder: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        f"sg_sec_export_{next(_count)}", folder / "model.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def expected_step(m: Any) -> tuple[float, list[np.ndarray]]:
    value, (_, gw, gb) = reference(X, m.W.data, m.B.data)
    loss = value + float(np.sum(OWN * MF))
    return loss, [m.W.data - 0.1 * gw, m.B.data - 0.1 * gb]


@pytest.mark.parametrize("labels", [("all", ALL_IN_ONE), *PAYLOADS.items()], ids=lambda x: x[0])
def test_numpy_export_of_a_hostile_model(
    labels: tuple[str, str], tmp_path: Path, workdir: Path
) -> None:
    label = labels[1]
    folder, m = export(tmp_path, "numpy", label, label + "\x00b")
    text = (folder / "model.py").read_text(encoding="utf-8")
    check_python(text, [label], imports=["math", "os"])
    mod = import_export(folder)
    assert [w[1] for w in mod.WEIGHTS] == [label, label + "\x00b"]  # exact, as data
    code = m.f.__code__
    want_source = f"f in {m.__name__} ({code.co_filename}:{code.co_firstlineno})"
    assert want_source == mod.SOURCE
    want, _ = reference(X, m.W.data, m.B.data)
    assert float(mod.forward(X)) == pytest.approx(want, rel=1e-12)
    loss, params = expected_step(m)
    assert mod.train_step(X, OWN, MF) == pytest.approx(loss, rel=1e-12)
    for got, ref in zip(mod.params, params, strict=True):
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
    assert no_payload_ran(workdir, tmp_path, folder)


def _make(folder: Path, *targets: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "-C", str(folder), *targets], capture_output=True, text=True, timeout=300
    )


@pytest.mark.cc
@pytest.mark.parametrize("labels", [("all", ALL_IN_ONE)], ids=lambda x: x[0])
def test_c_export_of_a_hostile_model(
    labels: tuple[str, str], tmp_path: Path, workdir: Path
) -> None:
    if shutil.which("make") is None:
        pytest.skip("needs make")
    folder, _ = export(tmp_path, "c", labels[1], PAYLOADS["c_splice"])
    for name in ("model.c", "model.h", "model_check.c"):
        check_c((folder / name).read_text(encoding="utf-8"), ["t", "own", "model_forward"])
    header = (folder / "model.h").read_text(encoding="utf-8")
    assert "const double *t," not in header and "*own," not in header  # renamed
    r = _make(folder, "all", "check")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "warning" not in r.stderr and "self-test passed" in r.stdout
    assert no_payload_ran(workdir, tmp_path, folder)
    cxx = shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    if cxx is not None:  # the header is usable from C++ too (extern "C", no C++ keywords)
        tu = folder / "use.cpp"
        tu.write_text('#include "model.h"\nint main() { return MODEL_OK; }\n')
        r = subprocess.run(
            [cxx, "-fsyntax-only", "-Wall", "-Werror", str(tu)],
            capture_output=True,
            text=True,
            cwd=folder,
            timeout=120,
        )
        assert r.returncode == 0, r.stderr


@pytest.mark.parametrize(
    "name",
    ['model"; system("touch PWNED"); "', "a b", "if", "numpy", "m\n", "λ", "_x", "x" * 65, ""],
)
def test_the_export_name_must_be_a_plain_identifier(
    name: str, tmp_path: Path, workdir: Path
) -> None:
    W = sg.Tensor(np.ones((2, 2)), requires_grad=True)
    with pytest.raises(ValueError, match="plain identifier"):
        sg.export(lambda x: x @ W, tmp_path / "out", sg.Spec((2,)), name=name)
    assert not (tmp_path / "out").exists()
    assert no_payload_ran(workdir)
