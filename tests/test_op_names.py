"""Op names outside the op library: the front ends, printers and tools look ops up in the
registry (their ``Surface``, lowerings and traits) instead of naming them.

Scans the package (outside ``ops/``, ``sympy_ops/``, ``passes/`` and ``autodiff/``) for string
literals that are registered op names, and ``op_<name>`` members. The goal is at most six names
(the source ops ``input``/``const``/``constant`` and the activations users name, ``act="tanh"``);
the C printer's statement lowerings (``codegen/c/kernels.py``) and a few codegen checks still
name ops. ``KNOWN`` is a ratchet: a file may drop names, never gain them, and the public API's
``__all__`` (names of Python functions) does not count.
"""

from __future__ import annotations

import ast
from pathlib import Path

import symgrad
from symgrad.ir.opdef import registry

PACKAGE = Path(symgrad.__file__).resolve().parent
LIBRARY = {"ops", "sympy_ops", "passes", "autodiff"}
GOAL = {"input", "const", "constant", "tanh", "relu"}

# what each file still names (shrink these as lowerings move into the op records)
KNOWN: dict[str, set[str]] = {
    "codegen/c/kernels.py": {
        "arange",
        "bincount",
        "broadcast_to",
        "class_index",
        "concatenate",
        "const",
        "detach",
        "dimsize",
        "exp",
        "gather",
        "matmul",
        "max",
        "one_hot",
        "reshape",
        "scatter_add",
        "slice",
        "softmax_nll",
        "softmax_nll_grad",
        "sum",
        "transpose",
        "unslice",
    },
    "codegen/c/fusion.py": {"broadcast_to", "const"},
    "codegen/c/printer.py": {"transpose", "const"},
    "codegen/compact.py": {"reshape", "slice", "const"},
}


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


def test_no_file_names_more_ops_than_it_did() -> None:
    grown = {
        rel: sorted(names - GOAL - KNOWN.get(rel, set()))
        for rel, names in _scan().items()
        if names - GOAL - KNOWN.get(rel, set())
    }
    assert not grown, f"op names spelled outside the op library (use the registry): {grown}"


def test_the_ratchet_is_tight() -> None:
    # a name no longer used must leave KNOWN, so that it cannot come back
    scan = _scan()
    stale = {
        rel: sorted(names - scan.get(rel, set()) - GOAL)
        for rel, names in KNOWN.items()
        if names - scan.get(rel, set()) - GOAL
    }
    assert not stale, f"remove from KNOWN: {stale}"


def test_the_scan_finds_a_literal(tmp_path: Path) -> None:
    p = tmp_path / "m.py"
    p.write_text('x = "matmul"\n__all__ = ["tanh"]\nclass P:\n    def op_gather(self): ...\n')
    assert _names_in(p, {"matmul", "tanh", "gather"}) == {"matmul", "gather"}
