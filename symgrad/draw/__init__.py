"""``symgrad.draw``: pictures of graphs (``draw_dot`` like micrograd's, DOT text, tables).

Owns: nothing itself (the public module path); the drawing is in ``dot``.
"""

from symgrad.draw.dot import (
    Annotations,
    Dot,
    GraphvizNotFound,
    dot_program,
    draw_dot,
    fmt_value,
    graph_dot,
    graph_table,
    op_symbol,
    render,
    table,
    to_svg,
    traced_values,
)

__all__ = [
    "Annotations",
    "Dot",
    "GraphvizNotFound",
    "dot_program",
    "draw_dot",
    "fmt_value",
    "graph_dot",
    "graph_table",
    "op_symbol",
    "render",
    "table",
    "to_svg",
    "traced_values",
]
