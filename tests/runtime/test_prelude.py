"""``runtime.prelude``: the precompiled headers of C extension builds -- built once enough
compiles have gone without, used by later builds, never an error."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import symgrad as sg
from symgrad.runtime import cc, prelude

_count = itertools.count()


@pytest.fixture(autouse=True)
def fresh_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prelude, "_compiled", {})
    monkeypatch.setattr(prelude, "_failed", set())
    monkeypatch.delenv(prelude.ENV, raising=False)


def _compile_new() -> tuple[Any, float]:
    c = float(next(_count)) + 0.125
    f = sg.compile(lambda x: ((x @ x.T) * c).tanh().sum(), sg.Spec((4, 4)), backend="c")
    return f, c


def _command(f: Any) -> list[str]:
    return list(json.loads((Path(f.cache_path) / "meta.json").read_text())["compile_command"])


def _gcc() -> bool:
    try:
        return prelude.is_gcc(cc.find_compiler())
    except cc.NoCompilerError:
        return False


needs_gcc = pytest.mark.skipif(not _gcc(), reason="the prelude is GCC's precompiled header")


@pytest.mark.cc
@needs_gcc
def test_the_prelude_is_built_after_some_compiles_and_then_used(tmp_cache: Path) -> None:
    fs = [_compile_new() for _ in range(prelude.BUILD_AFTER + 2)]
    used = ["-include" in _command(f) for f, _ in fs]
    assert used == [False] * prelude.BUILD_AFTER + [True, True]
    entries = [p for p in tmp_cache.rglob("prelude.h.gch")]
    assert len(entries) == 1
    for f, c in fs:  # the same results with and without it
        x = np.eye(4)
        assert f(x) == pytest.approx(4 * np.tanh(c))


@pytest.mark.cc
@needs_gcc
def test_a_later_process_uses_the_prelude_at_once(
    tmp_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prelude, "BUILD_AFTER", 0)
    _compile_new()  # builds it
    monkeypatch.setattr(prelude, "_compiled", {})  # (a new process: no count yet)
    monkeypatch.setattr(prelude, "BUILD_AFTER", 10**6)
    f, _ = _compile_new()
    assert "-include" in _command(f)


@pytest.mark.cc
def test_the_prelude_can_be_turned_off(tmp_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prelude, "BUILD_AFTER", 0)
    monkeypatch.setenv(prelude.ENV, "0")
    f, _ = _compile_new()
    assert "-include" not in _command(f)
    assert not list(tmp_cache.rglob("prelude.h.gch"))


@pytest.mark.cc
def test_a_build_failing_with_the_prelude_is_retried_without(
    tmp_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gone = tmp_cache / "gone" / "prelude.h"  # e.g. removed by `symgrad cache clear` meanwhile
    monkeypatch.setattr(prelude, "prelude_flags", lambda *a: ["-include", str(gone)])
    f, c = _compile_new()
    assert "-include" not in _command(f)
    assert f(np.eye(4)) == pytest.approx(4 * np.tanh(c))


@pytest.mark.cc
def test_a_prelude_that_does_not_build_is_not_tried_again(
    tmp_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []

    def refuse(argv: list[str], timeout: float) -> tuple[int, str]:
        calls.append(argv)
        return 1, "error: this compiler cannot precompile headers"

    monkeypatch.setattr(prelude, "BUILD_AFTER", 0)
    monkeypatch.setattr(prelude.cc, "run_compiler", refuse)
    compiler = cc.Compiler(argv0=["cc"], version="cc (Debian 12.2.0-14) 12.2.0")
    flags = cc.default_flags()
    assert prelude.prelude_flags(compiler, flags, []) == []
    assert prelude.prelude_flags(compiler, flags, []) == []
    assert len(calls) == 1 and "c-header" in calls[0]


def test_only_gcc_gets_a_prelude() -> None:
    assert prelude.is_gcc(cc.Compiler(["cc"], "cc (Debian 12.2.0-14) 12.2.0"))
    assert prelude.is_gcc(cc.Compiler(["gcc-12"], "gcc-12 (Ubuntu 12.3.0) 12.3.0"))
    assert not prelude.is_gcc(cc.Compiler(["cc"], "Debian clang version 14.0.6"))
    assert not prelude.is_gcc(cc.Compiler(["clang"], "Apple clang version 15.0.0"))
    assert prelude.prelude_flags(cc.Compiler(["clang"], "clang version 17"), [], []) == []


@pytest.mark.cc
def test_a_small_cache_gets_no_prelude(tmp_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prelude, "BUILD_AFTER", 0)
    monkeypatch.setenv("SYMGRAD_CACHE_MAX_SIZE", "200M")
    f, _ = _compile_new()
    assert "-include" not in _command(f)
    assert not list(tmp_cache.rglob("prelude.h.gch"))
