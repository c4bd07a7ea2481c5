"""Smoke test of an installed symgrad wheel (run by scripts/check_wheel.sh).

Run it with the interpreter of the virtual environment the wheel was installed into, from a
directory outside the checkout, in isolated mode::

    /tmp/venv/bin/python -I /path/to/checkout/scripts/wheel_smoke.py /path/to/checkout

Each check is a function registered with ``@check``; they run in the order they are defined and
each prints ``ok <name>``. The first failure prints ``FAIL <name>: ...`` and exits 1. To test
more of the installed package (compiling on each backend, exporting, ...), add a function.
"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import math
import os
import subprocess
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


class SmokeFailure(Exception):
    """A check found the installed package wrong."""


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise SmokeFailure(message)


@dataclass(frozen=True)
class Context:
    checkout: Path  # the source checkout, which must NOT be what gets imported


CheckFn = Callable[[Context], None]
CHECKS: list[tuple[str, CheckFn]] = []


def check(fn: CheckFn) -> CheckFn:
    CHECKS.append((fn.__name__, fn))
    return fn


# --- checks, in order ------------------------------------------------------------------------


@check
def imported_from_install(ctx: Context) -> None:
    import symgrad

    where = Path(symgrad.__file__ or "").resolve()
    expect(where.name == "__init__.py", f"symgrad.__file__ is unexpected: {where}")
    expect(
        not where.is_relative_to(ctx.checkout),
        f"symgrad was imported from the checkout ({where}), not from the installed wheel",
    )
    expect(
        Path(sys.prefix).resolve() in where.parents,
        f"symgrad ({where}) is not inside this environment ({sys.prefix})",
    )


@check
def templates_shipped(ctx: Context) -> None:
    templates = importlib.resources.files("symgrad") / "codegen" / "templates"
    expect(templates.is_dir(), f"the wheel has no symgrad/codegen/templates ({templates})")
    header = templates / "common" / "_header.j2"
    expect(
        header.is_file(), f"the wheel has no symgrad/codegen/templates/common/_header.j2 ({header})"
    )
    expect("macro header" in header.read_text(encoding="utf-8"), "_header.j2 has no header macro")


@check
def py_typed_shipped(ctx: Context) -> None:
    marker = importlib.resources.files("symgrad") / "py.typed"
    expect(marker.is_file(), "the wheel has no symgrad/py.typed (it claims Typing :: Typed)")


@check
def version_matches_metadata(ctx: Context) -> None:
    import symgrad

    installed = importlib.metadata.version("symgrad")
    expect(
        symgrad.__version__ == installed,
        f"symgrad.__version__ is {symgrad.__version__!r} but the metadata says {installed!r}",
    )


@check
def value_backward(ctx: Context) -> None:
    from symgrad import Value

    a = Value(2.0)
    b = Value(-3.0)
    c = a * b + a.tanh()
    c.backward()
    t = math.tanh(2.0)
    expected = {"c": 2.0 * -3.0 + t, "dc/da": -3.0 + 1.0 - t * t, "dc/db": 2.0}
    got = {"c": c.data, "dc/da": a.grad, "dc/db": b.grad}
    for key, want in expected.items():
        expect(abs(got[key] - want) <= 1e-12, f"{key} = {got[key]!r}, expected {want!r}")


def _compile_and_check(backend: str) -> None:
    import tempfile

    import numpy as np

    import symgrad as sg

    os.environ["SYMGRAD_CACHE_DIR"] = tempfile.mkdtemp(prefix="symgrad-smoke-")

    def loss(x, w):  # type: ignore[no-untyped-def]
        return (x @ w).tanh().sum()

    f = sg.compile(loss, sg.Spec(("n", 3)), sg.Spec((3, 2)), wrt=1, backend=backend)
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((5, 3)), rng.standard_normal((3, 2))
    out, (gw,) = f(x, w)
    t = np.tanh(x @ w)
    expect(abs(float(out) - t.sum()) <= 1e-12 * abs(t.sum()), f"{backend}: wrong output {out}")
    expect(np.allclose(gw, x.T @ (1 - t * t), rtol=1e-12), f"{backend}: wrong gradient")
    expect("vjp tanh" in f.source("backward"), f"{backend}: backward source lacks provenance")


@check
def compile_numpy_backend(ctx: Context) -> None:
    _compile_and_check("numpy")


@check
def compile_c_backend(ctx: Context) -> None:
    from symgrad.runtime.cc import compiler_available

    if not compiler_available():
        print("  (no working C compiler: the C backend check is skipped)")
        return
    _compile_and_check("c")


@check
def console_script_version(ctx: Context) -> None:
    exe = Path(sys.executable).parent / ("symgrad.exe" if sys.platform == "win32" else "symgrad")
    expect(exe.is_file(), f"the console script was not installed at {exe}")
    proc = subprocess.run(
        [str(exe), "--version"], capture_output=True, text=True, timeout=120, check=False
    )
    version = importlib.metadata.version("symgrad")
    expect(
        proc.returncode == 0,
        f"`symgrad --version` exited {proc.returncode}: {proc.stdout}{proc.stderr}",
    )
    expect(
        version in proc.stdout,
        f"`symgrad --version` printed {proc.stdout!r}, expected it to contain {version!r}",
    )


# --- driver ----------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {Path(argv[0]).name} CHECKOUT_DIR", file=sys.stderr)
        return 2
    ctx = Context(checkout=Path(argv[1]).resolve())
    for name, fn in CHECKS:
        try:
            fn(ctx)
        except SmokeFailure as exc:
            print(f"FAIL {name}: {exc}", file=sys.stderr)
            return 1
        except Exception:
            print(f"FAIL {name}: unexpected error", file=sys.stderr)
            traceback.print_exc()
            return 1
        print(f"ok {name}", flush=True)
    print(f"wheel smoke test: {len(CHECKS)} checks ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
