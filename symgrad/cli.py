"""The ``symgrad`` command-line interface.

Owns: the ``symgrad`` console script (``[project.scripts]`` in pyproject.toml points at
:func:`main`): argument parsing, ``--version``, and one subcommand per task. Subcommands are
registered in :func:`build_parser`, each with a handler ``(args) -> exit code``.

May import: anything in ``symgrad`` -- this is a top layer, nothing in the package imports it.
Imports of the rest of the package happen lazily inside :func:`main` and the handlers, so that
``symgrad --help`` stays fast and a broken subsystem only breaks the commands that use it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

Handler = Callable[[argparse.Namespace], int]


def _cmd_ops(args: argparse.Namespace) -> int:
    """Print the op catalogue (Markdown), generated from the op registry."""
    from symgrad.ir.opdef import catalogue_markdown

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
    return 0


def _cmd_cache_clear(args: argparse.Namespace) -> int:
    """Remove every entry from the compile cache."""
    from symgrad.runtime import cache

    removed = cache.clear()
    noun = "entry" if removed == 1 else "entries"
    print(f"removed {removed} cache {noun} from {cache.cache_root()}")
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
    _add_cache_commands(subparsers)

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
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
