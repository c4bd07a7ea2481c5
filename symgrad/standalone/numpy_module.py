"""The NumPy export: ``<name>.py`` (imports only NumPy) with ``<name>.npz`` beside it.

Owns: :func:`write_numpy`, which prints each exported function's program with the NumPy printer,
renames its kernel so that the forward pass and the training step share one file, and lays the
module out with ``export/module.py.j2``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from symgrad.codegen.numpy.printer import render_numpy
from symgrad.codegen.program import Program
from symgrad.codegen.templating import render
from symgrad.codegen.text import line_comment, py_string
from symgrad.ir.node import Node
from symgrad.standalone.model import (
    Export,
    describe_optimizer,
    hyper_exprs,
    shape_text,
    write_readme,
)


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
            "hyper": hyper_exprs(exp.optimizer, "py"),
            "dtype": exp.optimizer.params[0].dtype.name,
            "t": exp.optimizer.t,
            "optimizer": py_string(describe_optimizer(exp.optimizer)),
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
    write_readme(exp, out, "numpy")
