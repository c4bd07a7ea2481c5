"""Graph → Program: the ordered statements of each generated function, with their names.

Owns: deterministic naming (inputs keep their parameter names when safe, gradients are
``g_<name>``, temporaries ``t0, t1, ...`` in topological order, cotangents of forward values
``g_t3``), binding symbolic dims from parameter shapes and array constants; then it compacts
long runs of scalar statements (:mod:`symgrad.codegen.compact`). Backend-neutral: the NumPy
and C printers both consume the :class:`~symgrad.codegen.program.Program` it returns.
"""

from __future__ import annotations

from collections.abc import Sequence

from symgrad.autodiff.joint import Joint
from symgrad.codegen import compact
from symgrad.codegen.program import Function, Program, Stmt, describe
from symgrad.codegen.text import is_safe_name
from symgrad.ir.graph import Graph
from symgrad.ir.node import Node


class _Namer:
    def __init__(self) -> None:
        self.names: dict[int, str] = {}
        self.taken: set[str] = set()
        self.counter = 0

    def claim(self, node: Node, name: str) -> str:
        if id(node) in self.names:
            return self.names[id(node)]
        base, k = name, 1
        while name in self.taken:
            name = f"{base}_{k}"
            k += 1
        self.names[id(node)] = name
        self.taken.add(name)
        return name

    def temp(self, node: Node) -> str:
        name = f"t{self.counter}"
        while name in self.taken:
            self.counter += 1
            name = f"t{self.counter}"
        if id(node) in self.names:
            return self.names[id(node)]
        self.names[id(node)] = name
        self.taken.add(name)
        self.counter += 1  # taken now
        return name


def param_names(names: list[str]) -> list[str]:
    out = []
    for k, nm in enumerate(names):
        out.append(nm if is_safe_name(nm) else f"in{k}")
    return out


def _dim_var(prog: Program, namer: _Namer, dim: str) -> str:
    var = prog.dim_vars.get(dim)
    if var is None:
        var = dim if is_safe_name(dim) and dim not in namer.taken else f"dim{len(prog.dim_vars)}"
        prog.dim_vars[dim] = var
        namer.taken.add(var)
    return var


def _function(
    prog: Program,
    namer: _Namer,
    name: str,
    graph: Graph,
    n_results: int,
    hints: dict[int, str],
) -> Function:
    params: list[tuple[str, Node]] = []
    dims: list[tuple[str, str, int]] = []
    bound: set[str] = set()
    for node in graph.inputs:
        pname = namer.names[id(node)]
        params.append((pname, node))
        for axis, d in enumerate(node.shape):
            if isinstance(d, str) and d not in bound:
                bound.add(d)
                dims.append((_dim_var(prog, namer, d), pname, axis))
    stmts: list[Stmt] = []
    boundary = set(graph.inputs)
    named, taken = namer.names, namer.taken
    for node in graph.order:  # (every node of large graphs: kept short)
        if id(node) in named or node.op == "const" or node in boundary:
            continue
        if node.op == "constant":
            k = len(prog.consts)
            prog.consts.append(node.attrs["value"])
            prog.const_index[id(node)] = k
            namer.claim(node, f"_C[{k}]")
            continue
        hint = hints.get(id(node))
        if hint:
            target = namer.claim(node, hint)
        else:  # namer.temp, inline
            target = f"t{namer.counter}"
            while target in taken:
                namer.counter += 1
                target = f"t{namer.counter}"
            named[id(node)] = target
            taken.add(target)
            namer.counter += 1
        stmts.append(Stmt(target, node, describe(node)))
    return Function(name, params, dims, stmts, list(graph.outputs), n_results)


def schedule(
    graph: Graph, joint: Joint | None = None, inplace: Sequence[tuple[int, int]] = ()
) -> Program:
    """Schedule the forward pass of ``graph`` (and the backward pass when ``joint`` is given).
    ``inplace`` pairs (output, input) indices of ``graph`` whose output overwrites the input's
    array instead of being returned (``compile_step``'s parameter updates)."""
    namer = _Namer()
    fwd_graph = joint.forward if joint is not None else graph
    pnames = param_names(list(graph.input_names))
    for node, nm in zip(graph.inputs, pnames, strict=True):
        namer.claim(node, nm)
    prog = Program(
        forward=Function("forward", [], [], [], [], 0),
        backward=None,
        graph_hash=(joint.graph if joint is not None else graph).content_hash,
        names=namer.names,
        dim_vars={},
        input_names=pnames,
    )
    n_out = len(graph.outputs)
    prog.forward = _function(prog, namer, "forward", fwd_graph, n_out, {})
    for out, inp in inplace:
        if not (0 <= out < n_out and 0 <= inp < len(graph.inputs)):
            raise ValueError(f"inplace pair {(out, inp)} is out of range")
        if graph.outputs[out].shape != graph.inputs[inp].shape or (
            graph.outputs[out].dtype is not graph.inputs[inp].dtype
        ):
            raise ValueError(f"inplace pair {(out, inp)}: the output and input types differ")
    prog.forward.inplace = list(inplace)
    if joint is not None:
        hints: dict[int, str] = {}
        for node, nm in zip(joint.wrt, [namer.names[id(w)] for w in joint.wrt], strict=True):
            g = joint.grads[joint.wrt.index(node)]
            if g.op not in ("const", "constant", "input") and id(g) not in namer.names:
                hints.setdefault(id(g), f"g_{nm}")
        for fnode in joint.forward.order:
            c = joint.cot_map.get(id(fnode))
            if c is not None and id(fnode) in namer.names and id(c) not in namer.names:
                hints.setdefault(id(c), f"g_{namer.names[id(fnode)]}")
        for c in joint.cotangents:
            namer.claim(c, str(c.attrs["name"]))
        prog.backward = _function(prog, namer, "backward", joint.backward, len(joint.grads), hints)
    for fn in (prog.forward, prog.backward):
        if fn is not None:
            compact.compact(prog, fn, compact.THRESHOLD)
    return prog
