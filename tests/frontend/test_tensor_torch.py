"""PyTorch's Tensor methods with PyTorch's meanings (issue 17, item 1), checked against PyTorch
where it is importable (a test-time oracle only), eagerly and inside compiled functions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import symgrad as sg
from symgrad import Spec, Tensor

RNG = np.random.default_rng(17)
X = RNG.standard_normal((3, 4))
X3 = RNG.standard_normal((2, 3, 4))
TIES = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, -1.0, 2.0], [0.0, 0.0, 0.0, 0.0]])


def _torch() -> Any:
    return pytest.importorskip("torch")


def _np(t: Any) -> np.ndarray:
    return t.detach().numpy() if hasattr(t, "detach") else np.asarray(t)


# -- transpose: PyTorch's swap of two dims; NumPy's meaning through numpy ---------------------
def test_transpose_of_two_dims_swaps_them_even_on_a_2d_tensor() -> None:
    t = Tensor(X)
    np.testing.assert_array_equal(t.transpose(-2, -1).data, X.T)  # was the identity
    np.testing.assert_array_equal(t.transpose(0, 1).data, X.T)
    np.testing.assert_array_equal(t.transpose(0, 0).data, X)
    u = Tensor(X3)
    np.testing.assert_array_equal(u.transpose(-2, -1).data, np.swapaxes(X3, -2, -1))
    np.testing.assert_array_equal(u.transpose(0, 2).data, np.swapaxes(X3, 0, 2))
    np.testing.assert_array_equal(u.mT.data, np.swapaxes(X3, -1, -2))


def test_numpy_meanings_stay_where_pytorch_has_none() -> None:
    u = Tensor(X3)
    np.testing.assert_array_equal(np.transpose(u).data, np.transpose(X3))  # type: ignore[attr-defined]
    np.testing.assert_array_equal(u.T.data, X3.T)
    np.testing.assert_array_equal(u.transpose((2, 0, 1)).data, X3.transpose(2, 0, 1))
    np.testing.assert_array_equal(u.transpose(2, 0, 1).data, X3.transpose(2, 0, 1))
    np.testing.assert_array_equal(np.swapaxes(u, 0, 1).data, np.swapaxes(X3, 0, 1))  # type: ignore[attr-defined]


def test_transpose_matches_pytorch_in_unbatched_attention() -> None:
    torch = _torch()
    q, k = RNG.standard_normal((5, 4)), RNG.standard_normal((5, 4))
    want = (torch.tensor(q) @ torch.tensor(k).transpose(-2, -1)).numpy()
    got = (Tensor(q) @ Tensor(k).transpose(-2, -1)).data
    np.testing.assert_allclose(got, want, rtol=1e-12)
    f = sg.compile(lambda a, b: a @ b.transpose(-2, -1), q, k, backend="numpy")
    np.testing.assert_allclose(f(q, k), want, rtol=1e-12)


def test_transpose_dims_out_of_range_name_the_shape() -> None:
    with pytest.raises(sg.ShapeError, match=r"dim 2 is out of range .* \(3, 4\)"):
        Tensor(X).transpose(0, 2)


# -- reductions: dim=/keepdim= with axis=/keepdims= as aliases ---------------------------------
REDUCTIONS: list[tuple[str, Callable[[Any], Any]]] = [
    ("sum", lambda x: x.sum(1)),
    ("sum-keepdim", lambda x: x.sum(dim=0, keepdim=True)),
    ("sum-dims", lambda x: x.sum(dim=(0, 1))),
    ("mean", lambda x: x.mean(dim=-1)),
    ("mean-keepdim", lambda x: x.mean(1, True)),
    ("amax", lambda x: x.amax(1)),
    ("amin", lambda x: x.amin(0)),
    ("var", lambda x: x.var()),
    ("var-dim", lambda x: x.var(1)),
    ("var-biased", lambda x: x.var(1, unbiased=False)),
    ("var-correction", lambda x: x.var(0, correction=0, keepdim=True)),
    ("std", lambda x: x.std(0)),
    ("std-keepdim", lambda x: x.std(dim=1, keepdim=True)),
    ("max-values", lambda x: x.max(1).values),
    ("min-values", lambda x: x.min(dim=0, keepdim=True).values),
    ("max-all", lambda x: x.max()),
    ("min-all", lambda x: x.min()),
]


@pytest.mark.parametrize(("name", "fn"), REDUCTIONS, ids=[n for n, _ in REDUCTIONS])
def test_reductions_match_pytorch_values_and_gradients(name: str, fn: Callable[[Any], Any]) -> None:
    torch = _torch()
    tt = torch.tensor(X, requires_grad=True)
    want = fn(tt)
    want.sum().backward()
    t = Tensor(X, requires_grad=True)
    got = fn(t)
    got.sum().backward()
    np.testing.assert_allclose(got.data, _np(want), rtol=1e-12)
    assert got.shape == tuple(want.shape)
    np.testing.assert_allclose(t.grad, tt.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(("name", "fn"), REDUCTIONS, ids=[n for n, _ in REDUCTIONS])
def test_reductions_compiled_match_eager(name: str, fn: Callable[[Any], Any]) -> None:
    f = sg.compile(lambda x: fn(x), Spec((3, 4)), backend="numpy")
    np.testing.assert_allclose(f(X), fn(Tensor(X)).data, rtol=1e-12)


@pytest.mark.parametrize("largest", [True, False])
def test_max_min_with_a_dim_give_values_and_first_indices_like_pytorch(largest: bool) -> None:
    torch = _torch()
    for data in (X, TIES):
        for dim in (0, 1, -1):
            tt = torch.tensor(data)
            want = tt.max(dim) if largest else tt.min(dim)
            got = Tensor(data).max(dim) if largest else Tensor(data).min(dim)
            values, indices = got  # a named pair, as in PyTorch
            np.testing.assert_array_equal(values.data, want.values.numpy())
            np.testing.assert_array_equal(indices.data, want.indices.numpy())
            assert indices.dtype is sg.INT64
            arg = Tensor(data).argmax(dim) if largest else Tensor(data).argmin(dim)
            want_arg = tt.argmax(dim) if largest else tt.argmin(dim)
            np.testing.assert_array_equal(arg.data, want_arg.numpy())
        flat = Tensor(data).argmax() if largest else Tensor(data).argmin()
        assert flat.item() == (tt.argmax() if largest else tt.argmin()).item()


def test_max_keeps_numpy_meaning_with_axis_and_is_elementwise_with_a_tensor() -> None:
    t = Tensor(X)
    np.testing.assert_array_equal(t.max(axis=1).data, X.max(axis=1))
    np.testing.assert_array_equal(t.max(axis=0, keepdims=True).data, X.max(0, keepdims=True))
    np.testing.assert_array_equal(t.max(Tensor(-X)).data, np.maximum(X, -X))
    np.testing.assert_array_equal(sg.max(t, 1).indices.data, X.argmax(1))
    np.testing.assert_array_equal(sg.min(t, Tensor(-X)).data, np.minimum(X, -X))


def test_argmax_inside_a_compiled_function_and_with_symbolic_dims() -> None:
    for backend in ("numpy", "c"):
        f = sg.compile(lambda x: x.argmax(1), Spec(("n", 4)), backend=backend)
        np.testing.assert_array_equal(f(TIES), np.argmax(TIES, 1))
        g = sg.compile(lambda x: x.max(0).indices, Spec(("n", 4)), backend=backend)
        np.testing.assert_array_equal(g(TIES), np.argmax(TIES, 0))


def test_var_with_symbolic_dims_divides_by_n_minus_correction() -> None:
    f = sg.compile(lambda x: x.var(0) + x.std(0, unbiased=False), Spec(("n", 4)), backend="numpy")
    np.testing.assert_allclose(f(X), X.var(0, ddof=1) + X.std(0), rtol=1e-12)


def test_aliases_and_their_mixups() -> None:
    t = Tensor(X)
    np.testing.assert_array_equal(t.sum(axis=1, keepdims=True).data, t.sum(1, True).data)
    np.testing.assert_allclose(np.var(t).data, X.var())  # type: ignore[attr-defined]
    with pytest.raises(sg.ArgumentError, match=r"dim= \(PyTorch\) or axis= \(NumPy\), not both"):
        t.sum(0, axis=1)
    with pytest.raises(sg.ArgumentError, match="keepdim="):
        t.mean(0, True, keepdims=True)
    with pytest.raises(sg.ArgumentError, match="one of unbiased=, correction= or ddof="):
        t.var(0, unbiased=True, correction=0)


# -- shape methods ------------------------------------------------------------------------------
SHAPES: list[tuple[str, Callable[[Any], Any]]] = [
    ("unsqueeze", lambda x: x.unsqueeze(0)),
    ("unsqueeze-neg", lambda x: x.unsqueeze(-1)),
    ("squeeze", lambda x: x.unsqueeze(1).squeeze()),
    ("squeeze-dim", lambda x: x.unsqueeze(1).squeeze(1)),
    ("squeeze-not-1", lambda x: x.squeeze(0)),
    ("view", lambda x: x.view(-1)),
    ("view-2", lambda x: x.view(2, -1)),
    ("reshape", lambda x: x.reshape(-1, 6)),
    ("permute", lambda x: x.permute(2, 0, 1)),
    ("flatten", lambda x: x.flatten()),
    ("flatten-1", lambda x: x.flatten(1)),
    ("flatten-0-1", lambda x: x.flatten(0, 1)),
    ("expand", lambda x: x[:, :1].expand(-1, 5, -1)),
    ("cumsum", lambda x: x.cumsum(1)),
    ("cumsum-neg", lambda x: x.cumsum(dim=-1)),
    ("softmax", lambda x: x.softmax(-1)),
    ("log_softmax", lambda x: x.log_softmax(dim=1)),
    ("tril", lambda x: x.tril()),
    ("triu-1", lambda x: x.triu(1)),
    ("tril-neg", lambda x: x.tril(-1)),
    ("log10", lambda x: x.abs().log10()),
    ("log2", lambda x: x.abs().log2()),
    ("exp2", lambda x: x.exp2()),
    ("clamp", lambda x: x.clamp(min=-0.5, max=0.5)),
    ("pow", lambda x: x.pow(2)),
    ("square", lambda x: x.square()),
    ("clone", lambda x: x.clone()),
    ("masked_fill", lambda x: x.masked_fill(x > 0.3, -1.5)),
    ("masked_fill-inf", lambda x: x.tril().masked_fill(x.tril() == 0, float("-inf")).softmax(-1)),
]


@pytest.mark.parametrize(("name", "fn"), SHAPES, ids=[n for n, _ in SHAPES])
def test_shape_and_elementwise_methods_match_pytorch(name: str, fn: Callable[[Any], Any]) -> None:
    torch = _torch()
    tt = torch.tensor(X3, requires_grad=True)
    want = fn(tt)
    (want * torch.tensor(np.cos(np.arange(want.numel())).reshape(want.shape))).sum().backward()
    t = Tensor(X3, requires_grad=True)
    got = fn(t)
    assert got.shape == tuple(want.shape)
    np.testing.assert_allclose(got.data, _np(want), rtol=1e-12, atol=1e-15)
    weights = np.cos(np.arange(want.numel())).reshape(want.shape)
    (got * weights).sum().backward()
    np.testing.assert_allclose(t.grad, tt.grad.numpy(), rtol=1e-10, atol=1e-14)
    f = sg.compile(lambda x: fn(x), Spec(X3.shape), backend="numpy")
    np.testing.assert_allclose(f(X3), _np(want), rtol=1e-12, atol=1e-15)


def test_tril_triu_functions_and_methods_agree_with_pytorch_on_batches() -> None:
    torch = _torch()
    for k in (-2, 0, 1, 3):
        np.testing.assert_array_equal(sg.tril(Tensor(X3), k).data, torch.tril(torch.tensor(X3), k))
        np.testing.assert_array_equal(Tensor(X3).triu(k).data, torch.tensor(X3).triu(k).numpy())
    mask = sg.tril(sg.ones(4, 4))
    np.testing.assert_array_equal(mask.data, np.tril(np.ones((4, 4), np.float32)))


def test_masked_fill_takes_a_bool_mask_and_names_a_wrong_one() -> None:
    t = Tensor(X)
    np.testing.assert_array_equal(t.masked_fill(Tensor(X > 0), 0.0).data, np.where(X > 0, 0.0, X))
    np.testing.assert_array_equal(sg.masked_fill(t, X < 0, 2.0).data, np.where(X < 0, 2.0, X))
    with pytest.raises(
        sg.DTypeError, match=r"masked_fill: the mask must be a bool tensor, got float64"
    ):
        t.masked_fill(Tensor(X), 0.0)


def test_squeeze_unsqueeze_permute_errors_name_the_shape() -> None:
    t = Tensor(X)
    with pytest.raises(sg.ShapeError, match=r"unsqueeze: dim 3 is out of range .*\[-3, 2\]"):
        t.unsqueeze(3)
    with pytest.raises(sg.ShapeError, match=r"permute: expected 2 dims"):
        t.permute(0, 1, 2)
    with pytest.raises(sg.ShapeError, match="not a permutation"):
        t.permute(0, 0)


# -- metadata and conversions ------------------------------------------------------------------
def test_size_numel_dim_like_pytorch_and_size_as_numpy() -> None:
    t = Tensor(X3)
    assert t.size() == (2, 3, 4) and t.size(1) == 3 and t.size(-1) == 4
    assert t.size == 24 and t.size + 1 == 25  # NumPy's meaning still holds
    assert t.numel() == t.nelement() == 24 and t.dim() == t.ndim == 3
    assert sg.numel(t) == 24
    with pytest.raises(sg.ShapeError, match=r"size\(3\): expected a dim in \[-3, 2\]"):
        t.size(3)


def test_item_of_an_element_of_a_1d_tensor_and_tolist() -> None:
    xs = Tensor(np.array([1.5, 2.5, 3.5]))
    assert xs[1].item() == 2.5 and isinstance(xs[1].item(), float)  # crashed inside symgrad
    ints = Tensor(np.array([4, 5]))
    assert ints[0].item() == 4 and isinstance(ints[0].item(), int)
    assert Tensor(X).tolist() == X.tolist() and xs[2].tolist() == 3.5


def test_detach_results_do_not_require_grad_and_clone_does() -> None:
    t = Tensor(X, requires_grad=True)
    assert t.detach().requires_grad is False
    c = t.clone()
    assert c.requires_grad and c.data is not t.data
    (c * 2.0).sum().backward()
    np.testing.assert_array_equal(t.grad, np.full(X.shape, 2.0))


def test_casts_follow_pytorch_names() -> None:
    t = Tensor(np.array([1.7, -1.7, 0.0]))
    assert t.float().dtype is sg.FLOAT32 and t.double().dtype is sg.FLOAT64
    np.testing.assert_array_equal(t.long().data, [1, -1, 0])
    assert t.int().dtype is sg.INT64 and t.bool().data.tolist() == [True, True, False]
    assert t.to(sg.float32).dtype is sg.FLOAT32 and t.to("cpu") is t
    assert t.type_as(Tensor(np.zeros(1, np.float32))).dtype is sg.FLOAT32


def test_range_index_picks_one_element_per_row_eagerly_and_compiled() -> None:
    y = np.array([0, 3, 1])
    t = Tensor(X, requires_grad=True)
    got = t[range(3), y]
    np.testing.assert_array_equal(got.data, X[np.arange(3), y])
    got.sum().backward()
    assert t.grad.sum() == 3.0
    f = sg.compile(lambda x, yy: x[range(3), yy].sum(), X, y, backend="numpy")
    assert f(X, y) == pytest.approx(X[np.arange(3), y].sum())


def test_an_array_after_a_slice_is_reported_as_such() -> None:
    with pytest.raises(sg.TraceError, match=r"got the index \(:, array\)") as info:
        Tensor(X)[:, np.array([0, 1])]
    assert "x[:, j][idx]" in str(info.value) and info.value.provenance is not None


def test_everything_at_once_through_the_c_backend_matches_eager() -> None:
    import symgrad.nn.functional as F

    def f(x: Any, y: Any) -> Any:
        att = (x @ x.transpose(-2, -1)).tril()
        att = att.masked_fill(att == 0, float("-inf")).softmax(dim=-1)
        mv = x.max(1)
        out = att.sum() + mv.values.sum() + mv.indices.double().sum() + x.var(1).sum()
        out = out + x.cumsum(1).sum() + F.softmax(x, dim=0).sum() + x[range(3), y].sum()
        return out + F.one_hot(y, 4).double().sum() + x.unsqueeze(0).flatten().sum()

    y = np.array([0, 3, 1])
    want = f(Tensor(X), Tensor(y)).item()
    got = sg.compile(f, X, y, backend="c")(X, y)
    assert got == pytest.approx(want, rel=1e-12)


def test_arithmetic_methods_and_function_forms() -> None:
    torch = _torch()
    a, b = RNG.standard_normal((2, 3)), RNG.standard_normal((3, 2))
    ta, tb = torch.tensor(a), torch.tensor(b)
    sa, sb = Tensor(a), Tensor(b)
    pairs = [
        (sa.add(sa, alpha=2.0), ta.add(ta, alpha=2.0)),
        (sa.sub(1.0), ta.sub(1.0)),
        (sa.mul(sa).div(2.0), ta.mul(ta).div(2.0)),
        (sa.matmul(sb), ta.matmul(tb)),
        (sg.mm(sa, sb), torch.mm(ta, tb)),
        (sg.abs(sa), torch.abs(ta)),
        (sg.pow(sa, 3), torch.pow(ta, 3)),
    ]
    for got, want in pairs:
        np.testing.assert_allclose(got.data, want.numpy(), rtol=1e-12)
    assert sg.allclose(sa, sa + 1e-12) and not sg.allclose(sa, sa + 1.0)


def test_all_any_and_the_backprop_ninja_comparison() -> None:
    torch = _torch()
    m = np.array([[1.0, 0.0, 2.0], [3.0, 4.0, 5.0]])
    for dim in (None, 0, 1):
        for name in ("all", "any"):
            t, tt = Tensor(m), torch.tensor(m)
            got = getattr(t, name)() if dim is None else getattr(t, name)(dim)
            want = getattr(tt, name)() if dim is None else getattr(tt, name)(dim)
            np.testing.assert_array_equal(got.data, want.numpy())
            assert got.dtype is sg.BOOL
    x = Tensor(X, requires_grad=True)
    (x * 3.0).sum().backward()
    dx = sg.full_like(x, 3.0)
    exact = sg.all(dx == x.grad).item()
    approx = sg.allclose(dx, x.grad)
    maxdiff = (dx - x.grad).abs().max().item()
    assert exact is True and approx and maxdiff == 0.0
