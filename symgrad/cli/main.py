"""The ``symgrad`` command-line interface.

Owns: the ``symgrad`` console script (``[project.scripts]`` in pyproject.toml points at
:func:`main`): argument parsing, ``--version``, and one subcommand per task. Subcommands are
registered in :func:`build_parser`, each with a handler ``(args) -> exit code``; a handler that
raises :class:`symgrad.cli_model.CommandError` prints one line on stderr and exits with 2.
``ops``, ``cache`` and ``gradcheck`` are here; ``show``, ``graph`` and ``export`` are in
:mod:`symgrad.cli_model`; ``bench`` and ``demo`` in :mod:`symgrad.cli_run`.

May import: anything in ``symgrad`` -- this is a top layer, nothing in the package imports it.
Imports of the rest of the package happen lazily inside :func:`main` and the handlers, so that
``symgrad --help`` stays fast and a broken subsystem only breaks the commands that use it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from symgrad.cli import model as cli_model
from symgrad.cli import run as cli_run

Handler = Callable[[argparse.Namespace], int]


def _cmd_ops(args: argparse.Namespace) -> int:
    """Print the op catalogue (Markdown), generated from the op registry."""
    from symgrad.ops.catalogue import catalogue_markdown

    text = catalogue_markdown()
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def _human_size(size: int) -> str:
    """``1536`` -> ``"1.5 KiB"``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def _cmd_cache_info(args: argparse.Namespace) -> int:
    """Print where the compile cache is, how many entries it holds and its size."""
    from symgrad.runtime import cache

    facts = cache.info()
    print(f"root:    {facts['root']}")
    print(f"entries: {facts['entries']}")
    print(f"size:    {_human_size(facts['bytes'])} ({facts['bytes']} bytes)")
    print(f"locks:   {facts['locks']} ({facts['locks_held']} held)")
    return 0


def _cmd_cache_clear(args: argparse.Namespace) -> int:
    """Remove every entry from the compile cache."""
    from symgrad.runtime import cache

    removed = cache.clear()
    noun = "entry" if removed == 1 else "entries"
    print(f"removed {removed} cache {noun} from {cache.cache_root()}")
    return 0


def _cmd_cache_prune(args: argparse.Namespace) -> int:
    """Remove the least recently used entries until the cache fits in ``--max-size``."""
    from symgrad.runtime import cache

    try:
        bound = cache.max_size() if args.max_size is None else cache.parse_size(args.max_size)
    except (ValueError, cache.CacheError) as e:
        print(f"symgrad cache prune: {e}", file=sys.stderr)
        return 2
    removed, left = cache.prune(bound)
    noun = "entry" if removed == 1 else "entries"
    print(
        f"removed {removed} cache {noun} from {cache.cache_root()}; "
        f"{_human_size(left)} left (bound {_human_size(bound)})"
    )
    return 0


def _add_cache_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cache = subparsers.add_parser(
        "cache",
        help="inspect or clear the compile cache",
        description="Inspect or clear the cache of compiled functions "
        "($SYMGRAD_CACHE_DIR, else the user cache directory).",
    )
    cache_commands = cache.add_subparsers(dest="cache_command", metavar="ACTION")

    def _cache_usage(args: argparse.Namespace) -> int:
        cache.print_help(sys.stderr)
        return 2

    cache.set_defaults(handler=_cache_usage)
    info = cache_commands.add_parser(
        "info",
        help="print the cache directory, entry count and size",
        description="Print the cache directory, how many entries it holds and their size.",
    )
    info.set_defaults(handler=_cmd_cache_info)
    clear = cache_commands.add_parser(
        "clear",
        help="remove every cache entry",
        description="Remove every entry from the cache and print how many were removed.",
    )
    clear.set_defaults(handler=_cmd_cache_clear)
    prune = cache_commands.add_parser(
        "prune",
        help="remove the least recently used entries beyond a size bound",
        description="Remove the least recently used entries until the cache takes at most "
        "--max-size (default: $SYMGRAD_CACHE_MAX_SIZE, else 2G; builds apply that bound "
        "automatically), and lock files no process holds.",
    )
    prune.add_argument(
        "--max-size", metavar="SIZE", help="bytes, or a number with K, M, G or T (e.g. 500M)"
    )
    prune.set_defaults(handler=_cmd_cache_prune)


def _cmd_gradcheck(args: argparse.Namespace) -> int:
    """Check a model's gradients; 0 when they agree, 1 when they do not, 2 for a bad MODEL."""
    from symgrad.ir.errors import SymgradError
    from symgrad.model_ref import ModelRefError, load

    try:
        ref = load(args.model)
        inputs = ref.example_inputs()
    except ModelRefError as e:
        print(f"symgrad gradcheck: error: {e}", file=sys.stderr)
        return 2
    from symgrad.check.gradcheck import gradcheck

    try:
        report = gradcheck(
            ref.function,
            *inputs,
            eps=args.eps,
            atol=args.atol,
            rtol=args.rtol,
            backend=args.backend,
            seed=args.seed,
            nudge=args.nudge,
        )
    except (SymgradError, ValueError, TypeError) as e:
        msg = " ".join(str(e).split())
        print(f"symgrad gradcheck: error: {ref}: {type(e).__name__}: {msg}", file=sys.stderr)
        return 2
    sys.stdout.write(str(report))
    return 0 if report.ok else 1


_GRADCHECK_HELP = """\
Check the gradients of the code symgrad generates for a model against central differences
(in float64), on both backends (numpy, and c when a C compiler works) unless --backend names
one, and print a table. When they disagree, the report names the local rule that is wrong, the
line of the model it comes from and the generated statements.

MODEL is path/to/model.py:function. The function takes arrays and returns a scalar loss (its
first output is checked). The module provides example inputs by a companion function named
<function>_inputs, taking no arguments and returning the arguments as a tuple:

    def loss(x, w):
        return (x @ w).tanh().sum()

    def loss_inputs():
        rng = np.random.default_rng(0)
        return rng.standard_normal((4, 3)), rng.standard_normal((3, 2))

Every float argument and every captured float leaf is checked. Exit status: 0 when the
gradients agree, 1 when they do not, 2 when MODEL cannot be used.
"""


def _add_gradcheck_command(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    p = subparsers.add_parser(
        "gradcheck",
        help="check a model's gradients against finite differences",
        description=_GRADCHECK_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", metavar="MODEL", help="path/to/model.py:function")
    p.add_argument(
        "--backend",
        choices=("numpy", "c"),
        default=None,
        help="check only this backend's generated code (default: numpy, and c when available)",
    )
    p.add_argument("--eps", type=float, default=1e-6, help="finite-difference step (1e-6)")
    p.add_argument("--atol", type=float, default=1e-5, help="absolute tolerance (1e-5)")
    p.add_argument("--rtol", type=float, default=1e-3, help="relative tolerance (1e-3)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random directions (0)")
    p.add_argument(
        "--nudge",
        action="store_true",
        help="move the inputs slightly when they sit at non-differentiable points "
        "(relu at 0, ties of max)",
    )
    p.set_defaults(handler=_cmd_gradcheck)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="symgrad",
        description="Trace models into a symbolic graph, differentiate it, and generate code.",
    )
    parser.add_argument(
        "--version", action="store_true", help="print the installed symgrad version and exit"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")

    ops = subparsers.add_parser(
        "ops", help="print the op catalogue", description="Print the op catalogue as Markdown."
    )
    ops.set_defaults(handler=_cmd_ops)
    cli_model.add_commands(subparsers)
    _add_gradcheck_command(subparsers)
    _add_cache_commands(subparsers)
    cli_run.add_commands(subparsers)

    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error argparse has already reported
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 2)

    if args.version:
        from symgrad import __version__

        print(f"symgrad {__version__}")
        return 0
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    handler: Handler = args.handler
    try:
        return handler(args)
    except cli_model.CommandError as e:
        print(f"symgrad {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
