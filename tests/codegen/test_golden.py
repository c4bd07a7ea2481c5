"""Golden files of generated code: the exact source symgrad emits for small models.

``<model>.py.txt``/``.c.txt`` pin the code as differentiated (opt=0, every statement one VJP
rule); ``<model>.opt1.*``/``.opt2.*`` the code of the optimisation levels (opt=2 is the default
of every entry point): the lecture neuron, the moons MLP in tensor form, the bigram and
makemore's MLP, NumPy and C. A change to code generation shows up here as a diff to review.
After checking it, regenerate the files with
``pytest tests/codegen/test_golden.py --update-golden``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from symgrad.autodiff.joint import split
from symgrad.codegen.numpy.printer import render_numpy
from symgrad.codegen.schedule import schedule
from symgrad.frontend.trace import trace
from symgrad.lower.driver import lower
from tests.codegen.golden_models import MODELS

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


def _render(name: str, backend: str, opt: int = 0) -> str:
    fn, specs, wrt = MODELS[name]
    graph = trace(fn, *specs)
    if opt:
        prog = lower(graph, wrt=wrt, opt=opt).prog
    else:
        prog = schedule(graph, split(graph, wrt, n_diff=1))
    if backend == "numpy":
        return render_numpy(prog)
    from symgrad.codegen.c.printer import render_c

    return render_c(prog, f"sg_{name}").kernel


CASES = [
    ("neuron", "numpy"),
    ("tanh_layer", "numpy"),
    ("bigram", "numpy"),
    ("neuron", "c"),
    ("tanh_layer", "c"),
]
OPT_CASES = [
    (name, backend, opt)
    for name in ("neuron", "moons", "bigram", "makemore")
    for backend in ("numpy", "c")
    for opt in (1, 2)
]


@pytest.mark.parametrize(("name", "backend"), CASES)
def test_generated_source_matches_golden(
    name: str, backend: str, request: pytest.FixtureRequest
) -> None:
    path = GOLDEN / f"{name}.{'py' if backend == 'numpy' else 'c'}.txt"
    text = _render(name, backend)  # provenance shows base names: nothing machine-specific
    if request.config.getoption("--update-golden"):
        path.write_text(text)
    assert path.exists(), f"{path} is missing: run pytest with --update-golden"
    assert text == path.read_text(), f"generated code changed; review and --update-golden ({path})"


@pytest.mark.parametrize(("name", "backend", "opt"), OPT_CASES)
def test_optimised_source_matches_golden(
    name: str, backend: str, opt: int, request: pytest.FixtureRequest
) -> None:
    path = GOLDEN / f"{name}.opt{opt}.{'py' if backend == 'numpy' else 'c'}.txt"
    text = _render(name, backend, opt)
    if request.config.getoption("--update-golden"):
        path.write_text(text)
    assert path.exists(), f"{path} is missing: run pytest with --update-golden"
    assert text == path.read_text(), f"generated code changed; review and --update-golden ({path})"
