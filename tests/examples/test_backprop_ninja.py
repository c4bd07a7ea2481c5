"""examples/backprop_ninja.py (makemore part 4): the generated backward pass beside the one
derived by hand, the compact cross-entropy gradient in the generated code, equal gradients, and
training on the hand-derived gradients."""

from __future__ import annotations

import re
from pathlib import Path

from tests.examples.test_examples import number, run


def test_backprop_ninja(tmp_path: Path) -> None:
    out = run("backprop_ninja", "--limit", "300", "--steps", "30", "--out", str(tmp_path))
    # the sections side by side, each with both counts
    for title in ("cross-entropy", "second layer", "tanh", "BatchNorm normalisation", "embedding"):
        assert re.search(rf"^-- {title}: generated \d+, by hand \d+$", out, re.M), title
    generated = number(r"backward statements: generated (\d+), by hand \d+", out)
    by_hand = number(r"backward statements: generated \d+, by hand (\d+)", out)
    assert by_hand == 17 and by_hand < generated <= 45
    # the logits' gradient is the fused softmax minus one-hot, times g = 1/n
    assert re.search(r"^cross-entropy: g_\w+ = _softmax_nll_grad\(", out, re.M)
    assert "out[np.arange(len(z)), y] -= 1" in out
    assert "over n: t22 = g_out * 0.03125" in out or re.search(r"over n: \w+ = .*0\.03125", out)
    assert "by hand it is one expression (exercise 3): dhprebn = bngain * bnvar_inv / n" in out
    # every parameter's gradient agrees with the hand-derived one (float64 rounding)
    for name in ("C", "W1", "b1", "W2", "b2", "bngain", "bnbias"):
        m = re.search(
            rf"^{name}\s+\| exact: \w+\s+\| approximate: (\w+)\s+\| maxdiff: (\S+)$", out, re.M
        )
        assert m and m.group(1) == "True" and float(m.group(2)) < 1e-12, name
    assert "every gradient agrees: True" in out
    first = number(r"loss (\d+\.\d+) -> \d+\.\d+ \(means", out)
    last = number(r"loss \d+\.\d+ -> (\d+\.\d+) \(means", out)
    assert last < first
    written = (tmp_path / "backprop_ninja_generated.py").read_text()
    assert "def backward(" in written and "def _softmax_nll_grad" in written
