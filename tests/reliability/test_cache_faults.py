"""Cache faults, end to end through ``symgrad.compile``: concurrent cold compiles, a process
killed while building, damaged entries, entries from another version or machine, unusable and
odd cache directories. Every case gives correct results; broken entries are rebuilt; a file
whose recorded hash does not match is never loaded (docs/reliability.md, "Cache faults").

Each scenario runs the same model script in fresh interpreters (``MODEL``), so that nothing is
served from the in-process table of loaded modules.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from symgrad.runtime import cache
from symgrad.runtime.cache import location, store
from tests.reliability.conftest import BACKENDS, REPO_ROOT

MODEL = """\
import json, os, sys, time, warnings
warnings.simplefilter("always")
import numpy as np
import symgrad as sg
backend, barrier, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
if barrier != "-":  # start together
    open(os.path.join(barrier, f"ready.{os.getpid()}"), "w").close()
    while len([p for p in os.listdir(barrier) if p.startswith("ready.")]) < n:
        time.sleep(0.005)
def model(x, w):
    return (x @ w).tanh().sum() * 1.375
f = sg.compile(model, sg.Spec(("n", 3)), sg.Spec((3, 2)), wrt=1, backend=backend)
x, w = np.ones((2, 3)), np.full((3, 2), 0.5)
out, (gw,) = f(x, w)
t = np.tanh(1.5)
ok = abs(out - 4 * t * 1.375) < 1e-12 and np.allclose(gw, 2 * (1 - t * t) * 1.375, rtol=1e-12)
print(json.dumps({"ok": bool(ok), "built": f._built.compiled_now, "backend": f.backend,
                  "path": str(f.cache_path)}))
"""


def _script(tmp_path: Path) -> Path:
    path = tmp_path / "model_script.py"
    if not path.exists():
        path.write_text(MODEL)
    return path


def _start(
    tmp_path: Path,
    backend: str,
    env: dict[str, str] | None = None,
    barrier: str = "-",
    n: int = 1,
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(_script(tmp_path)), backend, barrier, str(n)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=str(REPO_ROOT),
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )


def _result(proc: subprocess.Popen[str], timeout: float = 300) -> tuple[dict[str, Any], str]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["ok"], result
    return result, err


def _run(
    tmp_path: Path, backend: str, env: dict[str, str] | None = None
) -> tuple[dict[str, Any], str]:
    return _result(_start(tmp_path, backend, env))


def _logging_cc(tmp_path: Path, sleep: float = 0.0) -> tuple[str, Path]:
    """A ``$CC`` that logs each run (and can be slow), then runs the real ``cc``."""
    log = tmp_path / "cc.log"
    wrapper = tmp_path / "cc-logging"
    nap = f"sleep {sleep}\n" if sleep else ""
    wrapper.write_text(
        f'#!/bin/sh\necho "$@" >> "{log}"\ncase "$*" in *module.c*) {nap};; esac\nexec cc "$@"\n'
    )
    wrapper.chmod(0o755)
    return str(wrapper), log


def _extension_builds(log: Path) -> int:
    # the log also holds flag probes (probe.c); count builds of generated extensions
    return sum("module.c" in line for line in log.read_text().splitlines()) if log.exists() else 0


# -- concurrency --------------------------------------------------------------------------------


def _concurrent(tmp_path: Path, backend: str, n: int) -> None:
    env: dict[str, str] = {}
    log = None
    if backend == "c":
        env["CC"], log = _logging_cc(tmp_path)
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    procs = [_start(tmp_path, backend, env, str(barrier), n) for _ in range(n)]
    results = [_result(p)[0] for p in procs]
    assert all(r["backend"] == backend for r in results)
    assert sum(r["built"] for r in results) == 1  # one process built, the others waited
    assert len({r["path"] for r in results}) == 1  # and all use the one entry
    if log is not None:
        assert _extension_builds(log) == 1  # the compiler ran once


@pytest.mark.parametrize("backend", BACKENDS)
def test_four_processes_compiling_the_same_new_function(tmp_path: Path, backend: str) -> None:
    _concurrent(tmp_path, backend, 4)


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_sixteen_processes_compiling_the_same_new_function(tmp_path: Path, backend: str) -> None:
    _concurrent(tmp_path, backend, 16)


# -- a process dies while building ---------------------------------------------------------------


@pytest.mark.cc
def test_a_process_killed_while_the_compiler_runs(tmp_path: Path, cache_dir: Path) -> None:
    cc, log = _logging_cc(tmp_path, sleep=60)
    victim = _start(tmp_path, "c", {"CC": cc})
    deadline = time.time() + 120
    while _extension_builds(log) == 0:  # the compiler is running (and sleeping)
        assert victim.poll() is None and time.time() < deadline, victim.communicate()
        time.sleep(0.05)
    os.killpg(victim.pid, signal.SIGKILL)  # the interpreter and its compiler, mid-build
    victim.communicate(timeout=60)
    assert not list(cache_dir.glob("??/*/meta.json"))  # nothing was published
    result, _ = _run(tmp_path, "c")  # the lock died with its holder: a new build goes ahead
    assert result["built"]
    assert not any((cache_dir / "tmp").iterdir())  # and the dead build's debris was removed
    assert _run(tmp_path, "c")[0]["built"] is False


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_crash_between_build_and_publish(tmp_path: Path, backend: str, run_python: Any) -> None:
    code = f"""
        import os, runpy, sys
        from symgrad.runtime.cache import store
        store._before_publish = lambda tmpdir: os._exit(17)  # built and sealed, not published
        sys.argv = ["model", {backend!r}, "-", "1"]
        runpy.run_path({str(_script(tmp_path))!r})
        """
    assert run_python(code).returncode == 17
    result, _ = _run(tmp_path, backend)
    assert result["built"]  # nothing half-written was found: built again, correct results


# -- damaged entries -------------------------------------------------------------------------------


def _artefact(entry: Path, backend: str) -> Path:
    if backend == "numpy":
        return entry / "module.py"
    (so,) = [p for p in entry.iterdir() if p.name.startswith("sg_")]
    return so


def _truncate(entry: Path, backend: str) -> None:
    path = _artefact(entry, backend)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _garbage(entry: Path, backend: str) -> None:
    _artefact(entry, backend).write_bytes(os.urandom(4096))


def _garbage_with_matching_hash(entry: Path, backend: str) -> None:
    """An artefact that passes the hash check but does not load (e.g. built for another
    platform by a cache shared between machines, then its metadata rewritten)."""
    path = _artefact(entry, backend)
    path.write_bytes(b"\x7fELF not really" if backend == "c" else b"raise ImportError('no')\n")
    meta = json.loads((entry / "meta.json").read_text())
    meta["files"][path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    (entry / "meta.json").write_text(json.dumps(meta))


def _meta_truncated(entry: Path, backend: str) -> None:
    (entry / "meta.json").write_text('{"key": "')


def _source_modified(entry: Path, backend: str) -> None:
    name = "module.py" if backend == "numpy" else "kernel.c"
    with open(entry / name, "a") as fh:
        fh.write("\n# edited\n")


def _other_version(entry: Path, backend: str) -> None:
    meta = json.loads((entry / "meta.json").read_text())
    meta["symgrad_version"] = "0.0.1"
    (entry / "meta.json").write_text(json.dumps(meta))


DAMAGE: list[tuple[Callable[[Path, str], None], str | None]] = [
    (_truncate, "does not match its recorded sha256"),
    (_garbage, "does not match its recorded sha256"),
    (_source_modified, "does not match its recorded sha256"),
    (_meta_truncated, "meta.json is not valid JSON"),
    (_garbage_with_matching_hash, None),  # refused by the loader, then rebuilt
    (_other_version, None),  # rebuilt quietly
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("damage", "warning"), DAMAGE, ids=[d.__name__[1:] for d, _ in DAMAGE])
def test_a_damaged_entry_is_refused_and_rebuilt(
    tmp_path: Path, backend: str, damage: Callable[[Path, str], None], warning: str | None
) -> None:
    first, _ = _run(tmp_path, backend)
    entry = Path(first["path"])
    damage(entry, backend)
    second, err = _run(tmp_path, backend)
    assert second["built"], err  # rebuilt, with correct results (checked in the script)
    if warning is not None:
        assert "CacheWarning" in err and warning in err and str(entry) in err
    elif damage is _other_version:
        assert "CacheWarning" not in err
    third, _ = _run(tmp_path, backend)
    assert not third["built"]  # and the rebuilt entry is good


def test_an_entry_of_another_machine_is_a_different_entry(tmp_path: Path, cache_dir: Path) -> None:
    """A cache shared between machines (e.g. an NFS home): the key holds the platform, the
    machine and the Python tag, so each machine builds and finds its own entry."""
    fake = tmp_path / "sitecustomize_dir"
    fake.mkdir()
    (fake / "sitecustomize.py").write_text(
        "import platform\nplatform.machine = lambda: 'riscv128'\n"
    )
    other, _ = _run(tmp_path, "numpy", {"PYTHONPATH": str(fake)})
    mine, _ = _run(tmp_path, "numpy")
    assert other["built"] and mine["built"] and other["path"] != mine["path"]
    assert not _run(tmp_path, "numpy")[0]["built"]
    assert not _run(tmp_path, "numpy", {"PYTHONPATH": str(fake)})[0]["built"]


# -- where the cache lives -----------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_cache_dir_with_spaces_and_unicode(tmp_path: Path, backend: str) -> None:
    root = tmp_path / "my cache — ünïcødé ☃ 日本"
    env = {"SYMGRAD_CACHE_DIR": str(root)}
    first, err = _run(tmp_path, backend, env)
    assert first["built"] and Path(first["path"]).is_relative_to(root)
    assert "Warning" not in err
    assert not _run(tmp_path, backend, env)[0]["built"]


def test_a_missing_cache_dir_is_created_private(tmp_path: Path) -> None:
    root = tmp_path / "not" / "yet" / "there"
    first, err = _run(tmp_path, "numpy", {"SYMGRAD_CACHE_DIR": str(root)})
    assert first["built"] and Path(first["path"]).is_relative_to(root)
    assert (root.stat().st_mode & 0o777) == 0o700
    assert "Warning" not in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_cache_dir_falls_back_to_a_temporary_one(tmp_path: Path) -> None:
    root = tmp_path / "ro"
    root.mkdir(mode=0o700)
    root.chmod(0o500)
    try:
        result, err = _run(tmp_path, "numpy", {"SYMGRAD_CACHE_DIR": str(root)})
    finally:
        root.chmod(0o700)
    assert result["built"] and not Path(result["path"]).is_relative_to(root)
    assert "is unusable (it is not writable)" in err
    assert not any(root.iterdir())


def test_a_read_only_filesystem_falls_back_to_a_temporary_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read-only mount, simulated in-process (so that it also holds when the tests run as
    root): every write under the directory fails with EROFS, as the kernel would do."""
    import symgrad as sg

    root = tmp_path / "mounted-ro"
    root.mkdir(mode=0o700)
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(root))
    _read_only(monkeypatch, root)
    with pytest.warns(RuntimeWarning, match="is unusable"):
        f = sg.compile(lambda x: (x * 0.8125).sum(), sg.Spec((3,)), wrt=0, backend="numpy")
    out, (g,) = f(np.array([1.0, 2.0, 3.0]))
    assert out == pytest.approx(4.875) and np.array_equal(g, [0.8125] * 3)
    assert not any(root.iterdir()) and not f.cache_path.is_relative_to(root)


def _read_only(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    def under(path: Any) -> bool:
        return os.path.abspath(os.fspath(path)).startswith(str(root))

    def erofs(path: Any) -> OSError:
        return OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))

    real_open, real_mkdir, real_access = os.open, os.mkdir, os.access

    def fake_open(path: Any, flags: int, *a: Any, **k: Any) -> int:
        if under(path) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise erofs(path)
        return real_open(path, flags, *a, **k)

    def fake_mkdir(path: Any, *a: Any, **k: Any) -> None:
        if under(path):
            if os.path.isdir(path):
                raise FileExistsError(errno.EEXIST, "File exists", os.fspath(path))
            raise erofs(path)
        real_mkdir(path, *a, **k)

    def fake_access(path: Any, mode: int, *a: Any, **k: Any) -> bool:
        return False if under(path) and mode & os.W_OK else real_access(path, mode, *a, **k)

    monkeypatch.setattr(os, "open", fake_open)
    monkeypatch.setattr(os, "mkdir", fake_mkdir)
    monkeypatch.setattr(os, "access", fake_access)
    location._roots.clear()


def test_loading_never_trusts_a_file_whose_hash_does_not_match(
    tmp_path: Path, cache_dir: Path
) -> None:
    """A planted module.py with valid-looking metadata but another hash is never executed."""
    first, _ = _run(tmp_path, "numpy")
    entry = Path(first["path"])
    marker = tmp_path / "EXECUTED"
    (entry / "module.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    second, err = _run(tmp_path, "numpy")
    assert second["built"] and not marker.exists()
    assert "does not match its recorded sha256" in err


def test_a_file_swapped_after_the_check_is_not_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A race: the entry passes the cache's check, then its module.py is replaced before it is
    loaded. The loader hashes the bytes it runs, refuses them, and the entry is rebuilt."""
    import symgrad as sg

    marker = tmp_path / "EXECUTED"
    real_lookup = cache.lookup
    swapped: list[Path] = []

    def racing_lookup(key: str, expect: Any) -> Any:
        entry = real_lookup(key, expect)
        if entry is not None and "module.py" in expect and not swapped:
            (entry.path / "module.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
            swapped.append(entry.path)
        return entry

    def model(x: Any) -> Any:
        return (x * 0.40625).sum()

    f = sg.compile(model, sg.Spec((3,)), wrt=0, backend="numpy")
    want = f(np.array([1.0, 2.0, 3.0]))
    from symgrad.lower import jit as api
    from symgrad.runtime import modules

    api._MEMO.clear()  # as in a fresh process: nothing loaded, the entry is on disk
    modules._LOADED.clear()
    monkeypatch.setattr(cache, "lookup", racing_lookup)
    monkeypatch.setattr(store, "lookup", racing_lookup)  # what get_or_build calls
    g = sg.compile(model, sg.Spec((3,)), wrt=0, backend="numpy")
    assert swapped and not marker.exists()  # the swapped file was refused, never run
    assert g.cache_path == swapped[0] and g._built.compiled_now  # and the entry rebuilt
    out, (gx,) = g(np.array([1.0, 2.0, 3.0]))
    assert out == want[0] and np.array_equal(gx, want[1][0])


def test_running_out_of_memory_while_loading_keeps_the_entry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A MemoryError while the generated module compiles is the machine's fault, not the
    entry's: it propagates as a MemoryError and the (good) entry is kept, not rebuilt."""
    import symgrad as sg
    from symgrad.lower import jit as api
    from symgrad.runtime import load, modules

    def model(x: Any) -> Any:
        return (x * 0.59375).sum()

    f = sg.compile(model, sg.Spec((3,)), backend="numpy")
    api._MEMO.clear()
    modules._LOADED.clear()

    def no_memory(path: Path, name: str, sha256: str | None = None) -> Any:
        try:
            raise MemoryError
        except MemoryError as exc:
            raise load.LoadError(f"cannot load {name}: MemoryError", path) from exc

    with monkeypatch.context() as m:
        m.setattr(modules, "load_python_module", no_memory)
        with pytest.raises(MemoryError, match="out of memory while loading"):
            sg.compile(model, sg.Spec((3,)), backend="numpy")
    assert (f.cache_path / "module.py").is_file()  # kept
    g = sg.compile(model, sg.Spec((3,)), backend="numpy")
    assert g.cache_path == f.cache_path and not g._built.compiled_now
    assert g(np.ones(3)) == pytest.approx(3 * 0.59375)
