"""A precompiled prelude for C extension builds.

Owns: :data:`PRELUDE`, the headers every generated extension module starts with (``Python.h``,
the C library, and the intrinsics and thread headers of the matrix-product kernel), compiled
once per compiler and flags into a cache entry (GCC's ``prelude.h.gch``), and
:func:`prelude_flags`, the ``-include`` flags that make a build read it instead of parsing
those headers again: about 0.3-0.6 s of every compile, mostly ``immintrin.h``. The object code
is the same either way.

When: GCC only (it checks a ``.gch`` against the build's options and silently parses the
header instead when they differ). The prelude is built once a process has compiled
:data:`BUILD_AFTER` extensions without it into this cache -- a cache that sees one or two
compiles (a test, a script run once) does not pay the ~1.5 s and ~35 MB it costs -- and from
then on every build, in every process, that finds it uses it; not in a cache bounded below
:data:`MIN_CACHE_SIZE`. ``SYMGRAD_PRELUDE=0`` turns it off. Nothing here is ever an error: a
prelude that cannot be built or found is left out (and a build that fails with it is retried
without it, by ``cc.build_extension``).

May import: the standard library, ``symgrad.runtime.cache`` and ``symgrad.runtime.cc``.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from symgrad.runtime import cache, cc

#: The headers of generated extension modules, in the order and under the macros the
#: templates use (``binding.c.j2``, ``kernel.c.j2``, ``_runtime.c.j2``).
PRELUDE = """\
/* symgrad: the headers of generated extension modules, precompiled once */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif
#if defined(SG_THREADS)
#include <pthread.h>
#include <unistd.h>
#endif
"""

#: Extensions a process compiles into a cache before it builds the prelude there.
BUILD_AFTER = 2
#: A cache bounded below this (``$SYMGRAD_CACHE_MAX_SIZE``) gets no prelude: it is ~35 MB.
MIN_CACHE_SIZE = 512 * 1024**2
FILES = ("prelude.h", "prelude.h.gch")
ENV = "SYMGRAD_PRELUDE"

_lock = threading.Lock()
_compiled: dict[str, int] = {}  # cache root -> extensions compiled without a prelude
_failed: set[str] = set()  # keys whose prelude did not build in this process


def is_gcc(compiler: cc.Compiler) -> bool:
    """Whether ``compiler`` is taken for GCC: its ``--version`` does not name clang (GCC's
    first line is ``gcc (...) 12.2.0`` or, called as ``cc``, ``cc (...) 12.2.0``); a compiler
    that cannot build the prelude is not asked again in this process."""
    return "clang" not in compiler.version.lower()


def _header_flags(flags: Sequence[str]) -> list[str]:
    """The build's flags for compiling the header (no linking)."""
    return [f for f in flags if f not in ("-shared", "-lm")]


def _key(compiler: cc.Compiler, flags: Sequence[str], include_dirs: Sequence[str]) -> str:
    return cache.make_key(
        kind="c-prelude",
        source=PRELUDE,
        compiler=" ".join(compiler.argv0),
        version=compiler.version,
        flags=" ".join(flags),
        includes=" ".join(include_dirs),
        cpu=cc.cpu_tag(),
    )


def prelude_flags(
    compiler: cc.Compiler, flags: Sequence[str], include_dirs: Sequence[str]
) -> list[str]:
    """``["-include", <prelude.h>]`` when a usable precompiled prelude for this compiler and
    these flags is in the cache (building it once enough compiles have gone without), else
    ``[]``."""
    if os.environ.get(ENV, "1") == "0" or not is_gcc(compiler):
        return []
    key = _key(compiler, flags, include_dirs)
    if key in _failed:
        return []
    try:
        entry = cache.lookup(key, FILES)
        if entry is None:
            root = str(cache.cache_root())
            with _lock:
                seen = _compiled.get(root, 0)
                _compiled[root] = seen + 1
            bound = cache.max_size()
            if seen < BUILD_AFTER or 0 < bound < MIN_CACHE_SIZE:
                return []  # (in a small cache the prelude would be pruned and rebuilt)
            entry, _ = cache.get_or_build(key, _builder(compiler, flags, include_dirs), FILES)
    except (cache.CacheError, cc.CompileError, OSError, subprocess.SubprocessError):
        with _lock:
            _failed.add(key)
        return []  # (no prelude: the build parses the headers, as without one)
    return ["-include", str(entry.file("prelude.h"))]


def _builder(compiler: cc.Compiler, flags: Sequence[str], include_dirs: Sequence[str]) -> Any:
    def build(tmp: Path) -> dict[str, Any]:
        header = tmp / "prelude.h"
        header.write_text(PRELUDE)
        argv = [
            *compiler.argv0,
            *_header_flags(flags),
            *(f"-I{d}" for d in include_dirs),
            "-x",
            "c-header",
            str(header),
            "-o",
            str(tmp / "prelude.h.gch"),
        ]
        status, stderr = cc.run_compiler(argv, cc.compile_timeout())
        if status != 0 or not (tmp / "prelude.h.gch").is_file():
            raise cc.CompileError("the precompiled prelude failed to build", argv, stderr)
        return {"backend": "c", "kind": "prelude", "compile_command": argv}

    return build
