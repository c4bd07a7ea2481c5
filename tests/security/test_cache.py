"""The on-disk cache as an attack surface: planted artefacts, shared directories, symlinks,
entries owned by someone else, and the modes of everything symgrad creates.

A "new process" is simulated in-process by emptying ``symgrad.runtime.modules._LOADED`` (the
table of modules already loaded); the C cases run a real second interpreter, since CPython
cannot unload an extension module.
"""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import symgrad as sg
from symgrad.runtime import cache, cc, modules
from symgrad.runtime.cache import CacheWarning, trust
from symgrad.runtime.compiled import CompiledFunction
from symgrad.runtime.load import LoadError, load_extension, load_python_module
from tests.security.hostile import PWNED, no_payload_ran

REPO = Path(__file__).resolve().parents[2]
MODEL = """\
import numpy as np
import symgrad as sg

W = sg.Tensor(np.array([[1.0, -2.0], [0.5, 0.25]]), requires_grad=True, label="W")


def f(x):
    return ((x @ W).tanh() * 2.0).sum()
"""
X = np.array([[0.1, 0.2], [-0.3, 0.4], [0.5, -0.6]])
WANT = float(np.sum(np.tanh(X @ np.array([[1.0, -2.0], [0.5, 0.25]])) * 2.0))
PLANT = 'open("PWNED", "w").close()\n'  # what a planted module does first
_count = itertools.count()


def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "model.py"
    if not path.exists():
        path.write_text(MODEL)
    return path


def compile_model(tmp_path: Path, backend: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Compile the model as a fresh process would: a new function object, no loaded modules."""
    monkeypatch.setattr(modules, "_LOADED", {})
    spec = importlib.util.spec_from_file_location(
        f"sg_sec_cache_model_{next(_count)}", model_file(tmp_path)
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    cf = sg.compile(mod.f, sg.Spec(("n", 2)), backend=backend)
    assert isinstance(cf, CompiledFunction)
    return cf


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def meta(entry: Path) -> dict[str, Any]:
    data = json.loads((entry / "meta.json").read_text())
    assert isinstance(data, dict)
    return data


def consistent(entry: Path) -> None:
    """Make ``entry``'s meta.json record the sha256 of every file as it is now (what an
    attacker who can write the entry would do)."""
    m = meta(entry)
    m["files"] = {name: sha256(entry / name) for name in m["files"]}
    (entry / "meta.json").write_text(json.dumps(m))
    (entry / "meta.json").chmod(0o600)


def plant_module(entry: Path) -> None:
    path = entry / "module.py"
    path.write_text(PLANT + path.read_text())


def assert_refused_and_rebuilt(
    record: list[warnings.WarningMessage], entry: Path, why: str, cf: Any, workdir: Path
) -> None:
    msgs = [str(w.message) for w in record if issubclass(w.category, CacheWarning)]
    assert any(str(entry) in m and why in m for m in msgs), msgs
    assert float(cf(X)) == pytest.approx(WANT, rel=1e-12)
    assert no_payload_ran(workdir)
    rebuilt = cf.cache_path
    assert rebuilt.is_dir() and not rebuilt.is_symlink()
    for name, digest in meta(rebuilt)["files"].items():
        assert sha256(rebuilt / name) == digest
        assert PWNED.encode() not in (rebuilt / name).read_bytes()


# -- planted artefacts ---------------------------------------------------------------------------


def test_a_planted_module_with_a_wrong_hash_is_not_run(
    tmp_path: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = compile_model(tmp_path, "numpy", monkeypatch).cache_path
    plant_module(entry)
    with pytest.warns(CacheWarning) as record:
        cf = compile_model(tmp_path, "numpy", monkeypatch)
    assert_refused_and_rebuilt(
        record.list, entry, "does not match its recorded sha256", cf, workdir
    )
    # control: the planted module is live code -- executed, it creates the file
    plant_module(entry)
    elsewhere = tmp_path / "control"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    load_python_module(entry / "module.py", "sg_sec_control")
    assert (elsewhere / PWNED).exists()


SO_SOURCE = """\
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdio.h>
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "NAME", NULL, -1, NULL};
PyMODINIT_FUNC PyInit_NAME(void)
{
    FILE *f = fopen("PWNED", "w");
    if (f != NULL) {
        fclose(f);
    }
    return PyModule_Create(&def);
}
"""


def _artefact(entry: Path) -> str:
    (name,) = [n for n in meta(entry)["files"] if n.endswith(cc.extension_suffix())]
    return str(name)


def _run(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONWARNINGS": "default"}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


@pytest.mark.cc
def test_a_planted_shared_library_with_a_wrong_hash_is_not_loaded(
    tmp_path: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = compile_model(tmp_path, "c", monkeypatch).cache_path
    artefact = _artefact(entry)
    module_name = artefact.split(".")[0]
    src = tmp_path / "evil.c"
    src.write_text(SO_SOURCE.replace("NAME", module_name))
    evil = tmp_path / artefact
    cc.build_shared(cc.find_compiler(), [src], evil, cc.default_flags(), cc.python_include_dirs())
    planted = entry / "planted.tmp"  # a new file: this process has the old one mapped
    shutil.copyfile(evil, planted)
    os.replace(planted, entry / artefact)
    script = f"""
        import importlib.util, numpy as np, symgrad as sg
        spec = importlib.util.spec_from_file_location("m", {str(model_file(tmp_path))!r})
        m = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(m)
        cf = sg.compile(m.f, sg.Spec(("n", 2)), backend="c")
        print(repr(float(cf({X.tolist()!r}))))
    """
    r = _run(script, workdir)
    assert r.returncode == 0, r.stderr
    assert float(r.stdout.strip()) == pytest.approx(WANT, rel=1e-12)
    assert f"symgrad cache entry {entry} refused" in r.stderr and "sha256" in r.stderr
    assert no_payload_ran(workdir)
    assert sha256(entry / artefact) == meta(entry)["files"][artefact]  # rebuilt
    # control: loaded, the planted library does create the file
    control = tmp_path / "control"
    control.mkdir()
    r = _run(
        f"from symgrad.runtime.load import load_extension\n"
        f"load_extension({str(evil)!r}, {module_name!r})\n",
        control,
    )
    assert r.returncode == 0, r.stderr
    assert (control / PWNED).exists()


# -- entries and directories someone else could write ------------------------------------------


def test_a_group_writable_entry_is_refused_even_with_matching_hashes(
    tmp_path: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = compile_model(tmp_path, "numpy", monkeypatch).cache_path
    plant_module(entry)
    consistent(entry)
    entry.chmod(0o770)
    with pytest.warns(CacheWarning) as record:
        cf = compile_model(tmp_path, "numpy", monkeypatch)
    assert_refused_and_rebuilt(record.list, entry, "group- or other-writable", cf, workdir)
    assert stat.S_IMODE(cf.cache_path.stat().st_mode) == 0o700


def test_a_group_writable_file_is_refused_even_with_matching_hashes(
    tmp_path: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = compile_model(tmp_path, "numpy", monkeypatch).cache_path
    plant_module(entry)
    consistent(entry)
    (entry / "module.py").chmod(0o620)
    with pytest.warns(CacheWarning) as record:
        cf = compile_model(tmp_path, "numpy", monkeypatch)
    assert_refused_and_rebuilt(
        record.list, entry, "module.py is group- or other-writable", cf, workdir
    )


def test_a_symlinked_entry_pointing_outside_the_cache_is_refused(
    tmp_path: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = compile_model(tmp_path, "numpy", monkeypatch).cache_path
    key = entry.name
    outside = tmp_path / "outside" / key
    shutil.copytree(entry, outside)
    plant_module(outside)
    consistent(outside)
    assert trust._verify(outside, key, ["module.py"]) is not None  # a consistent entry ...
    shutil.rmtree(entry)
    entry.symlink_to(outside, target_is_directory=True)  # ... reached through a symlink
    with pytest.warns(CacheWarning) as record:
        cf = compile_model(tmp_path, "numpy", monkeypatch)
    assert_refused_and_rebuilt(record.list, entry, "is not a directory", cf, workdir)
    assert cf.cache_path == entry and not entry.is_symlink()
    assert (outside / "module.py").read_text().startswith(PLANT)  # nothing outside was touched


def test_an_entry_owned_by_another_user_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Simulated: this process pretends to run as another uid while it looks the entry up."""
    cf = compile_model(tmp_path, "numpy", monkeypatch)
    key, real = cf.cache_path.name, os.geteuid()
    assert cache.lookup(key, ["module.py"]) is not None
    monkeypatch.setattr(os, "geteuid", lambda: real + 4242)
    # every directory of the cache is another user's now: refused before the entry is touched
    with pytest.raises(cache.CacheUnusableError, match=f"owned by uid {real}, not by this user"):
        cache.lookup(key, ["module.py"])
    with pytest.raises(LoadError, match=f"owned by uid {real}"):
        load_python_module(model_file(tmp_path), "sg_sec_owner")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="chown needs root")
def test_an_entry_chowned_to_another_user_is_refused(
    tmp_path: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = compile_model(tmp_path, "numpy", monkeypatch).cache_path
    plant_module(entry)
    consistent(entry)
    for path in (entry, *entry.iterdir()):
        os.chown(path, 65534, 65534)
    with pytest.warns(CacheWarning) as record:
        cf = compile_model(tmp_path, "numpy", monkeypatch)
    assert_refused_and_rebuilt(record.list, entry, "owned by uid 65534", cf, workdir)
    assert cf.cache_path.stat().st_uid == os.geteuid()


@pytest.mark.parametrize("mode", [0o770, 0o777, 0o1777, 0o720], ids=oct)
def test_a_group_or_world_writable_cache_directory_is_refused(
    mode: int, tmp_path: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared cache"
    shared.mkdir()
    shared.chmod(mode)
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(shared))
    with pytest.warns(CacheWarning, match="group- or other-writable") as record:
        cf = compile_model(tmp_path, "numpy", monkeypatch)
    assert str(shared) in str(record[0].message)
    assert float(cf(X)) == pytest.approx(WANT, rel=1e-12)
    assert shared not in cf.cache_path.parents
    assert list(shared.iterdir()) == []  # nothing was written into it


def test_a_cache_directory_owned_by_another_user_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    theirs = tmp_path / "their cache"
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(theirs))
    real = os.geteuid()
    theirs.mkdir(mode=0o700)
    monkeypatch.setattr(os, "geteuid", lambda: real + 4242)
    with pytest.warns(CacheWarning, match=f"owned by uid {real}, not by this user"):
        root = cache.cache_root()
    assert root != theirs


# -- what symgrad creates is private -----------------------------------------------------


@pytest.mark.parametrize("backend", ["numpy", pytest.param("c", marks=pytest.mark.cc)])
def test_everything_in_the_cache_is_private_even_with_umask_0(
    backend: str, tmp_path: Path, private_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = os.umask(0)
    try:
        cf = compile_model(tmp_path, backend, monkeypatch)
    finally:
        os.umask(old)
    assert float(cf(X)) == pytest.approx(WANT, rel=1e-12)
    paths = [private_cache, *private_cache.rglob("*")]
    assert cf.cache_path in paths and len(paths) > 5
    for path in paths:
        st = path.lstat()
        assert st.st_uid == os.geteuid(), path
        if stat.S_ISDIR(st.st_mode):
            assert stat.S_IMODE(st.st_mode) == 0o700, path
        else:
            assert stat.S_ISREG(st.st_mode), path
            assert stat.S_IMODE(st.st_mode) == 0o600, path


# -- the loaders check the file they open ------------------------------------------------


def test_the_loaders_refuse_untrusted_files(tmp_path: Path, workdir: Path) -> None:
    good = tmp_path / "good.py"
    good.write_text("X = 1\n")
    good.chmod(0o600)
    assert load_python_module(good, "sg_sec_good", sha256=sha256(good)).X == 1
    link = tmp_path / "link.py"
    link.symlink_to(good)
    with pytest.raises(LoadError, match="symbolic link"):
        load_python_module(link, "sg_sec_link")
    so_link = tmp_path / "link.so"
    so_link.symlink_to(good)
    with pytest.raises(LoadError, match="symbolic link"):
        load_extension(so_link, "sg_sec_link")
    bad = tmp_path / "bad.py"
    bad.write_text(PLANT)
    with pytest.raises(LoadError, match="sha256 does not match"):
        load_python_module(bad, "sg_sec_bad", sha256=sha256(good))
    bad.chmod(0o602)
    with pytest.raises(LoadError, match="group- or other-writable"):
        load_python_module(bad, "sg_sec_bad")
    with pytest.raises(LoadError, match="not a regular file"):
        load_python_module(tmp_path, "sg_sec_dir")
    assert no_payload_ran(workdir)


def test_an_entry_holds_its_files_and_json_metadata_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = compile_model(tmp_path, "numpy", monkeypatch).cache_path
    assert sorted(p.name for p in entry.iterdir()) == ["meta.json", "module.py"]
    m = meta(entry)  # parses as JSON
    assert m["files"] == {"module.py": sha256(entry / "module.py")}
