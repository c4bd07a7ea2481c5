"""The C printer's own arithmetic: the vectorisable float32 ``exp``/``tanh`` helpers against
NumPy in double precision (the accuracy documented in ``symgrad/codegen/templates/c/_helpers.c.j2``,
special values included), and the tiled matmul loops against NumPy on shapes that exercise
every path (full tiles, leftover rows and columns, narrow and wide products, symbolic dims,
batches, empty dims)."""

from __future__ import annotations

import numpy as np
import pytest

import symgrad as sg
from tests import sequential_sums

pytestmark = pytest.mark.cc


@pytest.fixture(autouse=True)
def _compiler() -> None:
    from symgrad.runtime.cc import compiler_available

    if not compiler_available():
        pytest.skip("no working C compiler")


def _float32_sample() -> np.ndarray:
    """Every exponent, dense where the functions change regime, and the special values."""
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2**32, 400_000, dtype=np.uint64).astype(np.uint32)
    dense = np.linspace(-110, 100, 300_001, dtype=np.float32)
    around = np.concatenate([np.linspace(c - 1e-3, c + 1e-3, 2001) for c in (-0.625, 0.625, 9.0)])
    special = [0.0, -0.0, np.inf, -np.inf, np.nan, 88.72283, 88.72284, -87.33655, -103.97208]
    special += [-103.972084, -104.0, 1e-45, -1e-45, 1e-38, 3.4e38, -3.4e38]
    parts = [bits.view(np.float32), dense, around.astype(np.float32), np.array(special)]
    return np.concatenate([p.astype(np.float32) for p in parts])


def _ulps(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    """|got - want| in units of the float32 spacing at want (want in float64)."""
    w32 = want.astype(np.float32)
    spacing = np.spacing(np.abs(w32)).astype(np.float64)
    with np.errstate(invalid="ignore"):
        return np.abs(got.astype(np.float64) - want) / spacing


@pytest.mark.parametrize(
    ("name", "fn", "ref", "max_ulps"),
    [
        ("exp", lambda x: x.exp(), np.exp, 1.0),
        ("tanh", lambda x: x.tanh(), np.tanh, 1.5),
    ],
)
def test_float32_helpers_are_accurate(name: str, fn, ref, max_ulps: float) -> None:  # type: ignore[no-untyped-def]
    x = _float32_sample()
    f = sg.compile(fn, sg.Spec(("n",), "float32"), backend="c")
    assert f"_sg_{name}f" in f.source()
    got = np.asarray(f(x))
    assert got.dtype == np.float32
    with np.errstate(all="ignore"):
        want = ref(x.astype(np.float64))
        numpy32 = ref(x)
        finite = np.isfinite(want.astype(np.float32))
    err = _ulps(got[finite], want[finite])
    assert err.max() <= max_ulps, (name, x[finite][np.argmax(err)], err.max())
    # overflow, NaN, infinities and signed zeros exactly as NumPy's float32 functions
    odd = ~finite | (x == 0) | np.isnan(x)
    np.testing.assert_array_equal(got[odd], numpy32[odd])
    assert np.array_equal(np.signbit(got[x == 0]), np.signbit(numpy32[x == 0]))
    # and as close to NumPy's float32 results as NumPy's are to the exact values
    np.testing.assert_allclose(got[finite], numpy32[finite], rtol=3e-7, atol=1e-44)


SHAPES = [  # (m, k, n)
    (32, 30, 200),  # the makemore MLP's products
    (32, 200, 27),
    (200, 32, 27),
    (8, 5, 32),  # exactly one tile
    (17, 3, 33),  # leftover rows and a second, nearly empty column block
    (9, 1, 7),  # narrow, k = 1
    (3, 4, 2),  # fewer rows than a tile
    (12, 0, 5),  # k = 0: zeros
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("m", "k", "n"), SHAPES)
def test_tiled_matmul_matches_numpy(m: int, k: int, n: int, dtype: str) -> None:
    rng = np.random.default_rng(m * 1000 + k * 10 + n)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    for spec_m in (m, "m"):  # static and symbolic row counts
        f = sg.compile(
            lambda x, y: x @ y, sg.Spec((spec_m, k), dtype), sg.Spec((k, n), dtype), backend="c"
        )
        got = np.asarray(f(a, b))
        # every element is summed over k in order, like the naive loop (or with one fused
        # multiply-add per term: the AVX2 tiles)
        assert sequential_sums.in_order(got, a, b), np.abs(got - a @ b).max()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_batched_matmul_and_gradients(dtype: str) -> None:
    rng = np.random.default_rng(7)
    a = rng.standard_normal((3, 10, 6)).astype(dtype)
    b = rng.standard_normal((6, 19)).astype(dtype)

    def loss(x, y):  # type: ignore[no-untyped-def]
        return ((x @ y) ** 2).sum()

    specs = [sg.Spec((3, "r", 6), dtype), sg.Spec((6, 19), dtype)]
    f = sg.compile(loss, *specs, wrt=[0, 1], backend="c")
    g = sg.compile(loss, *specs, wrt=[0, 1], backend="numpy")
    (lc, gc), (ln, gn) = f(a, b), g(a, b)
    tol = 1e-12 if dtype == "float64" else 1e-5
    np.testing.assert_allclose(lc, ln, rtol=tol)
    for x, y in zip(gc, gn, strict=True):
        np.testing.assert_allclose(x, y, rtol=tol, atol=tol)
