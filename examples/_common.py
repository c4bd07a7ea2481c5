"""Helpers shared by the examples (not an example itself: files starting with ``_`` are helpers).

- :func:`progress`: a tqdm progress bar when tqdm is installed, else a few plain lines.
- :func:`load_words`: the makemore word list: the first names of the ``names`` package on PyPI
  (lower-cased, a-z only, without duplicates) or a text file with one word per line.
- :func:`out_dir`: where an example writes its pictures and exports (``examples/out`` by default).
- :func:`banner`: a section title; :func:`count`, :func:`positive`: argparse types for sizes.
- :func:`import_file`: import an exported NumPy module; :func:`make_check`: ``make check`` in an
  exported C library.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

DEFAULT_OUT = Path(__file__).resolve().parent / "out"
ALPHABET = "abcdefghijklmnopqrstuvwxyz"


def count(text: str) -> int:
    """An argparse type: a whole number >= 0 (sizes, steps)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def positive(text: str) -> int:
    """An argparse type: a whole number >= 1."""
    value = count(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def banner(title: str) -> None:
    print(f"\n{'=' * 78}\n{title}\n{'=' * 78}", flush=True)


class _Plain:
    """The fallback progress bar: a line at 0%, every 25% and the end."""

    def __init__(self, it: Iterable[T], total: int, desc: str) -> None:
        self.it, self.total, self.desc = it, total, desc
        self.postfix = ""

    def __iter__(self) -> Iterator[Any]:
        marks = {self.total * q // 4 for q in range(1, 5)}
        for k, x in enumerate(self.it, 1):
            yield x
            if k in marks:
                print(f"  {self.desc}: {k}/{self.total} {self.postfix}".rstrip(), flush=True)

    def set_postfix_str(self, text: str) -> None:
        self.postfix = text


def progress(it: Iterable[T], total: int, desc: str, enabled: bool = True) -> Any:
    """Iterate ``it`` with a progress bar (``bar.set_postfix_str(...)`` shows the loss)."""
    if enabled:
        try:
            from tqdm import tqdm
        except ImportError:
            pass
        else:
            return tqdm(it, total=total, desc=desc, file=sys.stdout, leave=True, ncols=90)
    return _Plain(it, total, desc)


def load_words(path: str | None) -> tuple[list[str], str]:
    """The words and where they came from: ``path`` (one word per line), else the first names
    of the ``names`` package."""
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise SystemExit(f"--data {path}: no such file")
        words = [w.strip().lower() for w in p.read_text(encoding="utf-8").splitlines()]
        words = [w for w in words if w and all(c in ALPHABET for c in w)]
        if not words:
            raise SystemExit(f"--data {path}: no words of letters a-z in it")
        return words, str(p)
    try:
        import names
    except ImportError:
        raise SystemExit(
            "the `names` package is not installed: pip install 'symgrad[examples]' "
            "(or pass --data names.txt, one word per line)"
        ) from None
    seen: dict[str, None] = {}
    for key in ("first:female", "first:male"):
        with open(names.FILES[key], encoding="utf-8") as f:
            for line in f:
                w = line.split()[0].lower() if line.strip() else ""
                if w and all(c in ALPHABET for c in w):
                    seen.setdefault(w, None)
    return list(seen), f"the first names of the `names` package {names.__version__}"


def out_dir(path: str | None) -> Path:
    d = Path(path) if path is not None else DEFAULT_OUT
    d.mkdir(parents=True, exist_ok=True)
    return d


def savefig(fig: Any, path: Path) -> Path:
    """Save a matplotlib figure as PNG and close it."""
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def matplotlib_pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (no display needed), or None if missing."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def import_file(path: Path) -> Any:
    """Import a Python file (an exported NumPy module) by its path."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_check(path: Path) -> bool | None:
    """``make check`` in an exported C library (its self-test against symgrad's outputs);
    None when there is no C compiler or make here."""
    import shutil
    import subprocess

    from symgrad.runtime.cc import compiler_available

    if shutil.which("make") is None or not compiler_available():
        print("no C compiler or make here: build it elsewhere with `make && make check`")
        return None
    proc = subprocess.run(["make", "-s", "-C", str(path), "check"], capture_output=True, text=True)
    print(f"make check: {(proc.stdout + proc.stderr).strip()}")
    return proc.returncode == 0
