"""The C writer of ``symgrad.export``: ``<name>.h``, ``<name>.c``, ``<name>_check.c``, Makefile.

Owns: the public C API of an exported model (size arguments for symbolic dims, the caller's
scratch memory, return codes, the ``<name>_params`` / ``<name>_opt_state`` structs of the
training step), weights and recorded examples as ``static const`` arrays, and renaming the
kernel's identifiers (``sg_forward``, ``sg_dims``, ``_sg_*`` helpers ...) so that the forward
and training kernels share one translation unit. The kernels come from
``symgrad.backends.c_backend.render_c``. May import: numpy,
``symgrad.backends``, ``symgrad.ir`` and ``symgrad.export``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from symgrad.codegen.c.names import C_RESERVED, MACRO_LIKE
from symgrad.codegen.c.printer import render_c
from symgrad.codegen.templating import render
from symgrad.codegen.text import block_comment, c_string, is_safe_name
from symgrad.ir.dtypes import as_dtype
from symgrad.ir.node import Node
from symgrad.ops.c.emitter import ERROR_CODES
from symgrad.standalone.model import (
    Export,
    Part,
    describe_optimizer,
    hyper_exprs,
    shape_text,
    write_readme,
)

_WRAPPER_NAMES = frozenset(
    "params state scratch scratch_bytes loss rc d e h t own ns np_ base kernel_scratch".split()
)
_TOL = {"float64": "1e-9", "float32": "1e-4", "int64": "0", "bool": "0"}


def c_literal(value: Any, dtype: str) -> str:
    """An exact C literal (hexadecimal floats) of one element."""
    if dtype == "bool":
        return "1" if value else "0"
    if dtype == "int64":
        v = int(value)
        return "(-INT64_C(9223372036854775807) - 1)" if v == -(2**63) else f"INT64_C({v})"
    f = float(value)
    if math.isnan(f):
        return "NAN"
    if math.isinf(f):
        return "INFINITY" if f > 0 else "-INFINITY"
    return f.hex() + ("f" if dtype == "float32" else "")


def c_array(name: str, a: np.ndarray, storage: str = "static const") -> str:
    dt = a.dtype.name
    ct = as_dtype(dt).c_type
    flat = a.reshape(-1)
    items = [c_literal(v, dt) for v in flat.tolist()] or ["0"]
    lines = []
    for i in range(0, len(items), 4):
        lines.append("    " + ", ".join(items[i : i + 4]) + ",")
    return f"{storage} {ct} {name}[{max(1, flat.size)}] = {{\n" + "\n".join(lines) + "\n};"


def _rename(kernel: str, prefix: str) -> str:
    kernel = re.sub(r"\b_sg_(\w+)", rf"_{prefix}_\1", kernel)
    kernel = re.sub(r"\bsg_forward_scratch_bytes\b", f"{prefix}_scratch_bytes", kernel)
    for ident in ("sg_forward", "sg_dims", "sg_error", "sg_site_text", "sg_bool_is_one_byte"):
        kernel = re.sub(rf"\b{ident}\b", f"{prefix}_{ident[3:]}", kernel)
    return kernel


def _used_consts(kernel: str) -> list[int]:
    m = re.search(r"SG_API int sg_forward\((.*?)\)\n\{", kernel, re.S)
    assert m is not None
    return [int(k) for k in re.findall(r"\bsg_c(\d+)\b", m.group(1))]


class _Ids:
    """C identifiers for user names: safe names stay, others become ``<kind><k>``."""

    def __init__(self, prefix: str = "") -> None:
        self.taken: set[str] = set(_WRAPPER_NAMES)
        self.prefix = prefix.lower()  # the export's own identifiers (model_forward, ...)

    def get(self, name: str, fallback: str) -> str:
        ok = is_safe_name(name) and name not in C_RESERVED and not MACRO_LIKE.match(name)
        ok = ok and not (self.prefix and name.lower().startswith(self.prefix))
        nm = name if ok else fallback
        while nm in self.taken:
            nm += "_"
        self.taken.add(nm)
        return nm


def _dims_of(part: Part) -> list[str]:
    """The symbolic dims of ``part``'s arguments, in the kernel's ``sg_dims`` order."""
    used = {d for _, n in part.args for d in n.shape if isinstance(d, str)}
    return [d for d in part.prog.dim_vars if d in used]


def _bind(part: Part) -> dict[str, int]:
    out: dict[str, int] = {}
    for (_, n), a in zip(part.args, part.examples, strict=True):
        for d, s in zip(n.shape, a.shape, strict=True):
            if isinstance(d, str):
                out.setdefault(d, int(s))
    return out


def _part_info(exp: Export, part: Part, tag: str, ids: _Ids) -> dict[str, Any]:
    prefix = f"{exp.name}_{tag}"
    src = render_c(part.prog, f"{exp.name}_{tag}", standalone=True).kernel
    consts = _used_consts(src)
    kernel = _rename(src, f"{prefix}_kernel")
    kernel = kernel.split("\n", 1)[1].removesuffix("\n")  # not splitlines(): see text.py
    dims = _dims_of(part)
    dim_ids = {d: ids.get(part.prog.dim_vars[d], f"dim{k}") for k, d in enumerate(dims)}
    args = []
    for k, (nm, n) in enumerate(part.args):
        args.append(
            {
                "id": ids.get(nm, f"in{k}"),
                "ctype": n.dtype.c_type,
                "dtype": n.dtype.name,
                "shape": shape_text(n.shape),
                "size": " * ".join(dim_ids[d] if isinstance(d, str) else str(d) for d in n.shape)
                or "1",
            }
        )
    outs = []
    for k, o in enumerate(part.graph.outputs[: part.n_results]):
        outs.append(
            {
                "id": f"out{k}",
                "ctype": o.dtype.c_type,
                "dtype": o.dtype.name,
                "shape": shape_text(o.shape),
                "node": o,
            }
        )
    all_dims = list(part.prog.dim_vars)
    bound = _bind(part)
    return {
        "tag": tag,
        "prefix": prefix,
        "kernel": kernel,
        "consts": [
            (f"{prefix}_c{k}", c_array(f"{prefix}_c{k}", part.prog.consts[k].array)) for k in consts
        ],
        "dims": [(dim_ids[d], block_comment(repr(d))) for d in dims],
        "dims_init": ", ".join(dim_ids.get(d, "0") for d in all_dims) or "0",
        "args": args,
        "outs": outs,
        "weights": part.weights,
        "example_dims": [str(bound.get(d, 0)) for d in dims],
    }


def write_c(exp: Export, out: Path) -> None:
    ids = _Ids(f"{exp.name}_")
    name = exp.name
    fwd = _part_info(exp, exp.forward, "fwd", ids)
    step = _part_info(exp, exp.step, "step", ids) if exp.step is not None else None
    weights = [
        {
            "id": nm,
            "label": block_comment(repr(lb)),
            "ctype": as_dtype(w.dtype.name).c_type,
            "dtype": w.dtype.name,
            "shape": shape_text(w.shape),
            "n": max(1, w.size),
            "array": c_array(f"{name}_w_{nm}", w),
        }
        for nm, lb, w in zip(exp.weight_names, exp.weight_labels, exp.weights, strict=True)
    ]
    step_extra: dict[str, Any] = {}
    if exp.step is not None and step is not None:
        assert exp.optimizer is not None
        st = exp.step
        step_extra = {
            "state": [
                {
                    "id": f"s{k}",
                    "ctype": as_dtype(s.dtype.name).c_type,
                    "n": max(1, s.size),
                    "array": c_array(f"{name}_s{k}", s),
                }
                for k, s in enumerate(st.state)
            ],
            "hyper": hyper_exprs(exp.optimizer, "c"),
            "hyper_ctype": exp.optimizer.params[0].dtype.c_type,
            "params": [exp.weight_names[k] for k in st.params],
            "t": exp.optimizer.t,
            "optimizer": block_comment(describe_optimizer(exp.optimizer)),
        }
    codes = {k.replace("SG_ERR_", ""): v for k, v in ERROR_CODES.items()}
    ctx = {
        "name": name,
        "NAME": name.upper(),
        "graph_hash": exp.graph_hash[:12],
        "source": block_comment(exp.source),
        "source_str": c_string(exp.source),
        "exported_at": c_string(exp.exported_at),
        "full_hash": c_string(exp.graph_hash),
        "fwd": fwd,
        "step": step,
        "weights": weights,
        "codes": codes,
        **step_extra,
    }
    (out / f"{name}.h").write_text(render("export/model.h.j2", **ctx), encoding="utf-8")
    (out / f"{name}.c").write_text(render("export/model.c.j2", **ctx), encoding="utf-8")
    check = _check_ctx(exp, fwd, step)
    (out / f"{name}_check.c").write_text(
        render("export/check.c.j2", **ctx, **check), encoding="utf-8"
    )
    (out / "Makefile").write_text(render("export/Makefile.j2", name=name), encoding="utf-8")

    write_readme(exp, out, "c")


def _check_ctx(exp: Export, fwd: dict[str, Any], step: dict[str, Any] | None) -> dict[str, Any]:
    """Recorded inputs and outputs for the self-test."""

    def arrays(part: Part, info: dict[str, Any], tag: str) -> dict[str, Any]:
        ins = [
            c_array(f"{tag}_in{k}", np.ascontiguousarray(a)) for k, a in enumerate(part.examples)
        ]
        exp_out = [
            (c_array(f"{tag}_want{k}", np.ascontiguousarray(a)), a.size, _TOL[a.dtype.name])
            for k, a in enumerate(part.expected)
        ]
        return {"ins": ins, "want": exp_out, "dims": info["example_dims"]}

    out: dict[str, Any] = {"check_fwd": arrays(exp.forward, fwd, "fwd")}
    if exp.step is not None and step is not None:
        out["check_step"] = arrays(exp.step, step, "step")
    else:
        out["check_step"] = None
    return out


_ = Node
