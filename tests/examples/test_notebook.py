"""``examples/explorer.ipynb`` runs top to bottom in a real kernel (nbclient, ipykernel): the
compiled function displays as the explorer and ``draw_dot`` as a picture or a note. Skipped
cleanly when nbclient, nbformat or ipykernel is not installed (the test extra installs them)."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "explorer.ipynb"


def test_the_explorer_notebook_runs_and_displays_the_explorer() -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")  # stored clean
    client = nbclient.NotebookClient(
        nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": NOTEBOOK.parent}}
    )
    client.execute()  # raises CellExecutionError on any error
    code = [c for c in nb.cells if c.cell_type == "code"]
    printed = "".join(o.get("text", "") for o in code[0].outputs if o.output_type == "stream")
    assert printed.startswith("loss ")
    (shown,) = [o for o in code[1].outputs if o.output_type == "execute_result"]
    html = shown.data["text/html"]
    assert '<div class="sgx" id=' in html and "def backward(" in html
    assert "SG_API int sg_backward(" in html and "vjp tanh" in html
    # the model's source pane: the notebook's cell, its lines linked to statements
    assert '<div class="sgx-file" title="' in html and ">notebook cell</div>" in html
    assert '<span>    h = (x @ W1).tanh()</span><span class="sgx-n">2 forward' in html
    (drawn,) = [o for o in code[2].outputs if o.output_type == "execute_result"]
    assert "image/svg+xml" in drawn.data or "Graphviz is not installed" in drawn.data["text/html"]
