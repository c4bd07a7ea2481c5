"""Where in the user's code a graph node came from.

Owns: :class:`Provenance` (file, line, function, the rule that made a derived node, the
module path, the other sites of a merged node), the capture of the innermost user frame outside
the symgrad package (:func:`user_code` marks code inside the package as the user's: the demo's
model), :func:`merged` (the sites of a node made twice), :func:`provenance_override` (attribute
every node made inside a block to one provenance), and the module paths:

- :func:`module_scope` (``with module_scope("layers[1].neurons[3]"): ...``): every node made
  inside the block records that path in ``Provenance.module``. The hook for ``symgrad.nn``
  (or any user module) to call around a submodule's ``__call__``; scopes nest with a dot.
- :func:`known_modules` (``with known_modules(module_paths({"model": model})): ...``): while
  active, a capture that walks through a method of one of these objects (a frame whose
  ``self`` is one of them: ``symgrad.nn``'s modules, or the user's own) records its path, so
  tracing names the module without any help from the module's code.
- :func:`module_paths`: the attribute path of every object reachable from some roots (walking
  attributes, lists, tuples and str-keyed dicts generically): ``model.layers[0].neurons[1]``.

May import: the standard library only.
"""

from __future__ import annotations

import linecache
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import CodeType, FrameType, FunctionType
from typing import Any

_PKG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where in the user's code a node was created; ``via`` says which rule made it (e.g.
    ``"vjp tanh"`` for nodes of a backward pass, which carry their forward node's location)."""

    file: str
    line: int
    function: str
    via: str = ""
    #: the other sites that created the same (interned) node, after this one: a merged node
    #: keeps every site that made it, forward sites (``via == ""``) first (see :func:`merged`)
    also: tuple[Provenance, ...] = ()
    #: the path of the ``nn`` module whose code made the node (``layers[1].neurons[3]``), set by
    #: :func:`module_scope`; "" outside any module
    module: str = ""

    @property
    def sites(self) -> tuple[Provenance, ...]:
        """Every site that created the node: this one first, then :attr:`also`."""
        if not self.also:
            return (self,)
        return (self.single, *self.also)

    @property
    def single(self) -> Provenance:
        """This site alone (without :attr:`also`)."""
        if not self.also:
            return self
        return Provenance(self.file, self.line, self.function, self.via, (), self.module)

    @staticmethod
    def capture(frame: FrameType | None = None) -> Provenance | None:
        """The innermost stack frame outside the symgrad package (None if there is none), or
        the provenance set by :func:`provenance_override`."""
        if _OVERRIDE:
            return _OVERRIDE[-1]
        f: FrameType | None = frame if frame is not None else sys._getframe(1)
        pkg = _PKG_CODES
        module = ""  # the innermost known module whose method the walk passes (see known_modules)
        while f is not None:
            code = f.f_code
            if code in pkg:  # (a set test, no call: most frames walked are symgrad's own)
                if _PATHS and not module:
                    module = _module_of(f)
                f = f.f_back
                continue
            if code not in _USER_CODES:
                if code.co_filename.startswith(_PKG_DIR):
                    if len(pkg) > _CACHE_LIMIT:
                        pkg.clear()
                    pkg.add(code)
                    if _PATHS and not module:
                        module = _module_of(f)
                    f = f.f_back
                    continue
                if len(_USER_CODES) > _CACHE_LIMIT:
                    _USER_CODES.clear()
                    _USER_CODES.update(_MARKED)
                _USER_CODES.add(code)
            if _PATHS and not module:
                module = _module_of(f)
            # one object per user line: tracing makes a node per operation, often thousands
            # from one line (the file is part of the key: code objects of the same function
            # text in two files compare equal)
            key = (code, f.f_lineno, code.co_filename)
            p = _CAPTURED.get(key)
            if p is None:
                if len(_CAPTURED) > _CACHE_LIMIT:
                    _CAPTURED.clear()
                p = _CAPTURED[key] = Provenance(code.co_filename, key[1], code.co_name)
            if _MODULES:
                module = ".".join(m for m in (_MODULES[-1], module) if m)
            return _in_module(p, module) if module else p
        return None

    @property
    def source(self) -> str:
        """The text of the user's line (stripped), or "" when unavailable."""
        entry = linecache.cache.get(self.file)
        if entry is not None and len(entry) == 4:  # a file linecache has read: its lines
            lines = entry[2]
            return lines[self.line - 1].strip() if 1 <= self.line <= len(lines) else ""
        return linecache.getline(self.file, self.line).strip()

    @property
    def short(self) -> str:
        return f"{os.path.basename(self.file)}:{self.line}"

    @property
    def rule(self) -> str:
        """``via`` as printed: ``vjp <op>`` with the op's name as given, a rewrite's label
        (``fused softmax-NLL``) as it is."""
        return self.via

    def describe(self) -> str:
        src = self.source
        return f"{self.file}:{self.line}" + (f": {src}" if src else "")


_OVERRIDE: list[Provenance | None] = []
# Provenance.capture's memos: which code objects are symgrad's own, and the provenance of a
# user line (bounded: code objects made on the fly, e.g. by exec, would otherwise pile up)
_CACHE_LIMIT = 100_000
_PKG_CODES: set[CodeType] = set()  # code objects of symgrad's own modules
_USER_CODES: set[CodeType] = set()  # code objects outside the package
_CAPTURED: dict[tuple[CodeType, int, str], Provenance] = {}


@contextmanager
def provenance_override(p: Provenance | None) -> Iterator[None]:
    """Attribute every node created inside the block to ``p`` (used for derived nodes)."""
    _OVERRIDE.append(p)
    try:
        yield
    finally:
        _OVERRIDE.pop()


#: at most this many sites per merged node (a node built from many lines, e.g. a shared
#: subexpression in a loop, keeps the first ones)
MAX_SITES = 8
_MERGED: dict[tuple[Provenance, Provenance], Provenance] = {}


def merged(old: Provenance | None, new: Provenance | None) -> Provenance | None:
    """The provenance of a node made at ``old`` and made again at ``new`` (hash-consing found
    it): every site once, forward sites (no ``via``) before derived ones (``vjp tanh``), each
    group in creation order, at most :data:`MAX_SITES`. So a statement cites the site of the
    operation it computes: a pass that rewrites the user's ``y ** 2`` into ``y * y``, which a
    VJP rule built first, cites the user's line."""
    if old is None or old is new:
        return new if old is None else old
    if new is None:
        return old
    key = (old, new)
    out = _MERGED.get(key)
    if out is not None:
        return out
    sites = list(old.sites)
    for s in new.sites:
        if s not in sites:
            sites.append(s)
    ordered = [s for s in sites if not s.via] + [s for s in sites if s.via]
    ordered = ordered[:MAX_SITES]
    if ordered == list(old.sites):
        out = old
    else:
        first = ordered[0]
        out = Provenance(
            first.file, first.line, first.function, first.via, tuple(ordered[1:]), first.module
        )
    if len(_MERGED) > _CACHE_LIMIT:
        _MERGED.clear()
    _MERGED[key] = out
    return out


def is_rewrite(via: str) -> bool:
    """Whether ``via`` names a rewritten region (``fused softmax-NLL``, ``vjp fused
    softmax-NLL``): passes that rewrite such a region again keep its label."""
    return via.startswith("fused ") or via.startswith("vjp fused ")


def with_rule(p: Provenance | None, via: str) -> Provenance | None:
    """``p``'s sites made by the rule ``via`` (a rewrite's label: ``fused softmax-NLL``)."""
    if p is None:
        return None
    return Provenance(p.file, p.line, p.function, via, (), p.module)


# -- module paths ----------------------------------------------------------------------------
_MODULES: list[str] = []  # module_scope's stack (each entry the full path)
_PATHS: dict[int, tuple[object, str]] = {}  # known_modules: id(object) -> (object, path)
_METHOD_CODES: set[CodeType] = set()  # the methods' code of the known modules' classes
_IN_MODULE: dict[tuple[Provenance, str], Provenance] = {}
_MARKED: set[CodeType] = set()  # code inside the package marked as the user's (user_code)


@contextmanager
def module_scope(path: str) -> Iterator[None]:
    """Record ``path`` (``layers[1].neurons[3]``, ``fc1``) as the module of every node made
    inside the block; nested scopes join with a dot (``model`` then ``fc1``: ``model.fc1``)."""
    _MODULES.append(".".join(m for m in (_MODULES[-1] if _MODULES else "", path) if m))
    try:
        yield
    finally:
        _MODULES.pop()


@contextmanager
def known_modules(paths: Mapping[int, tuple[object, str]]) -> Iterator[None]:
    """While active, a capture passing through a method of one of these objects (``id ->
    (object, path)``, as :func:`module_paths` gives) records its path (the innermost)."""
    saved, saved_codes = dict(_PATHS), set(_METHOD_CODES)
    _PATHS.update(paths)
    for cls in {type(obj) for obj, _ in paths.values()}:
        for klass in cls.__mro__:
            if klass.__module__ == "builtins":
                continue
            for attr in vars(klass).values():
                code = getattr(attr, "__code__", None)
                if isinstance(code, CodeType):
                    _METHOD_CODES.add(code)
    try:
        yield
    finally:
        _PATHS.clear()
        _PATHS.update(saved)
        _METHOD_CODES.clear()
        _METHOD_CODES.update(saved_codes)


def _module_of(f: FrameType) -> str:
    """The path of the known module whose method ``f`` runs, or ""."""
    if f.f_code not in _METHOD_CODES:  # (a set test first: most frames are not such methods)
        return ""
    code = f.f_code
    if not code.co_argcount:
        return ""
    entry = _PATHS.get(id(f.f_locals.get(code.co_varnames[0])))
    return entry[1] if entry is not None else ""


def _in_module(p: Provenance, module: str) -> Provenance:
    key = (p, module)
    out = _IN_MODULE.get(key)
    if out is None:
        if len(_IN_MODULE) > _CACHE_LIMIT:
            _IN_MODULE.clear()
        out = _IN_MODULE[key] = Provenance(p.file, p.line, p.function, p.via, p.also, module)
    return out


def user_code(fn: Any) -> Any:
    """Mark ``fn`` (a function defined inside the symgrad package, e.g. the demo's model) as
    user code: nodes it makes cite its lines. Returns ``fn``."""
    code = fn.__code__ if isinstance(fn, FunctionType) else fn
    _MARKED.add(code)
    _USER_CODES.add(code)
    _PKG_CODES.discard(code)
    return fn


#: what :func:`module_paths` walks into: at most this deep and this many objects
MAX_DEPTH = 8
MAX_OBJECTS = 100_000
_ATOMS = (str, bytes, int, float, complex, bool, type(None), type, FunctionType, CodeType)


def module_paths(roots: Mapping[str, object], leaf: Any = None) -> dict[int, tuple[object, str]]:
    """``id(object) -> (object, path)`` for every object reachable from ``roots`` (name ->
    object): through instance attributes (``__dict__`` and ``__slots__``, public names
    first), list and tuple items (``[k]``) and str-keyed dict values (``['key']``); the
    shortest path wins, then the first met. ``leaf(obj)`` True stops the walk at ``obj``
    (parameters: recorded, not entered). Modules, classes, functions, arrays and numbers are not
    entered."""
    out: dict[int, tuple[object, str]] = {}
    frontier: list[tuple[object, str]] = [(o, name) for name, o in roots.items()]
    for _ in range(MAX_DEPTH + 1):
        nxt: list[tuple[object, str]] = []
        for obj, path in frontier:
            if id(obj) in out or isinstance(obj, _ATOMS) or len(out) >= MAX_OBJECTS:
                continue
            out[id(obj)] = (obj, path)
            if leaf is not None and leaf(obj):
                continue
            nxt.extend(_children(obj, path))
        frontier = nxt
        if not frontier:
            break
    return out


def _children(obj: object, path: str) -> list[tuple[object, str]]:
    if isinstance(obj, list | tuple):
        return [(v, f"{path}[{k}]") for k, v in enumerate(obj)]
    if isinstance(obj, dict):
        return [(v, f"{path}[{k!r}]") for k, v in obj.items() if isinstance(k, str)]
    if type(obj).__module__ in ("numpy", "builtins") or hasattr(obj, "__array_interface__"):
        return []
    if isinstance(obj, type(os)):  # a module: not a model
        return []
    attrs: dict[str, object] = {}
    d = getattr(obj, "__dict__", None)
    if isinstance(d, dict):
        attrs.update((k, v) for k, v in d.items() if isinstance(k, str))
    for cls in type(obj).__mro__:
        for name in getattr(cls, "__slots__", ()):
            if isinstance(name, str) and name not in attrs and hasattr(obj, name):
                attrs[name] = getattr(obj, name)
    names = sorted(attrs, key=lambda k: k.startswith("_"))
    return [(attrs[k], f"{path}.{k}") for k in names]


def path_identifier(path: str) -> str:
    """An identifier for a module path: ``layers[0].w`` -> ``layers_0_w``."""
    out = []
    for ch in path:
        out.append(ch if ch.isalnum() or ch == "_" else "_")
    text = "_".join(part for part in "".join(out).split("_") if part)
    if not text or not text.isidentifier():
        text = "p_" + text
    return text
