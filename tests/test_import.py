"""Importing symgrad stays light: the heavy optional machinery loads only when used."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("sympy", "jinja2")


def _modules_after(code: str) -> set[str]:
    script = f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=str(REPO_ROOT),
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


def test_import_symgrad_does_not_import_sympy_or_jinja2():
    mods = _modules_after("import symgrad")
    assert "symgrad" in mods and "numpy" in mods
    heavy = sorted(m for m in mods if m.split(".")[0] in HEAVY)
    assert heavy == [], f"import symgrad pulled in {heavy}"


def test_eager_models_and_tracing_do_not_import_sympy():
    # backward() runs generated code (Jinja2 renders it); SymPy is only for symgrad.elementwise
    code = (
        "import numpy as np, symgrad\n"
        "W = symgrad.Tensor(np.ones((3, 2)), requires_grad=True)\n"
        "symgrad.cross_entropy(symgrad.one_hot(np.array([0, 2]), 3) @ W, np.array([1, 0]))"
        ".backward()\n"
        "str(symgrad.trace(lambda x: (x * x).sum(), symgrad.Spec(('n', 3))))"
    )
    mods = _modules_after(code)
    assert sorted(m for m in mods if m.split(".")[0] == "sympy") == []


def test_tracing_does_not_import_sympy_or_jinja2():
    mods = _modules_after(
        "import symgrad\nstr(symgrad.trace(lambda x: (x * x).sum(), symgrad.Spec(('n', 3))))"
    )
    assert sorted(m for m in mods if m.split(".")[0] in HEAVY) == []


def test_the_check_can_see_an_import():
    # the subprocess really reports sys.modules (so the two tests above can fail)
    assert "sqlite3" not in _modules_after("import symgrad")
    assert "sqlite3" in _modules_after("import symgrad, sqlite3")
