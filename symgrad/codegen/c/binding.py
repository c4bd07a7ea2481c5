"""The tables the CPython binding validates arguments with, and its kernel calls.

Owns: :class:`Slot` (an output buffer of a kernel function), :func:`arg_desc` (one row of an
argument table: dtype, static dims, symbolic dim indices, the expected shape's text) and
:func:`binding_info` (what ``templates/c/binding.c.j2`` needs of one function). May import:
the standard library, ``symgrad.ir`` and ``symgrad.codegen``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from symgrad.codegen.program import Function, Program
from symgrad.codegen.text import c_string
from symgrad.ir.dtypes import as_dtype
from symgrad.ir.node import Node
from symgrad.ir.opdef import fmt_shape

_DTYPE_CODE = {"float64": "SGB_F64", "float32": "SGB_F32", "int64": "SGB_I64", "bool": "SGB_BOOL"}


@dataclass
class Slot:
    name: str  # the C parameter of the output buffer
    node: Node
    direct: bool  # the node's statement writes straight into this buffer


def arg_desc(
    name: str, shape: tuple[Any, ...], dtype: str, dims: dict[str, int] | None = None
) -> dict[str, Any]:
    """A row of an argument table: dtype, static dims (-1: symbolic) and symbolic dim index."""
    index = dims or {}
    return {
        "name": c_string(name),
        "dtype": _DTYPE_CODE[dtype],
        "ndim": len(shape),
        "shape": [d if isinstance(d, int) else -1 for d in shape],
        "sym": [index[d] if isinstance(d, str) else -1 for d in shape],
        "expected": c_string(fmt_shape(tuple(shape))),
        "static": all(isinstance(d, int) for d in shape),
        "writable": False,
    }


def binding_info(
    prog: Program,
    fn: Function,
    slots: list[Slot],
    info: dict[str, Any],
    dim_fields: list[tuple[str, str]],
) -> dict[str, Any]:
    """What the binding needs to know of one function: argument tables and the kernel call."""
    index = {d: k for k, (d, _) in enumerate(dim_fields)}
    params = [arg_desc(p, n.shape, n.dtype.name, index) for p, n in fn.params]
    updated = {p for _, p in fn.inplace}
    for k, desc in enumerate(params):
        desc["writable"] = k in updated
    outs = [arg_desc(s.name, s.node.shape, s.node.dtype.name, index) for s in slots]
    py_params = [p for p, _ in fn.params]
    n_cot = n_saved = 0
    if fn.name == "backward":
        assert prog.backward is not None
        n_saved = len(prog.forward.outputs) - prog.forward.n_results
        n_cot = len(fn.params) - n_saved - len(prog.forward.params)
        py_params = [*py_params[:n_cot], "saved", *py_params[n_cot + n_saved :]]
    n_args = len(py_params)
    ret = "(results, saved)" if fn.name == "forward" else "grads"
    plural = "argument" if n_args == 1 else "arguments"
    call = [
        f"({'' if k in updated else 'const '}{n.dtype.c_type} *)_in[{k}].buf"
        for k, (_, n) in enumerate(fn.params)
    ]
    for k in info["consts"]:
        ct = as_dtype(prog.consts[k].array.dtype).c_type
        call.append(f"(const {ct} *)sgb_consts[{k}].buf")
    for k, s in enumerate(slots):
        call.append(f"({s.node.dtype.c_type} *)_out[{k}].buf")
    return {
        "name": fn.name,
        "cname": info["cname"],
        "params": params,
        "outs": outs,
        "n_results": sum(k < fn.n_results for k in fn.returned()),
        "n_cot": n_cot,
        "n_saved": n_saved,
        "n_args": n_args,
        "count_msg": c_string(f"{fn.name}() takes {n_args} {plural} ({', '.join(py_params)})"),
        "dims": [(index[d], c) for d, c in info["dims"]],
        "call": call,
        "doc": c_string(f"{fn.name}({', '.join(py_params)}) -> {ret}"),
    }
