"""symgrad.frontend.random: generators, draws, draws inside compiled code, frozen-draw warnings."""

from __future__ import annotations

import random as pyrandom
import warnings

import numpy as np
import pytest

import symgrad as sg
from symgrad.frontend.random import FrozenRandomWarning
from symgrad.ir.errors import ArgumentError, ShapeError, TraceError

BACKENDS = ["numpy", pytest.param("c", marks=pytest.mark.cc)]


@pytest.fixture
def c_backend_ready(request: pytest.FixtureRequest) -> None:
    from symgrad.runtime.cc import compiler_available

    if request.node.callspec.params.get("backend") == "c" and not compiler_available():
        pytest.skip("no working C compiler")


def test_the_same_seed_gives_the_same_numbers() -> None:
    a = sg.randn(3, 4, generator=sg.Generator().manual_seed(42)).data
    b = sg.randn((3, 4), generator=sg.Generator().manual_seed(42)).data
    c = sg.randn(3, 4, generator=sg.Generator().manual_seed(43)).data
    assert a.shape == (3, 4) and np.array_equal(a, b) and not np.array_equal(a, c)


def test_each_draw_advances_the_generator_and_the_default_one_is_separate() -> None:
    g = sg.Generator().manual_seed(1)
    first, second = sg.rand(5, generator=g).data, sg.rand(5, generator=g).data
    assert not np.array_equal(first, second)
    sg.manual_seed(1)
    assert np.array_equal(sg.rand(5).data, first)  # the default generator, seeded alike
    state = g.get_state()
    third = sg.rand(5, generator=g).data
    g.set_state(state)
    assert np.array_equal(sg.rand(5, generator=g).data, third)
    assert g.initial_seed() == 1


def test_distributions() -> None:
    g = sg.Generator().manual_seed(7)
    u = sg.rand(200_000, generator=g, dtype="float64").data
    assert u.dtype == np.float64 and u.min() >= 0 and u.max() < 1 and abs(u.mean() - 0.5) < 0.005
    u32 = sg.rand(1000, generator=g, dtype="float32").data
    assert u32.dtype == np.float32 and u32.max() < 1
    z = sg.randn(200_000, generator=g).data
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01
    assert abs(np.mean(z**4) - 3) < 0.1  # Gaussian kurtosis
    i = sg.randint(-3, 4, (100_000,), generator=g).data
    assert i.dtype == np.int64 and set(np.unique(i)) == set(range(-3, 4))
    j = sg.randint(10, (3, 2), generator=g)
    assert j.shape == (3, 2) and j.data.max() < 10
    p = sg.randperm(10, generator=g).data
    assert sorted(p.tolist()) == list(range(10))


def test_multinomial_frequencies_and_without_replacement() -> None:
    g = sg.Generator().manual_seed(3)
    probs = sg.Tensor([0.2, 0.0, 0.5, 0.3])
    s = sg.multinomial(probs, 50_000, replacement=True, generator=g).data
    freq = np.bincount(s, minlength=4) / s.size
    np.testing.assert_allclose(freq, [0.2, 0.0, 0.5, 0.3], atol=0.01)
    rows = sg.multinomial(sg.Tensor([[1.0, 2.0, 3.0], [5.0, 0.0, 1.0]]), 2, generator=g).data
    assert rows.shape == (2, 2) and all(len(set(r)) == 2 for r in rows.tolist())
    assert 1 not in rows[1]
    with pytest.raises(ArgumentError, match="without replacement"):
        sg.multinomial(probs, 5, generator=g)
    with pytest.raises(ArgumentError, match=">= 0"):
        sg.multinomial(sg.Tensor([-1.0, 2.0]), 1)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ArgumentError, match="low < high"):
        sg.randint(5, 5, (2,))
    with pytest.raises(ArgumentError, match="randint"):
        sg.randint(3)
    with pytest.raises(ShapeError, match="ints"):
        sg.randn(2.5)
    with pytest.raises(ArgumentError, match="Generator"):
        sg.randn(2, generator=np.random.default_rng(0))  # type: ignore[arg-type]
    with pytest.raises(ArgumentError, match="float dtype"):
        sg.rand(2, dtype="int64")


def test_normal_and_uniform_fill_a_leaf_in_place() -> None:
    g = sg.Generator().manual_seed(5)
    w = sg.Tensor(np.zeros((400, 50)))
    assert w.normal_(1.0, 2.0, generator=g) is w and w.is_leaf
    assert abs(w.data.mean() - 1.0) < 0.05 and abs(w.data.std() - 2.0) < 0.05
    w.uniform_(-1.0, 3.0, generator=g)
    assert w.data.min() >= -1.0 and w.data.max() < 3.0 and abs(w.data.mean() - 1.0) < 0.05
    p = sg.Tensor(np.zeros(3), requires_grad=True)
    with pytest.raises(TraceError, match="no_grad"):
        p.normal_()
    with sg.no_grad():
        p.normal_()
    assert p.requires_grad and p.is_leaf


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_compiled_dropout_draws_a_new_mask_every_call(
    backend: str, c_backend_ready: None
) -> None:
    g = sg.Generator().manual_seed(11)

    def dropout(x: sg.Tensor) -> sg.Tensor:
        keep = (sg.rand(x.shape[0], 8, generator=g) >= 0.5).astype("float64")
        return x * keep / 0.5

    f = sg.compile(dropout, sg.Spec(("n", 8)), backend=backend)
    x = np.ones((64, 8))
    masks = [f(x) for _ in range(3)]
    assert not np.array_equal(masks[0], masks[1]) and not np.array_equal(masks[1], masks[2])
    assert set(np.unique(masks[0])) == {0.0, 2.0} and abs((masks[0] == 0).mean() - 0.5) < 0.1
    g.manual_seed(11)  # the same sequence again from the seed
    again = [f(x) for _ in range(3)]
    assert all(np.array_equal(a, b) for a, b in zip(masks, again, strict=True))
    # ... and the same numbers as an eager draw at the same counter (stream 0 of the call)
    g.manual_seed(11)
    eager = sg.rand(64, 8, generator=g).data
    np.testing.assert_array_equal(masks[0], (eager >= 0.5) * 2.0)


def test_two_draws_in_one_trace_are_different_streams() -> None:
    g = sg.Generator().manual_seed(0)

    def two(x: sg.Tensor) -> tuple[sg.Tensor, sg.Tensor]:
        return x + sg.randn(4, generator=g, dtype=x.dtype), x + sg.randn(
            4, generator=g, dtype=x.dtype
        )

    a, b = sg.compile(two, sg.Spec((4,)), backend="numpy")(np.zeros(4))
    assert not np.array_equal(a, b)


def test_numpy_and_python_random_inside_a_trace_warn() -> None:
    def frozen(x: sg.Tensor) -> sg.Tensor:
        return x * (np.random.rand(3) > 0.5).astype(np.float64)

    with pytest.warns(FrozenRandomWarning, match=r"numpy\.random\.rand\(\).*symgrad\.rand"):
        sg.trace(frozen, sg.Spec((3,)))

    def python(x: sg.Tensor) -> sg.Tensor:
        return x * pyrandom.random()

    with pytest.warns(FrozenRandomWarning, match=r"random\.random\(\)"):
        sg.trace(python, sg.Spec((3,)))
    # outside a trace nothing is patched and nothing warns
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.random.rand(2)
        pyrandom.random()
    assert np.random.rand.__module__ != __name__
