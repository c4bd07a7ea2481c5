"""cumsum, the worked example of docs/adding-an-op.md: what the registry sweep and the
differential tests do not cover (int64 wrap-around, symbolic dims, the rule's errors, bit
agreement with np.cumsum)."""

from __future__ import annotations

import numpy as np
import pytest

from symgrad.codegen.schedule import schedule
from symgrad.ir.errors import DTypeError, ShapeError
from symgrad.ir.graph import Graph
from symgrad.ops.scan import cumsum
from symgrad.ops.source import make_input
from symgrad.runtime import modules

BACKENDS = ["numpy", pytest.param("c", marks=pytest.mark.cc)]


@pytest.fixture
def c_backend_ready(request: pytest.FixtureRequest) -> None:
    """Skip the C cases when no C compiler works."""
    from symgrad.runtime.cc import compiler_available

    if request.node.callspec.params.get("backend") == "c" and not compiler_available():
        pytest.skip("no working C compiler")


def _run(x_node, arrays, backend, axis):  # type: ignore[no-untyped-def]
    graph = Graph([x_node], [cumsum(x_node, axis)])
    built = modules.build(schedule(graph), backend, graph)
    (out,), _ = built.module.forward(*arrays)
    return np.asarray(out)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_float32_sums_agree_with_numpy_to_the_bit(
    backend: str, axis: int, c_backend_ready: None
) -> None:
    x = np.random.default_rng(7).standard_normal((5, 300)).astype(np.float32)
    got = _run(make_input((5, 300), "float32", "x"), [x], backend, axis)
    assert got.dtype == np.float32
    assert np.array_equal(got, np.cumsum(x, axis=axis))


@pytest.mark.parametrize("backend", BACKENDS)
def test_int64_sums_wrap_around_like_numpy(backend: str, c_backend_ready: None) -> None:
    x = np.array([2**62, 2**62, 2**62, -5], dtype=np.int64)
    got = _run(make_input((4,), "int64", "x"), [x], backend, 0)
    with np.errstate(over="ignore"):
        assert np.array_equal(got, np.cumsum(x))


@pytest.mark.parametrize("backend", BACKENDS)
def test_symbolic_dims(backend: str, c_backend_ready: None) -> None:
    x = np.arange(24.0).reshape(2, 3, 4)
    got = _run(make_input(("n", 3, 4), "float64", "x"), [x], backend, 1)
    assert np.array_equal(got, np.cumsum(x, axis=1))


def test_errors_name_what_was_expected() -> None:
    with pytest.raises(ShapeError, match=r"axis 2 is not an axis of \(3, 4\)"):
        cumsum(make_input((3, 4), "float64", "x"), 2)
    with pytest.raises(DTypeError, match="expected a float or int64 array, got bool"):
        cumsum(make_input((3,), "bool", "b"))


def test_the_walkthrough_shows_the_code_the_lowering_prints() -> None:
    from pathlib import Path

    from symgrad.codegen.c.printer import render_c

    x = make_input(("n", 3), "float64", "x")
    graph = Graph([x], [cumsum(x, 0)])
    kernel = render_c(schedule(graph), "m").kernel
    doc = (Path(__file__).parents[2] / "docs" / "adding-an-op.md").read_text()
    snippet = doc.split("```c\n", 1)[1].split("```", 1)[0]
    lines = [line[3:] for line in snippet.splitlines()]  # the list item's indent
    assert "\n".join(lines) in "\n".join(line[4:] for line in kernel.splitlines())
