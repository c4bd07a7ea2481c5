"""Plans of eager backward passes, keyed by the structure of the recorded graph.

Owns: the *signature* of a recorded forward graph — per node its op, its attributes, shape and
dtype, which nodes it reads, whether it has an eager value and whether it receives a gradient;
never the values of leaves or array constants, never object ids — and the bounded table
(least recently used first out) from signature to a :class:`Plan`: the prepared backward code
and where its arguments and results sit in the forward graph. A training loop that rebuilds
the same graph from a new minibatch every step has the same signature every step, so its
``loss.backward()`` derives, lowers and looks up nothing after the first step: it computes the
signature, gathers the arrays and calls the prepared code.

The signature determines the backward graph: VJP rules build nodes from the forward nodes'
structure (scalar constants, which rules may read, are in the signature by their exact bits),
and the backward region starts at the nodes with eager values. May import: numpy,
``symgrad.ir`` and ``symgrad.ops``.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Callable, Container, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from symgrad.ir.node import Node

#: Runs prepared backward code: the boundary arrays, in the order given to ``prepare``, to the
#: output arrays.
Runner = Callable[[list[Any]], list[Any]]


class Executor(Protocol):
    """How backward graph regions run (installed by ``symgrad/__init__.py``; the generated-code
    executor is ``symgrad.lower.eager``)."""

    def prepare(self, boundary: Sequence[Node], outputs: Sequence[Node], reason: str) -> Runner:
        """Code computing ``outputs`` from the values of ``boundary`` (the region between
        them); ``reason`` says why it is needed (for the compile log)."""
        ...

    def policy(self) -> Hashable:
        """What, besides the graph, decides the code ``prepare`` returns (e.g. the backend
        chosen by environment variables): plans prepared under another policy are not used."""
        ...


#: How many plans the table keeps (the least recently used goes first).
MAX_PLANS = 256

# (an attribute value of one of these types is its own key; floats are keyed by their bits)
_PLAIN = frozenset({int, str, bool, type(None)})


def _attr_value(v: Any) -> Any:
    cls = v.__class__
    if cls in _PLAIN:
        return v
    if cls is float:
        return ("f", v.hex())  # 0.0 and -0.0 differ, nan equals itself
    if cls is tuple:
        return tuple([_attr_value(x) for x in v])
    if hasattr(v, "digest"):  # an array constant's content: never part of the signature
        return "array"
    return (cls.__name__, repr(v))


def _attrs_key(op: str, attrs: dict[str, Any]) -> tuple[Any, ...]:
    if op == "input" or op == "constant":  # uid, name, content: not structure
        return ()
    if len(attrs) == 1:
        ((k, v),) = attrs.items()
        return (k, _attr_value(v))
    return tuple([(k, _attr_value(attrs[k])) for k in sorted(attrs)])


def signature(
    out: Node, env: Mapping[Node, Any], wrt: Container[Node]
) -> tuple[list[Node], tuple[Any, ...]]:
    """The forward graph behind ``out`` in topological order (:func:`symgrad.ir.graph.toposort`'s
    order: depth first, inputs in order) and its structural key. ``env`` holds the nodes with
    eager values, ``wrt`` the nodes that receive gradients. (One walk: this runs for every
    ``backward()``.)"""
    order: list[Node] = []
    pos: dict[Node, int] = {}
    sig: list[Any] = []
    emit, listed = sig.append, order.append
    # depth first with an iterator per open node: a leaf input is listed when first met, an
    # inner input is opened (its parent waits on the stack); a node whose inputs are all
    # listed is listed itself
    stack: list[tuple[Node, Iterator[Node]]] = []
    node, it = out, iter(out.inputs)
    while True:
        for child in it:
            if child in pos:
                continue
            if child.inputs:
                stack.append((node, it))
                node, it = child, iter(child.inputs)
                break
            pos[child] = len(order)
            listed(child)
            op = child.op
            attrs = child.attrs
            a = _attrs_key(op, attrs) if attrs and op != "input" else ()
            flags = (2 if child in wrt else 0) + (1 if child in env else 0)
            emit((op, a, child.shape, child.dtype.name, flags))
        else:
            pos[node] = len(order)
            listed(node)
            attrs = node.attrs
            a = _attrs_key(node.op, attrs) if attrs else ()
            flags = (2 if node in wrt else 0) + (1 if node in env else 0)
            ins = node.inputs
            if len(ins) == 1:
                at: Any = pos[ins[0]]
            elif len(ins) == 2:
                at = (pos[ins[0]], pos[ins[1]])
            else:
                at = tuple([pos[i] for i in ins])
            if ins:
                emit((node.op, a, node.shape, node.dtype.name, flags, at))
            else:  # (``out`` itself a leaf)
                emit((node.op, a, node.shape, node.dtype.name, flags))
            if not stack:
                break
            node, it = stack.pop()
    return order, tuple(sig)


def shapeless(sig: tuple[Any, ...]) -> tuple[Any, ...]:
    """The signature without shapes and attributes (which hold shapes too: a reshape's target,
    a broadcast): the ops and how they connect, to tell a new shape from a new structure."""
    return tuple(e[:1] + e[3:] for e in sig)


def constless(sig: tuple[Any, ...]) -> tuple[Any, ...]:
    """The signature without the values of scalar constants."""
    return tuple(e[:1] + e[2:] if e[0] == "const" else e for e in sig)


#: A boundary argument: a position in the forward order, None (the cotangent given to
#: ``backward(gradient)``), or an array (a constant made by a VJP rule).
Source = int | np.ndarray | None


@dataclass(frozen=True, slots=True)
class Plan:
    """Prepared backward code for one signature: ``sources[k]`` says where its k-th argument
    comes from, ``targets[k]`` the forward position of the node whose gradient result k is."""

    runner: Runner
    sources: tuple[Source, ...]
    targets: tuple[int, ...]

    def arguments(self, order: Sequence[Node], env: Mapping[Node, Any], seed: Any) -> list[Any]:
        args: list[Any] = []
        for s in self.sources:
            if s.__class__ is int:
                n = order[s]
                v = env.get(n)
                args.append(v if v is not None else n.attrs["value"].array)
            elif s is None:
                args.append(seed)
            else:
                args.append(s)
        return args


#: After this many plans for one structure (differing in shapes or scalar constants), a
#: warning says that per-step numbers should be arrays.
VARIANTS_WARNING = 8


class Plans:
    """The table of plans (a bounded LRU), with hit and build counters."""

    def __init__(self, limit: int = MAX_PLANS) -> None:
        self.limit = limit
        self._table: OrderedDict[Hashable, Plan] = OrderedDict()
        # (kind, policy, erased signature) -> how many plans were made for it
        self._seen: OrderedDict[Hashable, int] = OrderedDict()
        self.hits = 0
        self.built = 0

    def __len__(self) -> int:
        return len(self._table)

    def get(self, key: Hashable) -> Plan | None:
        plan = self._table.get(key)
        if plan is not None:
            self._table.move_to_end(key)
            self.hits += 1
        return plan

    def reason(self, policy: Hashable, sig: tuple[Any, ...]) -> str:
        """Why a signature that has no plan needs one: the first eager backward pass of the
        process, new values of scalar constants, new shapes, or a new structure."""
        if not self._seen:
            return "first eager backward pass"
        if ("const", policy, constless(sig)) in self._seen:
            return "new scalar constants"
        if ("shape", policy, shapeless(sig)) in self._seen:
            return "new shapes"
        return "new structure"

    def put(self, key: Hashable, policy: Hashable, sig: tuple[Any, ...], plan: Plan) -> None:
        self.built += 1
        self._table[key] = plan
        self._seen[("const", policy, constless(sig))] = 0
        variant = ("shape", policy, shapeless(sig))
        n = self._seen.pop(variant, 0) + 1
        self._seen[variant] = n
        for table in (self._table, self._seen):
            while len(table) > self.limit:
                table.popitem(last=False)
        if n == VARIANTS_WARNING:
            warnings.warn(
                f"eager backward(): one graph structure has been compiled {n} times, for "
                "different shapes or scalar constants. A Python number that changes every step "
                "(a learning rate, a temperature) is a constant of the generated code: pass it "
                "as a 0-d array (np.asarray(x, dtype)) or a Tensor to make it an input",
                RuntimeWarning,
                stacklevel=5,
            )

    def clear(self) -> None:
        self._table.clear()
        self._seen.clear()

    def forget_history(self) -> None:
        """Forget which structures were compiled and how often, keeping the plans: what a new
        program would see (the test suite calls it between tests, which share one process)."""
        self._seen.clear()


PLANS = Plans()
