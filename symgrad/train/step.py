"""``symgrad.compile_step``: forward + backward + optimiser update as one generated function.

Owns: building the step graph (the loss, its gradients with respect to the optimiser's
parameters, and the update as graph nodes; optimiser state and per-step scalars are extra
inputs and outputs), and :class:`CompiledStep`, which runs it and writes the new parameter
values into the parameters' arrays in place. The loss function may return more outputs after
the loss (``return loss, logits``: the step returns them too), and the module state it updates
— a buffer rebound under ``no_grad`` (``self.running_mean = 0.9 * self.running_mean + ...``) or
updated in place (``running_mean.mul_(0.9)``) — is carried: the new value is an output written
into the buffer's array after every step (``symgrad.train.state``). Tracing leaves the user's
objects as it found them. It is the fastest way to train and what
``symgrad.export(..., train_step=...)`` ships. May import: every symgrad layer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from symgrad.autodiff.vjp import vjp
from symgrad.frontend.random import advance
from symgrad.frontend.tensor import Tensor
from symgrad.frontend.trace import Spec, TracedGraph
from symgrad.frontend.value import Value
from symgrad.frontend.value_nodes import LeafArrays, ValuePack
from symgrad.ir.errors import ArgumentError, ShapeError
from symgrad.ir.graph import Graph, gc_paused
from symgrad.ir.node import Node
from symgrad.ir.opdef import const, fmt_shape
from symgrad.lower.driver import load, lower
from symgrad.lower.jit import wrt_positions
from symgrad.ops.source import make_input
from symgrad.ops.tape import LEAF
from symgrad.optim import Optimizer
from symgrad.passes.levels import DEFAULT_OPT
from symgrad.passes.pack import pack_parameters
from symgrad.passes.reroll import reroll
from symgrad.runtime import modules, tape
from symgrad.runtime.compiled import CompiledFunction
from symgrad.train.state import trace_with_state

#: leaf Values a step needs before the C tape module moves them (see CompiledStep.__call__)
LEAF_IO_MIN = 64


class CompiledStep:
    """``step(*batch) -> loss``: one training step; parameters are updated in place."""

    def __init__(
        self,
        fn: CompiledFunction,
        optimizer: Optimizer,
        n_params: int,
        n_extra: int = 0,
        buffers: Sequence[Tensor] = (),
    ) -> None:
        self.function = fn
        self.optimizer = optimizer
        self._n_params = n_params
        # (the generated step returns the loss and the outputs not written in place: the
        # loss function's other outputs, then the buffers' new values)
        first = 1
        self._extra = slice(first, first + n_extra)
        self._buffers = [(b, first + n_extra + k) for k, b in enumerate(buffers)]
        self.buffers = tuple(buffers)  # the module state each step updates
        self._advance = advance(fn.captures)  # random generators: a new counter every step
        # eager Values hold Python floats: the step updates arrays standing for them
        self._captures = LeafArrays(fn.captures)
        self._tensors = [p for p in optimizer.params if not isinstance(p, Value)]
        # many Values (a micrograd model): moved in and out by the C tape module, built on the
        # first call (once per machine, like eager Value.backward()'s)
        self._leaf_io = fn.backend == "c" and self._captures.n_values >= LEAF_IO_MIN
        # the per-step scalars go in as NumPy scalars of the parameters' dtype (0-d buffers,
        # cheaper to make than 0-d arrays)
        self._scalar = optimizer.params[0].dtype.np.type

    def source(self, which: str = "all") -> str:
        """The generated step: loss, gradients and update in one function (``"forward"``)."""
        return self.function.source(which)

    def memory(self) -> dict[str, str]:
        """The step's scratch memory plan (see :meth:`CompiledFunction.memory`)."""
        return self.function.memory()

    @property
    def graph(self) -> Graph:
        return self.function.graph

    @property
    def backend(self) -> str:
        return self.function.backend

    def __call__(self, *batch: Any) -> Any:
        opt = self.optimizer
        fn = self.function
        if self._leaf_io:
            self._leaf_io = False
            self._captures.io = tape.leaf_io()
        extra = [*opt.state(), *map(self._scalar, opt.scalars_next())]
        if len(batch) == fn.n_args and fn.backend == "c":
            # the generated binding validates every argument itself (see CompiledFunction) and
            # writes the new parameter values into the parameters' arrays
            try:
                results = fn._fwd(*batch, *self._captures.arrays(), *extra)[0]
            except TypeError:
                results = self._call_converted(batch, extra)
        else:
            results = self._call_converted(batch, extra)
        self._captures.store()
        self._advance()
        for b, k in self._buffers:
            np.copyto(b.data, results[k])
        loss = float(results[0])
        if self._extra.start == self._extra.stop:
            return loss
        return (loss, *(np.array(r) for r in results[self._extra]))

    def _call_converted(self, batch: tuple[Any, ...], extra: list[Any]) -> Any:
        """The slow path: parameters made writable contiguous arrays of their dtype (they are
        updated in place), the batch converted and checked."""
        for p in self._tensors:  # (Values are updated through self._captures)
            data = p._data
            if not (isinstance(data, np.ndarray) and _writable(data) and data.dtype == p.dtype.np):
                p.data = np.array(data, dtype=p.dtype.np, order="C")
        state = self.optimizer.state()
        if not all(_writable(a) for a in state):
            self.optimizer.set_state([np.array(a, order="C") for a in state])
            extra = [*self.optimizer.state(), *extra[len(state) :]]
        fn = self.function
        arrays = fn._converted_with(batch, extra, self._captures.arrays())
        results, _ = fn._fwd(*arrays)
        return results

    def __repr__(self) -> str:
        return f"<CompiledStep {self.function.__name__} backend={self.backend!r}>"


def _writable(a: Any) -> bool:
    return isinstance(a, np.ndarray) and a.flags.writeable and a.flags.c_contiguous


def compile_step(
    loss_fn: Callable[..., Any],
    *specs_or_arrays: Any,
    optimizer: Optimizer,
    backend: str | None = None,
    opt: int = DEFAULT_OPT,
) -> CompiledStep:
    """Compile one training step of ``loss_fn`` (which closes over ``optimizer.params``).
    ``loss_fn`` returns the loss, or ``(loss, *outputs)``: the step then returns
    ``(loss, *outputs)`` as a float and arrays."""
    if backend is not None:
        modules.resolve_backend(backend)  # reject a bad name before tracing
    with gc_paused():  # a large graph: see ir.graph.gc_paused
        parts = build_step(
            loss_fn, specs_or_arrays, optimizer, carry=True, rerolled=opt >= 2, packed=opt >= 2
        )
        graph, step_graph, n_params = parts.graph, parts.step_graph, parts.n_params
        # the new parameters (outputs 1..n) overwrite the parameters' arrays (the inputs at
        # `positions`), and the new optimiser state (the outputs after them) the state's arrays
        n_state = len(optimizer.state())
        first_state = parts.n_inputs
        inplace = [(1 + k, p) for k, p in enumerate(parts.positions)]
        inplace += [(1 + n_params + j, first_state + j) for j in range(n_state)]
        lowered = lower(step_graph, opt=opt, inplace=inplace)
        fn = CompiledFunction(
            getattr(loss_fn, "__name__", "step"),
            graph,
            graph.n_args,
            parts.captures,
            [],
            lowered.prog,
            load(lowered, backend),
            lowered.optimised,
        )
    return CompiledStep(fn, optimizer, n_params, parts.n_extra, parts.buffers)


def build_step_graph(
    loss_fn: Callable[..., Any],
    specs_or_arrays: tuple[Any, ...],
    optimizer: Optimizer,
    rerolled: bool = True,
) -> tuple[TracedGraph, Graph, int]:
    """The traced loss and the step graph (to lower with :func:`symgrad.lower.driver.lower`): inputs
    are the loss function's arguments, its captured leaves, the optimiser state and the per-step
    scalars (``hyper<k>``); outputs are the loss, the new parameters (in the optimiser's order) and
    the new state. Also returns the number of parameters. ``symgrad.export`` builds its training
    step with this too (without the loss function's other outputs and the module state).
    ``rerolled``: differentiate the loss re-rolled into tensor ops when it was written with
    scalars micrograd's way (``symgrad.passes.reroll``)."""
    parts = build_step(loss_fn, specs_or_arrays, optimizer, carry=False, rerolled=rerolled)
    return parts.graph, parts.step_graph, parts.n_params


def build_step(
    loss_fn: Callable[..., Any],
    specs_or_arrays: tuple[Any, ...],
    optimizer: Optimizer,
    carry: bool,
    rerolled: bool = True,
    packed: bool = False,
) -> StepParts:
    """:func:`build_step_graph`; with ``carry`` the step graph's outputs go on with the loss
    function's other outputs and the new values of the module state it updates. With
    ``packed`` (and ``rerolled``), the leaf ``Value`` parameters a re-rolled layer gathers
    become one array input per weight matrix and bias (``symgrad/passes/pack.py``) when the
    optimiser keeps no per-parameter state."""
    specs = tuple(Spec.of(s) for s in specs_or_arrays)
    traced = trace_with_state(loss_fn, specs, loss_fn, carry)
    graph = traced.graph
    rolled = reroll(graph) if rerolled else graph
    loss = rolled.outputs[0]
    if loss.shape != () or not loss.dtype.is_float:
        raise ShapeError(
            "compile_step: the loss must be a float scalar, got "
            f"{loss.dtype}{fmt_shape(loss.shape)}"
        )
    positions = wrt_positions(list(optimizer.params), graph)
    if len(set(positions)) != len(positions):
        raise ArgumentError("compile_step: a parameter appears twice in the optimizer")
    rest = list(graph.outputs[1:]) if carry else []
    inputs, names = list(graph.inputs), list(graph.input_names)
    captures: list[Any] = list(graph.captures)
    params = [graph.inputs[k] for k in positions]
    if packed and rolled is not graph and not optimizer.state():
        got = _packed(graph, positions, Graph(inputs, [loss, *rest], names))
        if got is not None:
            (inputs, names, captures, params), outs = got
            loss, rest = outs[0], outs[1:]
            positions = [inputs.index(p) for p in params]
    cmap = vjp([loss], [const(1.0, loss.dtype)], params, all_nodes=True)
    assert isinstance(cmap, dict)
    grads = []
    for p in params:
        g = cmap.get(id(p))
        grads.append(g if g is not None else const(0.0, p.dtype) * p)
    state = [
        make_input(np.shape(a), np.asarray(a).dtype, f"{name}{k}")
        for name, arrays in _state_groups(optimizer)
        for k, a in enumerate(arrays)
    ]
    scalars = [
        make_input((), optimizer.params[0].dtype, f"hyper{k}")
        for k in range(len(optimizer.scalars()))
    ]
    new_p, new_s = optimizer.update_nodes(params, grads, state, scalars)
    all_names = [*names, *(n.attrs["name"] for n in state + scalars)]
    step_graph = Graph([*inputs, *state, *scalars], [loss, *new_p, *new_s, *rest], all_names)
    return StepParts(
        graph,
        step_graph,
        len(params),
        traced.n_extra,
        traced.buffers,
        positions,
        len(inputs),
        captures,
    )


def _packed(
    graph: TracedGraph, positions: list[int], loss_graph: Graph
) -> tuple[tuple[list[Node], list[str], list[Any], list[Node]], list[Node]] | None:
    """The re-rolled loss over packed parameters: (inputs, names, captures, parameters) and
    the outputs, or None when nothing packs. Only leaf ``Value`` parameters are packed."""
    n_args = graph.n_args
    caps = graph.captures
    leaf = [graph.inputs[k] for k in positions if k >= n_args and _leaf_value(caps[k - n_args])]
    got = pack_parameters(loss_graph, leaf, n_args)
    if got is None:
        return None
    packed, packs = got
    owner = {graph.inputs[n_args + i]: c for i, c in enumerate(caps)}
    by_member = {m: pk for pk in packs for m in pk.members}
    by_node = {pk.node: pk for pk in packs}
    captures: list[Any] = []
    for node in packed.inputs[n_args:]:
        pk = by_node.get(node)
        if pk is None:
            captures.append(owner[node])
        else:
            members = [v for m in pk.members if isinstance(v := owner[m], Value)]
            captures.append(ValuePack(members, pk.shape, pk.name))
    params: list[Node] = []
    for k in positions:
        p = graph.inputs[k]
        pk = by_member.get(p)
        node = p if pk is None else pk.node
        if node not in params:
            params.append(node)
    outs = list(packed.outputs)
    return (list(packed.inputs), list(packed.input_names), captures, params), outs


def _leaf_value(c: object) -> bool:
    return type(c) is Value and c._code == LEAF


@dataclass
class StepParts:
    graph: TracedGraph  # the traced loss function (outputs: loss, extras, new buffer values)
    step_graph: Graph
    n_params: int
    n_extra: int
    buffers: list[Tensor]
    positions: list[int]  # the step graph's inputs that are the parameters, in update order
    n_inputs: int  # the loss function's inputs (arguments, captures): the state comes next
    captures: list[Any]  # what stands for each captured input (a Tensor, a Value, a ValuePack)


def _state_groups(optimizer: Optimizer) -> list[tuple[str, list[np.ndarray]]]:
    names = optimizer.state_names()
    arrays = optimizer.state()
    if not names:
        return []
    per = len(arrays) // len(names)
    return [(nm, arrays[i * per : (i + 1) * per]) for i, nm in enumerate(names)]
