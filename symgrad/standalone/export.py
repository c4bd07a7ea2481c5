"""``symgrad.export``: write a trained model as a standalone NumPy module or C library.

Owns: tracing the model (its captured leaves are the weights), optionally building the fused
training step (``symgrad.train.step.build_step_graph``), recording example inputs and the outputs
symgrad computes for them, and writing the export directory: for ``backend="numpy"`` a module
``<name>.py`` (imports only NumPy) with ``<name>.npz`` beside it; for ``backend="c"`` the files
written by :mod:`symgrad.standalone.c_library`. Both get a ``README.md``. Generated files are
laid out by the templates in ``symgrad/codegen/templates/export/``; user text reaches them only
through ``symgrad.codegen.text``. The records (:class:`~symgrad.standalone.model.Export`) are in
:mod:`symgrad.standalone.model`, the NumPy writer in :mod:`symgrad.standalone.numpy_module`.

The export directory (``name="model"``)::

    numpy:  model.py  model.npz  README.md
    c:      model.h  model.c  model_check.c  Makefile  README.md

``train_step=(loss_fn, optimizer, *loss_specs)`` also exports one training step (forward,
backward and the optimiser's update fused): ``loss_fn`` closes over ``optimizer.params`` like
for :func:`symgrad.compile_step`; ``optimizer`` is a :class:`symgrad.optim.SGD` or
:class:`symgrad.optim.Adam` whose hyperparameters, state and step count are exported.
"""

from __future__ import annotations

import datetime
import keyword
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from symgrad.frontend.tensor import Tensor
from symgrad.frontend.trace import Spec, TracedGraph, trace
from symgrad.frontend.value import Value
from symgrad.ir.graph import Graph, evaluate
from symgrad.ir.node import Node
from symgrad.lower.driver import lower
from symgrad.optim import Optimizer
from symgrad.passes.levels import DEFAULT_OPT
from symgrad.standalone.c_library import write_c
from symgrad.standalone.model import Export, Part, hyper_exprs
from symgrad.standalone.numpy_module import write_numpy
from symgrad.train.step import build_step_graph

BACKENDS = ("numpy", "c")
EXAMPLE_DIM = 3  # the size of every symbolic dim in generated example inputs


def _check_name(name: str) -> None:
    if (
        not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,63}", name)
        or keyword.iskeyword(name)
        or name in ("numpy", "np", "symgrad", "math", "os")
    ):
        raise ValueError(f"name must be a plain identifier (the module and C prefix), got {name!r}")


def example_array(spec: Spec, rng: np.random.Generator) -> np.ndarray:
    """An example input for ``spec``: symbolic dims of size 3; floats normal, ints in [0, 2)."""
    shape = tuple(EXAMPLE_DIM if isinstance(d, str) else d for d in spec.shape)
    if spec.dtype.is_float:
        return rng.standard_normal(shape).astype(spec.dtype.np)
    if spec.dtype.name == "bool":
        return rng.random(shape) < 0.5
    return rng.integers(0, 2, size=shape).astype(spec.dtype.np)


def _examples(
    given: Sequence[Any], specs: Sequence[Spec], override: Sequence[Any] | None, seed: int
) -> list[np.ndarray]:
    if override is not None:
        out = [np.asarray(a) for a in override]
        if len(out) != len(specs):
            raise ValueError(f"expected {len(specs)} example inputs, got {len(out)}")
        return [a.astype(s.dtype.np, copy=False) for a, s in zip(out, specs, strict=True)]
    rng = np.random.default_rng(seed)
    return [
        np.asarray(g, dtype=s.dtype.np) if not isinstance(g, Spec) else example_array(s, rng)
        for g, s in zip(given, specs, strict=True)
    ]


def _evaluate(graph: Graph, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
    env = dict(zip(graph.inputs, arrays, strict=True))
    out = evaluate(list(graph.outputs), env)
    assert isinstance(out, list)
    return [np.asarray(o) for o in out]


def _weight_index(weights: list[Tensor | Value], captures: Sequence[Tensor | Value]) -> list[int]:
    idx = []
    for c in captures:
        found = [k for k, w in enumerate(weights) if w is c]
        if not found:
            weights.append(c)
            found = [len(weights) - 1]
        idx.append(found[0])
    return idx


def build(
    fn: Callable[..., Any],
    specs_or_arrays: Sequence[Any],
    name: str,
    train_step: Sequence[Any] | None,
    opt: int,
    examples: Sequence[Any] | None,
) -> Export:
    """Trace, optimise and schedule the model (and its training step)."""
    from symgrad._version import __version__

    specs = [Spec.of(s) for s in specs_or_arrays]
    graph = trace(fn, *specs)
    if not graph.captures:
        raise ValueError("export: the model captures no weights (no trained Values/Tensors)")
    lowered = lower(graph, opt=opt)
    prog, fwd_graph = lowered.prog, lowered.optimised
    weights: list[Tensor | Value] = []
    fwd_w = _weight_index(weights, graph.captures)
    ex = _examples(specs_or_arrays, specs, examples, 0)
    wdata = [np.array(w._data) for w in graph.captures]
    forward = Part(
        "forward",
        prog,
        fwd_graph,
        [(nm, node) for nm, node in prog.forward.params[: graph.n_args]],
        fwd_w,
        len(graph.outputs),
        ex,
        _evaluate(graph, [*ex, *wdata]),
    )
    step = None
    optimizer = None
    if train_step is not None:
        step, optimizer = _build_step(train_step, weights, opt)
    labels = [w.label for w in weights]
    wnames = [nm for _, nm in zip(weights, _weight_names(graph, weights, step), strict=True)]
    src = f"{getattr(fn, '__qualname__', 'fn')} in {getattr(fn, '__module__', '?')}"
    code = getattr(fn, "__code__", None)
    if code is not None:
        src += f" ({code.co_filename}:{code.co_firstlineno})"
    return Export(
        name=name,
        weights=[np.array(w._data) for w in weights],
        weight_names=wnames,
        weight_labels=labels,
        forward=forward,
        step=step,
        optimizer=optimizer,
        version=__version__,
        exported_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        source=src,
        graph_hash=fwd_graph.content_hash,
    )


def _weight_names(
    graph: TracedGraph, weights: list[Tensor | Value], step: Part | None
) -> list[str]:
    """Identifiers for the weights: the traced parameter name when safe, else ``w<k>``."""
    from symgrad.codegen.text import is_safe_name

    taken: set[str] = {nm for nm, _ in graph_args(graph)}
    out = []
    for k, w in enumerate(weights):
        nm = w.label if is_safe_name(w.label) and len(w.label) <= 32 else f"w{k}"
        if nm in taken or nm in ("params", "state", "scratch", "dims", "err"):
            nm = f"w{k}"
        while nm in taken:
            nm += "_"
        taken.add(nm)
        out.append(nm)
    del step
    return out


def graph_args(graph: TracedGraph) -> list[tuple[str, Node]]:
    return list(zip(graph.input_names[: graph.n_args], graph.inputs[: graph.n_args], strict=True))


def _build_step(
    train_step: Sequence[Any], weights: list[Tensor | Value], opt: int
) -> tuple[Part, Optimizer]:
    if not isinstance(train_step, tuple | list) or len(train_step) < 2:
        raise TypeError("train_step must be (loss_fn, optimizer, *loss_specs)")
    loss_fn, optimizer, *loss_specs = train_step
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"train_step[1] must be an optimizer, got {optimizer!r:.60}")
    hyper_exprs(optimizer, "py")  # refuses unsupported optimisers early
    tgraph, raw_step, n_params = build_step_graph(loss_fn, tuple(loss_specs), optimizer)
    lowered = lower(raw_step, opt=opt)
    prog, step_graph = lowered.prog, lowered.optimised
    idx = _weight_index(weights, tgraph.captures)
    params = [next(k for k, w in enumerate(weights) if w is p) for p in optimizer.params]
    specs = [Spec.of(s) for s in loss_specs]
    ex = _examples(loss_specs, specs, None, 1)
    state = [np.array(a) for a in optimizer.state()]
    dt = optimizer.params[0].dtype.np
    scalars = [np.asarray(c, dtype=dt) for c in _scalars_at(optimizer, optimizer.t + 1)]
    wdata = [np.array(w._data) for w in tgraph.captures]
    expected = _evaluate(step_graph, [*ex, *wdata, *state, *scalars])
    part = Part(
        "train_step",
        prog,
        step_graph,
        [(nm, node) for nm, node in prog.forward.params[: tgraph.n_args]],
        idx,
        1 + n_params + len(state),
        ex,
        expected,
        params=params,
        state=state,
        n_hyper=len(scalars),
    )
    return part, optimizer


def _scalars_at(optimizer: Optimizer, t: int) -> list[float]:
    saved = optimizer.t
    optimizer.t = t
    try:
        return optimizer.scalars()
    finally:
        optimizer.t = saved


def export(
    fn: Callable[..., Any],
    path: str | Path,
    *specs_or_arrays: Any,
    backend: str = "numpy",
    name: str = "model",
    train_step: Sequence[Any] | None = None,
    opt: int = DEFAULT_OPT,
    examples: Sequence[Any] | None = None,
) -> Path:
    """Export ``fn`` (whose captured Values/Tensors are the trained weights) to the directory
    ``path`` as a standalone NumPy module or C library; returns the directory. ``examples``
    are the inputs the export records with symgrad's outputs for its self-check (default: the
    arrays given as specs, else seeded random data with symbolic dims of size 3)."""
    _check_name(name)
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    exp = build(fn, specs_or_arrays, name, train_step, opt, examples)
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    if backend == "numpy":
        write_numpy(exp, out)
    else:
        write_c(exp, out)
    return out
