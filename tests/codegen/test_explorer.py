"""The explorer (symgrad.codegen.explorer): statements linked to model lines in both backends'
code, the self-contained page, Jupyter's rich display of a compiled function, and
``symgrad show --html``."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

import symgrad as sg
from symgrad.cli import main
from symgrad.codegen.explorer import _c_lines, _file_label, explore, fragment, page
from symgrad.model_ref import load

MODEL = textwrap.dedent(
    """\
    import numpy as np
    import symgrad as sg
    from symgrad.model_ref import specs

    W = sg.Tensor(np.random.default_rng(0).standard_normal((3, 2)), requires_grad=True)

    @specs(sg.Spec(("n", 3)))
    def loss(x):
        h = (x @ W).tanh()  # </script><b>not markup</b>
        return (h * h).sum() * 0.5
    """
)
TANH_LINE = 9
SUM_LINE = 10


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "model.py"
    path.write_text(MODEL)
    return path


def compiled(model: Path, opt: int = 2) -> sg.CompiledFunction:
    ref = load(f"{model}:loss")
    w = ref.function.__globals__["W"]
    return sg.compile(ref.function, *ref.specs(), wrt=[0, w], backend="numpy", opt=opt)


@pytest.mark.parametrize("opt", [0, 2])
def test_every_statement_is_linked_in_both_backends_and_to_its_line(model: Path, opt) -> None:
    f = compiled(model, opt)
    ex = explore(f.program, "loss")
    assert ex.errors == {}
    prog_targets = [s.target for s in f.program.forward.stmts]
    assert f.program.backward is not None
    prog_targets += [s.target for s in f.program.backward.stmts]
    assert [s.target for s in ex.stmts.values()] == prog_targets
    for backend in ("numpy", "c"):
        heads = [c.head for v in ex.code[backend] for c in v.lines if c.head]
        assert len(heads) == len(set(heads)), backend  # a statement's first line, once
        linked = {sid for v in ex.code[backend] for c in v.lines for sid in c.stmts}
        assert linked == set(ex.stmts), backend
        assert [v.function for v in ex.code[backend]] == ["forward", "backward"]
    assert sorted(c.head for v in ex.code["numpy"] for c in v.lines if c.head) == sorted(ex.stmts)
    (src,) = ex.sources
    assert src.name == "model.py"  # (a program compiled before may cite an equal file)
    by_line = {line.number: line for line in src.lines}
    tanh = [ex.stmts[s] for s in by_line[TANH_LINE].stmts]
    assert {"matmul", "tanh"} <= {s.op for s in tanh if s.function == "forward"}
    assert any(s.rule == "vjp tanh" for s in tanh)  # the rule behind the backward statement
    assert any(s.rule == "vjp matmul" and s.type == "f64[3,2]" for s in tanh)  # g_W
    assert all(s.rule.startswith("vjp ") for s in ex.stmts.values() if s.function == "backward")
    assert by_line[SUM_LINE].stmts and not by_line[1].stmts
    assert by_line[TANH_LINE].counts.endswith("backward")


def test_numpy_lines_are_the_printed_module(model: Path) -> None:
    f = compiled(model)
    ex = explore(f.program)
    text = "\n".join(c.text for c in ex.code["numpy"][1].lines)
    assert text.strip() == f.source("backward").strip()
    for line in ex.code["numpy"][1].lines:
        if line.head:
            assert line.text.strip().startswith(ex.stmts[line.head].target + " = ")


def test_c_statement_read_through_is_linked_to_its_reader(model: Path) -> None:
    """At opt=2 the C printer reads ``x.T`` inside the matrix product of ``g_W`` (no lines of
    its own): the transpose is linked to that product's lines."""
    ex = explore(compiled(model).program)
    lines = [c for v in ex.code["c"] for c in v.lines]
    heads = {c.head for c in lines if c.head}
    absorbed = [s for s in ex.stmts.values() if s.id not in heads]
    assert absorbed and all(s.op == "transpose" for s in absorbed)
    for s in absorbed:
        (reader,) = {c.head for c in lines if s.id in c.stmts and c.head}
        assert ex.stmts[reader].op == "matmul"


def test_c_fused_loop_lines_belong_to_their_own_statement() -> None:
    lines = [
        "    /* t5: sub (vjp tanh)  model.py:9 */",
        "    /* g_t0: mul (vjp tanh)  model.py:9 */",
        "    for (int64_t _i = 0; _i < 8; _i++) {",
        "        const double t5 = 1.0 - t2[_i];",
        "        g_t0[_i] = t5 * g[_i];",
        "    }",
        "    /* t8: transpose (vjp matmul)  model.py:9 */",
        "    t8[0] = W[0];",
        "    /* out0: f64[] */",
        "    memcpy(out0, t8, 8);",
    ]
    got = _c_lines(lines, {"t5": "b1", "g_t0": "b2", "t8": "b3"})
    assert [c.stmts for c in got] == [
        ["b1"],
        ["b2"],
        ["b1", "b2"],
        ["b1"],
        ["b2"],
        ["b1", "b2"],
        ["b3"],
        ["b3"],
        [],
        [],
    ]
    assert [c.head for c in got][:2] == ["b1", "b2"] and got[2].head == ""


def test_page_is_self_contained_and_escapes_user_text(model: Path) -> None:
    f = compiled(model)
    html = page(f.program, "loss <&>")
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert "<title>loss &lt;&amp;&gt;</title>" in html
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", html)  # no network
    assert "@import" not in html and "url(" not in html
    # the model's comment is text, never markup, in the source pane and in the JSON data
    assert "<b>not markup</b>" not in html
    assert "&lt;/script&gt;&lt;b&gt;not markup&lt;/b&gt;" in html
    assert html.count("</script>") == 2  # the data and the script: nothing closed them early
    for sid in explore(f.program).stmts:
        assert f'data-s="{sid}"' in html or f" {sid}" in html
    assert '<button type="button" class="sgx-b sgx-sel" data-backend="numpy">' in html
    assert '<div class="sgx-backend" data-backend="c" hidden>' in html


def test_fragments_have_distinct_roots_and_the_compiled_function_displays_one(model) -> None:
    f = compiled(model)
    a, b = fragment(f.program), f._repr_html_()
    ra = re.search(r'<div class="sgx" id="(\w+)">', a)
    rb = re.search(r'<div class="sgx" id="(\w+)">', b)
    assert ra and rb and ra.group(1) != rb.group(1)
    assert "<!DOCTYPE" not in b and "loss (numpy)" in b
    assert f'getElementById("{rb.group(1)}")' in b


@pytest.mark.parametrize(
    ("path", "label"),
    [
        ("/tmp/ipykernel_5330/1454656147.py", "notebook cell"),
        ("<ipython-input-3-0a1b2c>", "notebook cell"),
        ("/home/me/ipykernel_models/model.py", "model.py"),
    ],
)
def test_source_files_are_labelled(path: str, label: str) -> None:
    assert _file_label(path) == label


def test_explore_refuses_an_unknown_backend(model: Path) -> None:
    with pytest.raises(ValueError, match="backend must be one of"):
        explore(compiled(model).program, backend="cuda")


def test_cli_show_html_writes_the_page(model: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "page.html"
    assert main(["show", f"{model}:loss", "--html", "-o", str(out)]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {out} (explorer, ")
    html = out.read_text()
    assert "<title>loss (model.py, opt=2)</title>" in html
    assert 'data-backend="c"' in html and "SG_API int sg_backward(" in html
    assert "def backward(" in html


def test_cli_show_output_without_html_writes_the_code(model: Path, tmp_path: Path) -> None:
    out = tmp_path / "code.py"
    assert main(["show", f"{model}:loss", "--pass", "backward", "-o", str(out)]) == 0
    assert out.read_text().startswith("def backward(")
    assert "\x1b[" not in out.read_text()


def test_cli_show_html_with_graph_is_refused(model: Path, capsys) -> None:
    assert main(["show", f"{model}:loss", "--html", "--graph"]) == 2
    assert "cannot be combined with --graph" in capsys.readouterr().err
