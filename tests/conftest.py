"""Shared fixtures and helpers of the symgrad test suite.

- ``names_path``: the makemore names list in the steering repo's ``shared/data`` (skips cleanly
  when the checkout has no ``shared/`` beside it).
- ``numerical_grad`` / ``num_grad``: central finite differences of a scalar NumPy function.
- ``rng``: a seeded NumPy generator (a fresh one per test, so tests do not depend on order).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

# CI runs the same examples every time (reproducible); local runs explore new ones.
from hypothesis import settings as _hyp_settings

import symgrad  # noqa: F401  (declares the built-in ops before any test looks at the registry)

_hyp_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    _hyp_settings.load_profile("ci")

REPO_ROOT = Path(__file__).parents[1]
NAMES_PATH = REPO_ROOT.parent / "shared/data/names.txt"


def numerical_grad(
    f: Callable[..., float], arrays: Sequence[np.ndarray], eps: float = 1e-6
) -> list[np.ndarray]:
    """Central differences of the scalar ``f(*arrays)`` with respect to each array.

    The arrays are copied to float64 first; ``f`` must accept the perturbed copies.
    """
    xs = [np.array(a, dtype=np.float64, copy=True) for a in arrays]
    grads = []
    for x in xs:
        g = np.zeros_like(x)
        flat, gflat = x.reshape(-1), g.reshape(-1)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + eps
            hi = float(f(*xs))
            flat[i] = old - eps
            lo = float(f(*xs))
            flat[i] = old
            gflat[i] = (hi - lo) / (2 * eps)
        grads.append(g)
    return grads


def directional_derivative(
    f: Callable[..., float],
    arrays: Sequence[np.ndarray],
    directions: Sequence[np.ndarray],
    eps: float = 1e-6,
) -> float:
    """Central-difference estimate of d/dt f(x + t v) at t = 0 (all arrays moved together)."""
    xs = [np.asarray(a, dtype=np.float64) for a in arrays]
    hi = f(*(x + eps * v for x, v in zip(xs, directions, strict=True)))
    lo = f(*(x - eps * v for x, v in zip(xs, directions, strict=True)))
    return (float(hi) - float(lo)) / (2 * eps)


@pytest.fixture(scope="session")
def names_path() -> Path:
    if not NAMES_PATH.is_file():
        pytest.skip(f"names.txt not found at {NAMES_PATH} (needs the shared/ checkout)")
    return NAMES_PATH


@pytest.fixture(scope="session")
def num_grad() -> Callable[..., list[np.ndarray]]:
    return numerical_grad


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240607)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite the golden files of generated code (tests/golden/) instead of comparing",
    )


@pytest.fixture(autouse=True, scope="session")
def _private_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Never write to the user's real cache: every test session gets its own directory."""
    import os

    os.environ.setdefault("SYMGRAD_CACHE_DIR", str(tmp_path_factory.mktemp("symgrad-cache")))
    # eager backward() compiles one module per graph structure; the suite builds hundreds of
    # structures, so it uses the NumPy backend unless a test asks for C (tests/runtime/test_eager)
    os.environ.setdefault("SYMGRAD_BACKEND", "numpy")


@pytest.fixture(autouse=True)
def _fresh_compile_history() -> None:
    """Each test is a program of its own for the eager "compiled N times" warning: the suite's
    tests share a process (and its plans) and reuse structures at many shapes."""
    from symgrad.frontend.backward_plan import PLANS

    PLANS.forget_history()
