"""The ``symgrad`` subcommands that take a MODEL: ``show``, ``graph`` and ``export``.

Owns: loading a MODEL (``path/to/model.py:function``, see :mod:`symgrad.model_ref`) for these
commands, turning every way a model cannot be used into :class:`CommandError` (one line on
stderr, exit status 2, printed by :func:`symgrad.cli.main`), choosing what to differentiate
(every float argument and captured float leaf, when the first output is a float scalar), and
syntax highlighting (Pygments, only on a terminal or with ``--color always``, only when it is
installed).

May import: anything in ``symgrad`` (a top layer); heavy imports happen inside the handlers.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing import TypeAlias

    from symgrad.frontend.trace import TracedGraph
    from symgrad.model_ref import ModelRef

    Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]

#: ``--opt``'s default: ``symgrad.passes.levels.DEFAULT_OPT`` (not imported here: the CLI starts
#: without loading the compiler; a test keeps the two equal)
OPT = 2


INPUTS = "_inputs()"


class _ModelHelp(argparse.RawDescriptionHelpFormatter):
    """The description's first paragraph wrapped, then the MODEL convention as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        import textwrap

        return textwrap.fill(text, min(width, 92), initial_indent=indent) + MODEL_HELP


class CommandError(Exception):
    """A command that cannot proceed: its message is printed as one line, exit status 2."""


def one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def load_model(ref_text: str) -> ModelRef:
    from symgrad.model_ref import ModelRefError, load

    try:
        return load(ref_text)
    except ModelRefError as e:
        raise CommandError(str(e)) from e


def model_specs(ref: ModelRef) -> tuple[Any, ...]:
    from symgrad.model_ref import ModelRefError

    try:
        return ref.specs()
    except ModelRefError as e:
        raise CommandError(str(e)) from e


def model_inputs(ref: ModelRef) -> tuple[Any, ...]:
    from symgrad.model_ref import ModelRefError

    try:
        return ref.example_inputs()
    except ModelRefError as e:
        raise CommandError(str(e)) from e


def model_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "this model cannot be traced or compiled" (exit status 2)."""
    from symgrad.ir.errors import SymgradError

    return (SymgradError, ValueError, TypeError, ArithmeticError, LookupError)


def traced(ref: ModelRef, specs: tuple[Any, ...]) -> TracedGraph:
    from symgrad.frontend.trace import trace

    try:
        return trace(ref.function, *specs)
    except model_errors() as e:
        raise CommandError(f"{ref}: {one_line(e)}") from e


def differentiable(graph: TracedGraph) -> list[Any]:
    """``wrt`` for the whole model: every float argument and captured float leaf, when the first
    output is a float scalar (a loss); else ``[]``."""
    out = graph.outputs[0]
    if out.shape != () or not out.dtype.is_float:
        return []
    args: list[Any] = [k for k in range(graph.n_args) if graph.inputs[k].dtype.is_float]
    return args + [c for c in graph.captures if c.dtype.is_float]


def use_color(mode: str) -> bool:
    if mode == "always":
        return True
    if mode == "never":
        return False
    isatty = getattr(sys.stdout, "isatty", None)
    return bool(isatty and isatty())


def highlight(text: str, language: str, color: bool) -> str:
    """``text`` with ANSI colours (Pygments) when ``color`` and Pygments is installed."""
    if not color:
        return text
    import importlib

    try:  # imported by name: Pygments is optional and ships no type stubs
        pygments = importlib.import_module("pygments")
        formatters = importlib.import_module("pygments.formatters")
        lexers = importlib.import_module("pygments.lexers")
    except ImportError:
        return text
    lexer = lexers.PythonLexer() if language == "python" else lexers.CLexer()
    return str(pygments.highlight(text, lexer, formatters.TerminalFormatter()))


# -- show ---------------------------------------------------------------------------------------
def cmd_show(args: argparse.Namespace) -> int:
    """Print the code symgrad generates for a model (or, with --graph, its graph)."""
    import symgrad as sg

    if args.html and args.graph:
        raise CommandError("--html shows the generated code; it cannot be combined with --graph")
    ref = load_model(args.model)
    specs = model_specs(ref)
    graph = traced(ref, specs)
    wrt = differentiable(graph)
    if args.which == "backward" and not wrt:
        out = graph.outputs[0]
        raise CommandError(
            f"{ref}: the first output is {out.dtype.short}[{','.join(map(str, out.shape))}], "
            "not a float scalar loss, so there is no backward pass; use --pass forward"
        )
    try:
        compiled = sg.compile(
            ref.function, *specs, wrt=wrt or None, backend=args.backend, opt=args.opt
        )
    except model_errors() as e:
        raise CommandError(f"{ref}: {one_line(e)}") from e
    if args.html:
        from symgrad.codegen.explorer import page

        title = f"{ref.name} ({ref.path.name}, opt={args.opt})"
        return _write(args.output, page(compiled.program, title, compiled.backend), "explorer")
    color = use_color(args.color) and args.output is None
    if args.graph:
        text = compiled.graph.text(provenance=not args.no_provenance)
        return _write(args.output, text if text.endswith("\n") else text + "\n", "graph")
    language = "python" if compiled.backend == "numpy" else "c"
    text = compiled.source(args.which)
    return _write(args.output, highlight(text, language, color), "code")


def _write(output: str | None, text: str, what: str) -> int:
    """``text`` to stdout, or to the file ``output`` (then one line saying so)."""
    if output is None:
        sys.stdout.write(text)
        return 0
    out = Path(output)
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as e:
        raise CommandError(f"cannot write {out}: {one_line(e)}") from e
    print(f"wrote {out} ({what}, {len(text.encode('utf-8')):,} bytes)")
    return 0


def _add_show(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "show",
        help="print the generated code (or the graph) of a model",
        description="Compile MODEL at its example specs and print the generated code: the "
        "forward pass and, when the first output is a float scalar loss, the backward pass "
        "(gradients of every float argument and captured weight). Syntax-highlighted on a "
        "terminal when Pygments is installed. --html -o page.html writes the explorer: the "
        "model's source beside the NumPy and C code, each line linked to its statements.",
        formatter_class=_ModelHelp,
    )
    p.add_argument("model", metavar="MODEL", help="path/to/model.py:function")
    p.add_argument("--backend", choices=("numpy", "c"), default="numpy", help="(numpy)")
    p.add_argument(
        "--pass",
        dest="which",
        choices=("forward", "backward", "all"),
        default="all",
        help="which pass to print (all: the whole generated file)",
    )
    p.add_argument(
        "--opt", type=int, choices=(0, 1, 2), default=OPT, help=f"optimisation level ({OPT})"
    )
    p.add_argument(
        "--graph", action="store_true", help="print the graph the code is generated from instead"
    )
    p.add_argument(
        "--no-provenance", action="store_true", help="with --graph: leave out the file:line notes"
    )
    p.add_argument(
        "--html",
        action="store_true",
        help="write the explorer instead: one self-contained HTML page linking each model line "
        "to its forward and backward statements, NumPy and C",
    )
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="syntax highlighting (auto: only when stdout is a terminal)",
    )
    p.set_defaults(handler=cmd_show)


# -- graph --------------------------------------------------------------------------------------
def cmd_graph(args: argparse.Namespace) -> int:
    """Draw a model's graph: DOT text, or a picture when Graphviz is installed."""
    from symgrad import draw
    from symgrad.ir.graph import Graph

    ref = load_model(args.model)
    specs = model_specs(ref)
    graph = traced(ref, specs)
    shown: Graph = graph
    if args.backward:
        from symgrad.autodiff.vjp import grad

        floats = [n for n in graph.inputs if n.dtype.is_float]
        if not differentiable(graph) or not floats:
            raise CommandError(
                f"{ref}: --backward needs a float scalar first output and float inputs"
            )
        try:
            grads = grad(graph.outputs[0], floats)
        except model_errors() as e:
            raise CommandError(f"{ref}: {one_line(e)}") from e
        shown = Graph(graph.inputs, [graph.outputs[0], *grads], graph.input_names)
    values: dict[Any, Any] = {}
    grads_at: dict[Any, Any] = {}
    if not args.no_values and not ref.has_companion and not all(s.dtype.is_float for s in specs):
        print(
            f"symgrad graph: note: drawn without values: {ref.name}{INPUTS} is needed for "
            "example inputs of integer or boolean arguments",
            file=sys.stderr,
        )
    elif not args.no_values:
        inputs = model_inputs(ref)
        arrays = [*inputs, *(c.data for c in graph.captures)]
        try:
            values, grads_at = draw.traced_values(shown, arrays)
        except model_errors() as e:
            raise CommandError(f"{ref}: evaluating at the example inputs: {one_line(e)}") from e
    title = f"{ref.name} ({ref.path.name})"
    text = draw.graph_dot(shown, values, grads_at, title=title, rankdir=args.rankdir)
    if args.table:
        sys.stdout.write(draw.graph_table(shown, values, grads_at) + "\n")
        return 0
    if args.output is None:
        sys.stdout.write(text)
        return 0
    out = Path(args.output)
    try:
        draw.render(text, out)
    except ValueError as e:
        raise CommandError(str(e)) from e
    except draw.GraphvizNotFound as e:
        dot_path = out.with_suffix(".dot")
        dot_path.write_text(text, encoding="utf-8")
        fmt = out.suffix.lstrip(".")
        print(
            f"symgrad graph: {e}; wrote the DOT text to {dot_path} instead. Render it with: "
            f"dot -T{fmt} {dot_path} -o {out}",
            file=sys.stderr,
        )
        return 0
    except (RuntimeError, OSError) as e:
        raise CommandError(f"cannot write {out}: {one_line(e)}") from e
    print(f"wrote {out} ({len(shown)} nodes)")
    return 0


def _add_graph(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "graph",
        help="draw a model's graph with values and gradients (Graphviz)",
        description="Draw MODEL's traced graph like micrograd's draw_dot: one box per node "
        "with its type, its value at the example inputs and its gradient (of the first output, "
        "when it is a float scalar). -o NAME.svg|png|pdf renders with Graphviz's dot when it is "
        "installed; otherwise the DOT text is written to NAME.dot with a hint. Without -o the "
        "DOT text is printed.",
        formatter_class=_ModelHelp,
    )
    p.add_argument("model", metavar="MODEL", help="path/to/model.py:function")
    p.add_argument("-o", "--output", metavar="FILE", help="graph.svg, graph.png, graph.pdf or .dot")
    p.add_argument(
        "--backward", action="store_true", help="draw the gradient nodes too (forward + backward)"
    )
    p.add_argument("--no-values", action="store_true", help="types only, no values or gradients")
    p.add_argument(
        "--table", action="store_true", help="print the nodes as a text table instead of DOT"
    )
    p.add_argument("--rankdir", choices=("LR", "TB"), default="LR", help="layout direction (LR)")
    p.set_defaults(handler=cmd_graph)


# -- export -------------------------------------------------------------------------------------
def cmd_export(args: argparse.Namespace) -> int:
    """Export a model (the weights it closes over) as a standalone NumPy module or C library."""
    import symgrad as sg

    ref = load_model(args.model)
    specs = model_specs(ref)
    examples = model_inputs(ref) if ref.has_companion else None
    name = args.name or ref.name
    try:
        out = sg.export(
            ref.function,
            args.output,
            *specs,
            backend=args.backend,
            name=name,
            opt=args.opt,
            examples=examples,
        )
    except model_errors() as e:
        raise CommandError(f"{ref}: {one_line(e)}") from e
    except OSError as e:
        raise CommandError(f"cannot write {args.output}: {one_line(e)}") from e
    files = sorted(p.name for p in Path(out).iterdir())
    print(f"exported {ref} to {out} ({args.backend}): {', '.join(files)}")
    if args.backend == "c":
        print(f"build and self-test it with: make -C {out} && make -C {out} check")
    else:
        print(f"use it with: import sys; sys.path.insert(0, {str(out)!r}); import {name}")
    return 0


def _add_export(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a trained model as a standalone NumPy module or C library",
        description="Write MODEL (whose captured Values/Tensors are the weights) to DIR as a "
        "NumPy module that needs only NumPy, or a C99 library with a header, a Makefile and "
        "a self-test (make check).",
        formatter_class=_ModelHelp,
    )
    p.add_argument("model", metavar="MODEL", help="path/to/model.py:function")
    p.add_argument("-o", "--output", metavar="DIR", required=True, help="the export directory")
    p.add_argument("--backend", choices=("numpy", "c"), default="numpy", help="(numpy)")
    p.add_argument("--name", help="module / C prefix (default: the function's name)")
    p.add_argument(
        "--opt", type=int, choices=(0, 1, 2), default=OPT, help=f"optimisation level ({OPT})"
    )
    p.set_defaults(handler=cmd_export)


MODEL_HELP = """

MODEL is path/to/model.py:function. The module gives the function's example inputs with a
companion function <function>_inputs() returning the arguments as a tuple, or declares the
argument specs (symbolic dims allowed) with a decorator:

    from symgrad.model_ref import specs

    @specs(sg.Spec(("n", 3)), sg.Spec((3, 2)))
    def loss(x, w):
        return (x @ w).tanh().sum()

A MODEL that cannot be used is one line on stderr and exit status 2."""


def add_commands(subparsers: Subparsers) -> None:
    _add_show(subparsers)
    _add_graph(subparsers)
    _add_export(subparsers)
