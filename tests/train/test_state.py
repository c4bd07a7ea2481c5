"""compile_step carries module state (BatchNorm running statistics, rebound or updated in place),
returns extra outputs, draws new dropout masks every step, and leaves user objects as they were."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import symgrad as sg
from symgrad import nn

BACKENDS = ["numpy", pytest.param("c", marks=pytest.mark.cc)]


@pytest.fixture
def c_backend_ready(request: pytest.FixtureRequest) -> None:
    from symgrad.runtime.cc import compiler_available

    if request.node.callspec.params.get("backend") == "c" and not compiler_available():
        pytest.skip("no working C compiler")


def _model() -> nn.Sequential:
    g = sg.Generator().manual_seed(3)
    return nn.Sequential(
        nn.Linear(5, 8, bias=False, generator=g, dtype="float64"),
        nn.BatchNorm1d(8, dtype="float64"),
        nn.Tanh(),
        nn.Linear(8, 1, generator=g, dtype="float64"),
    )


def _batches(n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(1)
    return [(rng.standard_normal((16, 5)) * 2 + 1, rng.standard_normal(16)) for _ in range(n)]


def _assert_no_traced_state(obj: object) -> None:
    for m in obj.modules() if isinstance(obj, nn.Module) else [obj]:
        for v in vars(m).values():
            if isinstance(v, sg.Tensor):
                assert v._data is not None, f"a traced tensor left in {type(m).__name__}"


@pytest.mark.parametrize("backend", BACKENDS)
def test_batchnorm_running_stats_are_carried(backend: str, c_backend_ready: None) -> None:
    fused, eager = _model(), _model()

    def loss_fn(X: sg.Tensor, y: sg.Tensor) -> tuple[sg.Tensor, sg.Tensor]:
        pred = fused(X).reshape(16)
        return ((pred - y) ** 2).mean(), pred

    step = sg.compile_step(
        loss_fn,
        sg.Spec((16, 5)),
        sg.Spec((16,)),
        optimizer=sg.optim.SGD(fused.parameters(), lr=0.1),
        backend=backend,
    )
    bn = fused[1]
    assert step.buffers == (bn.running_mean, bn.running_var)
    _assert_no_traced_state(fused)
    mean_array = bn.running_mean.data
    opt = sg.optim.SGD(eager.parameters(), lr=0.1)
    for X, y in _batches(4):
        loss, pred = step(X, y)
        opt.zero_grad()
        want_pred = eager(sg.Tensor(X)).reshape(16)
        want = ((want_pred - sg.Tensor(y)) ** 2).mean()
        want.backward()
        opt.step()
        assert loss == pytest.approx(want.item(), rel=1e-12)
        np.testing.assert_allclose(pred, want_pred.data, rtol=1e-12)
        np.testing.assert_allclose(bn.running_mean.data, eager[1].running_mean.data, rtol=1e-12)
        np.testing.assert_allclose(bn.running_var.data, eager[1].running_var.data, rtol=1e-12)
    assert bn.running_mean.data is mean_array  # written in place
    assert not np.allclose(mean_array, 0)


class LectureBatchNorm:
    """makemore part 3's own BatchNorm1d: a plain class, buffers rebound under no_grad, and the
    output cached on the layer (``self.out``)."""

    def __init__(self, dim: int, momentum: float = 0.1) -> None:
        self.momentum = momentum
        self.gamma = sg.Tensor(np.ones(dim), requires_grad=True)
        self.beta = sg.Tensor(np.zeros(dim), requires_grad=True)
        self.running_mean = sg.Tensor(np.zeros(dim))
        self.running_var = sg.Tensor(np.ones(dim))

    def __call__(self, x: sg.Tensor) -> sg.Tensor:
        xmean = x.mean(axis=0, keepdims=True)
        xvar = ((x - xmean) ** 2).mean(axis=0, keepdims=True) * (x.shape[0] / (x.shape[0] - 1))
        self.out = self.gamma * (x - xmean) / (xvar + 1e-5).sqrt() + self.beta
        with sg.no_grad():
            m = self.momentum
            self.running_mean = (1 - m) * self.running_mean + m * xmean
            self.running_var = (1 - m) * self.running_var + m * xvar
        return self.out


class InplaceBatchNorm(LectureBatchNorm):
    def __call__(self, x: sg.Tensor) -> sg.Tensor:
        xmean = x.mean(axis=0, keepdims=True)
        out = x - xmean
        with sg.no_grad():
            self.running_mean.mul_(1 - self.momentum).add_(xmean.reshape(5) * self.momentum)
        return out * self.gamma


@pytest.mark.parametrize("cls", [LectureBatchNorm, InplaceBatchNorm])
def test_user_written_buffers_are_carried_and_restored(cls: type) -> None:
    layers, twin = [cls(5)], [cls(5)]

    def loss_fn(X: sg.Tensor) -> sg.Tensor:
        return (layers[0](X) ** 2).mean()

    uses_beta = cls is LectureBatchNorm
    params = [layers[0].gamma, *([layers[0].beta] if uses_beta else [])]
    step = sg.compile_step(loss_fn, sg.Spec((16, 5)), optimizer=sg.optim.SGD(params, lr=0.05))
    assert len(step.buffers) == (2 if cls is LectureBatchNorm else 1)
    _assert_no_traced_state(layers[0])
    assert layers[0].running_mean.is_leaf and layers[0].running_mean.node.op == "input"
    opt = sg.optim.SGD([twin[0].gamma, *([twin[0].beta] if uses_beta else [])], lr=0.05)
    for X, _ in _batches(3):
        got = step(X)
        opt.zero_grad()
        want = (twin[0](sg.Tensor(X)) ** 2).mean()
        want.backward()
        opt.step()
        assert got == pytest.approx(want.item(), rel=1e-12)
        np.testing.assert_allclose(
            layers[0].running_mean.data, twin[0].running_mean.data.reshape(-1), rtol=1e-12
        )


def test_dropout_in_a_compiled_step_draws_a_new_mask_per_step() -> None:
    g = sg.Generator().manual_seed(5)
    w = sg.Tensor(np.ones(64), requires_grad=True)
    drop = nn.Dropout(0.5, generator=g)

    def loss_fn(x: sg.Tensor) -> tuple[sg.Tensor, sg.Tensor]:
        out = drop(x * w)
        return out.sum(), out

    step = sg.compile_step(loss_fn, sg.Spec((64,)), optimizer=sg.optim.SGD([w], lr=0.0))
    x = np.ones(64)
    masks = [step(x)[1] for _ in range(4)]  # (lr=0: only the masks change)
    assert all(not np.array_equal(a, b) for a, b in itertools.pairwise(masks))
    assert set(np.unique(masks[0])) == {0.0, 2.0}
    g.manual_seed(5)
    assert all(np.array_equal(a, step(x)[1]) for a in masks)


def test_a_failing_trace_restores_the_objects() -> None:
    bn = LectureBatchNorm(3)
    before = bn.running_mean

    def loss_fn(X: sg.Tensor) -> sg.Tensor:
        bn(X)
        raise RuntimeError("user error after the update")

    with pytest.raises(RuntimeError, match="user error"):
        sg.compile_step(loss_fn, sg.Spec((4, 3)), optimizer=sg.optim.SGD([bn.gamma], lr=0.1))
    assert bn.running_mean is before
    assert not hasattr(bn, "out")


def test_in_place_update_with_a_traced_value_outside_compile_step_is_refused() -> None:
    buf = sg.Tensor(np.zeros(3))

    def f(x: sg.Tensor) -> sg.Tensor:
        with sg.no_grad():
            buf.add_(x)
        return x.sum()

    with pytest.raises(sg.TraceError, match="compile_step"):
        sg.compile(f, sg.Spec((3,)), backend="numpy")
    assert buf.node.op == "input" and buf._data is not None
