"""``draw_dot`` in a notebook: ``Dot`` shows as SVG when Graphviz's ``dot`` is installed (a fake
``dot`` program stands in for it here), else as a note above the escaped DOT text."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

import symgrad as sg
from symgrad.draw import Dot, draw_dot
from symgrad.draw import dot as dot_module


def lecture_value() -> sg.Value:
    a, b = sg.Value(2.0, label="a<1>"), sg.Value(-3.0, label="b")
    o = (a * b).tanh()
    o.backward()
    return o


def test_draw_dot_is_dot_text(monkeypatch) -> None:
    d = draw_dot(lecture_value())
    assert isinstance(d, Dot) and isinstance(d, str) and d.startswith("digraph")


def test_without_graphviz_the_notebook_shows_a_note_and_the_text(monkeypatch) -> None:
    monkeypatch.setattr(dot_module, "dot_program", lambda: None)
    d = draw_dot(lecture_value())
    assert d._repr_svg_() is None
    html = d._repr_html_()
    assert "Graphviz is not installed" in html and "apt install graphviz" in html
    assert "digraph" in html and "<1" not in html and "&lt;1" in html  # escaped twice: DOT, HTML
    with pytest.raises(dot_module.GraphvizNotFound):
        d.svg()


@pytest.fixture
def fake_dot(tmp_path: Path, monkeypatch) -> Path:
    """A ``dot`` that records its arguments and input and prints a tiny SVG."""
    log = tmp_path / "args"
    exe = tmp_path / "dot"
    exe.write_text(
        "#!/bin/sh\n"
        f'echo "$@" > {log}\n'
        f"cat > {tmp_path / 'input'}\n"
        'printf \'<?xml version="1.0"?>\\n<svg id="fake"></svg>\\n\'\n'
    )
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(dot_module, "dot_program", lambda: str(exe))
    return tmp_path


def test_with_graphviz_the_notebook_shows_the_svg(fake_dot: Path) -> None:
    d = draw_dot(lecture_value())
    assert d._repr_svg_() == '<?xml version="1.0"?>\n<svg id="fake"></svg>\n'
    assert (fake_dot / "args").read_text().split() == ["-Tsvg"]
    assert (fake_dot / "input").read_text() == str(d)
    html = d._repr_html_()
    assert html == '<div class="sg-dot"><svg id="fake"></svg>\n</div>'  # no XML prolog inline
