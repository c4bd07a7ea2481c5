"""The ``symgrad`` subcommands that run scripts: ``bench`` (``benchmarks/*.py``) and ``demo``
(a short built-in tour, or one of the ``examples/*.py``).

Owns: finding the ``benchmarks/`` and ``examples/`` directories, which ship with the source
checkout and not with the installed package (``--dir``, else ``./<name>``, else beside the
``symgrad`` package of an editable install), listing the scripts there and running them with
this interpreter. The built-in tour lives in :mod:`symgrad.cli_demo` so that it works from a
wheel.

May import: anything in ``symgrad`` (a top layer).
"""

from __future__ import annotations

import argparse
import ast
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from symgrad.cli.model import CommandError

if TYPE_CHECKING:
    from symgrad.cli.model import Subparsers

# an editable install or a checkout: benchmarks/ and examples/ sit beside the package
CHECKOUT = Path(__file__).resolve().parents[2]


def find_dir(kind: str, given: str | None) -> Path:
    """The ``benchmarks`` or ``examples`` directory (see the module docstring)."""
    if given is not None:
        d = Path(given)
        if not d.is_dir():
            raise CommandError(f"--dir {given}: no such directory")
        return d
    here = Path.cwd() / kind
    beside = CHECKOUT / kind
    for d in (here, beside):
        if d.is_dir():
            return d
    raise CommandError(
        f"no {kind}/ directory found (looked in {here} and {beside}): the {kind} ship with "
        "the source checkout, not the installed package; run this from a clone of the "
        "repository or pass --dir"
    )


def scripts(d: Path) -> list[Path]:
    """The runnable ``*.py`` files of ``d`` (files starting with ``_`` are helpers)."""
    return sorted(p for p in d.glob("*.py") if not p.name.startswith("_"))


def summary(path: Path, width: int = 90) -> str:
    """The first sentence of a script's docstring (shortened to ``width`` characters)."""
    try:
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    except (SyntaxError, UnicodeDecodeError, OSError):
        doc = None
    if not doc:
        return ""
    paragraph = " ".join(doc.strip().split("\n\n")[0].split())
    sentence = re.split(r"(?<=\.)\s+(?=[A-Z])", paragraph)[0]
    return sentence if len(sentence) <= width else sentence[: width - 1].rstrip() + "…"


def pick(found: list[Path], names: list[str], kind: str) -> list[Path]:
    if not names:
        return found
    by_name = {p.stem: p for p in found}
    chosen = []
    for nm in names:
        stem = nm[:-3] if nm.endswith(".py") else nm
        if stem not in by_name:
            raise CommandError(
                f"no {kind} named {nm!r}; expected one of: {', '.join(sorted(by_name)) or 'none'}"
            )
        chosen.append(by_name[stem])
    return chosen


def run_script(path: Path, extra: list[str]) -> int:
    """Run ``path`` with this interpreter from the checkout root; its output goes straight out."""
    sys.stdout.flush()
    proc = subprocess.run([sys.executable, str(path), *extra], cwd=str(path.parent.parent))
    return proc.returncode


def _print_list(found: list[Path]) -> None:
    width = max((len(p.stem) for p in found), default=0)
    for p in found:
        print(f"  {p.stem.ljust(width)}  {summary(p)}".rstrip())


def _extra(args: argparse.Namespace) -> list[str]:
    try:
        return shlex.split(args.args or "")
    except ValueError as e:
        raise CommandError(f"--args: {e}") from e


# -- bench --------------------------------------------------------------------------------------
def cmd_bench(args: argparse.Namespace) -> int:
    """Run the benchmark scripts; 0 when every one succeeded, else 1."""
    d = find_dir("benchmarks", args.dir)
    found = scripts(d)
    if not found:
        raise CommandError(f"no benchmark scripts (*.py) in {d}")
    if args.list:
        print(f"benchmarks in {d}:")
        _print_list(found)
        return 0
    chosen = pick(found, args.names, "benchmark")
    extra = _extra(args)
    failed = []
    for p in chosen:
        print(f"== {p.stem}: {summary(p)}", flush=True)
        code = run_script(p, extra)
        if code != 0:
            failed.append(f"{p.stem} (exit {code})")
    if failed:
        print(f"symgrad bench: failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _add_bench(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "bench",
        help="run the benchmarks (benchmarks/*.py of a source checkout)",
        description="Run the benchmark scripts benchmarks/*.py (all, or the NAMEs given) with "
        "this Python and print their tables. The benchmarks ship with the source checkout, not "
        "the installed package.",
    )
    p.add_argument("names", nargs="*", metavar="NAME", help="benchmark names, e.g. moons")
    p.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    p.add_argument("--dir", help="the benchmarks directory (default: ./benchmarks)")
    p.add_argument("--args", help='arguments passed to every script, e.g. --args "--steps 10"')
    p.set_defaults(handler=cmd_bench)


# -- demo ---------------------------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace) -> int:
    """The built-in tour, or one example script."""
    if args.list or args.example:
        d = find_dir("examples", args.dir)
        found = scripts(d)
        if args.list:
            print(f"examples in {d}:")
            _print_list(found)
            return 0
        (path,) = pick(found, [args.example], "example")
        return run_script(path, _extra(args))
    from symgrad.cli.demo import tour

    tour()
    return 0


def _add_demo(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "demo",
        help="a short tour of symgrad, or run one of the examples",
        description="Without EXAMPLE: a short built-in tour (the lecture neuron, its values and "
        "gradients, the generated backward code, gradcheck). With EXAMPLE: run "
        "examples/EXAMPLE.py of the source checkout (--list shows them).",
    )
    p.add_argument("example", nargs="?", metavar="EXAMPLE", help="e.g. micrograd_moons")
    p.add_argument("--list", action="store_true", help="list the examples and exit")
    p.add_argument("--dir", help="the examples directory (default: ./examples)")
    p.add_argument("--args", help='arguments for the example, e.g. --args "--steps 20"')
    p.set_defaults(handler=cmd_demo)


def add_commands(subparsers: Subparsers) -> None:
    _add_bench(subparsers)
    _add_demo(subparsers)
