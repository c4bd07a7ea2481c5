"""Turn a scheduled Program into a loaded module with ``forward``/``backward``, via the cache.

Owns: the per-backend build steps (NumPy: write the module source; C: render kernel + binding,
compile with ``$CC``), cache keys, the in-process table of loaded modules, and initialising a
module (allocator, constants, error class). Both backends' modules expose the same API:
``forward(*params) -> (results, saved)`` and ``backward(*cotangents, saved, *params) -> grads``.
May import: numpy, ``symgrad.ir``, ``symgrad.backends`` and the rest of ``symgrad.runtime``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from symgrad.backends.schedule import Program
from symgrad.ir.errors import ArgumentError
from symgrad.runtime import cache
from symgrad.runtime.load import LoadError, load_extension, load_python_module

BACKENDS = ("numpy", "c")


@dataclass
class Built:
    """A loaded module and where it came from."""

    module: ModuleType
    backend: str
    sources: dict[str, str]  # name -> text ("forward"/"backward" views are derived by callers)
    path: Path  # the cache entry directory
    compiled_now: bool


_LOADED: dict[str, Built] = {}


def _init(module: ModuleType, prog: Program, backend: str) -> None:
    consts = [c.array for c in prog.consts]
    if backend == "numpy":
        module._C[:] = consts
    else:
        module._init(np.empty, consts, ArgumentError)


def build_numpy(prog: Program, graph_text: str) -> Built:
    from symgrad.backends.numpy_backend import render_numpy

    src = render_numpy(prog)
    key = cache.make_key(kind="numpy-module", source=src)
    hit = _LOADED.get(key)
    if hit is not None:
        return hit

    def build(tmp: Path) -> dict[str, Any]:
        (tmp / "module.py").write_text(src)
        return {"backend": "numpy", "graph": graph_text}

    entry, built = cache.get_or_build(key, build, expect=["module.py"])
    module = load_python_module(entry.file("module.py"), f"sg_numpy_{key[:16]}")
    _init(module, prog, "numpy")
    res = Built(module, "numpy", {"module.py": src}, entry.path, built)
    _LOADED[key] = res
    return res


def build_c(prog: Program, graph_text: str) -> Built:
    from symgrad.backends.c_backend import render_c
    from symgrad.runtime import cc

    flags = cc.default_flags()
    name = f"sg_{prog.graph_hash[:20]}"
    csrc = render_c(prog, name)
    suffix = cc.extension_suffix()
    # The key holds what is known without running the compiler, so that a warm process never
    # runs it (not even `cc --version`); the compiler's argv and version go into meta.json.
    key = cache.make_key(
        kind="c-extension", source=csrc.binding, flags=" ".join(flags), cpu=cc.cpu_tag(), ext=suffix
    )
    hit = _LOADED.get(key)
    if hit is not None:
        return hit
    artefact = f"{name}{suffix}"

    def build(tmp: Path) -> dict[str, Any]:
        compiler = cc.find_compiler()
        (tmp / "kernel.c").write_text(csrc.kernel)
        (tmp / "module.c").write_text(csrc.binding)
        t0 = time.perf_counter()
        argv = cc.build_shared(
            compiler, [tmp / "module.c"], tmp / artefact, flags, cc.python_include_dirs()
        )
        return {
            "backend": "c",
            "graph": graph_text,
            "compiler": compiler.argv0,
            "compiler_version": compiler.version,
            "compile_command": argv,
            "compile_seconds": round(time.perf_counter() - t0, 4),
        }

    for attempt in range(2):
        entry, built = cache.get_or_build(key, build, expect=["kernel.c", "module.c", artefact])
        try:
            module = load_extension(entry.file(artefact), name)
            break
        except LoadError:
            if attempt:
                raise
            cache.discard(key)
    _init(module, prog, "c")
    res = Built(module, "c", {"kernel.c": csrc.kernel, "module.c": csrc.binding}, entry.path, built)
    _LOADED[key] = res
    return res


def build(prog: Program, backend: str, graph_text: str) -> Built:
    if backend == "numpy":
        return build_numpy(prog, graph_text)
    if backend == "c":
        return build_c(prog, graph_text)
    raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
