"""``symgrad.export``: write a trained model as a standalone NumPy module or C library.

Owns: tracing the model (its captured leaves are the weights), optionally building the fused
training step (``symgrad.step.build_step_graph``), recording example inputs and the outputs
symgrad computes for them, and writing the export directory: for ``backend="numpy"`` a module
``<name>.py`` (imports only NumPy) with ``<name>.npz`` beside it; for ``backend="c"`` the files
written by :mod:`symgrad.export_c`. Both get a ``README.md``. Generated files are laid out by the
templates in ``codegen_templates/export/``; user text reaches them only through
``symgrad.backends.text``. May import: every symgrad layer.

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
import sys
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from symgrad.backends.numpy_backend import render_numpy
from symgrad.backends.schedule import Program, schedule
from symgrad.backends.templating import render
from symgrad.backends.text import line_comment, py_string
from symgrad.frontend.tensor import Tensor
from symgrad.frontend.trace import Spec, TracedGraph, trace
from symgrad.ir.graph import Graph, evaluate
from symgrad.ir.node import Node
from symgrad.optim import SGD, Adam, Optimizer
from symgrad.passes import optimize

BACKENDS = ("numpy", "c")
EXAMPLE_DIM = 3  # the size of every symbolic dim in generated example inputs


@dataclass
class Part:
    """One exported function (``forward`` or ``train_step``) and what it needs."""

    name: str
    prog: Program
    graph: Graph  # the optimised graph the program was scheduled from
    args: list[tuple[str, Node]]  # the caller's arguments (name, input node)
    weights: list[int]  # for each captured leaf, its index in Export.weights
    n_results: int
    examples: list[np.ndarray]  # example arguments
    expected: list[np.ndarray]  # symgrad's results for them
    params: list[int] = field(default_factory=list)  # train step: the optimiser's weights
    state: list[np.ndarray] = field(default_factory=list)  # train step: optimiser state
    n_hyper: int = 0


@dataclass
class Export:
    """Everything a writer needs: the weights, the parts and the provenance."""

    name: str
    weights: list[np.ndarray]
    weight_names: list[str]  # safe identifiers
    weight_labels: list[str]  # the user's labels (raw: escape before use)
    forward: Part
    step: Part | None
    optimizer: Optimizer | None
    version: str
    exported_at: str
    source: str  # the model function and where it is defined (raw)
    graph_hash: str


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


def _weight_index(weights: list[Tensor], captures: Sequence[Tensor]) -> list[int]:
    idx = []
    for c in captures:
        found = [k for k, w in enumerate(weights) if w is c]
        if not found:
            weights.append(c)
            found = [len(weights) - 1]
        idx.append(found[0])
    return idx


def _hyper_exprs(optimizer: Optimizer, lang: str) -> list[str]:
    """The per-step scalars as expressions of the step count ``t`` (already incremented)."""

    def lit(x: float) -> str:
        return repr(float(x)) if lang == "py" else float(x).hex()

    pw = "{0} ** t" if lang == "py" else "pow({0}, (double)t)"
    sq = "math.sqrt({0})" if lang == "py" else "sqrt({0})"
    if isinstance(optimizer, Adam):
        c1 = f"(1.0 - {pw.format(lit(optimizer.b1))})"
        c2 = f"(1.0 - {pw.format(lit(optimizer.b2))})"
        return [f"{lit(optimizer.lr)} / {c1}", sq.format(c2)]
    if isinstance(optimizer, SGD):
        return [lit(optimizer.lr)]
    raise TypeError(f"export supports SGD and Adam optimisers, got {type(optimizer).__name__}")


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
    fwd_graph = optimize(graph, opt)
    prog = schedule(fwd_graph)
    weights: list[Tensor] = []
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


def _weight_names(graph: TracedGraph, weights: list[Tensor], step: Part | None) -> list[str]:
    """Identifiers for the weights: the traced parameter name when safe, else ``w<k>``."""
    from symgrad.backends.text import is_safe_name

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
    train_step: Sequence[Any], weights: list[Tensor], opt: int
) -> tuple[Part, Optimizer]:
    from symgrad.step import build_step_graph

    if not isinstance(train_step, tuple | list) or len(train_step) < 2:
        raise TypeError("train_step must be (loss_fn, optimizer, *loss_specs)")
    loss_fn, optimizer, *loss_specs = train_step
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"train_step[1] must be an optimizer, got {optimizer!r:.60}")
    _hyper_exprs(optimizer, "py")  # refuses unsupported optimisers early
    tgraph, step_graph, n_params = build_step_graph(loss_fn, tuple(loss_specs), optimizer, opt)
    prog = schedule(step_graph)
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


def shape_text(shape: Sequence[Any]) -> str:
    return "(" + ", ".join(repr(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def export(
    fn: Callable[..., Any],
    path: str | Path,
    *specs_or_arrays: Any,
    backend: str = "numpy",
    name: str = "model",
    train_step: Sequence[Any] | None = None,
    opt: int = 1,
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
        from symgrad.export_c import write_c

        write_c(exp, out)
    return out


# -- NumPy -------------------------------------------------------------------------------------


def _kernel(prog: Program, tag: str) -> str:
    """The generated module of ``prog``, renamed so that two of them share one file."""
    text = render_numpy(prog)
    lines = [ln for ln in text.split("\n") if ln != "import numpy as np"]  # not splitlines()
    text = "\n".join(lines[1:])  # the header line: the export has its own
    text = re.sub(r"^def forward\(", f"def _{tag}_kernel(", text, flags=re.M)
    return re.sub(r"\b_C\b", f"_C_{tag}", text)


def _specs_of(args: list[tuple[str, Node]]) -> list[tuple[str, str, str]]:
    return [(py_string(nm), shape_text(n.shape), py_string(n.dtype.name)) for nm, n in args]


def write_numpy(exp: Export, out: Path) -> None:
    arrays: dict[str, Any] = {f"w{k}": w for k, w in enumerate(exp.weights)}
    parts = [p for p in (exp.forward, exp.step) if p is not None]
    kernels = []
    for p in parts:
        tag = "fwd" if p.name == "forward" else "step"
        kernels.append(_kernel(p.prog, tag))
        for k, c in enumerate(p.prog.consts):
            arrays[f"{tag}_c{k}"] = c.array
    step_info: dict[str, Any] | None = None
    if exp.step is not None:
        assert exp.optimizer is not None
        for k, s in enumerate(exp.step.state):
            arrays[f"s{k}"] = s
        step_info = {
            "args": _specs_of(exp.step.args),
            "weights": exp.step.weights,
            "params": exp.step.params,
            "n_state": len(exp.step.state),
            "n_consts": len(exp.step.prog.consts),
            "hyper": _hyper_exprs(exp.optimizer, "py"),
            "dtype": exp.optimizer.params[0].dtype.name,
            "t": exp.optimizer.t,
            "optimizer": py_string(_describe_optimizer(exp.optimizer)),
        }
    fwd = exp.forward
    text = render(
        "export/module.py.j2",
        name=exp.name,
        graph_hash=exp.graph_hash[:12],
        full_hash=py_string(exp.graph_hash),
        exported_at=py_string(exp.exported_at),
        source=py_string(exp.source),
        source_comment=line_comment(exp.source),
        inputs=_specs_of(fwd.args),
        outputs=[
            (shape_text(o.shape), py_string(o.dtype.name))
            for o in fwd.graph.outputs[: fwd.n_results]
        ],
        weights=[
            (py_string(nm), py_string(lb), shape_text(w.shape), py_string(w.dtype.name))
            for nm, lb, w in zip(exp.weight_names, exp.weight_labels, exp.weights, strict=True)
        ],
        fwd_weights=fwd.weights,
        fwd_consts=len(fwd.prog.consts),
        kernels=kernels,
        step=step_info,
        npz=py_string(f"{exp.name}.npz"),
    )
    np.savez(out / f"{exp.name}.npz", **arrays)
    (out / f"{exp.name}.py").write_text(text, encoding="utf-8")
    _write_readme(exp, out, "numpy")


def _describe_optimizer(opt: Optimizer) -> str:
    if isinstance(opt, Adam):
        return (
            f"Adam(lr={opt.lr!r}, betas=({opt.b1!r}, {opt.b2!r}), eps={opt.eps!r}, "
            f"weight_decay={opt.weight_decay!r})"
        )
    if isinstance(opt, SGD):
        return f"SGD(lr={opt.lr!r}, momentum={opt.momentum!r}, weight_decay={opt.weight_decay!r})"
    return type(opt).__name__


def _write_readme(exp: Export, out: Path, backend: str) -> None:
    def sig(p: Part) -> str:
        return ", ".join(f"{nm}: {n.dtype.name}{shape_text(n.shape)}" for nm, n in p.args)

    text = render(
        "export/README.md.j2",
        name=exp.name,
        backend=backend,
        graph_hash=exp.graph_hash[:12],
        source=line_comment(exp.source),
        exported_at=exp.exported_at,
        forward_sig=sig(exp.forward),
        step_sig=sig(exp.step) if exp.step is not None else None,
        optimizer=_describe_optimizer(exp.optimizer) if exp.optimizer is not None else None,
    )
    (out / "README.md").write_text(text, encoding="utf-8")


class _CallableModule(types.ModuleType):
    """``symgrad.export`` stays callable when the submodule was imported first."""

    def __call__(self, *args: Any, **kwargs: Any) -> Path:
        return export(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
