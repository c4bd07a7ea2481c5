"""Finding and running the C compiler.

Owns: :class:`Compiler` (``$CC`` split with :mod:`shlex`, default ``cc``, and its ``--version``
text), :func:`find_compiler` / :func:`compiler_available`, :func:`build_shared` (one compiler run
producing a shared library, killed with its process group after :func:`compile_timeout`),
:func:`default_flags` (never ``-ffast-math``; ``-march=native`` when the compiler accepts
it), the CPython build facts a C extension needs
(:func:`python_include_dirs`, :func:`extension_suffix`) and :func:`cpu_tag`, which a cache key
must include whenever native flags are used, since those make an artefact CPU-specific.

May import: the standard library and ``symgrad.ir.errors``.

Every answer that needs a compiler run (the version, whether a flag is accepted, whether the
compiler works at all) is computed once per process per compiler argv and cached.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from symgrad.ir.errors import SymgradError

#: The flags of every build. ``-ffast-math`` is never added: it breaks the NaN/inf semantics
#: that the generated code and gradcheck rely on.
BASE_FLAGS: tuple[str, ...] = ("-O2", "-fPIC", "-shared", "-std=c99")
NATIVE_FLAG = "-march=native"
#: Added after the base flags (GCC's spelling; a compiler that rejects them builds with the base
#: flags): ``-O3`` vectorises the loops, and without the parameter GCC fully unrolls the short
#: fixed-length loops of small models and then vectorises them badly (2-3x slower; see
#: docs/architecture.md, "Compiler flags").
TUNING_FLAGS: tuple[str, ...] = ("-O3", "--param=max-completely-peel-times=1")
#: Every build (dropped with the tuning flags by a compiler that rejects them): large matrix
#: products then run on ``$SYMGRAD_NUM_THREADS`` POSIX threads (default: every online core;
#: ``templates/c/_gemm.c.j2``). Without ``SG_THREADS`` the generated code is single-threaded.
THREAD_FLAGS: tuple[str, ...] = ("-pthread", "-DSG_THREADS")
#: ``$SYMGRAD_OPENMP=1`` adds it: large elementwise loops then run on every core (a loop of fewer
#: than ``backends.c_loops.PARALLEL_MIN`` elements stays serial, decided at run time).
OPENMP_FLAG = "-fopenmp"
STDERR_LIMIT = 4000
VERSION_TIMEOUT = 30.0
#: ``$SYMGRAD_COMPILE_TIMEOUT`` (seconds) overrides it: a compiler run taking longer is killed
#: with its whole process group (the driver's cc1/as/ld too), so a hung compiler never holds a
#: cache lock for long. The largest kernels symgrad builds take about 20 s.
COMPILE_TIMEOUT = 300.0
TIMEOUT_VAR = "SYMGRAD_COMPILE_TIMEOUT"

_lock = threading.Lock()
_versions: dict[tuple[str, ...], str] = {}
_works: dict[tuple[str, ...], bool] = {}


class CompileError(SymgradError):
    """Running the C compiler failed. The message quotes the command and its (trimmed) stderr."""

    def __init__(self, message: str, argv: Sequence[str] = (), stderr: str = "") -> None:
        self.argv = list(argv)
        self.stderr = stderr
        text = message
        if self.argv:
            text += f"\n  command: {shlex.join(self.argv)}"
        if stderr.strip():
            text += "\n  stderr:\n" + _indent(_trim(stderr))
        super().__init__(text)


class NoCompilerError(CompileError):
    """No usable C compiler: ``$CC`` (default ``cc``) is missing or ``--version`` fails."""


@dataclass(frozen=True)
class Compiler:
    """A C compiler: the argv prefix of every invocation and its ``--version`` first line."""

    argv0: list[str]
    version: str

    def describe(self) -> str:
        return f"{shlex.join(self.argv0)} ({self.version})"


def _trim(text: str, limit: int = STDERR_LIMIT) -> str:
    text = text.strip()
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n... ({len(text) - limit} more characters not shown)"


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def _configured_argv() -> list[str]:
    """``$CC`` split like a shell would (default ``["cc"]``)."""
    raw = os.environ.get("CC", "").strip()
    try:
        argv = shlex.split(raw)
    except ValueError as exc:
        raise NoCompilerError(f"cannot parse $CC={raw!r}: {exc}") from None
    return argv or ["cc"]


def find_compiler() -> Compiler:
    """The compiler named by ``$CC`` (default ``cc``), checked by running ``--version``.

    Raises :class:`NoCompilerError` when the program is not found, or ``--version`` cannot run,
    times out or exits non-zero (``CC=false`` does). Successful answers are cached per argv.
    """
    argv = _configured_argv()
    program = shutil.which(argv[0])
    cache_key = (*argv, program or "")
    with _lock:
        version = _versions.get(cache_key)
    if version is not None:
        return Compiler(argv0=argv, version=version)
    if program is None:
        raise NoCompilerError(
            f"C compiler not found: {argv[0]!r} (from $CC={os.environ.get('CC', '')!r}, "
            "default 'cc') is not an executable on PATH. Install a C compiler or set $CC.",
            argv,
        )
    cmd = [*argv, "--version"]
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=VERSION_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NoCompilerError(f"C compiler {argv[0]!r} does not run: {exc}", cmd) from None
    if proc.returncode != 0:
        raise NoCompilerError(
            f"C compiler {argv[0]!r} is not usable: '--version' exited with status "
            f"{proc.returncode}",
            cmd,
            proc.stderr,
        )
    lines = [line.strip() for line in proc.stdout.splitlines() if line.strip()]
    version = lines[0] if lines else f"unknown version of {program}"
    with _lock:
        _versions[cache_key] = version
    return Compiler(argv0=argv, version=version)


def compiler_available() -> bool:
    """Whether :func:`find_compiler` succeeds and that compiler builds a trivial shared library."""
    try:
        compiler = find_compiler()
    except NoCompilerError:
        return False
    key = tuple(compiler.argv0)
    with _lock:
        known = _works.get(key)
    if known is None:
        known = _try_compile(compiler, list(BASE_FLAGS))
        with _lock:
            _works[key] = known
    return known


def compile_timeout() -> float:
    """Seconds a compiler run may take: ``$SYMGRAD_COMPILE_TIMEOUT``, else
    :data:`COMPILE_TIMEOUT`."""
    raw = os.environ.get(TIMEOUT_VAR, "").strip()
    if not raw:
        return COMPILE_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise CompileError(f"${TIMEOUT_VAR} must be a positive number of seconds, got {raw!r}")
    return value


def run_compiler(argv: list[str], timeout: float) -> tuple[int, str]:
    """Run ``argv`` in a process group of its own; ``(exit status, stderr)``. On a timeout the
    whole group is killed (a compiler driver's children would keep the pipes open) and
    ``subprocess.TimeoutExpired`` is raised."""
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        start_new_session=os.name == "posix",
    )
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        _, err = proc.communicate()
        raise subprocess.TimeoutExpired(argv, timeout, stderr=err) from None
    except BaseException:
        _kill_group(proc)
        proc.wait()
        raise
    return proc.returncode, err


def _kill_group(proc: subprocess.Popen[str]) -> None:
    try:
        if os.name == "posix":
            os.killpg(proc.pid, 9)
        else:  # pragma: no cover
            proc.kill()
    except (ProcessLookupError, PermissionError):
        proc.kill()


def build_shared(
    compiler: Compiler,
    sources: list[Path],
    output: Path,
    flags: Sequence[str],
    include_dirs: Sequence[str | Path] = (),
    timeout: float | None = None,
) -> list[str]:
    """Compile ``sources`` into the shared library ``output``; return the argv that ran.

    The command is ``argv0 + flags + -I<dir>... + sources + -o output -lm``. Raises
    :class:`CompileError` (quoting the command and stderr) on a non-zero exit, a timeout
    (``timeout``, default :func:`compile_timeout`; the compiler's process group is killed) or a
    missing output, and :class:`NoCompilerError` when the compiler program cannot be started.
    """
    limit = compile_timeout() if timeout is None else timeout
    argv = [
        *compiler.argv0,
        *flags,
        *(f"-I{d}" for d in include_dirs),
        *(str(s) for s in sources),
        "-o",
        str(output),
        "-lm",
    ]
    try:
        status, stderr = run_compiler(argv, limit)
    except FileNotFoundError as exc:
        raise NoCompilerError(f"C compiler {compiler.argv0[0]!r} not found: {exc}", argv) from None
    except OSError as exc:
        raise CompileError(f"C compiler could not be started: {exc}", argv) from None
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr if isinstance(exc.stderr, str) else ""
        raise CompileError(
            f"C compilation timed out after {limit:g} s (killed; ${TIMEOUT_VAR} sets the limit)",
            argv,
            err,
        ) from None
    if status != 0:
        raise CompileError(f"C compilation failed (exit status {status})", argv, stderr)
    if not output.is_file():
        raise CompileError(
            f"C compiler exited with status 0 but did not write {output}", argv, stderr
        )
    return argv


def build_extension(
    compiler: Compiler,
    source: Path,
    output: Path,
    flags: Sequence[str],
    prelude: Sequence[str] = (),
) -> list[str]:
    """Compile the CPython extension ``source`` into ``output`` with ``flags``; a compiler that
    rejects ``-march=native`` or GCC's tuning flags gets the portable ones. ``prelude``: flags
    reading a precompiled prelude (``runtime/prelude.py``); a build that fails with them is
    retried without. Returns the argv."""
    inc = python_include_dirs()
    try:
        return build_shared(compiler, [source], output, [*flags, *prelude], inc)
    except CompileError:
        if prelude:  # (e.g. the prelude's entry removed by `cache clear` meanwhile)
            return build_extension(compiler, source, output, flags)
        portable = without_native(flags)
        if portable == list(flags):
            raise
        return build_shared(compiler, [source], output, portable, inc)


def _try_compile(compiler: Compiler, flags: list[str]) -> bool:
    """Whether ``compiler`` builds a one-function shared library with ``flags``."""
    with tempfile.TemporaryDirectory(prefix="symgrad-probe-") as tmp:
        src = Path(tmp) / "probe.c"
        src.write_text("int symgrad_probe(void) { return 0; }\n")
        try:
            build_shared(compiler, [src], Path(tmp) / "probe.so", flags, timeout=60)
        except CompileError:
            return False
    return True


#: A kernel with more statements than this is built with ``LARGE_FLAGS`` instead of the tuning
#: flags: GCC's -O2/-O3 time grows faster than linearly with the size of one function (the
#: micrograd moons step written on columns, ~5,000 statements: 15.5 s of CPU at -O3, 2.4 s at
#: -O1), and such kernels are dominated by the statements' count, not by their loops. Kernels
#: with a compacted scalar region (``backends.compact``) build at -O1 too: their loops gather.
LARGE_PROGRAM = 1500
LARGE_FLAGS: tuple[str, ...] = ("-O1",)


def default_flags(native: bool = True, large: bool = False) -> list[str]:
    """``-O2 -fPIC -shared -std=c99``, the tuning and thread flags, plus ``-march=native`` when
    ``native``.

    Decided without running the compiler, so that the flags -- and the cache keys made from
    them -- are known to a warm process that never runs it. A compiler that rejects the native
    flag is handled at build time (:func:`without_native`). ``$SYMGRAD_NATIVE=0`` turns the
    native flag off, ``$SYMGRAD_OPENMP=1`` adds ``-fopenmp``. ``large`` (a kernel of more than
    :data:`LARGE_PROGRAM` statements) builds at ``-O1``. Include :func:`cpu_tag` in the cache
    key whenever the result has native flags.
    """
    flags = [*BASE_FLAGS, *(LARGE_FLAGS if large else TUNING_FLAGS), *THREAD_FLAGS]
    if native and os.environ.get("SYMGRAD_NATIVE", "1") != "0":
        flags.append(NATIVE_FLAG)
    if os.environ.get("SYMGRAD_OPENMP", "0") == "1":
        flags.append(OPENMP_FLAG)
    return flags


def has_openmp(flags: Sequence[str]) -> bool:
    """Whether ``flags`` build OpenMP code (the printer then adds ``parallel for`` pragmas)."""
    return OPENMP_FLAG in flags


def without_native(flags: Sequence[str]) -> list[str]:
    """``flags`` minus CPU-specific and compiler-specific ones (the fallback when a compiler
    rejects them)."""
    dropped = (*TUNING_FLAGS, *THREAD_FLAGS, OPENMP_FLAG)
    return [f for f in flags if not f.endswith("=native") and f not in dropped]


def has_native_flags(flags: Sequence[str]) -> bool:
    """Whether ``flags`` make the artefact CPU-specific (``-march=native``, ``-mtune=native``,
    ``-mcpu=native``)."""
    return any(f.endswith("=native") for f in flags)


def python_include_dirs() -> list[str]:
    """The directories holding ``Python.h`` (sysconfig ``include`` and ``platinclude``)."""
    dirs: list[str] = []
    for name in ("include", "platinclude"):
        path = sysconfig.get_path(name)
        if path and path not in dirs:
            dirs.append(path)
    return dirs


def extension_suffix() -> str:
    """The file suffix of a CPython extension module here (e.g. ``.cpython-311-x86_64-...so``)."""
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    if isinstance(suffix, str) and suffix:
        return suffix
    import importlib.machinery

    return importlib.machinery.EXTENSION_SUFFIXES[0]


@functools.cache
def cpu_tag() -> str:
    """What ``-march=native`` depends on: the machine, and on Linux the CPU model and a hash of
    its feature flags from ``/proc/cpuinfo``; elsewhere just ``platform.machine()``."""
    machine = platform.machine() or "unknown"
    if not sys.platform.startswith("linux"):
        return machine
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return machine
    fields: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        name = name.strip().lower()
        if sep and name not in fields:
            fields[name] = " ".join(value.split())
    model = fields.get("model name") or fields.get("cpu model") or fields.get("cpu") or ""
    ident = " ".join(fields.get(k, "") for k in ("cpu implementer", "cpu part")).strip()
    features = fields.get("flags") or fields.get("features") or fields.get("isa") or ""
    digest = hashlib.sha256(" ".join(sorted(features.split())).encode()).hexdigest()[:16]
    return "|".join(p for p in (machine, model, ident, f"flags:{digest}") if p)
