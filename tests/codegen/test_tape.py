"""The tape module's generated source: one sweep case (C) and one rule (Python) per tape op,
printed from the op's VJP rule, compared with golden files (``--update-golden`` rewrites them)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import symgrad  # noqa: F401  (declares the ops)
from symgrad.codegen.tape import render_tape_c, render_tape_python, rules
from symgrad.ir.graph import evaluate
from symgrad.ops.tape import tape_ops

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


@pytest.mark.parametrize(
    ("name", "render"),
    [("tape.c.txt", lambda: render_tape_c("sg_tape")), ("tape.py.txt", render_tape_python)],
)
def test_tape_source_matches_golden(name: str, render, request: pytest.FixtureRequest) -> None:  # type: ignore[no-untyped-def]
    path = GOLDEN / name
    text = render()
    if request.config.getoption("--update-golden"):
        path.write_text(text)
    assert path.exists(), f"{path} is missing: run pytest with --update-golden"
    assert text == path.read_text(), f"generated code changed; review and --update-golden ({path})"


def test_every_tape_op_has_a_case_and_a_rule() -> None:
    c, py = render_tape_c("sg_tape"), render_tape_python()
    codes = [t.code for t in tape_ops()[1:]]
    assert [int(m) for m in re.findall(r"^        case (\d+): \{", c, re.M)] == codes
    assert [int(m) for m in re.findall(r"^def _rule(\d+)\(", py, re.M)] == codes
    assert "do not edit" in c.splitlines()[0] and "do not edit" in py.splitlines()[0]


@pytest.mark.parametrize("rule", rules(), ids=lambda r: f"{r.tape.name}-{r.tape.form}")
def test_each_rule_is_the_derivative_of_its_op(rule) -> None:  # type: ignore[no-untyped-def]
    """The printed rule's nodes, evaluated at a point, match a central difference of the op."""
    t = rule.tape
    point = {"a": 0.7, "b": 1.3, "k": 2.5, "g": 1.0}
    env = {n: np.float64(point[name]) for n, name in rule.inputs.items() if name in point}
    names = {name: n for n, name in rule.inputs.items()}

    def op_at(values: dict[str, float]) -> float:
        args = [values[n] for n in _names(t.form)]
        return float(t.op.scalar(*args))  # type: ignore[misc]

    env[names["y"]] = np.float64(op_at(point))
    for pos, ct in zip("ab", rule.cotangents, strict=False):
        if ct is None:
            continue
        got = float(evaluate([ct], env)[0])  # type: ignore[index]
        h = 1e-6
        hi, lo = dict(point), dict(point)
        hi[pos] += h
        lo[pos] -= h
        assert got == pytest.approx((op_at(hi) - op_at(lo)) / (2 * h), rel=1e-6, abs=1e-8)


def _names(form: str) -> list[str]:
    """The operand names of a form: Values are a, then b; the constant is k."""
    out, values = [], iter("ab")
    for c in form:
        out.append(next(values) if c == "v" else "k")
    return out
