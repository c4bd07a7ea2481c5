"""The package's shape: no import cycles between modules, few top-level modules.

The layer contracts themselves are import-linter's (``[tool.importlinter]`` in pyproject.toml,
run by ``make test``); this test adds what a layers contract cannot say: that no two modules
import each other, directly or round a longer loop, even inside one layer.
"""

from __future__ import annotations

from pathlib import Path

import grimp
import pytest

import symgrad

PACKAGE = Path(symgrad.__file__).resolve().parent


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph.modules):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.find_modules_directly_imported_by(w)))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        found.append(sorted(comp))
    return found


def test_no_two_modules_import_each_other() -> None:
    # every import counts: at module level, inside functions and under TYPE_CHECKING
    graph = grimp.build_graph("symgrad")
    cycles = _cycles(graph)
    shown = "\n".join(" <-> ".join(c) for c in cycles)
    assert not cycles, f"import cycles between modules:\n{shown}"


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for m in ("p", "p.a", "p.b", "p.c"):
        graph.add_module(m)
    graph.add_import(importer="p.a", imported="p.b")
    graph.add_import(importer="p.b", imported="p.c")
    graph.add_import(importer="p.c", imported="p.a")
    assert _cycles(graph) == [["p.a", "p.b", "p.c"]]


def test_few_top_level_modules() -> None:
    # the pipeline's stages are packages; at the top only the facade, the lowering driver,
    # the version and model references
    modules = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(modules) <= 6, modules


@pytest.mark.parametrize("name", ["export", "gradcheck"])
def test_public_functions_are_not_shadowed_by_modules(name: str) -> None:
    import importlib

    assert callable(getattr(symgrad, name))
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(f"symgrad.{name}")
