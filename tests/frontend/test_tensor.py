"""The PyTorch-like ``Tensor`` API, the module-level functions and ``trace``."""

from __future__ import annotations

import numpy as np
import pytest

import symgrad
from symgrad import Spec, Tensor, Value, nn

# -- NumPy references (numerically stable) ---------------------------------------------------------


def np_logsumexp(x, axis=-1, keepdims=False):
    m = np.max(x, axis=axis, keepdims=True)
    s = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return s if keepdims else np.squeeze(s, axis=axis)


def np_log_softmax(x, axis=-1):
    return x - np_logsumexp(x, axis=axis, keepdims=True)


def np_softmax(x, axis=-1):
    return np.exp(np_log_softmax(x, axis))


def np_cross_entropy(logits, targets):
    return -np_log_softmax(logits, 1)[np.arange(len(targets)), targets].mean()


# -- data, grad, metadata --------------------------------------------------------------------------


def test_data_keeps_float32():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = Tensor(a, requires_grad=True)
    assert t.data.dtype == np.float32
    assert t.dtype == symgrad.FLOAT32
    y = (t * 2 + 1).tanh()
    assert y.data.dtype == np.float32
    y.sum().backward()
    assert t.grad.dtype == np.float32


def test_default_dtypes():
    assert Tensor([1.0, 2.0]).dtype == symgrad.FLOAT64
    assert Tensor([1, 2]).dtype == symgrad.INT64
    assert Tensor([True]).dtype == symgrad.BOOL
    assert Tensor(np.ones(2, dtype=np.float16)).dtype == symgrad.FLOAT64
    assert Tensor([1, 2], dtype="float32").dtype == symgrad.FLOAT32


def test_grad_is_none_until_backward_then_accumulates_and_resets():
    t = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    assert t.grad is None
    (t * t).sum().backward()
    assert isinstance(t.grad, np.ndarray)
    np.testing.assert_array_equal(t.grad, [2.0, 4.0, 6.0])
    (t * 3.0).sum().backward()
    np.testing.assert_array_equal(t.grad, [5.0, 7.0, 9.0])
    t.grad = None
    (t * 3.0).sum().backward()
    np.testing.assert_array_equal(t.grad, [3.0, 3.0, 3.0])


def test_backward_does_not_alias_grad_arrays():
    t = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    t.sum().backward()
    first = t.grad
    t.sum().backward()
    np.testing.assert_array_equal(first, [1.0, 1.0])  # the earlier array was not mutated
    np.testing.assert_array_equal(t.grad, [2.0, 2.0])


def test_non_leaf_grad_needs_retain_grad():
    t = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    h = (t * 3.0).retain_grad()
    k = h * 2.0
    (k * k).sum().backward()
    np.testing.assert_allclose(h.grad, 2 * 2 * (6 * np.array([1.0, 2.0])))
    assert k.grad is None


def test_metadata():
    t = Tensor(np.arange(6.0).reshape(2, 3))
    assert t.shape == (2, 3)
    assert t.ndim == 2
    assert t.size == 6
    assert t.T.shape == (3, 2)
    np.testing.assert_array_equal(t.T.data, np.arange(6.0).reshape(2, 3).T)
    assert t.reshape(3, 2).shape == (3, 2)
    assert t.reshape((6,)).shape == (6,)
    assert t.reshape(-1).shape == (6,)
    assert t.view(1, 6).shape == (1, 6)
    assert t.transpose(1, 0).shape == (3, 2)
    assert Tensor(np.array([[2.5]])).item() == 2.5
    with pytest.raises(symgrad.ShapeError):
        t.item()
    assert len(t) == 2
    np.testing.assert_array_equal(np.asarray(t), t.numpy())
    assert "Tensor(" in repr(t)


@pytest.mark.parametrize(
    ("axis", "keepdims"), [(None, False), (0, False), (1, True), ((0, 1), True)]
)
def test_sum_and_mean(axis, keepdims, num_grad):
    a = np.random.default_rng(0).standard_normal((3, 4))
    t = Tensor(a, requires_grad=True)
    s = t.sum(axis, keepdims=keepdims)
    m = t.mean(axis, keepdims=keepdims)
    np.testing.assert_allclose(s.data, a.sum(axis, keepdims=keepdims))
    np.testing.assert_allclose(m.data, a.mean(axis, keepdims=keepdims))
    w = np.random.default_rng(1).standard_normal(np.shape(m.data))
    (m * w).sum().backward()
    (fd,) = num_grad(lambda x: np.sum(x.mean(axis, keepdims=keepdims) * w), [a])
    np.testing.assert_allclose(t.grad, fd, rtol=1e-7, atol=1e-10)


def test_max_sends_gradient_to_the_argmax():
    t = Tensor(np.array([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]]), requires_grad=True)
    m = t.max(axis=1)
    np.testing.assert_array_equal(m.data, [5.0, 7.0])
    (m * np.array([10.0, 20.0])).sum().backward()
    np.testing.assert_array_equal(t.grad, [[0.0, 10.0, 0.0], [20.0, 0.0, 0.0]])


def test_max_ties_split_the_gradient_evenly():
    t = Tensor(np.array([1.0, 3.0, 3.0, 2.0, 3.0]), requires_grad=True)
    t.max().backward()
    np.testing.assert_allclose(t.grad, [0.0, 1 / 3, 1 / 3, 0.0, 1 / 3])
    u = Tensor(np.array([[4.0, 4.0], [1.0, 2.0]]), requires_grad=True)
    u.max(axis=1, keepdims=True).sum().backward()
    np.testing.assert_allclose(u.grad, [[0.5, 0.5], [0.0, 1.0]])


def test_maximum_ties_split_the_gradient():
    a = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    b = Tensor(np.array([3.0, 2.0, 1.0]), requires_grad=True)
    symgrad.maximum(a, b).sum().backward()
    np.testing.assert_array_equal(a.grad, [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(b.grad, [1.0, 0.5, 0.0])


def test_bool_sum_counts():
    t = Tensor(np.array([1.0, -2.0, 3.0, 0.5]))
    n = (t > 0).sum()
    assert n.dtype == symgrad.INT64
    assert n.item() == 3
    preds, ys = Tensor(np.array([1, 2, 0, 2])), np.array([1, 0, 0, 2])
    assert (preds == ys).sum().item() == 3  # accuracy counting, as in the lectures


# -- indexing --------------------------------------------------------------------------------------


def test_basic_slicing_values_and_gradient():
    a = np.arange(20.0).reshape(4, 5)
    t = Tensor(a, requires_grad=True)
    for key in [
        (slice(1, 3),),
        (slice(None), slice(None, None, -2)),
        (1,),
        (-1, slice(2, None)),
        (None, Ellipsis, 0),
        (Ellipsis, 1),
    ]:
        np.testing.assert_array_equal(t[key].data, a[key], err_msg=str(key))
    y = t[1:3, ::-2]
    (y * y).sum().backward()
    want = np.zeros_like(a)
    want[1:3, ::-2] = 2 * a[1:3, ::-2]
    np.testing.assert_array_equal(t.grad, want)


def test_embedding_lookup_accumulates_repeated_rows():
    rng = np.random.default_rng(0)
    C = Tensor(rng.standard_normal((27, 2)), requires_grad=True)
    xs = np.array([[0, 5, 5], [1, 0, 26]])
    emb = C[xs]
    assert emb.shape == (2, 3, 2)
    np.testing.assert_array_equal(emb.data, C.data[xs])
    emb.sum().backward()
    counts = np.bincount(xs.ravel(), minlength=27)
    np.testing.assert_array_equal(C.grad, np.repeat(counts[:, None], 2, axis=1).astype(float))


def test_embedding_module_and_tensor_indices():
    emb = nn.Embedding(10, 3, rng=0)
    idx = Tensor(np.array([3, 3, 9]))
    out = emb(idx)
    np.testing.assert_array_equal(out.data, emb.weight.data[[3, 3, 9]])
    out.sum().backward()
    assert emb.weight.grad[3].tolist() == [2.0, 2.0, 2.0]


def test_pair_indexing_picks_probabilities():
    rng = np.random.default_rng(1)
    p = Tensor(rng.random((5, 4)), requires_grad=True)
    ys = np.array([0, 3, 3, 1, 2])
    picked = p[symgrad.arange(5), ys]
    np.testing.assert_array_equal(picked.data, p.data[np.arange(5), ys])
    picked.log().sum().backward()
    want = np.zeros((5, 4))
    want[np.arange(5), ys] = 1 / p.data[np.arange(5), ys]
    np.testing.assert_allclose(want, p.grad)


def test_iterating_a_1d_tensor_yields_values():
    t = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    items = list(t)
    assert all(isinstance(v, Value) for v in items) and len(items) == 3
    assert [v.data for v in items] == [1.0, 2.0, 3.0]
    s = items[0] * items[1] + items[2]
    assert isinstance(s, Value)
    s.backward()
    np.testing.assert_array_equal(t.grad, [2.0, 1.0, 1.0])
    assert items[0].grad == 2.0  # every Value gets .grad
    rows = list(Tensor(np.ones((2, 3))))
    assert [type(r) for r in rows] == [Tensor, Tensor] and rows[0].shape == (3,)


def test_value_times_tensor():
    v = Value(2.0)
    t = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    for y in (v * t, t * v):
        assert type(y) is Tensor
        np.testing.assert_array_equal(y.data, [2.0, 4.0, 6.0])
    (v * t).sum().backward()
    assert v.grad == 6.0
    np.testing.assert_array_equal(t.grad, [2.0, 2.0, 2.0])


# -- module-level functions ------------------------------------------------------------------------


def test_one_hot_and_arange():
    oh = symgrad.one_hot(np.array([2, 0, 1]), 3)
    np.testing.assert_array_equal(oh.data, np.eye(3)[[2, 0, 1]])
    assert oh.dtype == symgrad.FLOAT64
    assert symgrad.one_hot(Tensor(np.array([1])), 4, dtype="float32").data.dtype == np.float32
    ar = symgrad.arange(4)
    assert ar.dtype == symgrad.INT64
    np.testing.assert_array_equal(ar.data, np.arange(4))


def test_where_maximum_minimum_concatenate_stack():
    a = np.array([[1.0, -2.0, 3.0], [0.5, 4.0, -1.0]])
    b = np.array([0.0, 1.0, 2.0])
    ta, tb = Tensor(a), Tensor(b)
    np.testing.assert_array_equal(symgrad.where(ta > tb, ta, tb).data, np.where(a > b, a, b))
    np.testing.assert_array_equal(symgrad.where(a > 0, ta, 0.0).data, np.where(a > 0, a, 0.0))
    np.testing.assert_array_equal(symgrad.where(a > 0, -1.0, tb).data, np.where(a > 0, -1.0, b))
    np.testing.assert_array_equal(symgrad.maximum(ta, tb).data, np.maximum(a, b))
    np.testing.assert_array_equal(symgrad.minimum(ta, 0.5).data, np.minimum(a, 0.5))
    np.testing.assert_array_equal(
        symgrad.concatenate([ta, a * 2], axis=0).data, np.concatenate([a, a * 2], 0)
    )
    np.testing.assert_array_equal(
        symgrad.concatenate([ta, ta], axis=-1).data, np.concatenate([a, a], -1)
    )
    np.testing.assert_array_equal(symgrad.stack([tb, b + 1]).data, np.stack([b, b + 1]))
    np.testing.assert_array_equal(symgrad.stack([ta, ta], axis=2).data, np.stack([a, a], 2))
    np.testing.assert_array_equal(symgrad.relu(ta).data, np.maximum(a, 0))
    np.testing.assert_allclose(symgrad.sigmoid(ta).data, 1 / (1 + np.exp(-a)))


def test_where_and_concatenate_gradients():
    a = Tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    b = Tensor(np.array([5.0, 6.0]), requires_grad=True)
    c = symgrad.concatenate([a, b])
    (symgrad.where(c.data > 0, c * 2, c * 3) * np.arange(5.0)).sum().backward()
    np.testing.assert_array_equal(a.grad, [0.0, 3.0, 4.0])
    np.testing.assert_array_equal(b.grad, [6.0, 8.0])


LOGITS = {
    "small": np.array([[0.1, -1.2, 2.0, 0.3], [1.5, 1.5, -0.5, 0.0], [-2.0, 0.7, 0.2, 1.1]]),
    "large": np.array(
        [[1000.0, 0.0, -1000.0, 999.0], [1.0, 2.0, 3.0, 4.0], [-1000.0, -999.0, 0, 1]]
    ),
}


@pytest.mark.parametrize("which", sorted(LOGITS))
@pytest.mark.parametrize(
    ("fn", "ref"),
    [
        (symgrad.softmax, np_softmax),
        (symgrad.log_softmax, np_log_softmax),
        (symgrad.logsumexp, np_logsumexp),
    ],
    ids=["softmax", "log_softmax", "logsumexp"],
)
def test_softmax_family_values_and_gradients(fn, ref, which, num_grad):
    x = LOGITS[which]
    t = Tensor(x, requires_grad=True)
    y = fn(t)
    assert np.all(np.isfinite(y.data))
    np.testing.assert_allclose(y.data, ref(x), rtol=1e-12, atol=1e-300)
    w = np.random.default_rng(3).standard_normal(np.shape(y.data))
    (y * w).sum().backward()
    assert np.all(np.isfinite(t.grad))
    (fd,) = num_grad(lambda z: np.sum(ref(z) * w), [x])
    np.testing.assert_allclose(t.grad, fd, rtol=1e-6, atol=1e-8)


def test_softmax_along_axis_0_and_keepdims():
    x = LOGITS["small"]
    np.testing.assert_allclose(symgrad.softmax(Tensor(x), axis=0).data, np_softmax(x, 0))
    np.testing.assert_allclose(
        symgrad.logsumexp(Tensor(x), axis=0, keepdims=True).data, np_logsumexp(x, 0, True)
    )


def test_naive_softmax_overflows_but_symgrad_does_not():
    x = LOGITS["large"]
    with np.errstate(over="ignore", invalid="ignore"):
        naive = np.exp(x) / np.exp(x).sum(1, keepdims=True)
    assert not np.all(np.isfinite(naive))  # the point of the stable formulation
    assert np.all(np.isfinite(symgrad.softmax(Tensor(x)).data))


@pytest.mark.parametrize("which", sorted(LOGITS))
def test_cross_entropy_value_and_gradient(which, num_grad):
    x = LOGITS[which]
    ys = np.array([2, 0, 3])
    t = Tensor(x, requires_grad=True)
    loss = symgrad.cross_entropy(t, ys)
    assert loss.shape == ()
    assert loss.item() == pytest.approx(np_cross_entropy(x, ys), rel=1e-12)
    loss.backward()
    (fd,) = num_grad(lambda z: np_cross_entropy(z, ys), [x])
    np.testing.assert_allclose(t.grad, fd, rtol=1e-6, atol=1e-8)
    # the analytic form: (softmax - onehot) / n
    want = np_softmax(x)
    want[np.arange(3), ys] -= 1
    np.testing.assert_allclose(t.grad, want / 3, rtol=1e-10, atol=1e-15)


def test_cross_entropy_accepts_tensor_targets():
    x = LOGITS["small"]
    ys = Tensor(np.array([2, 0, 3]))
    assert symgrad.cross_entropy(Tensor(x), ys).item() == pytest.approx(
        np_cross_entropy(x, ys.data)
    )


# -- trace -----------------------------------------------------------------------------------------


def test_trace_with_symbolic_dims():
    g = symgrad.trace(lambda x: (x * x).sum(axis=1).mean(), Spec(("n", 3)))
    text = str(g)
    assert "f64[n,3]" in text
    assert text.startswith("graph(x: f64[n,3]) -> (f64[],) {")
    assert isinstance(g, symgrad.TracedGraph)
    assert g.n_args == 1 and g.captures == ()
    assert g.specs == (Spec(("n", 3)),)
    from symgrad.ir.graph import evaluate

    for n in (1, 4):
        x = np.arange(3.0 * n).reshape(n, 3)
        (val,) = evaluate(list(g.outputs), {g.inputs[0]: x})
        assert val == pytest.approx((x * x).sum(1).mean())


def test_trace_captures_model_parameters_as_inputs():
    lin = nn.Linear(3, 2, rng=0)
    g = symgrad.trace(lambda x: lin(x).tanh().sum(), Spec(("n", 3)))
    assert g.n_args == 1
    assert len(g.captures) == 2
    assert g.captures[0] is lin.weight and g.captures[1] is lin.bias
    assert g.input_names == ("x", "lin_weight", "lin_bias")  # named after where they sit
    assert [n.shape for n in g.inputs] == [("n", 3), (2, 3), (2,)]  # PyTorch's (out, in)
    head = "graph(x: f64[n,3], lin_weight: f64[2,3], lin_bias: f64[2]) -> (f64[],) {"
    assert str(g).startswith(head)
    from symgrad.ir.graph import evaluate

    x = np.random.default_rng(0).standard_normal((5, 3))
    env = dict(zip(g.inputs, [x, lin.weight.data, lin.bias.data], strict=True))
    (val,) = evaluate(list(g.outputs), env)
    assert val == pytest.approx(np.tanh(x @ lin.weight.data.T + lin.bias.data).sum(), rel=1e-12)


def test_trace_accepts_arrays_and_scalars_as_specs():
    g = symgrad.trace(lambda a, b: a * b, np.ones((2, 3), dtype=np.float32), np.float32(2.0))
    assert [str(n.dtype) for n in g.inputs] == ["float32", "float32"]
    assert g.inputs[0].shape == (2, 3) and g.inputs[1].shape == ()
    assert repr(Spec(("n",), "float32")) == "Spec(('n',), 'float32')"


def test_trace_names_varargs_and_multiple_outputs():
    g = symgrad.trace(lambda *xs: (xs[0] + xs[1], xs[0] * xs[1]), Spec((2,)), Spec((2,)))
    assert g.input_names == ("xs0", "xs1")
    assert len(g.outputs) == 2


def test_nn_sequential_mlp_on_tensors():
    model = nn.Sequential(
        nn.Embedding(27, 2, rng=0),
        nn.Flatten(),
        nn.Linear(6, 5, rng=1),
        nn.Tanh(),
        nn.Linear(5, 27, rng=2),
    )
    X = np.array([[0, 0, 5], [0, 5, 13]])
    loss = symgrad.cross_entropy(model(Tensor(X)), np.array([13, 13]))
    loss.backward()
    assert len(model.parameters()) == 5
    assert all(p.grad is not None and p.grad.shape == p.shape for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


# -- eager values when a leaf's data changes -------------------------------------------------------


def test_results_computed_before_a_data_update_keep_their_values():
    """A result computed before ``x.data`` changes must keep its value when combined with one
    computed after the change (micrograd: ``loss_before - loss_after``)."""
    x = Value(1.0)
    y1 = x * 2  # 2
    x.data = 5.0
    y2 = x * 2  # 10
    assert (y1.data, y2.data) == (2.0, 10.0)
    z = y1 + y2
    assert z.data == 12.0


def test_backward_through_results_from_before_and_after_a_data_update():
    x = Value(1.0)
    y1 = x * 2
    x.data = 5.0
    y2 = x * 2
    w = y1 * y2
    assert w.data == 20.0
    w.backward()
    # micrograd: y1.grad = y2.data = 10, y2.grad = y1.data = 2; x.grad = 2 * 10 + 2 * 2
    assert x.grad == 24.0


def test_tensor_results_from_before_an_in_place_update_keep_their_values():
    W = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    before = W.exp()
    W.data -= 1.0  # an in-place SGD step, as in the makemore lectures
    after = W.exp()
    np.testing.assert_allclose((before - after).data, np.exp([1.0, 2.0]) - np.exp([0.0, 1.0]))


def test_eager_cross_entropy_checks_targets_at_once_without_a_node() -> None:
    from symgrad.ir.graph import toposort

    logits = Tensor(np.zeros((2, 3)), requires_grad=True)
    loss = symgrad.cross_entropy(logits, np.array([0, 2]))
    assert "class_targets" not in {n.op for n in toposort([loss.node])}  # checked eagerly
    with pytest.raises(IndexError, match=r"cross_entropy: target -1 is out of range \[0, 3\)"):
        symgrad.cross_entropy(logits, np.array([0, -1]))
    with pytest.raises(IndexError, match="target 3 is out of range"):
        symgrad.cross_entropy(logits, np.array([3, 0]))


def test_eager_ops_do_not_warn_and_leave_numpys_error_state_alone() -> None:
    import warnings

    before = np.geterr()
    x = Tensor(np.array([0.0, 1.0, -1.0]), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any RuntimeWarning fails the test
        y = (x.log() * 2.0).exp() / x + (x * 1e308) * 1e308
        assert np.isnan(y.data[0]) and np.isinf(y.data[1])
    assert np.geterr() == before
