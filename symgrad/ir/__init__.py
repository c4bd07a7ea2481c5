"""The intermediate representation: dtypes, shapes, the interned Node, OpDef registry, Graph.

Owns: everything a graph is made of. May import: numpy and the standard library only.
"""

from symgrad.ir.dtypes import BOOL, FLOAT32, FLOAT64, INT64, DType, as_dtype
from symgrad.ir.errors import SymgradError, TraceError
from symgrad.ir.graph import Graph
from symgrad.ir.node import Node
from symgrad.ir.opdef import OpDef, get_op, registry
from symgrad.ir.provenance import Provenance

__all__ = [
    "BOOL",
    "FLOAT32",
    "FLOAT64",
    "INT64",
    "DType",
    "Graph",
    "Node",
    "OpDef",
    "Provenance",
    "SymgradError",
    "TraceError",
    "as_dtype",
    "get_op",
    "registry",
]
