"""``requires_grad`` as PyTorch has it (issue 17): only leaves change it, only float tensors
require gradients. Assigning ``requires_grad`` (or calling ``requires_grad_()``) on a result
with gradient history, or on an integer tensor, raises an error that says what was done, on the
user's line, and what to write instead; ``x.detach().requires_grad_()`` gives a leaf whose
gradient arrives. PyTorch refuses and accepts the same cases (checked where installed)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import symgrad as sg


def _line() -> int:
    frame = inspect.currentframe()
    assert frame is not None and frame.f_back is not None
    return frame.f_back.f_lineno


def _refused(fn: Callable[[], Any], exc: type[Exception], line: int, *parts: str) -> BaseException:
    with pytest.raises(exc) as info:
        fn()
    msg = str(info.value)
    assert f"test_requires_grad.py:{line}" in msg, msg  # the user's line
    for part in parts:
        assert part in msg, (part, msg)
    return info.value


def _result(lib: Any) -> Any:
    w = lib.tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    return w * 0.1  # (PyTorch's `p *= 0.1` outside no_grad gives such a result too)


def test_assigning_requires_grad_on_a_result_is_refused() -> None:
    h = _result(sg)
    line = _line() + 1
    err = _refused(lambda: setattr(h, "requires_grad", True), sg.TraceError, line, "not a leaf")
    assert "requires_grad = True" in str(err) and "x.detach().requires_grad_()" in str(err)
    assert "retain_grad()" in str(err)
    line = _line() + 1
    err = _refused(lambda: setattr(h, "requires_grad", False), sg.TraceError, line, "not a leaf")
    assert "x = x.detach()" in str(err)
    assert h.requires_grad  # unchanged
    line = _line() + 1
    _refused(lambda: h.requires_grad_(False), sg.TraceError, line, "requires_grad_(False)")


def test_requires_grad_on_an_integer_tensor_is_refused() -> None:
    i = sg.arange(3)
    line = _line() + 1
    err = _refused(lambda: setattr(i, "requires_grad", True), sg.DTypeError, line, "int64")
    assert "floating-point" in str(err) and "x.float().requires_grad_()" in str(err)
    line = _line() + 1
    _refused(lambda: i.requires_grad_(), sg.DTypeError, line, "requires_grad_()", "int64")
    i.requires_grad = False  # (False is always fine on a leaf)
    assert not i.requires_grad


def test_an_integer_tensor_made_to_require_grad_is_refused_on_the_users_line() -> None:
    line = _line() + 1
    err = _refused(lambda: sg.tensor([1, 2], requires_grad=True), sg.DTypeError, line, "int64")
    assert "float" in str(err) and isinstance(err, TypeError)
    line = _line() + 1
    _refused(lambda: sg.Tensor(np.arange(3), requires_grad=True), sg.DTypeError, line, "int64")


def test_pytorch_refuses_and_accepts_the_same_cases() -> None:
    torch = pytest.importorskip("torch")
    cases: list[Callable[[Any], Any]] = [
        lambda lib: setattr(_result(lib), "requires_grad", True),
        lambda lib: setattr(_result(lib), "requires_grad", False),
        lambda lib: _result(lib).requires_grad_(False),
        lambda lib: setattr(lib.arange(3), "requires_grad", True),
        lambda lib: lib.arange(3).requires_grad_(),
        lambda lib: _result(lib).requires_grad_(),  # accepted: it already requires grad
        lambda lib: _result(lib).detach().requires_grad_(),
        lambda lib: setattr(lib.ones(3) * 0.1, "requires_grad", True),  # no history: a leaf
    ]
    for k, case in enumerate(cases):
        outcomes = []
        for lib in (torch, sg):
            try:
                case(lib)
                outcomes.append("accepted")
            except (RuntimeError, sg.SymgradError):
                outcomes.append("refused")
        assert outcomes[0] == outcomes[1], (k, outcomes)


def test_a_detached_copy_is_a_leaf_whose_gradient_arrives() -> None:
    h = _result(sg)
    x = h.detach().requires_grad_()
    assert x.is_leaf and x.requires_grad and not h.detach().requires_grad
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * h.data)


def test_a_result_that_already_requires_grad_accepts_requires_grad_() -> None:
    h = _result(sg)
    assert h.requires_grad_() is h and h.requires_grad and not h.is_leaf
