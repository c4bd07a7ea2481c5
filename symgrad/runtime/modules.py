"""Turn a scheduled Program into a loaded module with ``forward``/``backward``, via the cache.

Owns: the per-backend build steps (NumPy: write the module source; C: render kernel + binding,
compile with ``$CC``), cache keys and aliases, the in-process table of loaded modules, and
initialising a module (allocator, constants, error class). Both backends' modules expose the
same API: ``forward(*params) -> (results, saved)`` and
``backward(*cotangents, saved, *params) -> grads``.

A warm process finds its entry through an *alias*: a key computed from the graph (its text with
provenance and the quoted source lines) instead of the rendered source, so it neither imports
Jinja2 nor renders anything, and never runs the compiler.
May import: numpy, ``symgrad.ir``, ``symgrad.backends`` and the rest of ``symgrad.runtime``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
import warnings
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from symgrad.codegen.program import Program
from symgrad.codegen.templating import fingerprint
from symgrad.ir.errors import ArgumentError
from symgrad.ir.graph import Graph
from symgrad.runtime import cache
from symgrad.runtime.load import (
    LoadError,
    load_extension,
    load_python_module,
    load_python_source,
)

BACKENDS = ("numpy", "c")


@dataclass
class Built:
    """A loaded module and the cache entry it came from."""

    module: ModuleType
    backend: str
    path: Path  # the cache entry directory
    compiled_now: bool
    texts: dict[str, str] | None = None  # the sources of a module kept in memory only

    def source(self, name: str) -> str:
        """A source file of the entry: ``module.py`` (NumPy), ``kernel.c`` or ``module.c`` (C)."""
        if self.texts is not None:
            return self.texts[name]
        return (self.path / name).read_text()


# alias -> the loaded module, while a function (a CompiledFunction, an eager plan) uses it: a
# module nobody uses is released (a NumPy module's code and arrays; a C extension's objects, and
# its shared library is closed at the next load: ``load.close_released``)
_LOADED: weakref.WeakValueDictionary[str, Built] = weakref.WeakValueDictionary()
_warned_unusable: set[str] = set()


def warn_unusable(e: cache.CacheUnusableError, what: str) -> None:
    """One warning per path at fault: the cache cannot be used, ``what`` is kept in memory."""
    if str(e.path) in _warned_unusable:
        return
    _warned_unusable.add(str(e.path))
    warnings.warn(
        f"{e}; symgrad keeps {what} in memory instead (nothing is cached on disk)",
        cache.CacheWarning,
        stacklevel=4,
    )


def _init(module: ModuleType, prog: Program, backend: str) -> None:
    consts = [c.array for c in prog.consts]
    if backend == "numpy":
        module._C[:] = consts
    else:
        module._init(np.empty, consts, ArgumentError)


def _layout(prog: Program) -> str:
    """What else than the graph decides the generated code: parameters updated in place and
    which functions are compacted (``backends.compact``)."""
    fns = [f for f in (prog.forward, prog.backward) if f is not None]
    return repr((prog.forward.inplace, [f.region is not None for f in fns]))


def _meta_text(graph: Graph, limit: int = 5000) -> str:
    """The graph's text form for meta.json (a summary line for very large graphs)."""
    return graph.text() if len(graph) <= limit else repr(graph)


def graph_alias(graph: Graph, backend: str, **extra: str) -> str:
    """A key that identifies the generated code of ``graph`` without rendering it."""
    quoted = hashlib.sha256()
    for n in graph.order:
        p = n.provenance
        if p is not None:
            text = f"{p.file}:{p.line}:{p.via}:{p.source}\n"
            quoted.update(text.encode("utf-8", "surrogatepass"))  # paths may hold surrogates
    return cache.make_key(
        kind="program",
        backend=backend,
        codegen=fingerprint(),
        names=json.dumps(list(graph.input_names)),  # with `structure`, `quoted`: the text form
        structure=graph.content_hash,
        quoted=quoted.hexdigest(),
        **extra,
    )


def _load(
    alias: str,
    backend: str,
    expect: list[str],
    loader: Callable[[cache.Entry], ModuleType],
    render: Callable[[], tuple[str, Callable[[Path], dict[str, Any]]]],
    prog: Program,
    build_ok: bool = True,
) -> Built | None:
    hit = _LOADED.get(alias)
    if hit is not None:
        return hit
    for attempt in range(2):
        key = cache.read_alias(alias)
        found = cache.lookup(key, expect) if key else None
        if found is not None and found.meta.get("graph_hash") != prog.graph_hash:
            found = None  # an alias naming another program's entry: not used, never deleted
        built_now = False
        if found is None:
            if not build_ok:
                return None
            key, build = render()
            found, built_now = cache.get_or_build(key, build, expect=expect)
            cache.write_alias(alias, key)
        entry = found
        try:
            module = loader(entry)
            break
        except LoadError as e:  # an artefact that does not load: drop it and build again, once
            if isinstance(e.__cause__, MemoryError):  # the entry is fine, the machine is full
                raise MemoryError(
                    f"out of memory while loading the generated module ({e})"
                ) from e.__cause__
            cache.discard(entry.key)
            if not build_ok:  # (the caller builds, or falls back)
                return None
            if attempt:
                raise
    if built_now:  # the automatic size bound, once the new module is loaded
        with contextlib.suppress(OSError, cache.CacheError):
            cache.maybe_prune(entry.path)
    _init(module, prog, backend)
    res = Built(module, backend, entry.path, built_now)
    _LOADED[alias] = res
    return res


def _recorded(entry: cache.Entry, name: str) -> str | None:
    """The sha256 that ``meta.json`` records for the entry's file ``name``."""
    digest = entry.meta.get("files", {}).get(name)
    return digest if isinstance(digest, str) else None


def build_numpy(prog: Program, graph: Graph, build_ok: bool = True) -> Built | None:
    alias = graph_alias(graph, "numpy", layout=_layout(prog))

    def render() -> tuple[str, Callable[[Path], dict[str, Any]]]:
        from symgrad.codegen.numpy.printer import render_numpy

        src = render_numpy(prog)

        def build(tmp: Path) -> dict[str, Any]:
            (tmp / "module.py").write_text(src)
            return {
                "backend": "numpy",
                "graph": _meta_text(graph),
                "graph_hash": prog.graph_hash,
            }

        return cache.make_key(kind="numpy-module", source=src), build

    def loader(entry: cache.Entry) -> ModuleType:
        # the bytes executed are checked against the hash the entry records (not only when
        # the entry was looked up): a file swapped in between is refused, never run
        return load_python_module(
            entry.file("module.py"), f"sg_numpy_{entry.key[:16]}", _recorded(entry, "module.py")
        )

    try:
        return _load(alias, "numpy", ["module.py"], loader, render, prog, build_ok)
    except cache.CacheUnusableError as e:  # a full disk, a damaged or untrusted cache
        if not build_ok:
            return None
        return _in_memory(prog, e)


def _in_memory(prog: Program, e: cache.CacheUnusableError) -> Built:
    """The NumPy module of ``prog`` executed from source kept in memory (with one warning per
    path at fault): NumPy code needs no disk."""
    from symgrad.codegen.numpy.printer import render_numpy

    src = render_numpy(prog)
    warn_unusable(e, "the generated NumPy modules")
    name = f"sg_numpy_mem_{prog.graph_hash[:16]}"
    module = load_python_source(src, name, f"<symgrad NumPy module {prog.graph_hash[:12]}>")
    _init(module, prog, "numpy")
    return Built(module, "numpy", Path(str(e.path)), True, {"module.py": src})


def build_c(prog: Program, graph: Graph, build_ok: bool = True) -> Built | None:
    from symgrad.runtime import cc, prelude

    fns = [f for f in (prog.forward, prog.backward) if f is not None]
    # long kernels, and compacted ones (gathers, which -O3 does not speed up), build at -O1
    large = sum(len(f.stmts) for f in fns) > cc.LARGE_PROGRAM or any(f.region for f in fns)
    flags = cc.default_flags(large=large)
    suffix = cc.extension_suffix()
    name = f"sg_{prog.graph_hash[:20]}" + ("_inplace" if prog.forward.inplace else "")
    artefact = f"{name}{suffix}"
    alias = graph_alias(
        graph,
        "c",
        flags=" ".join(flags),
        cpu=cc.cpu_tag(),
        ext=suffix,
        layout=_layout(prog),
    )

    def render() -> tuple[str, Callable[[Path], dict[str, Any]]]:
        from symgrad.codegen.c.printer import render_c

        csrc = render_c(prog, name, parallel=cc.has_openmp(flags))

        def build(tmp: Path) -> dict[str, Any]:
            compiler = cc.find_compiler()
            (tmp / "kernel.c").write_text(csrc.kernel)
            (tmp / "module.c").write_text(csrc.binding)
            t0 = time.perf_counter()
            pre = prelude.prelude_flags(compiler, flags, cc.python_include_dirs())
            argv = cc.build_extension(compiler, tmp / "module.c", tmp / artefact, flags, pre)
            return {
                "backend": "c",
                "graph": _meta_text(graph),
                "graph_hash": prog.graph_hash,
                "compiler": compiler.argv0,
                "compiler_version": compiler.version,
                "compile_command": argv,
                "compile_seconds": round(time.perf_counter() - t0, 4),
            }

        # The key holds what is known without running the compiler, so that a warm process never
        # runs it (not even `cc --version`); the compiler's argv and version go into meta.json.
        key = cache.make_key(
            kind="c-extension",
            source=csrc.binding,
            flags=" ".join(flags),
            cpu=cc.cpu_tag(),
            ext=suffix,
        )
        return key, build

    def loader(entry: cache.Entry) -> ModuleType:
        return load_extension(entry.file(artefact), name, _recorded(entry, artefact))

    return _load(alias, "c", ["kernel.c", "module.c", artefact], loader, render, prog, build_ok)


def build(prog: Program, backend: str, graph: Graph) -> Built:
    """The loaded module for ``prog`` (scheduled from ``graph``) on ``backend``."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    built = (build_numpy if backend == "numpy" else build_c)(prog, graph)
    assert built is not None
    return built


_warned_fallback = False


def resolve_backend(backend: str | None) -> str:
    """``None`` means C when a compiler works, else NumPy (with one warning per process)."""
    global _warned_fallback
    if backend is not None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        return backend
    from symgrad.runtime import cc

    try:
        cc.find_compiler()
        return "c"
    except cc.CompileError as e:
        if not _warned_fallback:
            warnings.warn(
                f"no working C compiler ({e}); symgrad uses the NumPy backend",
                RuntimeWarning,
                stacklevel=4,
            )
            _warned_fallback = True
        return "numpy"


def load(prog: Program, backend: str | None, graph: Graph) -> Built:
    """The module for ``prog`` on ``backend``; ``None`` prefers C: an already-built C module is
    used without probing the compiler, else C when a compiler works, else NumPy. With
    ``backend=None`` a C build that fails (the compiler reports an error, or the artefact does
    not load, or the cache cannot be written: a full disk, a damaged or untrusted layout) falls
    back to NumPy with a warning quoting the error; an explicit ``"c"`` raises it
    (:class:`~symgrad.runtime.cc.CompileError`, ``LoadError`` or
    :class:`~symgrad.runtime.cache.CacheUnusableError` naming the path). NumPy modules are kept
    in memory when the cache cannot be written."""
    built = None
    if backend is None:
        try:
            built = cached(prog, "c", graph)
        except (cache.CacheUnusableError, LoadError):  # rebuilt (or replaced) below
            built = None
    if built is not None:
        return built
    chosen = resolve_backend(backend)
    if backend is not None or chosen != "c":
        return build(prog, chosen, graph)
    return build_c_or_numpy(prog, graph)


def build_c_or_numpy(prog: Program, graph: Graph) -> Built:
    """C when it builds and loads, else NumPy with a :class:`RuntimeWarning` quoting why."""
    from symgrad.runtime import cc

    try:
        return build(prog, "c", graph)
    except (cc.CompileError, LoadError, cache.CacheUnusableError) as e:
        lines = str(e).splitlines()
        shown = "\n".join(lines[:12]) + ("\n  ..." if len(lines) > 12 else "")
        warnings.warn(
            f"the C backend failed for this function, so symgrad uses the NumPy backend for "
            f"it:\n{shown}",
            RuntimeWarning,
            stacklevel=4,
        )
        return build(prog, "numpy", graph)


def cached(prog: Program, backend: str, graph: Graph) -> Built | None:
    """The module when it is already built (in this process or on disk), else None: never
    renders, never runs the compiler."""
    return (build_numpy if backend == "numpy" else build_c)(prog, graph, build_ok=False)
