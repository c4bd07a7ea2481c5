"""symgrad.runtime.load: loading a built extension or a generated NumPy module from a file."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from symgrad.ir.errors import SymgradError
from symgrad.runtime.cc import (
    build_shared,
    default_flags,
    extension_suffix,
    find_compiler,
    python_include_dirs,
)
from symgrad.runtime.load import LoadError, load_extension, load_python_module


@pytest.fixture
def build_extension(extension_source: Callable[..., str]) -> Callable[..., Path]:
    def build(folder: Path, name: str, answer: int = 42) -> Path:
        src = folder / f"{name}.c"
        src.write_text(extension_source(name, answer))
        out = folder / f"{name}{extension_suffix()}"
        build_shared(find_compiler(), [src], out, default_flags(), python_include_dirs())
        return out

    return build


@pytest.mark.cc
def test_a_compiled_extension_loads_and_runs(tmp_path, build_extension):
    name = "sg_test_ext_load"
    path = build_extension(tmp_path, name)
    module = load_extension(path, name)
    assert module.add(1.5, 2.25) == 3.75
    assert module.answer() == 42
    assert name not in sys.modules
    assert load_extension(path, name) is module  # remembered per path
    assert load_extension(tmp_path / "." / path.name, name) is module


@pytest.mark.cc
def test_extensions_with_different_names_and_paths_are_distinct(tmp_path, build_extension):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    one = load_extension(build_extension(tmp_path / "a", "sg_test_ext_a", 1), "sg_test_ext_a")
    two = load_extension(build_extension(tmp_path / "b", "sg_test_ext_b", 2), "sg_test_ext_b")
    assert (one.answer(), two.answer()) == (1, 2)


@pytest.mark.cc
def test_a_wrong_module_name_is_a_load_error(tmp_path, build_extension):
    path = build_extension(tmp_path, "sg_test_ext_right")
    with pytest.raises(LoadError, match="sg_test_ext_wrong"):
        load_extension(path, "sg_test_ext_wrong")


def test_a_garbage_shared_library_is_a_load_error(tmp_path):
    path = tmp_path / f"sg_garbage{extension_suffix()}"
    path.write_bytes(b"\x7fELF this is not really a shared library" * 10)
    with pytest.raises(LoadError) as info:
        load_extension(path, "sg_garbage")
    assert isinstance(info.value, SymgradError) and info.value.path == path
    assert isinstance(info.value.__cause__, (ImportError, OSError))
    assert "sg_garbage" not in sys.modules


def test_a_missing_extension_is_a_load_error(tmp_path):
    with pytest.raises(LoadError, match="no file"):
        load_extension(tmp_path / "nope.so", "nope")


MODULE_SRC = """\
import numpy as np

SCALE = 3.0


def forward(x):
    return np.tanh(x) * SCALE


def boom():
    raise ValueError("boom")
"""


def test_a_python_module_loads_from_its_file(tmp_path):
    path = tmp_path / "module.py"
    path.write_text(MODULE_SRC)
    module = load_python_module(path, "sg_numpy_test")
    x = np.linspace(-1, 1, 5)
    np.testing.assert_allclose(module.forward(x), np.tanh(x) * 3.0)
    assert module.__name__ == "sg_numpy_test" and module.__file__ == str(path)
    assert "sg_numpy_test" not in sys.modules
    assert sorted(p.name for p in tmp_path.iterdir()) == ["module.py"]  # no __pycache__
    again = load_python_module(path, "sg_numpy_test")
    assert again is not module and again.SCALE == 3.0


def test_tracebacks_point_into_the_generated_file(tmp_path):
    path = tmp_path / "module.py"
    path.write_text(MODULE_SRC)
    module = load_python_module(path, "sg_numpy_tb")
    with pytest.raises(ValueError) as info:
        module.boom()
    frames = traceback.extract_tb(info.value.__traceback__)
    assert frames[-1].filename == str(path) and 'raise ValueError("boom")' in (
        frames[-1].line or ""
    )


@pytest.mark.parametrize(
    ("source", "match"),
    [("def broken(:\n", "SyntaxError"), ("raise RuntimeError('at import')\n", "at import")],
)
def test_a_bad_python_module_is_a_load_error(tmp_path, source, match):
    path = tmp_path / "module.py"
    path.write_text(source)
    with pytest.raises(LoadError, match=match):
        load_python_module(path, "sg_bad")


def test_a_missing_python_module_is_a_load_error(tmp_path):
    with pytest.raises(LoadError, match="cannot read"):
        load_python_module(tmp_path / "missing.py", "sg_missing")


@pytest.mark.cc
def test_a_rebuilt_extension_at_a_path_that_failed_is_loaded_afresh(tmp_path, build_extension):
    """The dynamic loader keeps the handle of a library whose init failed and hands it back for
    the same path: the rebuilt file must be loaded from a fresh copy (issue 20, finding 5)."""
    name = "sg_test_ext_rebuilt"
    (tmp_path / "wrong").mkdir()
    stale = build_extension(tmp_path / "wrong", "sg_test_ext_other", 1)  # no PyInit_<name>
    path = tmp_path / f"{name}{extension_suffix()}"
    path.write_bytes(stale.read_bytes())
    with pytest.raises(LoadError):
        load_extension(path, name)
    rebuilt = build_extension(tmp_path, name, 7)  # the same path, now a good extension
    assert rebuilt == path
    assert load_extension(path, name).answer() == 7
    assert load_extension(path, name).answer() == 7  # and remembered from now on
