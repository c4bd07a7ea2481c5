"""What an export is, whichever backend writes it.

Owns: :class:`Export` (the weights, the exported functions and their provenance) and
:class:`Part` (one exported function), the optimiser's per-step scalars as expressions of the
step count (:func:`hyper_exprs`), the optimiser's description, shape text, and the export's
``README.md``. The writers (:mod:`symgrad.standalone.numpy_module`,
:mod:`symgrad.standalone.c_library`) read these; :mod:`symgrad.standalone.export` builds them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from symgrad.codegen.program import Program
from symgrad.codegen.templating import render
from symgrad.codegen.text import line_comment
from symgrad.ir.graph import Graph
from symgrad.ir.node import Node
from symgrad.optim import SGD, Adam, Optimizer


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


def hyper_exprs(optimizer: Optimizer, lang: str) -> list[str]:
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


def shape_text(shape: Sequence[Any]) -> str:
    return "(" + ", ".join(repr(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def describe_optimizer(opt: Optimizer) -> str:
    if isinstance(opt, Adam):
        return (
            f"Adam(lr={opt.lr!r}, betas=({opt.b1!r}, {opt.b2!r}), eps={opt.eps!r}, "
            f"weight_decay={opt.weight_decay!r})"
        )
    if isinstance(opt, SGD):
        return f"SGD(lr={opt.lr!r}, momentum={opt.momentum!r}, weight_decay={opt.weight_decay!r})"
    return type(opt).__name__


def write_readme(exp: Export, out: Path, backend: str) -> None:
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
        optimizer=describe_optimizer(exp.optimizer) if exp.optimizer is not None else None,
    )
    (out / "README.md").write_text(text, encoding="utf-8")
