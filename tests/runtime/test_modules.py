"""``runtime.modules``: what the default and explicit backends do when the cache is full,
damaged or untrusted, when a cached C entry does not load, and releasing modules (issue 20,
findings 4, 5, 7 and 9)."""

from __future__ import annotations

import errno
import gc
import json
import os
import pathlib
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import symgrad as sg
from symgrad.runtime import cache, modules

BACKENDS = [None, "numpy", pytest.param("c", marks=pytest.mark.cc)]
_count = iter(range(10**6))


@pytest.fixture(autouse=True)
def fresh_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(modules, "_LOADED", type(modules._LOADED)())
    monkeypatch.setattr(modules, "_warned_unusable", set(), raising=False)


def new_function(backend: str | None, c: float | None = None) -> tuple[Any, float]:
    """A function never compiled before (its constant is new), and that constant."""
    c = float(next(_count)) + 0.5 if c is None else c
    return sg.compile(lambda x: (x * c).sum(), sg.Spec((3,)), backend=backend), c


def disk_full(monkeypatch: pytest.MonkeyPatch) -> None:
    def full(self: pathlib.Path, *args: Any, **kw: Any) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))

    monkeypatch.setattr(pathlib.Path, "write_text", full)


@pytest.mark.parametrize("backend", [None, "numpy"])
def test_a_full_disk_falls_back_to_numpy_in_memory(
    backend: str | None, tmp_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk_full(monkeypatch)
    with pytest.warns(cache.CacheWarning, match=r"cache is full: writing .*No space left") as w:
        f, c = new_function(backend)
    assert str(tmp_cache) in str(w[0].message)
    assert f.backend == "numpy" and f(np.ones(3)) == pytest.approx(3 * c)
    assert "def forward" in f.source("forward")


@pytest.mark.cc
def test_a_full_disk_is_symgrads_error_for_explicit_c(
    tmp_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk_full(monkeypatch)
    with pytest.raises(cache.CacheUnusableError, match="cache is full") as e:
        new_function("c")
    assert str(tmp_cache) in str(e.value) and str(tmp_cache) in str(e.value.path)
    assert not any((tmp_cache / "tmp").iterdir())  # the half-written build is gone


@pytest.mark.parametrize("part", ["locks", "tmp"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_damaged_layout(backend: str | None, part: str, tmp_cache: Path) -> None:
    tmp_cache.mkdir(mode=0o700)
    (tmp_cache / part).write_text("not a directory")
    if backend == "c":
        with pytest.raises(cache.CacheUnusableError, match=f"{tmp_cache / part} is not a dir"):
            new_function(backend)
    else:
        with pytest.warns(cache.CacheWarning, match=f"{tmp_cache / part} is not a directory"):
            f, c = new_function(backend)
        assert f(np.ones(3)) == pytest.approx(3 * c)
    cache.clear()  # repairs the layout
    assert (tmp_cache / part).is_dir() or not (tmp_cache / part).exists()
    f, c = new_function(backend)
    assert f(np.ones(3)) == pytest.approx(3 * c) and f.cache_path.is_dir()


def _writer(tmp: Path) -> dict[str, Any]:
    (tmp / "a.txt").write_bytes(b"payload")
    return {}


@pytest.mark.parametrize("part", ["locks", "tmp", "shard"])
def test_every_cache_directory_is_checked(part: str, tmp_cache: Path) -> None:
    """Not only the root: a directory of the layout another user could write into is refused
    (finding 9), by symgrad's error naming it."""
    key = cache.make_key(test=f"perm-{part}")
    folder = tmp_cache / (key[:2] if part == "shard" else part)
    folder.mkdir(parents=True)
    tmp_cache.chmod(0o700)
    folder.chmod(0o777)
    with pytest.raises(cache.CacheUnusableError, match=f"{folder}: it is group- or other-wr"):
        cache.get_or_build(key, _writer, ["a.txt"])


def test_an_untrusted_alias_directory_is_not_read(tmp_cache: Path) -> None:
    alias, key = cache.make_key(test="alias"), cache.make_key(test="entry")
    cache.write_alias(alias, key)
    assert cache.read_alias(alias) == key
    (tmp_cache / "aliases" / alias[:2]).chmod(0o777)
    assert cache.read_alias(alias) is None
    cache.write_alias(alias, key)  # best effort: nothing written into it, no error


def test_an_alias_naming_another_models_entry_deletes_nothing(tmp_cache: Path) -> None:
    f, _ = new_function("numpy")
    g, d = new_function("numpy")
    a_entry, b_entry = f.cache_path, g.cache_path
    # point every alias at f's entry, as a stale or damaged alias might
    for path in (tmp_cache / "aliases").rglob("*"):
        if path.is_file():
            path.write_text(a_entry.name + "\n")
    modules._LOADED.clear()
    del f, g
    gc.collect()
    again, _ = new_function("numpy", d)  # the same graph as g: g's alias, now naming f's entry
    assert again(np.ones(3)) == pytest.approx(3 * d)  # g's own code, not f's
    assert a_entry.is_dir() and (a_entry / "module.py").is_file()  # f's entry is kept
    assert b_entry.is_dir()


def test_a_released_function_releases_its_module(tmp_cache: Path) -> None:
    f, _ = new_function("numpy")
    module = weakref.ref(f._built.module)
    del f
    gc.collect()
    assert module() is None


def _maps_under(folder: Path) -> int:
    """How many of this process's memory maps are files under ``folder``."""
    with open("/proc/self/maps") as fh:
        return sum(str(folder) in line for line in fh)


@pytest.mark.cc
@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc/self/maps")
def test_a_released_c_function_unloads_its_shared_library(tmp_cache: Path) -> None:
    from symgrad.runtime import load

    cs = [float(next(_count)) + 0.25 for _ in range(3)]
    fs = [new_function("c", c)[0] for c in cs]
    assert all(f.backend == "c" for f in fs)
    assert _maps_under(tmp_cache) >= 3  # each library is mapped
    del fs
    gc.collect()
    load.close_released()
    assert _maps_under(tmp_cache) == 0  # every library closed, its maps gone
    # the same entry loads again from the cache, with its statics initialised afresh
    again, c = new_function("c", cs[0])
    assert again(np.arange(3.0)) == pytest.approx(3 * c)
    assert _maps_under(tmp_cache) >= 1


def test_lock_files_are_removed(tmp_cache: Path) -> None:
    for _ in range(3):
        new_function("numpy")
    assert list((tmp_cache / "locks").iterdir()) == []
    assert cache.info()["locks"] == 0


def test_prune_keeps_the_most_recently_used(tmp_cache: Path) -> None:
    fs = [new_function("numpy")[0] for _ in range(3)]
    paths = [f.cache_path for f in fs]
    for k, p in enumerate(paths):
        os.utime(p, (1000.0 + k, 1000.0 + k))
    one = sum(q.stat().st_size for q in paths[2].iterdir())
    removed, left = cache.prune(one)
    assert removed == 2 and left <= one
    assert [p.is_dir() for p in paths] == [False, False, True]


def test_the_automatic_bound(tmp_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cache.MAX_SIZE_VAR, "1")  # one byte: each build prunes the others
    f, c = new_function("numpy")
    assert f.cache_path.is_dir()  # (the entry just built is kept)
    os.utime(f.cache_path, (1000.0, 1000.0))
    (tmp_cache / "pruned").unlink()  # (checked at most once a minute otherwise)
    g, d = new_function("numpy")
    assert not f.cache_path.exists() and g(np.ones(3)) == pytest.approx(3 * d)
    assert f(np.ones(3)) == pytest.approx(3 * c)  # a loaded function keeps working
    assert cache.parse_size("2G") == 2 << 30 and cache.parse_size("500M") == 500 << 20
    monkeypatch.setenv(cache.MAX_SIZE_VAR, "lots")
    with pytest.raises(cache.CacheError, match="SYMGRAD_CACHE_MAX_SIZE"):
        cache.max_size()


BROKEN_ENTRY = """
import json, numpy as np, symgrad as sg
f = sg.compile(lambda x: (x * 3.0).tanh().sum(), sg.Spec((3,)){backend})
print(json.dumps([f.backend, float(f(np.ones(3))), str(f.cache_path)]))
"""


@pytest.mark.cc
def test_a_cached_c_entry_that_does_not_load_is_rebuilt_and_loaded(
    tmp_path: Path, run_python: Any, extension_source: Any
) -> None:
    """The artefact is replaced by a valid library without the module's init function (its
    recorded hash rewritten), so it passes every check and fails to load: the default backend
    must neither raise nor keep the stale library (finding 5)."""
    first = run_python(BROKEN_ENTRY.format(backend=", backend='c'"))
    assert first.returncode == 0, first.stderr
    _, value, entry = json.loads(first.stdout)
    entry = Path(entry)
    (artefact,) = [p for p in entry.iterdir() if p.suffix == ".so"]
    other = tmp_path / "other.c"
    other.write_text(extension_source("sg_not_this_module"))
    from symgrad.runtime.cc import build_shared, default_flags, find_compiler, python_include_dirs

    artefact.chmod(0o600)
    build_shared(find_compiler(), [other], artefact, default_flags(), python_include_dirs())
    artefact.chmod(0o600)
    meta = json.loads((entry / "meta.json").read_text())
    import hashlib

    meta["files"][artefact.name] = hashlib.sha256(artefact.read_bytes()).hexdigest()
    (entry / "meta.json").write_text(json.dumps(meta))
    # the default backend with no compiler to rebuild it: NumPy with a warning, never a raise
    again = run_python(BROKEN_ENTRY.format(backend=""), env={"CC": "false"})
    assert again.returncode == 0, again.stderr
    backend, value2, _ = json.loads(again.stdout)
    assert backend == "numpy" and value2 == pytest.approx(value)
    assert "no working C compiler" in again.stderr
    # with a compiler: rebuilt, and the rebuilt module is the one loaded
    third = run_python(BROKEN_ENTRY.format(backend=""))
    assert third.returncode == 0, third.stderr
    backend, value3, _ = json.loads(third.stdout)
    assert backend == "c" and value3 == pytest.approx(value)
