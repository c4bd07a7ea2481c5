"""symgrad.runtime.cache: keys, atomic publication, concurrency, integrity and trust checks,
fallback locations, housekeeping; and a warm process that never runs the compiler."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import textwrap
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from symgrad.runtime.cache import (
    FORMAT,
    CacheError,
    CacheWarning,
    Entry,
    cache_root,
    clear,
    discard,
    get_or_build,
    info,
    layout,
    lookup,
    make_key,
    store,
)

ART = "artefact.bin"


def writer(payload: bytes = b"payload", calls: list[Path] | None = None) -> Callable[..., Any]:
    """A build callable writing ``ART`` (and recording the tmpdir it was given)."""

    def build(tmp: Path) -> dict[str, Any]:
        if calls is not None:
            calls.append(tmp)
        (tmp / ART).write_bytes(payload)
        (tmp / "source.c").write_text("int f(void) { return 1; }\n")
        return {"compile_command": ["cc", "-O2"], "graph": "x = input()", "seconds": 0.25}

    return build


def new_key(tag: str = "") -> str:
    return make_key(source=f"test {tag} {time.time_ns()}")


@pytest.fixture
def no_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# --- keys ------------------------------------------------------------------------------------


def test_key_is_sha256_hex_and_deterministic():
    key = make_key(source="int f;", compiler="cc", flags="-O2")
    assert len(key) == 64 and all(c in "0123456789abcdef" for c in key)
    assert key == make_key(flags="-O2", compiler="cc", source="int f;")  # order-independent


@pytest.mark.parametrize("part", ["source", "compiler", "version", "flags", "cpu"])
def test_key_changes_with_each_part(part):
    parts = {"source": "s", "compiler": "cc", "version": "12", "flags": "-O2", "cpu": "x"}
    changed = {**parts, part: parts[part] + "!"}
    assert make_key(**parts) != make_key(**changed)
    renamed = {("_" + k if k == part else k): v for k, v in parts.items()}
    assert make_key(**parts) != make_key(**renamed)


@pytest.mark.parametrize(
    ("target", "name", "value"),
    [
        (layout, "__version__", "999.0"),
        (layout, "FORMAT", FORMAT + 1),
        (layout.sys, "platform", "plan9"),
        (layout.platform, "machine", lambda: "pdp11"),
    ],
)
def test_key_changes_with_the_environment(monkeypatch, target, name, value):
    before = make_key(source="s")
    monkeypatch.setattr(target, name, value)
    assert make_key(source="s") != before


def test_key_parts_must_be_strings():
    with pytest.raises(TypeError, match="'flags'"):
        make_key(flags=["-O2"])  # type: ignore[arg-type]


def test_bad_keys_and_file_names_are_rejected():
    with pytest.raises(ValueError, match="cache key"):
        lookup("../../etc", [ART])
    with pytest.raises(ValueError, match="file name"):
        lookup(new_key(), ["../escape"])
    with pytest.raises(TypeError, match="sequence of file names"):
        get_or_build(new_key(), writer(), ART)
    with pytest.raises(ValueError, match="file name"):
        Entry(new_key(), Path("."), {}).file("meta.json")


# --- building and finding --------------------------------------------------------------------


def test_a_build_is_published_and_found(tmp_cache, no_warnings):
    key = new_key()
    assert lookup(key, [ART]) is None
    calls: list[Path] = []
    entry, built = get_or_build(key, writer(calls=calls), [ART])
    assert built and len(calls) == 1
    assert calls[0].parent == tmp_cache / "tmp"  # built inside the cache root
    assert entry.path == tmp_cache / key[:2] / key
    assert entry.file(ART).read_bytes() == b"payload"
    meta = json.loads((entry.path / "meta.json").read_text())
    assert meta == entry.meta
    assert meta["key"] == key and meta["format"] == FORMAT
    assert meta["files"][ART] == hashlib.sha256(b"payload").hexdigest()
    assert set(meta["files"]) == {ART, "source.c"}
    assert meta["compile_command"] == ["cc", "-O2"] and meta["graph"] == "x = input()"
    assert "created" in meta and "symgrad_version" in meta
    # found again, without building
    again, built_again = get_or_build(key, writer(calls=calls), [ART])
    assert not built_again and len(calls) == 1 and again.path == entry.path
    found = lookup(key, [ART, "source.c"])
    assert found is not None and found.meta == meta
    assert not any((tmp_cache / "tmp").iterdir())  # nothing left behind


def test_entries_are_private(tmp_cache):
    entry, _ = get_or_build(new_key(), writer(), [ART])
    assert stat.S_IMODE(entry.path.stat().st_mode) == 0o700
    assert stat.S_IMODE(entry.path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(tmp_cache.stat().st_mode) == 0o700
    for path in entry.path.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE((tmp_cache / "locks").stat().st_mode) == 0o700
    assert not (tmp_cache / "locks" / f"{entry.key}.lock").exists()  # removed on release


def test_a_failing_build_publishes_nothing(tmp_cache):
    key = new_key()

    def failing(tmp: Path) -> dict[str, Any]:
        (tmp / ART).write_bytes(b"half")
        raise RuntimeError("compiler exploded")

    with pytest.raises(RuntimeError, match="exploded"):
        get_or_build(key, failing, [ART])
    assert lookup(key, [ART]) is None
    assert not (tmp_cache / key[:2] / key).exists()
    assert not any((tmp_cache / "tmp").iterdir())
    assert get_or_build(key, writer(), [ART])[1]


def test_a_build_missing_an_expected_file_is_an_error(tmp_cache):
    key = new_key()
    with pytest.raises(CacheError, match=r"did not write \['other.so'\]"):
        get_or_build(key, writer(), [ART, "other.so"])
    assert lookup(key, [ART]) is None


def test_build_metadata_may_not_override_reserved_fields():
    with pytest.raises(ValueError, match=r"reserved keys \['key'\]"):
        get_or_build(new_key(), lambda tmp: (tmp / ART).write_bytes(b"") or {"key": "x"}, [ART])
    with pytest.raises(ValueError, match="reserved"):
        get_or_build(new_key(), lambda tmp: {"files": {}}, [])
    with pytest.raises(TypeError, match="must return a dict"):
        get_or_build(new_key(), lambda tmp: None, [])  # type: ignore[arg-type,return-value]


def test_a_crash_between_build_and_publish_leaves_nothing_visible(tmp_cache, monkeypatch):
    key = new_key()

    def crash(tmpdir: Path) -> None:
        assert (tmpdir / "meta.json").is_file()  # sealed, not yet published
        raise KeyboardInterrupt

    monkeypatch.setattr(store, "_before_publish", crash)
    with pytest.raises(KeyboardInterrupt):
        get_or_build(key, writer(), [ART])
    monkeypatch.undo()
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_cache))
    assert lookup(key, [ART]) is None
    assert get_or_build(key, writer(), [ART])[1]


def test_a_process_dying_before_publish_leaves_nothing_visible(tmp_cache, run_python):
    key = new_key()
    proc = run_python(
        f"""
        import os
        from symgrad.runtime import cache
        from symgrad.runtime.cache import store
        store._before_publish = lambda tmpdir: os._exit(17)
        def build(tmp):
            (tmp / "{ART}").write_bytes(b"payload")
            return {{}}
        cache.get_or_build("{key}", build, ["{ART}"])
        """
    )
    assert proc.returncode == 17, proc.stderr
    assert lookup(key, [ART]) is None
    assert [p.name.split(".")[0] for p in (tmp_cache / "tmp").iterdir()] == [key]  # debris
    entry, built = get_or_build(key, writer(), [ART])  # the dead process's lock is gone
    assert built and entry.file(ART).read_bytes() == b"payload"
    assert not any((tmp_cache / "tmp").iterdir())  # and its debris was cleaned


# --- broken and untrusted entries ------------------------------------------------------------


def built_entry() -> Entry:
    entry, built = get_or_build(new_key(), writer(), [ART])
    assert built
    return entry


def assert_rebuilt(entry: Entry) -> None:
    calls: list[Path] = []
    again, built = get_or_build(entry.key, writer(calls=calls), [ART])
    assert built and len(calls) == 1
    assert again.file(ART).read_bytes() == b"payload"
    assert lookup(entry.key, [ART]) is not None


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (lambda e: e.file(ART).write_bytes(b"pay"), "sha256"),  # truncated
        (lambda e: e.file(ART).write_bytes(b"\x00garbage"), "sha256"),
        (lambda e: e.file(ART).unlink(), "missing"),
        (lambda e: (e.path / "meta.json").write_text('{"key": "'), "not valid JSON"),
        (lambda e: (e.path / "meta.json").write_text("[1, 2]"), "not a JSON object"),
        (lambda e: (e.path / "meta.json").unlink(), "missing"),
    ],
)
def test_a_damaged_entry_is_refused_and_rebuilt(damage, why):
    entry = built_entry()
    damage(entry)
    with pytest.warns(CacheWarning, match=why) as record:
        assert lookup(entry.key, [ART]) is None
    assert str(entry.path) in str(record[0].message)
    assert not entry.path.exists()  # removed
    assert_rebuilt(entry)


def test_a_damaged_entry_is_rebuilt_by_get_or_build_directly():
    entry = built_entry()
    entry.file(ART).write_bytes(b"truncat")
    with pytest.warns(CacheWarning, match="sha256"):
        assert_rebuilt(entry)


def rewrite_meta(entry: Entry, **changes: Any) -> None:
    path = entry.path / "meta.json"
    meta = json.loads(path.read_text())
    meta.update(changes)
    path.write_text(json.dumps(meta))


def test_an_entry_from_another_format_is_rebuilt_quietly(no_warnings):
    entry = built_entry()
    rewrite_meta(entry, format=FORMAT + 1)
    assert lookup(entry.key, [ART]) is None
    assert_rebuilt(entry)


def test_an_entry_from_another_version_is_rebuilt_quietly(no_warnings):
    entry = built_entry()
    rewrite_meta(entry, symgrad_version="0.0.0-other")
    assert_rebuilt(entry)


def test_an_entry_recording_another_key_is_refused():
    entry = built_entry()
    rewrite_meta(entry, key="0" * 64)
    with pytest.warns(CacheWarning, match="another key"):
        assert_rebuilt(entry)


def test_an_entry_not_listing_an_expected_file_is_not_used_and_kept(recwarn):
    """E.g. named by an alias that points at another model's entry: that entry is sound and
    not this caller's to delete (issue 20, finding 9)."""
    entry = built_entry()
    assert lookup(entry.key, [ART, "module.so"]) is None
    assert not [w for w in recwarn if issubclass(w.category, CacheWarning)]
    assert lookup(entry.key, [ART]) is not None


def test_a_group_writable_entry_is_refused_with_a_warning():
    entry = built_entry()
    entry.path.chmod(0o770)
    with pytest.warns(CacheWarning, match="group- or other-writable") as record:
        assert lookup(entry.key, [ART]) is None
    assert str(entry.path) in str(record[0].message)
    assert_rebuilt(entry)
    assert stat.S_IMODE(entry.path.stat().st_mode) == 0o700


def test_an_other_writable_file_is_refused():
    entry = built_entry()
    entry.file(ART).chmod(0o606)
    with pytest.warns(CacheWarning, match=f"{ART} is group- or other-writable"):
        assert_rebuilt(entry)


def test_a_symlinked_file_is_refused(tmp_path):
    entry = built_entry()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_bytes(b"payload")
    entry.file(ART).unlink()
    entry.file(ART).symlink_to(elsewhere)
    with pytest.warns(CacheWarning, match=ART):
        assert_rebuilt(entry)


@pytest.mark.skipif(getattr(os, "geteuid", lambda: 1)() != 0, reason="chown needs root")
def test_an_entry_owned_by_someone_else_is_refused():
    entry = built_entry()
    os.chown(entry.file(ART), 65534, 65534)
    with pytest.warns(CacheWarning, match="owned by uid 65534"):
        assert_rebuilt(entry)
    assert entry.file(ART).stat().st_uid == os.geteuid()


def test_discard_removes_an_entry():
    entry = built_entry()
    assert discard(entry.key)
    assert lookup(entry.key, [ART]) is None
    assert not discard(entry.key)
    assert_rebuilt(entry)


# --- where the cache lives -------------------------------------------------------------------


def test_the_root_follows_the_environment_variable(tmp_path, monkeypatch):
    for name in ("one", "two"):
        monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path / name))
        assert cache_root() == tmp_path / name and (tmp_path / name).is_dir()


def test_default_root_is_the_user_cache_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("SYMGRAD_CACHE_DIR")
    import platformdirs

    monkeypatch.setattr(platformdirs, "user_cache_dir", lambda app: str(tmp_path / app))
    assert cache_root() == tmp_path / "symgrad"


@pytest.mark.parametrize("where", ["a file", "under a file"])
def test_an_unusable_cache_dir_falls_back_with_one_warning(tmp_path, monkeypatch, where):
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    bad = blocker if where == "a file" else blocker / "cache"
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(bad))
    with pytest.warns(RuntimeWarning, match="unusable") as record:
        root = cache_root()
    assert len(record) == 1 and str(bad) in str(record[0].message)
    assert root.is_dir() and root != bad and root.name.startswith("symgrad-cache-")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cache_root() == root  # no second warning
        entry, built = get_or_build(new_key(where), writer(), [ART])
    assert built and entry.path.is_relative_to(root)
    assert blocker.read_text() == "not a directory"


def test_a_cache_dir_with_spaces_and_unicode(tmp_path, monkeypatch, no_warnings):
    root = tmp_path / "my cache ünïcødé ☃"
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(root))
    entry, built = get_or_build(new_key(), writer(), [ART])
    assert built and entry.path.is_relative_to(root)
    assert lookup(entry.key, [ART]) is not None
    assert info()["entries"] == 1


def test_info_and_clear(tmp_cache):
    assert info() == {
        "root": str(tmp_cache),
        "entries": 0,
        "bytes": 0,
        "locks": 0,
        "locks_held": 0,
    }
    entries = [built_entry() for _ in range(3)]
    facts = info()
    assert facts["entries"] == 3 and facts["bytes"] >= 3 * len(b"payload")
    (tmp_cache / "trash" / "leftover").mkdir(parents=True)
    assert clear() == 3
    assert all(lookup(e.key, [ART]) is None for e in entries)
    assert info()["entries"] == 0 and not any((tmp_cache / "trash").iterdir())
    assert clear() == 0


# --- several processes -----------------------------------------------------------------------

CONCURRENT = """
import json, os, sys, time
from pathlib import Path
from symgrad.runtime import cache

key, shared, me, n = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])

def build(tmp):
    with open(shared / "builds.log", "a") as fh:
        fh.write(f"{me}\\n")
    (tmp / "artefact.bin").write_bytes(b"a" * 50_000)
    time.sleep(0.3)  # a slow compile: the others must wait, not read a half-written file
    (tmp / "artefact.bin").write_bytes(b"z" * 100_000)
    return {"builder": me}

(shared / f"ready-{me}").touch()
deadline = time.time() + 30
while len(list(shared.glob("ready-*"))) < n and time.time() < deadline:
    time.sleep(0.002)
entry, built = cache.get_or_build(key, build, ["artefact.bin"])
data = entry.file("artefact.bin").read_bytes()
print(json.dumps({"built": built, "ok": data == b"z" * 100_000, "builder": entry.meta["builder"]}))
"""


def test_four_processes_building_the_same_new_key(tmp_cache, tmp_path):
    key, n = new_key("concurrent"), 4
    shared = tmp_path / "shared"
    shared.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CONCURRENT, key, str(shared), str(i), str(n)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(n)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    builders = (shared / "builds.log").read_text().split()
    assert len(builders) == 1  # one compile
    assert all(r["ok"] for r in results)  # nobody read a half-written file
    assert sum(r["built"] for r in results) == 1
    assert {r["builder"] for r in results} == set(builders)


def test_threads_building_the_same_new_key(tmp_cache):
    key, calls = new_key("threads"), []

    def slow(tmp: Path) -> dict[str, Any]:
        calls.append(tmp)
        time.sleep(0.1)
        return writer()(tmp)

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: get_or_build(key, slow, [ART]), range(4)))
    assert len(calls) == 1 and sum(built for _, built in results) == 1
    assert all(e.file(ART).read_bytes() == b"payload" for e, _ in results)


@pytest.mark.cc
def test_a_warm_process_never_runs_the_compiler(
    tmp_path, monkeypatch, run_python, extension_source
):
    """Cold: this process compiles a real extension into a cache whose path has spaces and
    unicode. Warm: a second process with CC=false finds it, loads it and calls it."""
    root = tmp_path / "warm cache ünï ☃"
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(root))
    script = textwrap.dedent(
        """
        import json, sys, time
        from symgrad.runtime import cache, cc
        from symgrad.runtime.load import load_extension

        SOURCE = sys.argv[1]
        NAME = "sg_warm_ext"
        ARTEFACT = NAME + cc.extension_suffix()
        key = cache.make_key(source=SOURCE, ext=cc.extension_suffix(), cpu=cc.cpu_tag())

        def build(tmp):
            (tmp / "module.c").write_text(SOURCE)
            compiler = cc.find_compiler()  # raises NoCompilerError under CC=false
            t0 = time.perf_counter()
            argv = cc.build_shared(
                compiler, [tmp / "module.c"], tmp / ARTEFACT, cc.default_flags(),
                cc.python_include_dirs(),
            )
            return {"compile_command": argv, "seconds": time.perf_counter() - t0}

        entry, built = cache.get_or_build(key, build, ["module.c", ARTEFACT])
        module = load_extension(entry.file(ARTEFACT), NAME)
        print(json.dumps({"built": built, "answer": module.answer(), "sum": module.add(1, 2)}))
        """
    )
    source = extension_source("sg_warm_ext", 7)
    cold = subprocess.run(
        [sys.executable, "-c", script, source], capture_output=True, text=True, timeout=60
    )
    assert cold.returncode == 0, cold.stderr
    assert json.loads(cold.stdout.splitlines()[-1]) == {"built": True, "answer": 7, "sum": 3.0}
    warm = subprocess.run(
        [sys.executable, "-c", script, source],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "CC": "false"},
    )
    assert warm.returncode == 0, warm.stderr
    assert json.loads(warm.stdout.splitlines()[-1]) == {"built": False, "answer": 7, "sum": 3.0}
    # and a cold process with CC=false really cannot build
    clear()
    again = subprocess.run(
        [sys.executable, "-c", script, source],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "CC": "false"},
    )
    assert again.returncode != 0 and "NoCompilerError" in again.stderr
