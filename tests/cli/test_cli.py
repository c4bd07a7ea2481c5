"""The ``symgrad`` command line: ``--version``, ``--help`` and the ``cache`` subcommands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from symgrad import __version__
from symgrad.cli.main import _human_size, main

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cli cache"
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(root))
    return root


def add_entries(n: int) -> None:
    from symgrad.runtime import cache

    def build(tmp: Path) -> dict[str, str]:
        (tmp / "a.bin").write_bytes(b"x" * 2000)
        return {}

    for i in range(n):
        cache.get_or_build(cache.make_key(source=f"cli test {i}"), build, ["a.bin"])


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"symgrad {__version__}"


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["cache", "--help"], ["cache", "info", "--help"], ["cache", "clear", "--help"]],
)
def test_help_works_everywhere(capsys, argv):
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: symgrad {' '.join(argv[:-1])}".rstrip())


def test_cache_without_an_action_prints_usage(capsys):
    assert main(["cache"]) == 2
    assert "info" in capsys.readouterr().err


def test_cache_info(capsys, cache_dir):
    assert main(["cache", "info"]) == 0
    out = capsys.readouterr().out
    assert f"root:    {cache_dir}" in out and "entries: 0" in out and "size:    0 B" in out
    add_entries(2)
    assert main(["cache", "info"]) == 0
    out = capsys.readouterr().out
    assert "entries: 2" in out and "KiB" in out


def test_cache_clear(capsys, cache_dir):
    add_entries(3)
    assert main(["cache", "clear"]) == 0
    assert capsys.readouterr().out.strip() == f"removed 3 cache entries from {cache_dir}"
    assert main(["cache", "clear"]) == 0
    assert capsys.readouterr().out.startswith("removed 0 cache entries")
    add_entries(1)
    main(["cache", "clear"])
    assert capsys.readouterr().out.startswith("removed 1 cache entry from")


def test_cache_info_as_a_console_command(cache_dir):
    proc = subprocess.run(
        [sys.executable, "-m", "symgrad.cli", "cache", "info"],
        capture_output=True,
        text=True,
        cwd=str(REPO_ROOT),
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"root:    {cache_dir}" in proc.stdout


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1536, "1.5 KiB"),
        (5 * 1024**2, "5.0 MiB"),
        (3 * 1024**3, "3.0 GiB"),
    ],
)
def test_human_size(size, text):
    assert _human_size(size) == text


def test_cache_prune(capsys, monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``symgrad cache prune --max-size`` (issue 20, finding 7)."""
    import numpy as np

    import symgrad as sg
    from symgrad.cli.main import main
    from symgrad.runtime import cache

    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path / "c"))
    for k in range(3):
        sg.compile(lambda x, k=k: (x * (k + 0.25)).sum(), sg.Spec((2,)), backend="numpy")(
            np.ones(2)
        )
    assert cache.info()["entries"] == 3
    assert main(["cache", "prune", "--max-size", "0"]) == 0
    out = capsys.readouterr().out
    assert "removed 3 cache entries" in out and "bound 0 B" in out
    assert cache.info()["entries"] == 0
    assert main(["cache", "prune", "--max-size", "lots"]) == 2
    assert "not a size: 'lots'" in capsys.readouterr().err
    assert main(["cache", "info"]) == 0
    assert "locks:   0 (0 held)" in capsys.readouterr().out
