"""Provenance: merged nodes keep every site, module paths, user code inside the package."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import symgrad as sg
from symgrad.ir.provenance import (
    Provenance,
    known_modules,
    merged,
    module_paths,
    module_scope,
    path_identifier,
)

W = sg.Tensor(np.random.default_rng(0).standard_normal((3, 2)), requires_grad=True, label="W")


def net(x):  # type: ignore[no-untyped-def]
    return (x @ W).tanh()  # NET_LINE


def loss(x):  # type: ignore[no-untyped-def]
    return (net(x) ** 2).mean()  # LOSS_LINE


def _line(tag: str) -> int:
    src = Path(__file__).read_text().splitlines()
    return next(i for i, t in enumerate(src, 1) if t.endswith(f"# {tag}"))


@pytest.mark.parametrize("opt", [0, 1, 2])
def test_square_cites_the_users_power_line_at_every_level(opt: int) -> None:
    # before: CSE kept the first creator's site, tanh's VJP rule: `(vjp tanh) ...:NET_LINE`
    f = sg.compile(loss, sg.Spec(("n", 3)), backend="numpy", opt=opt)
    src = f.source("forward")
    (stmt,) = [ln for ln in src.splitlines() if ("t1 * t1" in ln or "t1 ** 2" in ln)]
    assert f"test_provenance.py:{_line('LOSS_LINE')}" in stmt
    assert "vjp" not in stmt


def test_merged_keeps_every_site_forward_first() -> None:
    fwd = Provenance("m.py", 13, "loss")
    vjp = Provenance("m.py", 10, "net", "vjp tanh")
    other = Provenance("m.py", 20, "f")
    m = merged(vjp, fwd)
    assert m is not None and [s.line for s in m.sites] == [13, 10]
    assert m.via == "" and m.sites[1].via == "vjp tanh"
    m2 = merged(m, other)
    assert m2 is not None and [s.line for s in m2.sites] == [13, 20, 10]
    assert merged(m2, fwd) is m2  # a site already there: unchanged
    assert merged(None, fwd) is fwd and merged(fwd, None) is fwd


def test_interned_node_gains_the_sites_of_its_second_creation() -> None:
    x = sg.trace(lambda a: a, sg.Spec((2,))).inputs[0]
    first = x.tanh()
    p1 = first.provenance
    again = x.tanh()  # another line
    assert again is first
    assert again.provenance is not None and p1 is not None
    assert [s.line for s in again.provenance.sites] == [p1.line, p1.line + 2]


class _Neuron:
    def __init__(self) -> None:
        self.w = [sg.Tensor(np.ones(()), requires_grad=True) for _ in range(2)]

    def __call__(self, x):  # type: ignore[no-untyped-def]
        return self.w[0] * x + self.w[1]


class _Net:
    def __init__(self) -> None:
        self.layers = [_Neuron(), _Neuron()]


def test_module_paths_walks_attributes_and_lists() -> None:
    model = _Net()
    paths = module_paths({"model": model}, leaf=lambda o: isinstance(o, sg.Tensor))
    assert paths[id(model.layers[1])][1] == "model.layers[1]"
    assert paths[id(model.layers[1].w[0])][1] == "model.layers[1].w[0]"
    assert path_identifier("layers[1].w[0]") == "layers_1_w_0"
    assert path_identifier("model.fc1") == "model_fc1"


def test_known_modules_and_module_scope_record_the_path() -> None:
    model = _Net()
    paths = module_paths({"model": model}, leaf=lambda o: isinstance(o, sg.Tensor))
    x = sg.Tensor(np.ones(()))
    with known_modules(paths):
        y = model.layers[1](x)
    p = y.node.provenance
    assert p is not None and p.module == "model.layers[1]"
    with module_scope("model"), module_scope("fc1"):
        z = x * 3.0
    assert z.node.provenance is not None and z.node.provenance.module == "model.fc1"
    w = x * 5.0
    assert w.node.provenance is not None and w.node.provenance.module == ""


def test_mean_constant_printed_as_a_reciprocal() -> None:
    # before: `t1 * 0.0013717421124828531`
    def mean(x):  # type: ignore[no-untyped-def]
        return x.mean()

    for backend, text in (("numpy", "(1 / 729)"), ("c", "(1.0 / 729)")):
        f = sg.compile(mean, sg.Spec((729,)), backend=backend, opt=1)
        assert text in f.source("forward"), backend
        x = np.random.default_rng(0).standard_normal(729)
        assert f(x) == x.sum() * 0.0013717421124828531


def test_the_same_function_text_in_two_files_cites_each_file(tmp_path) -> None:
    # code objects of identical functions compile equal across files; provenance must not mix
    import numpy as np

    import symgrad as sg

    src = "def f(x):\n    return x * 2.0\n"
    cites = []
    for name in ("one.py", "two.py"):
        ns: dict = {}
        exec(compile(src, str(tmp_path / name), "exec"), ns)
        y = ns["f"](sg.Tensor(np.ones(2)))
        cites.append(y.node.provenance.file)
    assert cites == [str(tmp_path / "one.py"), str(tmp_path / "two.py")]
