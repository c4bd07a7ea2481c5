"""The C printer: a Program becomes a C99 kernel and a CPython extension module around it.

Owns: :func:`render_c` and :class:`CSource`; the storage of every value (caller's result
buffer, alias or scratch block), the layout of each kernel function. C identifiers come from
``names``, the binding's argument tables from ``binding``. Per-op code is the
ops' own C lowerings (declared with each op in ``symgrad/ops/``, printed through
``symgrad.ops.c.emitter``), the routines they call are the runtime
(``templates/c/_runtime.c.j2``); ``templates/c/`` only lays files out.

The kernel ABI (also documented at the top of every ``kernel.c``)::

    int sg_forward(const sg_dims *restrict dims, sg_error *restrict err,
                   const T *restrict <param>..., const T *restrict sg_c<k>...,
                   T *restrict out<k>..., T *restrict saved<k>...)
    int sg_backward(dims, err, <cotangents>..., <saved>..., <params>..., sg_c<k>..., out<k>...)

``sg_dims`` holds one ``int64_t`` per symbolic dim; ``T`` is ``double``, ``float``, ``int64_t``
or ``_Bool`` (one byte, 0 or 1: NumPy's bool); every buffer is C-contiguous; only the constants
a function uses are passed. The return value is 0 or an error code (``SG_ERR_NOMEM`` 1,
``SG_ERR_INDEX`` 2, ``SG_ERR_CLASS`` 3, ``SG_ERR_EMPTY`` 4), with ``err`` holding the bad value,
the dim size and a site whose model line ``sg_site_text(site)`` returns.

May import: numpy, ``symgrad.ir``, ``symgrad.ops`` and ``symgrad.codegen`` (Jinja2 through
``templating``); never ``symgrad.runtime`` or the frontend.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from symgrad.codegen.c.binding import Slot, arg_desc, binding_info
from symgrad.codegen.c.fusion import fused_loop, fusible, fusion_groups
from symgrad.codegen.c.memory import FOREVER, plan
from symgrad.codegen.c.memory import describe as describe_memory
from symgrad.codegen.c.names import CNames
from symgrad.codegen.c.region import GroupFunctions, region_code, stored_ref
from symgrad.codegen.program import Function, Program
from symgrad.codegen.templating import render
from symgrad.codegen.text import block_comment, c_string, line_comment
from symgrad.ir.graph import type_str
from symgrad.ir.node import Node
from symgrad.ir.opdef import get_op
from symgrad.ops.c.emitter import ERROR_CODES, Emitter
from symgrad.ops.c.loops import prod


@dataclass(frozen=True)
class CSource:
    """``kernel``: a C99 translation unit needing only libc and libm. ``binding``: a CPython
    extension module embedding the kernel (compile it alone, with ``-lm``)."""

    kernel: str
    binding: str


def absorbed(fn: Function) -> set[int]:
    """Ids of the statements that every reader reads through (``OpDef.absorbs``: ``x.T`` that
    only matmuls read, from ``x`` directly, as ``x.T @ b``): never printed."""
    readers: dict[int, list[Node]] = {}
    for s in fn.stmts:
        for i in s.node.inputs:
            readers.setdefault(id(i), []).append(s.node)
    outputs = {id(o) for o in fn.outputs}
    out: set[int] = set()
    for s in fn.stmts:
        n = s.node
        if id(n) in outputs or id(n) not in readers:
            continue
        if all(_reads_through(r, n) for r in readers[id(n)]):
            out.add(id(n))
    return out


def _reads_through(reader: Node, n: Node) -> bool:
    """Whether ``reader`` reads its operand ``n`` (once) without ``n`` being materialised."""
    absorbs = get_op(reader.op).absorbs
    if absorbs is None or sum(i is n for i in reader.inputs) != 1:
        return False
    return any(x is n for x in absorbs(reader))


class _FunctionPrinter:
    """One kernel function: storage of each value, statements, copies into the outputs."""

    def __init__(
        self,
        prog: Program,
        fn: Function,
        names: CNames,
        pr: Emitter,
        group_functions: GroupFunctions,
    ) -> None:
        self.prog, self.fn, self.names, self.pr = prog, fn, names, pr
        self.group_functions = group_functions  # of compacted regions, at file scope
        self.reserve: list[str] = []  # the reservations, for <fn>_scratch_bytes
        self.params = {id(n): names.of[p] for p, n in fn.params}
        self.targets = {id(s.node): names.of[s.target] for s in fn.stmts}
        stored: set[int] = set()
        if fn.region is not None:  # compacted values read later stay in their V slots
            for n in fn.region.stores:
                self.targets[id(n)] = stored_ref(fn.region, n)
                stored.add(id(n))
        self.used: set[str] = set()  # C names the code reads
        self.pos = 0  # the statement being printed (liveness for buffer reuse)
        self.memory = ""  # the scratch memory report (c_memory.describe)
        self.written_in_place: dict[int, str] = {}  # statement -> parameter it overwrites
        self.born: dict[str, int] = {}  # value -> the statement writing it
        self.last: dict[str, int] = {}  # name -> the last statement reading it
        self.aliases: list[tuple[str, str]] = []  # (alias, name) read through another name
        self.consts: dict[int, Node] = {}  # index in prog.consts -> node, for those read
        taken = set(names.taken)  # output buffers are named afresh in each function
        self.slots: list[Slot] = []
        self.updated = {p for _, p in fn.inplace}  # parameters written in place
        kept = fn.returned()
        n_res = sum(k < fn.n_results for k in kept)
        for j, k in enumerate(kept):
            node = fn.outputs[k]
            base = f"out{j}" if j < n_res else f"saved{j - n_res}"
            while base in taken:
                base += "_"
            taken.add(base)
            direct = (
                id(node) in self.targets
                and id(node) not in stored
                and all(s.node is not node for s in self.slots)
            )
            self.slots.append(Slot(base, node, direct))
        pr.ref = self.ref

    def ref(self, node: Node) -> str:
        if id(node) in self.params:
            name = self.params[id(node)]
        elif id(node) in self.prog.const_index:
            k = self.prog.const_index[id(node)]
            self.consts[k] = node
            name = self.names.of[f"_C[{k}]"]
        else:
            name = self.targets[id(node)]
        self.used.add(name)
        self.last[name] = self.pos
        return name

    def statements(self) -> tuple[list[str], list[str], list[tuple[str, str, str]]]:
        """Declarations, statements, and the scratch values (name, element count, C type)."""
        pr = self.pr
        direct = {id(s.node): s.name for s in self.slots if s.direct}
        decls: list[str] = []
        body: list[str] = []
        scratch: list[tuple[str, str, str]] = []
        results = {id(n) for n in self.fn.outputs}
        groups = fusion_groups([s.node for s in self.fn.stmts], results)
        members = {id(m) for ms in groups.values() for m in ms}
        members |= absorbed(self.fn)  # read through by their readers (x.T by matmuls)
        self.written_in_place = self._in_place_targets(groups)
        direct.update(self.written_in_place)
        where = {id(s.node): s.where for s in self.fn.stmts}
        region = self.fn.region
        for k, s in enumerate([*self.fn.stmts, None]):
            self.pos = 2 * k + 1
            if region is not None and k == region.at:
                code, arrays = region_code(pr, region, self.group_functions)
                for name, count, ct in arrays:
                    decls.append(f"{ct} *{name} = NULL;")
                    scratch.append((name, count, ct))
                    self.born[name], self.last[name] = self.pos, FOREVER  # read in place later
                body += code
            if s is None:
                break
            self.pos = 2 * k + 2
            node, tgt = s.node, self.targets[id(s.node)]
            self.born[tgt] = self.pos
            ct = node.dtype.c_type
            if id(node) in members:  # computed in its group's loop, at the group's root
                continue
            for m in groups.get(id(node), []):
                body.append(f"/* {block_comment(f'{self.targets[id(m)]}: {where[id(m)]}')} */")
            body.append(f"/* {block_comment(f'{tgt}: {s.where}')} */")
            if id(node) in self.written_in_place:
                body.append(f"/* {tgt} is {self.written_in_place[id(node)]} (updated in place) */")
            is_alias = get_op(node.op).alias
            alias = is_alias and node.inputs[0].op != "const"
            if id(node) in direct:
                decls.append(f"{ct} *const {tgt} = {direct[id(node)]};")
            elif alias:
                decls.append(f"const {ct} *{tgt} = NULL;")
                src = self.ref(node.inputs[0])
                self.aliases.append((tgt, src))
                body += [*pr.alias_check(node), f"{tgt} = {src};"]
                continue
            else:
                decls.append(f"{ct} *{tgt} = NULL;")
                scratch.append((tgt, prod(node.shape).c(pr.dim), ct))
            if is_alias:  # into a result buffer, or of a literal
                body += pr.alias_check(node) + pr.copy(node, node.inputs[0], tgt)
            elif id(node) in groups:
                body += fused_loop(pr, node, groups[id(node)], tgt, self.targets)
            else:
                body += pr.statement(node, tgt)
        return decls, body, scratch

    def _in_place_targets(self, groups: dict[int, list[Node]]) -> dict[int, str]:
        """Updated parameters whose new value's statement can write straight into the
        parameter's buffer (``id(node) -> parameter``): an elementwise statement (each element
        read and written at one index) that comes after every other statement reading the
        parameter. The others are computed into scratch and copied at the end (``tail``)."""
        fn = self.fn
        if fn.region is not None or not fn.inplace:
            return {}
        at: dict[int, int] = {}  # statement -> position (fused statements: their root's)
        for k, s in enumerate(fn.stmts):
            at[id(s.node)] = k
            for m in groups.get(id(s.node), []):
                at[id(m)] = k
        last: dict[int, int] = {}
        for s in fn.stmts:
            for i in s.node.inputs:
                last[id(i)] = max(last.get(id(i), -1), at[id(s.node)])
        slotted = {id(sl.node) for sl in self.slots}
        out: dict[int, str] = {}
        for k, p in fn.inplace:
            node, (pname, pnode) = fn.outputs[k], fn.params[p]
            ok = (
                id(node) in at
                and fusible(node)
                and id(node) not in slotted
                and id(node) not in out
                and last.get(id(pnode), -1) <= at[id(node)]
                and not any(m is node for ms in groups.values() for m in ms)
            )
            if ok:
                out[id(node)] = self.names.of[pname]
        return out

    def arena(self, scratch: list[tuple[str, str, str]]) -> tuple[list[str], list[str]]:
        """One block of scratch memory for every intermediate value (64-byte aligned parts)."""
        if not scratch:
            return [], []
        self.pr.helpers.add("reserve")
        p = plan(scratch, self.born, self.last, self.aliases)
        self.memory = describe_memory(p)
        decls = [f"size_t _at[{len(p.blocks)}], _top = 0;", "char *_scratch = NULL;"]
        code = [f"/* {self.memory}: a value's block is reused once it is dead */"]
        for k, (count, ct) in enumerate(p.blocks):
            users = ", ".join(nm for nm, _, _ in scratch if p.block_of[nm] == k)
            n = _checked_count(count)
            if n != count:
                self.pr.helpers.add("mul_count")
            code.append(f"_at[{k}] = _sg_reserve(&_top, {n}, sizeof({ct})); /* {users} */")
            self.reserve.append(f"(void)_sg_reserve(&_top, {n}, sizeof({ct}));")
        code += [
            "if (_scratch_mem == NULL || _top > SIZE_MAX - 64 || _top + 64 > _scratch_cap)",
            "    SG_NOMEM();",
            "_scratch = (char *)_scratch_mem + (64 - (uintptr_t)_scratch_mem % 64) % 64;",
        ]
        for name, _, ct in scratch:
            code.append(f"{name} = ({ct} *)(_scratch + _at[{p.block_of[name]}]);")
        return decls, code

    def tail(self) -> list[str]:
        """Copies into the outputs not written by their statement (inputs, constants, aliases,
        repeated outputs, literals), then the in-place updates of parameters (last: every
        statement has read the old values by then)."""
        out: list[str] = []
        for k, p in self.fn.inplace:
            node, (pname, pnode) = self.fn.outputs[k], self.fn.params[p]
            if node is pnode or id(node) in self.written_in_place:
                continue
            cname, ct = self.names.of[pname], node.dtype.c_type
            n = prod(node.shape).c(self.pr.dim)
            out.append(f"/* {cname} (updated in place): {type_str(node)} */")
            if node.op == "const":
                out += self.pr.fill(cname, n, self.pr.at(node, "0"))
            else:
                out.append(f"memcpy({cname}, {self.ref(node)}, (size_t)({n}) * sizeof({ct}));")
        for slot in self.slots:
            if slot.direct:
                continue
            node, ct = slot.node, slot.node.dtype.c_type
            n = prod(node.shape).c(self.pr.dim)
            out.append(f"/* {slot.name}: {type_str(node)} */")
            if node.op == "const":
                out += self.pr.fill(slot.name, n, self.pr.at(node, "0"))
            else:
                out.append(f"memcpy({slot.name}, {self.ref(node)}, (size_t)({n}) * sizeof({ct}));")
        return out

    def render(self, cname: str) -> dict[str, Any]:
        decls, body, scratch = self.statements()
        self.pos = FOREVER  # what the tail reads lives to the end
        tail = self.tail()
        arena_decls, arena = self.arena(scratch)
        sig = [f"const sg_dims *restrict {_DIMS}", f"sg_error *restrict {_ERR}"]
        for k, (p, n) in enumerate(self.fn.params):
            # an updated parameter is read and written through one pointer: no restrict
            ct, var = n.dtype.c_type, self.names.of[p]
            sig.append(f"{ct} *{var}" if k in self.updated else f"const {ct} *restrict {var}")
        consts = sorted(self.consts)
        for k in consts:
            sig.append(f"const {self.consts[k].dtype.c_type} *restrict {self.names.of[f'_C[{k}]']}")
        sig += [f"{s.node.dtype.c_type} *restrict {s.name}" for s in self.slots]
        sig += ["void *restrict _scratch_mem", "size_t _scratch_cap"]
        params = ", ".join(f"{p}: {type_str(n)}" for p, n in self.fn.params)
        doc = f"{cname}: ({params}) -> ({', '.join(type_str(s.node) for s in self.slots)})"
        return {
            "name": self.fn.name,
            "cname": cname,
            "doc": line_comment(doc, limit=400),
            "signature": sig,
            "unused": [c for p, _ in self.fn.params if (c := self.names.of[p]) not in self.used],
            "decls": decls + arena_decls,
            "body": arena + body,
            "tail": tail,
            "consts": consts,
            "unused_scratch": not scratch,
            "reserve": self.reserve,
        }


_DIMS = "_dims"
_ERR = "_err"


def render_c(
    prog: Program, module_name: str, parallel: bool = False, standalone: bool = False
) -> CSource:
    """The kernel and binding sources of ``prog``; the extension module is ``module_name``.

    Every kernel function takes the caller's scratch memory as two last parameters,
    ``void *restrict _scratch_mem, size_t _scratch_cap`` (the kernel never calls ``malloc``;
    too small or NULL is ``SG_ERR_NOMEM``), and ``size_t sg_<pass>_scratch_bytes(const sg_dims
    *)`` says how many bytes it needs (any alignment: 64 bytes of slack are included). The
    binding keeps one block per module and reuses it across calls while it holds the GIL (a
    fresh block when it releases the GIL around a large call), so a warm call allocates
    nothing but its results; ``symgrad.export`` hands the choice to the library's user.
    ``parallel`` adds OpenMP pragmas to large elementwise loops (build with ``-fopenmp``).
    Exception: large matrix products allocate their packing buffers (``_gemm.c.j2``), except
    when ``standalone`` (an exported library: smaller blocks, packed on the stack)."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", module_name):
        raise ValueError(f"module_name must be a C identifier, got {module_name!r}")
    names = CNames(prog)
    dim_fields = [(d, names.of[v]) for d, v in prog.dim_vars.items()]
    dim_c = dict(dim_fields)
    used_dims: set[str] = set()

    def dim(d: str) -> str:
        used_dims.add(d)
        return dim_c[d]

    pr = Emitter(dim)
    pr.parallel = parallel  # compile with -fopenmp (else the pragmas are unknown, ignored)
    functions: list[dict[str, Any]] = []
    bindings: list[dict[str, Any]] = []
    group_functions = GroupFunctions()
    for fn in (f for f in (prog.forward, prog.backward) if f is not None):
        used_dims.clear()
        pr.fails = False
        fp = _FunctionPrinter(prog, fn, names, pr, group_functions)
        info = fp.render(f"sg_{fn.name}")
        bound = {d for _, n in fn.params for d in n.shape if isinstance(d, str)}
        if used_dims - bound:
            missing = sorted(used_dims - bound)
            raise ValueError(f"{fn.name}: symbolic dims {missing} are bound by no parameter")
        info["dims"] = [(d, dim_c[d]) for d in prog.dim_vars if d in used_dims]
        info["fails"] = pr.fails
        functions.append(info)
        bindings.append(binding_info(prog, fn, fp.slots, info, dim_fields))
    kernel = render(
        "c/kernel.c.j2",
        graph_hash=prog.graph_hash[:12],
        dim_fields=[(c, line_comment(repr(d))) for d, c in dim_fields],
        sites=[c_string(s) for s in pr.sites],
        helpers=sorted(pr.helpers),
        functions=functions,
        error_codes=ERROR_CODES,
        standalone=standalone,
    )
    if group_functions.definitions:  # file-scope functions, before the kernel functions
        first = f"\n// {functions[0]['doc']}\nSG_API int {functions[0]['cname']}("
        at = kernel.index(first)
        kernel = kernel[:at] + "".join(group_functions.definitions) + kernel[at:]
    binding = render(
        "c/binding.c.j2",
        module_name=module_name,
        graph_hash=prog.graph_hash[:12],
        kernel=kernel,
        n_dims=len(dim_fields),
        dim_reprs=[c_string(repr(d)) for d, _ in dim_fields],
        consts=[
            arg_desc(f"_C[{k}]", c.array.shape, c.array.dtype.name)
            for k, c in enumerate(prog.consts)
        ],
        functions=bindings,
    )
    return CSource(kernel=kernel, binding=binding)


def _checked_count(count: str) -> str:
    """The element count ``a * b * ...`` (a :class:`Mono`'s C text) multiplied with overflow
    checks (``_sg_mul`` gives -1, which ``_sg_reserve`` refuses, instead of wrapping)."""
    factors = count.split(" * ")
    if len(factors) == 1:
        return count
    text = factors[0]
    for f in factors[1:]:
        text = f"_sg_mul({text}, {f})"
    return text
