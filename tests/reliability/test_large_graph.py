"""Large scalar graphs: tracing, differentiating, compiling and running never recurse (every
walk is iterative), so a deep chain works under a recursion limit barely above the caller's
stack; the 10**6-node run is ``million_nodes.py`` (docs/reliability.md, "Large graphs").
"""

from __future__ import annotations

import contextlib
import inspect
import os
import sys
from collections.abc import Iterator

import numpy as np
import pytest

import symgrad as sg
from tests.reliability import million_nodes

HEADROOM = 120  # frames allowed above the test's own stack


@contextlib.contextmanager
def shallow_recursion_limit() -> Iterator[int]:
    """Python's recursion limit set just above the current stack depth."""
    depth = len(inspect.stack(0))
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + HEADROOM)
    try:
        yield depth + HEADROOM
    finally:
        sys.setrecursionlimit(old)


def test_the_limit_is_real() -> None:
    def recurse(n: int) -> int:
        return 0 if n == 0 else 1 + recurse(n - 1)

    with shallow_recursion_limit(), pytest.raises(RecursionError):
        recurse(HEADROOM + 10)  # a recursive walk of a deep graph would fail like this


def test_a_deep_chain_traces_differentiates_compiles_and_runs_without_recursion() -> None:
    million_nodes.run(60, "numpy")  # imports, templates and caches warmed outside the limit
    with shallow_recursion_limit() as limit:
        result = million_nodes.run(12_000, "numpy")
    assert "failed" not in result, result
    assert result["recursion_limit"] == limit
    assert result["nodes"] >= 12_000 and result["joint_nodes"] >= 2 * 12_000
    assert result["max_rel_error"] < 1e-12


def test_eager_backward_of_a_deep_value_chain_without_recursion() -> None:
    steps = 4_000
    x, b = sg.Value(0.3), sg.Value(0.1)
    with shallow_recursion_limit():
        acc = x
        for i in range(steps):
            acc = (acc * (1.0 + i * 1e-9) + b).tanh() * 0.5 + x
        acc.backward()
    value, dx, db = million_nodes.chain_reference(steps, 0.3, 0.1)
    assert acc.data == pytest.approx(value, rel=1e-12)
    assert x.grad == pytest.approx(dx, rel=1e-12) and b.grad == pytest.approx(db, rel=1e-12)


def test_a_wide_sum_of_many_values() -> None:
    """micrograd's sum(...) over many Values: a long left-leaning chain of adds."""
    xs = [sg.Value(float(i % 7) / 7) for i in range(20_000)]
    with shallow_recursion_limit():
        total = sum((v * v for v in xs), sg.Value(0.0))
        total.backward()
    assert total.data == pytest.approx(sum((i % 7 / 7) ** 2 for i in range(20_000)), rel=1e-12)
    assert [v.grad for v in xs[:8]] == pytest.approx([2 * (i % 7) / 7 for i in range(8)])


@pytest.mark.parametrize("backend", ["numpy", pytest.param("c", marks=pytest.mark.cc)])
def test_gradients_of_a_compacted_micrograd_mlp(backend: str) -> None:
    """A micrograd MLP large enough for scalar-graph compaction, compiled with gradients."""
    import random

    random.seed(0)
    mlp = sg.nn.MLP(2, [700, 1])

    def loss(x: object) -> object:
        return mlp(list(x)) ** 2  # type: ignore[call-overload]

    x = np.array([0.5, -1.0])
    f = sg.compile(loss, sg.Spec((2,)), wrt=mlp.parameters(), backend=backend)
    value, grads = f(x)
    eager = loss(sg.Tensor(x))
    mlp.zero_grad()
    eager.backward()  # type: ignore[attr-defined]
    assert value == pytest.approx(eager.data, rel=1e-12)  # type: ignore[attr-defined]
    assert list(grads) == pytest.approx([p.grad for p in mlp.parameters()], rel=1e-9, abs=1e-12)


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("SYMGRAD_MILLION"),
    reason="the 10**6-node runs take tens of minutes and several GB: set SYMGRAD_MILLION=1",
)
@pytest.mark.parametrize(
    ("shape", "forward_only"),
    [("mlp", False), ("mlp", True)],
)
def test_a_million_node_graph(shape: str, forward_only: bool) -> None:
    """(The 10**6-node chain does not compile -- CPython's compile() of its 2.2M-statement module
    needs ~11 GB, see docs/reliability.md -- so it is run by hand, with --memory-limit-gib.)"""
    result = million_nodes.run(10**6, "numpy", print, shape, forward_only)
    assert "failed" not in result, result
    assert result["nodes"] >= 10**6 - 10
    assert result["max_rel_error"] < 1e-9
    assert np.isfinite(result["peak_rss_mib"])
