"""Running the eager ``Value`` tape: ``Value.backward()`` through the generated tape module.

Owns: building, caching and loading the tape module (``symgrad.backends.tape``: C when a
compiler works, else the rules as Python), and the runner installed into
``symgrad.frontend.value``. The C module is built once per machine (the cache keys it by its
source, flags, CPU and Python ABI), so a new process loads it without compiling; the Python
rules are a few kilobytes and rendered on first use. ``SYMGRAD_BACKEND`` chooses as it does for
compiled functions. :func:`leaf_io` hands ``compile_step`` the C module's bulk ``load`` and
``store`` of leaf Values' data (``frontend/value_nodes.LeafArrays``). May import:
``symgrad.ir``, ``symgrad.backends``, ``symgrad.frontend`` and the rest of ``symgrad.runtime``.
"""

from __future__ import annotations

import os
import warnings
from types import ModuleType
from typing import Any

import numpy as np

from symgrad.frontend.value import Value
from symgrad.frontend.value_ops import set_untrack
from symgrad.ops.tape import LEAF
from symgrad.runtime import cache, modules
from symgrad.runtime.load import LoadError, load_extension, load_python_module, load_python_source

_SLOTS = ("_v", "_a", "_b", "_code", "_k", "grad")
_loaded: dict[str, ModuleType] = {}


def _build_c() -> ModuleType:
    from symgrad.codegen.tape import render_tape_c
    from symgrad.runtime import cc

    flags = cc.default_flags()
    suffix = cc.extension_suffix()
    name = "sg_tape"
    src = render_tape_c(name)
    artefact = f"{name}{suffix}"
    key = cache.make_key(
        kind="c-tape", source=src, flags=" ".join(flags), cpu=cc.cpu_tag(), ext=suffix
    )

    def build(tmp: Any) -> dict[str, Any]:
        compiler = cc.find_compiler()
        (tmp / "tape.c").write_text(src)
        argv = cc.build_extension(compiler, tmp / "tape.c", tmp / artefact, flags)
        return {"backend": "c", "kind": "tape", "compile_command": argv}

    entry, _ = cache.get_or_build(key, build, ["tape.c", artefact])
    digest = entry.meta.get("files", {}).get(artefact)
    module = load_extension(entry.file(artefact), name, digest if isinstance(digest, str) else None)
    module.init(Value, *_SLOTS)
    module.leaves_init(Value, "_v", "_tensor")
    set_untrack(module.untrack)
    return module


def leaf_io() -> tuple[Any, Any] | None:
    """``(load, store)`` of the C tape module (``load(values, buf)``: the Values' data into a
    float64 buffer; ``store(values, buf)``: back, as new versions), for ``LeafArrays``; None
    without a working C build (the Python loops are used)."""
    from symgrad.runtime.cc import CompileError

    try:
        mod = module("c")
    except (CompileError, LoadError, OSError, cache.CacheError):
        return None
    return mod.load, mod.store


def _build_python() -> ModuleType:
    from symgrad.codegen.tape import render_tape_python

    src = render_tape_python()
    key = cache.make_key(kind="python-tape", source=src)

    def build(tmp: Any) -> dict[str, Any]:
        (tmp / "tape.py").write_text(src)
        return {"backend": "numpy", "kind": "tape"}

    try:
        entry, _ = cache.get_or_build(key, build, ["tape.py"])
    except cache.CacheUnusableError as e:  # a full disk or a damaged cache: kept in memory
        modules.warn_unusable(e, "the Python tape module")
        return load_python_source(src, f"sg_tape_{key[:16]}", "<symgrad tape module>")
    digest = entry.meta.get("files", {}).get("tape.py")
    return load_python_module(
        entry.file("tape.py"), f"sg_tape_{key[:16]}", digest if isinstance(digest, str) else None
    )


def module(backend: str) -> ModuleType:
    """The tape module for ``backend`` ("c" or "numpy"), built on first use."""
    got = _loaded.get(backend)
    if got is None:
        got = _build_c() if backend == "c" else _build_python()
        _loaded[backend] = got
    return got


# SYMGRAD_BACKEND's value -> the backend chosen for it: probing for a compiler (which runs
# `cc --version` when there is none) or retrying a failed build happens once, not per backward()
_chosen: dict[str | None, str] = {}


def _backend() -> str:
    explicit = os.environ.get("SYMGRAD_BACKEND") or None
    got = _chosen.get(explicit)
    if got is None:
        got = _chosen[explicit] = modules.resolve_backend(explicit)
    return got


def run(root: Value) -> bool:
    """``root.backward()`` on the tape; False when ``root``'s graph is not all eager Values."""
    if _backend() == "c":
        from symgrad.runtime.cc import CompileError

        try:
            mod = module("c")
        except (CompileError, LoadError, OSError, cache.CacheError) as e:  # the Python rules
            if os.environ.get("SYMGRAD_BACKEND"):
                raise
            _warn(e)
            _chosen[None] = "numpy"  # once: not a rebuild per backward()
        else:
            return mod.backward(root, 1.0) is None
    return sweep(root, module("numpy").RULES)


def _warn(e: Exception) -> None:
    lines = str(e).splitlines()
    warnings.warn(
        "the C tape module for eager Value.backward() failed, so symgrad uses Python rules "
        "for it:\n" + "\n".join(lines[:12]),
        RuntimeWarning,
        stacklevel=4,
    )


def order(root: Value) -> list[Value] | None:
    """The Values behind ``root``, each after the Values it was computed from (None when one
    of them is not an eager Value)."""
    done: dict[int, int] = {}
    out: list[Value] = []
    stack: list[tuple[Value, int]] = [(root, 0)]
    on_stack = {id(root)}
    while stack:
        v, i = stack[-1]
        if type(v) is not Value:
            return None
        prev = v._prev
        if i < len(prev):
            stack[-1] = (v, i + 1)
            p = prev[i]
            if id(p) not in done and id(p) not in on_stack:
                on_stack.add(id(p))
                stack.append((p, 0))
            continue
        stack.pop()
        done[id(v)] = len(out)
        out.append(v)
    return out


def sweep(root: Value, rules: Any) -> bool:
    """The reverse sweep in Python with the generated rules (when there is no C compiler)."""
    vals = order(root)
    if vals is None:
        return False
    index = {id(v): i for i, v in enumerate(vals)}
    f64 = np.float64
    G = [f64(0.0)] * len(vals)
    G[-1] = f64(1.0)
    with np.errstate(all="ignore"):
        for i in range(len(vals) - 1, -1, -1):
            v = vals[i]
            if v._code == LEAF:
                continue
            prev = v._prev
            a = f64(prev[0]._v)
            b = f64(prev[1]._v) if len(prev) > 1 else None
            k = f64(getattr(v, "_k", 0.0))
            cts = rules[v._code](a, b, k, f64(v._v), G[i])
            for p, ct in zip(prev, cts, strict=False):
                if ct is not None:
                    j = index[id(p)]
                    G[j] = G[j] + ct
    for v, g in zip(vals, G, strict=True):
        v.grad = float(v.grad) + float(g)
    return True
