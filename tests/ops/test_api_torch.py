"""The node-level sugar behind PyTorch's names (``symgrad/ops/api_torch.py``): each function
against NumPy through the reference interpreter, with symbolic dims, and its errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from symgrad.ir.dtypes import FLOAT64, INT64
from symgrad.ir.errors import DTypeError, ShapeError
from symgrad.ir.graph import evaluate
from symgrad.ir.symdim import SymDim
from symgrad.ops import api, api_torch
from symgrad.ops.source import make_input

A = np.array([[3.0, -1.0, 3.0, 0.5], [-2.0, -2.0, 7.0, 7.0], [0.0, 0.0, 0.0, 0.0]])


def _run(build: Any, a: np.ndarray, shape: Any = None) -> np.ndarray:
    x = make_input(shape or a.shape, FLOAT64 if a.dtype.kind == "f" else INT64, name="x")
    (out,) = evaluate([build(x)], {x: a})  # type: ignore[misc]
    return np.asarray(out)


@pytest.mark.parametrize("dim", [0, 1, -1, None])
@pytest.mark.parametrize("largest", [True, False])
def test_argmax_is_the_first_extreme_index(dim: Any, largest: bool) -> None:
    want = (np.argmax if largest else np.argmin)(A, axis=dim)
    np.testing.assert_array_equal(_run(lambda x: api_torch.argmax(x, dim, False, largest), A), want)
    ints = A.astype(np.int64)
    want_i = (np.argmax if largest else np.argmin)(ints, axis=dim)
    got_i = _run(lambda x: api_torch.argmax(x, dim, False, largest), ints)
    np.testing.assert_array_equal(got_i, want_i)


def test_argmax_keepdim_and_symbolic_dims() -> None:
    got = _run(lambda x: api_torch.argmax(x, 1, True), A, ("n", 4))
    np.testing.assert_array_equal(got, np.argmax(A, 1)[:, None])
    got = _run(lambda x: api_torch.argmax(x, 0), A, ("n", 4))
    np.testing.assert_array_equal(got, np.argmax(A, 0))


@pytest.mark.parametrize("correction", [0.0, 1.0, 2.0])
def test_var_divides_by_n_minus_correction(correction: float) -> None:
    for axis in (None, 0, (0, 1)):
        got = _run(lambda x, ax=axis: api_torch.var(x, ax, correction), A, ("n", 4))
        np.testing.assert_allclose(got, np.var(A, axis=axis, ddof=correction), rtol=1e-12)


def test_band_masks_the_last_two_dims_of_batches() -> None:
    b = np.arange(24.0).reshape(2, 3, 4)
    for k in (-1, 0, 2):
        np.testing.assert_array_equal(
            _run(lambda x, k=k: api_torch.band(x, k, True), b), np.tril(b, k)
        )
        np.testing.assert_array_equal(
            _run(lambda x, k=k: api_torch.band(x, k, False), b), np.triu(b, k)
        )
    got = _run(lambda x: api_torch.band(x, 0, True), A[:, :3].copy(), ("n", 3))
    np.testing.assert_array_equal(got, np.tril(A[:, :3]))
    with pytest.raises(ShapeError, match=r"tril: expected a tensor with at least 2 dims"):
        _run(lambda x: api_torch.band(x, 0, True), A[0].copy())


def test_flatten_squeeze_permute_and_their_errors() -> None:
    b = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(_run(lambda x: api_torch.flatten(x, 1), b), b.reshape(2, 12))
    got = _run(lambda x: api_torch.flatten(x, 1), b, ("n", 3, 4))
    np.testing.assert_array_equal(got, b.reshape(2, 12))
    with pytest.raises(ShapeError, match=r"flatten: dims 0\.\.1 .* multiply symbolic dims"):
        api_torch.flatten(make_input(("n", 3, 4), FLOAT64, name="x"), 0, 1)
    x = make_input((2, 1, 4), FLOAT64, name="x")
    assert api_torch.squeeze(x, 0) is x and api_torch.squeeze(x, 1).shape == (2, 4)
    assert api_torch.permute(x, (2, 0, 1)).shape == (4, 2, 1)
    with pytest.raises(ShapeError, match=r"permute: dim 3 is out of range"):
        api_torch.permute(x, (0, 1, 3))


def test_masked_fill_wants_a_bool_mask() -> None:
    x = make_input((3,), FLOAT64, name="x")
    with pytest.raises(DTypeError, match="masked_fill: the mask must be a bool tensor, got int64"):
        api_torch.masked_fill(x, make_input((3,), INT64, name="m"), 0.0)


def test_a_symdim_as_a_node_is_its_size_at_run_time() -> None:
    x = make_input(("T", "B"), FLOAT64, name="x")
    t, b = SymDim("T"), SymDim("B")
    node = api_torch.dim_node(2 * t * b - t + 3, x)
    (val,) = evaluate([api.sum(x) * 0.0 + node], {x: np.zeros((5, 2))})  # type: ignore[misc]
    assert float(val) == 2 * 5 * 2 - 5 + 3


def test_log10_log2_exp2_through_log_and_exp() -> None:
    p = np.abs(A) + 0.5
    np.testing.assert_allclose(_run(api_torch.log10, p), np.log10(p), rtol=1e-15)
    np.testing.assert_allclose(_run(api_torch.log2, p), np.log2(p), rtol=1e-15)
    np.testing.assert_allclose(_run(api_torch.exp2, A), np.exp2(A), rtol=1e-15)
