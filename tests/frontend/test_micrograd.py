"""micrograd compatibility: micrograd's own tests, the lecture's neuron and MLP, and ``nn``."""

from __future__ import annotations

import math
import random

import pytest

import symgrad
from symgrad import Value, nn


def test_sanity_check():
    x = Value(-4.0)
    z = 2 * x + 2 + x
    q = z.relu() + z * x
    h = (z * z).relu()
    y = h + q + q * x
    y.backward()
    assert isinstance(y, Value)
    assert y.data == -20.0
    assert x.grad == 46.0
    assert isinstance(x.grad, float)
    assert isinstance(y.data, float)


def test_more_ops():
    a = Value(-4.0)
    b = Value(2.0)
    c = a + b
    d = a * b + b**3
    c += c + 1
    c += 1 + c + (-a)
    d += d * 2 + (b + a).relu()
    d += 3 * d + (b - a).relu()
    e = c - d
    f = e**2
    g = f / 2.0
    g += 10.0 / f
    g.backward()
    assert g.data == pytest.approx(24.70408163265306, rel=1e-12)
    assert a.grad == pytest.approx(138.83381924198252, rel=1e-12)
    assert b.grad == pytest.approx(645.5772594752187, rel=1e-12)


def _lecture_neuron(spelled_with_exp: bool) -> dict[str, Value]:
    x1, x2 = Value(2.0, label="x1"), Value(0.0, label="x2")
    w1, w2 = Value(-3.0, label="w1"), Value(1.0, label="w2")
    b = Value(6.8813735870195432, label="b")
    n = x1 * w1 + x2 * w2 + b
    if spelled_with_exp:
        e = (2 * n).exp()
        o = (e - 1) / (e + 1)
    else:
        o = n.tanh()
    o.backward()
    return {"o": o, "n": n, "x1": x1, "x2": x2, "w1": w1, "w2": w2, "b": b}


@pytest.mark.parametrize("spelled_with_exp", [False, True], ids=["tanh", "exp"])
def test_lecture_neuron(spelled_with_exp):
    v = _lecture_neuron(spelled_with_exp)
    assert v["o"].data == pytest.approx(0.7071067811865476, rel=1e-12)
    assert v["x1"].grad == pytest.approx(-1.5, rel=1e-9)
    assert v["w1"].grad == pytest.approx(1.0, rel=1e-9)
    assert v["x2"].grad == pytest.approx(0.5, rel=1e-9)
    assert v["w2"].grad == pytest.approx(0.0, abs=1e-12)
    assert v["b"].grad == pytest.approx(0.5, rel=1e-9)
    assert v["n"].grad == pytest.approx(0.5, rel=1e-9)  # intermediates get .grad too
    assert v["o"].grad == 1.0


def test_every_intermediate_value_gets_grad():
    a, b = Value(3.0), Value(-2.0)
    c = a * b  # -6
    d = c + a  # -3
    e = d.tanh()
    e.backward()
    t = 1 - math.tanh(-3.0) ** 2
    assert e.grad == 1.0
    assert d.grad == pytest.approx(t)
    assert c.grad == pytest.approx(t)
    assert a.grad == pytest.approx(t * (b.data + 1))
    assert b.grad == pytest.approx(t * a.data)


def test_value_used_twice_sums_gradients():
    a = Value(3.0)
    b = a + a
    b.backward()
    assert a.grad == 2.0  # the lecture's "a + a" bug is not there


def test_gradients_accumulate_and_reset():
    x = Value(-4.0)
    z = 2 * x + 2 + x
    y = (z * x).relu() + z
    y.backward()
    first = x.grad
    assert first == pytest.approx(2 * 3 * x.data + 2 + 3)
    y.backward()
    assert x.grad == pytest.approx(2 * first)  # accumulates, like micrograd
    x.grad = 0
    y.backward()
    assert x.grad == pytest.approx(first)


def test_module_zero_grad():
    random.seed(3)
    model = nn.MLP(2, [3, 1])
    out = model([Value(1.0), Value(-2.0)])
    out.backward()
    assert any(p.grad != 0 for p in model.parameters())
    model.zero_grad()
    assert all(p.grad == 0 for p in model.parameters())


def test_mlp_parameters_match_micrograd():
    random.seed(42)
    model = nn.MLP(3, [4, 4, 1])
    params = model.parameters()
    assert len(params) == 4 * (3 + 1) + 4 * (4 + 1) + 1 * (4 + 1) == 41
    # the order is micrograd's: per MLP, per layer, per neuron its weights then its bias
    expected = [p for layer in model.layers for n in layer.neurons for p in (*n.w, n.b)]
    assert len(expected) == len(params)
    assert all(p is q for p, q in zip(params, expected, strict=True))
    # and the weights are micrograd's draws: random.uniform(-1, 1) per weight, biases 0
    random.seed(42)
    draws = []
    for nin, nout in ((3, 4), (4, 4), (4, 1)):
        for _ in range(nout):
            draws += [random.uniform(-1, 1) for _ in range(nin)] + [0.0]
    assert [p.data for p in params] == draws
    assert isinstance(model.layers[0].neurons[0], nn.Neuron)
    assert isinstance(model.layers[0], nn.Layer)
    assert repr(nn.MLP(2, [1])) == "MLP of [Layer of [LinearNeuron(2)]]"
    assert (
        repr(nn.MLP(2, [1, 1])) == "MLP of [Layer of [ReLUNeuron(2)], Layer of [LinearNeuron(1)]]"
    )


def test_neuron_rejects_unknown_activation():
    with pytest.raises(ValueError, match="act"):
        nn.Neuron(2, act="gelu")


def test_mlp_trains_on_the_lecture_dataset():
    xs = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
    ys = [1.0, -1.0, -1.0, 1.0]
    random.seed(0)
    model = nn.MLP(3, [4, 4, 1], act="tanh", nonlin_last=True)
    losses = []
    for _ in range(100):
        ypred = [model(x) for x in xs]
        loss = sum((yp - yt) ** 2 for yt, yp in zip(ys, ypred, strict=True))
        losses.append(loss.data)
        if loss.data < 0.05:
            break
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data += -0.05 * p.grad
    assert losses[0] > 1.0, losses[0]  # it really starts badly ...
    assert losses[-1] < 0.05, losses[-5:]  # ... and really learns within 100 steps
    assert all(abs(model(x).data - y) < 0.2 for x, y in zip(xs, ys, strict=True))


def test_value_interop():
    v = Value(2.0)
    assert (v + 1).data == 3.0
    assert (1 - v).data == -1.0
    assert (v / 4).data == 0.5
    assert (2**v).data == 4.0
    assert float(v * 3) == 6.0
    assert repr(Value(1.5)) == "Value(data=1.5, grad=0.0)"
    # micrograd semantics: Values compare and hash by identity (usable in sets and dicts)
    w = Value(2.0)
    assert v != w
    assert len({v, w, v}) == 2
    with pytest.raises(symgrad.ShapeError):
        Value([1.0, 2.0])


def test_pow_gradients_for_every_operand_kind():
    v = Value(2.0)
    y = 2**v
    y.backward()
    assert (y.data, v.grad) == (4.0, pytest.approx(4 * math.log(2)))
    a, b = Value(2.0), Value(3.0)
    (a**b).backward()
    assert a.grad == pytest.approx(12.0) and b.grad == pytest.approx(8 * math.log(2))
    c = Value(3.0)
    (c**-1).backward()
    assert c.grad == pytest.approx(-1 / 9)


def test_relu_at_zero_has_zero_gradient():
    z = Value(0.0)
    z.relu().backward()
    assert z.grad == 0.0  # micrograd: (out.data > 0) * out.grad
