"""The explorer page in headless Chromium: clicking a model line highlights its statements in
the shown backend, clicking or hovering a statement highlights its model line, the backend
buttons switch the code, and two explorers on one page (a notebook) do not interfere."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from symgrad.cli import main

pytestmark = pytest.mark.browser

MODEL = textwrap.dedent(
    """\
    import numpy as np
    import symgrad as sg
    from symgrad.model_ref import specs

    W = sg.Tensor(np.random.default_rng(0).standard_normal((3, 2)), requires_grad=True)

    @specs(sg.Spec(("n", 3)))
    def loss(x):
        h = (x @ W).tanh()
        return (h * h).sum()
    """
)
TANH, SUM = "0:9", "0:10"  # data-l keys: file index, line


@pytest.fixture
def page_url(tmp_path: Path) -> str:
    (tmp_path / "model.py").write_text(MODEL)
    out = tmp_path / "page.html"
    assert main(["show", f"{tmp_path / 'model.py'}:loss", "--html", "-o", str(out)]) == 0
    return out.as_uri()


def css(d: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(d.find_elements(By.CSS_SELECTOR, selector))


def classes(el: Any) -> set[str]:
    return set((el.get_attribute("class") or "").split())


def stmts_of(el: Any) -> set[str]:
    return set((el.get_attribute("data-s") or "").split())


def lit(d: Any, cls: str, backend: str) -> list[Any]:
    return css(d, f'.sgx-backend[data-backend="{backend}"] .sgx-c.{cls}')


def severe_logs(d: Any) -> list[Any]:
    return [e for e in d.get_log("browser") if e.get("level") == "SEVERE"]


def test_clicking_a_model_line_highlights_its_statements_and_back(browser, page_url) -> None:
    d = browser
    d.get(page_url)
    (line,) = css(d, f'.sgx-line[data-l="{TANH}"]')
    want = stmts_of(line)
    assert any(s.startswith("f") for s in want) and any(s.startswith("b") for s in want)
    line.click()
    assert "sgx-on" in classes(line)
    on = lit(d, "sgx-on", "numpy")
    assert on and all(stmts_of(c) & want for c in on)
    assert {s for c in on for s in stmts_of(c)} >= want  # every statement of the line, lit
    assert all(c.is_displayed() for c in on[:1])
    (other,) = css(d, f'.sgx-line[data-l="{SUM}"]')
    assert "sgx-on" not in classes(other)
    assert "forward" in css(d, ".sgx-info")[0].text

    # a backward statement of the other line: clicking it lights its model line instead
    sum_stmt = sorted(s for s in stmts_of(other) if s.startswith("b"))[0]
    (head,) = [
        c
        for c in css(d, '.sgx-backend[data-backend="numpy"] .sgx-c.sgx-has')
        if stmts_of(c) == {sum_stmt} and c.find_elements("css selector", ".sgx-rule")[0].text
    ]
    head.click()
    assert "sgx-on" in classes(other) and "sgx-on" not in classes(line)
    assert "sgx-on" in classes(head)
    assert "rule: vjp" in css(d, ".sgx-info")[0].text
    assert severe_logs(d) == []


def test_hovering_highlights_both_ways(browser, page_url) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    d = browser
    d.get(page_url)
    (line,) = css(d, f'.sgx-line[data-l="{SUM}"]')
    ActionChains(d).move_to_element(line).perform()
    hov = lit(d, "sgx-hov", "numpy")
    assert hov and all(stmts_of(c) & stmts_of(line) for c in hov)
    (tanh_line,) = css(d, f'.sgx-line[data-l="{TANH}"]')
    code = next(c for c in css(d, ".sgx-c.sgx-has") if stmts_of(c) <= stmts_of(tanh_line))
    ActionChains(d).move_to_element(code).perform()
    assert "sgx-hov" in classes(tanh_line) and "sgx-hov" not in classes(line)


def test_the_backend_buttons_switch_the_code(browser, page_url) -> None:
    d = browser
    d.get(page_url)
    numpy_div, c_div = (css(d, f'.sgx-backend[data-backend="{b}"]')[0] for b in ("numpy", "c"))
    assert numpy_div.is_displayed() and not c_div.is_displayed()
    css(d, 'button.sgx-b[data-backend="c"]')[0].click()
    assert c_div.is_displayed() and not numpy_div.is_displayed()
    assert "sgx-sel" in classes(css(d, 'button.sgx-b[data-backend="c"]')[0])
    css(d, f'.sgx-line[data-l="{TANH}"]')[0].click()
    on = lit(d, "sgx-on", "c")
    assert on and any("_sg_matmul_f64" in c.text for c in on)
    assert any(c.is_displayed() for c in on)
    assert severe_logs(d) == []


def test_two_explorers_on_one_page_are_independent(browser, tmp_path: Path) -> None:
    """A notebook shows several compiled functions: each fragment keeps to its own root."""
    import symgrad as sg
    from symgrad.model_ref import load

    (tmp_path / "model.py").write_text(MODEL)
    ref = load(f"{tmp_path / 'model.py'}:loss")
    f = sg.compile(ref.function, *ref.specs(), wrt=[0], backend="numpy")
    out = tmp_path / "two.html"
    out.write_text(
        "<!DOCTYPE html><html><body>" + f._repr_html_() + f._repr_html_() + "</body></html>"
    )
    d = browser
    d.get(out.as_uri())
    roots = css(d, "div.sgx")
    assert len(roots) == 2
    first_line = roots[0].find_elements("css selector", f'.sgx-line[data-l="{TANH}"]')[0]
    first_line.click()
    assert roots[0].find_elements("css selector", ".sgx-c.sgx-on")
    assert not roots[1].find_elements("css selector", ".sgx-on")
    roots[1].find_elements("css selector", 'button.sgx-b[data-backend="c"]')[0].click()
    shown = [b.get_attribute("data-backend") for b in css(d, ".sgx-backend") if b.is_displayed()]
    assert shown == ["numpy", "c"]
    assert severe_logs(d) == []
