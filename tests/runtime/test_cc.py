"""symgrad.runtime.cc: finding the compiler, running it, flags, build facts, the CPU tag."""

from __future__ import annotations

import os
import platform
import shutil
import sys
import sysconfig
from pathlib import Path

import pytest

from symgrad.ir.errors import SymgradError
from symgrad.runtime import cc
from symgrad.runtime.cc import (
    BASE_FLAGS,
    CompileError,
    Compiler,
    NoCompilerError,
    build_shared,
    compiler_available,
    cpu_tag,
    default_flags,
    extension_suffix,
    find_compiler,
    python_include_dirs,
)

posix_only = pytest.mark.skipif(os.name == "nt", reason="fake compilers are shell scripts")


def fake_compiler(tmp_path: Path, body: str, name: str = "fakecc") -> Compiler:
    """A 'compiler' that is a shell script running ``body``."""
    script = tmp_path / name
    script.write_text("#!/bin/sh\n" + body + "\n")
    script.chmod(0o755)
    return Compiler(argv0=[str(script)], version="fake 1.0")


# --- finding the compiler --------------------------------------------------------------------


def test_cc_false_raises_no_compiler_error_quoting_the_compiler(monkeypatch):
    monkeypatch.setenv("CC", "false")
    with pytest.raises(NoCompilerError) as info:
        find_compiler()
    message = str(info.value)
    assert "'false'" in message and "false --version" in message
    assert isinstance(info.value, CompileError) and isinstance(info.value, SymgradError)
    assert not compiler_available()


def test_missing_compiler_program_is_named(monkeypatch):
    monkeypatch.setenv("CC", "no-such-compiler-xyz -O1")
    with pytest.raises(NoCompilerError, match="no-such-compiler-xyz"):
        find_compiler()


def test_unparseable_cc_is_a_no_compiler_error(monkeypatch):
    monkeypatch.setenv("CC", 'cc "unterminated')
    with pytest.raises(NoCompilerError, match="cannot parse"):
        find_compiler()


@pytest.mark.cc
def test_find_compiler_splits_cc_and_reads_the_version(monkeypatch):
    monkeypatch.delenv("CC", raising=False)
    default = find_compiler()
    assert default.argv0 == ["cc"] and default.version
    assert "\n" not in default.version
    monkeypatch.setenv("CC", "cc  -Wall")
    assert find_compiler().argv0 == ["cc", "-Wall"]
    assert default.argv0[0] in default.describe()


@pytest.mark.cc
def test_the_version_is_cached_per_process(monkeypatch):
    monkeypatch.delenv("CC", raising=False)
    first = find_compiler()

    def no_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("the compiler ran again")

    monkeypatch.setattr(cc.subprocess, "run", no_run)
    assert find_compiler() == first


# --- running it ------------------------------------------------------------------------------


@pytest.mark.cc
def test_build_shared_returns_the_argv_and_writes_the_output(tmp_path):
    src = tmp_path / "f.c"
    src.write_text("#include <math.h>\ndouble f(double x) { return sqrt(x); }\n")
    out = tmp_path / "f.so"
    compiler = find_compiler()
    argv = build_shared(compiler, [src], out, ["-O2", "-fPIC", "-shared"], include_dirs=["/inc"])
    assert out.is_file()
    assert argv[: len(compiler.argv0)] == compiler.argv0
    assert argv[-4:] == [str(src), "-o", str(out), "-lm"]
    assert "-I/inc" in argv and argv.index("-O2") < argv.index("-I/inc") < argv.index(str(src))


@pytest.mark.cc
def test_a_failing_compile_quotes_the_command_and_stderr(tmp_path):
    src = tmp_path / "bad.c"
    src.write_text('#error "symgrad-marker-4711"\n')
    with pytest.raises(CompileError) as info:
        build_shared(find_compiler(), [src], tmp_path / "bad.so", list(BASE_FLAGS))
    message = str(info.value)
    assert "symgrad-marker-4711" in message  # the compiler's stderr
    assert str(src) in message and "-o" in message  # the command
    assert not isinstance(info.value, NoCompilerError)
    assert info.value.argv[-1] == "-lm" and "symgrad-marker-4711" in info.value.stderr


@posix_only
def test_long_stderr_is_trimmed(tmp_path):
    compiler = fake_compiler(tmp_path, "yes 'error: xxxxxxxxxxxxxxxx' | head -c 20000 >&2; exit 1")
    with pytest.raises(CompileError, match="more characters not shown") as info:
        build_shared(compiler, [tmp_path / "x.c"], tmp_path / "x.so", [])
    assert len(str(info.value)) < 5000
    assert len(info.value.stderr) == 20000


@posix_only
def test_a_compile_that_writes_nothing_is_an_error(tmp_path):
    compiler = fake_compiler(tmp_path, "exit 0")
    with pytest.raises(CompileError, match="did not write"):
        build_shared(compiler, [tmp_path / "x.c"], tmp_path / "x.so", [])


@posix_only
def test_a_compile_that_hangs_times_out(tmp_path):
    compiler = fake_compiler(tmp_path, "exec sleep 10")
    with pytest.raises(CompileError, match="timed out"):
        build_shared(compiler, [tmp_path / "x.c"], tmp_path / "x.so", [], timeout=0.3)


def test_a_vanished_compiler_is_a_no_compiler_error(tmp_path):
    compiler = Compiler(argv0=[str(tmp_path / "gone-cc")], version="1")
    with pytest.raises(NoCompilerError, match="gone-cc"):
        build_shared(compiler, [tmp_path / "x.c"], tmp_path / "x.so", [])


# --- flags and build facts -------------------------------------------------------------------


def test_default_flags_never_fast_math(monkeypatch):
    assert default_flags(native=False) == [*BASE_FLAGS, *cc.TUNING_FLAGS, *cc.THREAD_FLAGS]
    assert cc.TUNING_FLAGS == ("-O3", "--param=max-completely-peel-times=1")
    flags = default_flags()
    assert flags[:4] == list(BASE_FLAGS)
    assert set(flags[4:]) <= {"-march=native", *cc.TUNING_FLAGS, *cc.THREAD_FLAGS}
    assert not any("fast-math" in f for f in flags)


@posix_only
@pytest.mark.cc
def test_a_compiler_rejecting_native_flags_still_builds(tmp_path, monkeypatch):
    if not cc.compiler_available():
        pytest.skip("no working C compiler")
    import numpy as np

    import symgrad as sg

    picky = tmp_path / "picky-cc"
    picky.write_text(
        "#!/bin/sh\n"
        'for a in "$@"; do case "$a" in -march=native|--param=*) '
        'echo "error: unrecognized $a" >&2; exit 1;; esac; done\n'
        'exec cc "$@"\n'
    )
    picky.chmod(0o755)
    monkeypatch.setenv("CC", str(picky))
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path / "cache"))
    f = sg.compile(lambda x: (x * 3.25).sum(), sg.Spec((3,)), backend="c")
    assert float(f(np.ones(3))) == 9.75
    meta = (f.cache_path / "meta.json").read_text()
    command = meta.split('"compile_command"')[1].split("]")[0]
    assert "-march=native" not in command and "--param" not in command


def test_flags_are_decided_without_running_the_compiler(monkeypatch):
    monkeypatch.setattr(cc.subprocess, "run", None)  # any attempt to run a program would fail
    assert default_flags() == [*BASE_FLAGS, *cc.TUNING_FLAGS, *cc.THREAD_FLAGS, "-march=native"]
    monkeypatch.setenv("SYMGRAD_NATIVE", "0")
    assert default_flags() == [*BASE_FLAGS, *cc.TUNING_FLAGS, *cc.THREAD_FLAGS]


def test_without_a_compiler_native_is_assumed(monkeypatch):
    monkeypatch.setenv("CC", "false")
    assert default_flags() == [*BASE_FLAGS, *cc.TUNING_FLAGS, *cc.THREAD_FLAGS, "-march=native"]
    assert cc.has_native_flags(default_flags()) and not cc.has_native_flags(list(BASE_FLAGS))


def test_python_include_dirs_hold_python_h():
    dirs = python_include_dirs()
    assert dirs and len(dirs) == len(set(dirs))
    assert any((Path(d) / "Python.h").is_file() for d in dirs)


def test_extension_suffix():
    assert extension_suffix() == sysconfig.get_config_var("EXT_SUFFIX")
    if sys.platform.startswith("linux"):
        assert extension_suffix().endswith(".so")


def test_cpu_tag_names_the_machine_and_is_stable():
    tag = cpu_tag()
    assert tag.startswith(platform.machine()) and tag == cpu_tag()
    if sys.platform.startswith("linux") and Path("/proc/cpuinfo").is_file():
        assert "flags:" in tag


@pytest.mark.cc
def test_compiler_available_with_a_real_compiler():
    assert shutil.which(find_compiler().argv0[0])
    assert compiler_available()


def test_large_kernels_build_at_o1(monkeypatch):
    monkeypatch.delenv("SYMGRAD_OPENMP", raising=False)
    flags = default_flags(large=True)
    assert "-O1" in flags and not set(cc.TUNING_FLAGS) & set(flags)
    assert flags[: len(BASE_FLAGS)] == list(BASE_FLAGS)


@pytest.mark.cc
def test_a_kernel_of_many_statements_is_built_at_o1(tmp_path, monkeypatch):
    if not cc.compiler_available():
        pytest.skip("no working C compiler")
    import json

    import numpy as np

    import symgrad as sg

    monkeypatch.setattr(cc, "LARGE_PROGRAM", 3)
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path / "cache"))
    f = sg.compile(lambda x: (x.exp() * 2.0).sum() + x.sum(), sg.Spec((3,)), backend="c")
    assert float(f(np.zeros(3))) == 6.0
    command = json.loads((f.cache_path / "meta.json").read_text())["compile_command"]
    assert "-O1" in command and "-O3" not in command


@posix_only
def test_a_hung_compiler_is_killed_after_the_timeout(tmp_path, monkeypatch):
    """A compiler whose children keep its pipes open (``sleep & wait``) is killed with its
    process group after ``$SYMGRAD_COMPILE_TIMEOUT`` seconds (issue 20, finding 6)."""
    import time

    marker = tmp_path / "child.pid"
    compiler = fake_compiler(tmp_path, f'sleep 1000 & echo $! > "{marker}"; wait')
    monkeypatch.setenv("SYMGRAD_COMPILE_TIMEOUT", "1")
    t0 = time.monotonic()
    with pytest.raises(CompileError, match=r"timed out after 1 s .*SYMGRAD_COMPILE_TIMEOUT"):
        cc.build_shared(compiler, [tmp_path / "x.c"], tmp_path / "x.so", [])
    assert time.monotonic() - t0 < 30
    child = int(marker.read_text())
    time.sleep(0.2)
    stat = Path(f"/proc/{child}/stat")  # the compiler's child died with it (gone, or a zombie)
    if stat.parent.parent.joinpath("self").exists() and stat.exists():
        assert stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"


def test_the_compile_timeout_must_be_positive(monkeypatch):
    monkeypatch.setenv("SYMGRAD_COMPILE_TIMEOUT", "soon")
    with pytest.raises(CompileError, match="SYMGRAD_COMPILE_TIMEOUT must be a positive"):
        cc.compile_timeout()
    monkeypatch.delenv("SYMGRAD_COMPILE_TIMEOUT")
    assert cc.compile_timeout() == cc.COMPILE_TIMEOUT
