"""Shared fixtures of the runtime tests.

- every test here runs with ``$SYMGRAD_CACHE_DIR`` set to a fresh temporary directory
  (``tmp_cache``, autouse), so no test touches the user's real cache;
- tests marked ``@pytest.mark.cc`` are skipped cleanly when no working C compiler is found;
- ``run_python`` runs a small script in a fresh interpreter (for the cross-process tests);
- ``extension_source`` gives the C source of a minimal CPython extension (``add``, ``answer``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from symgrad.runtime.cc import compiler_available

REPO_ROOT = Path(__file__).resolve().parents[2]

EXTENSION_C = """\
#define PY_SSIZE_T_CLEAN
#include <Python.h>
static PyObject *add(PyObject *self, PyObject *args) {
    double a, b;
    if (!PyArg_ParseTuple(args, "dd", &a, &b)) return NULL;
    return PyFloat_FromDouble(a + b);
}
static PyObject *answer(PyObject *self, PyObject *unused) { return PyLong_FromLong(ANSWER); }
static PyMethodDef methods[] = {
    {"add", add, METH_VARARGS, "a + b"}, {"answer", answer, METH_NOARGS, "the answer"},
    {NULL, NULL, 0, NULL}};
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "MODNAME", NULL, -1, methods};
PyMODINIT_FUNC PyInit_MODNAME(void) { return PyModule_Create(&def); }
"""


def _extension_source(module_name: str, answer: int = 42) -> str:
    return EXTENSION_C.replace("MODNAME", module_name).replace("ANSWER", str(answer))


@pytest.fixture(scope="session")
def extension_source() -> Callable[..., str]:
    """``extension_source(module_name, answer=42)``: the C source of a tiny CPython extension
    with ``add(a, b) -> float`` and ``answer() -> int``."""
    return _extension_source


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("cc") is not None and not compiler_available():
        pytest.skip("needs a working C compiler ($CC, default cc)")


@pytest.fixture(autouse=True)
def tmp_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh cache directory, set as ``$SYMGRAD_CACHE_DIR`` for the test."""
    root = tmp_path / "cache"
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(root))
    return root


RunPython = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def run_python() -> RunPython:
    """``run_python(code, env={...}, timeout=60)``: run ``code`` in a fresh interpreter with the
    test's environment plus ``env``; returns the completed process (text output)."""

    def run(
        code: str, env: Mapping[str, str] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, **(env or {})}
        return subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            capture_output=True,
            text=True,
            env=full_env,
            cwd=str(REPO_ROOT),
            timeout=timeout,
        )

    return run
