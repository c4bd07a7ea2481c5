"""Op names outside the op library: the front ends, printers and tools look ops up in the
registry (their ``Surface``, lowerings and traits) instead of naming them.

Scans the package (outside ``ops/``, ``sympy_ops/``, ``passes/`` and ``autodiff/``) for string
literals that are registered op names, and ``op_<name>`` members. At most six names may appear:
the source ops ``input``/``const``/``constant`` (the printers inline literals and bind
parameters) and the activations users name (``act="tanh"``). The public API's ``__all__``
(names of Python functions) does not count.
"""

from __future__ import annotations

import ast
from pathlib import Path

import symgrad
from symgrad.ir.opdef import registry

PACKAGE = Path(symgrad.__file__).resolve().parent
LIBRARY = {"ops", "sympy_ops", "passes", "autodiff"}
GOAL = {"input", "const", "constant", "tanh", "relu"}


def _names_in(path: Path, ops: set[str]) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip: set[int] = set()
    for node in ast.walk(tree):  # __all__ lists function names
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            skip |= {id(n) for n in ast.walk(node.value)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in ops:
            found.add(node.value)
        name = node.name if isinstance(node, ast.FunctionDef) else getattr(node, "attr", None)
        if isinstance(name, str) and name.startswith("op_") and name[3:] in ops:
            found.add(name[3:])
    return found


def _scan() -> dict[str, set[str]]:
    ops = {n for n in registry() if not n.startswith("ew_")}
    out: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.split("/")[0] in LIBRARY:
            continue
        names = _names_in(path, ops)
        if names:
            out[rel] = names
    return out


def test_only_the_source_ops_and_user_named_activations_are_spelled() -> None:
    assert len(GOAL) <= 6
    extra = {rel: sorted(names - GOAL) for rel, names in _scan().items() if names - GOAL}
    assert not extra, f"op names spelled outside the op library (use the registry): {extra}"


def test_the_scan_finds_a_literal(tmp_path: Path) -> None:
    p = tmp_path / "m.py"
    p.write_text('x = "matmul"\n__all__ = ["tanh"]\nclass P:\n    def op_gather(self): ...\n')
    assert _names_in(p, {"matmul", "tanh", "gather"}) == {"matmul", "gather"}
