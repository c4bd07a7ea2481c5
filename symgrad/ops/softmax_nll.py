"""The fused softmax + negative log-likelihood of integer targets, and its gradient.

Owns: the ``softmax_nll`` and ``softmax_nll_grad`` declarations. ``softmax_nll(z, y)`` is, per
row ``i`` of ``z`` (n, C), ``-log(softmax(z[i])[y[i]])`` computed in one numerically stable
pass: the row's max ``m``, ``s = sum(exp(z[i] - m))`` and the picked logit, giving
``(m - z[i, y[i]]) + log(s)`` (no overflow, no log of an underflowed probability).
``softmax_nll_grad(z, y, g)`` is its VJP, ``g[i] * (softmax(z[i]) - one_hot(y[i]))``, computed
row by row without materialising a one-hot. Targets follow ``gather``'s rules (int64 in
``[-C, C)``, negative values wrap, checked when evaluated, same message).

Also owns ``class_targets(y, z)``: the targets ``y`` unchanged, checked to be class indices in
``[0, C)`` of the logits ``z`` (n, C) -- what ``cross_entropy`` reads its targets through, so that a
``-1`` ("unknown") label or a class ``>= C`` is an ``IndexRangeError`` naming cross_entropy and
its targets (C: the error code ``SG_ERR_TARGET``) instead of silently meaning class ``C - 1``.

Special values follow ``-log_softmax(z)[i, y]`` (``cross_entropy``): a NaN or ``+inf`` in a
row, or a row of ``-inf``, gives NaN; a picked ``-inf`` among finite logits gives ``+inf``. The
lecture's unfused ``-log((e / e.sum(1))[i, y])`` with ``e = exp(z)`` agrees except that it
overflows: where ``exp`` of a large logit is ``inf`` it gives NaN (or ``+inf`` for a row holding
``+inf`` whose target is finite) and the fused op the finite value (or NaN). Results keep the
logits' dtype (float32 stays float32).

``symgrad.passes.softmax_nll`` rewrites the exp/normalise/pick/log and log_softmax/cross_entropy
forms into these ops at optimisation level 2. In C each row is a call of the runtime's
``_sg_softmax_nll_<t>``/``_sg_softmax_nll_grad_<t>`` (``templates/c/_runtime.c.j2``), after the
targets' range check.
May import: numpy, ``symgrad.ir`` and other ``symgrad.ops`` modules.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from symgrad.ir.dtypes import FLOAT32, DType
from symgrad.ir.errors import DTypeError, IndexRangeError, ShapeError
from symgrad.ir.node import Node, Shape
from symgrad.ir.opdef import Kind, OpDef, apply, fmt_shape, register
from symgrad.ops.c.emitter import Emitter
from symgrad.ops.indexing import check_range


def _check(z: Node, y: Node, what: str) -> None:
    if not z.dtype.is_float:
        raise DTypeError(f"{what}: logits must be floating-point, got {z.dtype}")
    if z.ndim != 2:
        raise ShapeError(f"{what}: logits must be (n, classes), got {fmt_shape(z.shape)}")
    if y.dtype.name != "int64":
        raise DTypeError(f"{what}: targets must be integers (int64), got {y.dtype}")
    if y.shape != z.shape[:1]:
        raise ShapeError(
            f"{what}: targets must be {fmt_shape(z.shape[:1])} to match logits "
            f"{fmt_shape(z.shape)}, got {fmt_shape(y.shape)}"
        )


def _nll_infer(inputs: tuple[Node, ...], attrs: dict[str, Any]) -> tuple[Shape, DType]:
    z, y = inputs
    _check(z, y, "softmax_nll")
    return z.shape[:1], z.dtype


def _grad_infer(inputs: tuple[Node, ...], attrs: dict[str, Any]) -> tuple[Shape, DType]:
    z, y, g = inputs
    _check(z, y, "softmax_nll_grad")
    if g.dtype is not z.dtype or g.shape != z.shape[:1]:
        raise ShapeError(
            f"softmax_nll_grad: the row cotangent must be {z.dtype}{fmt_shape(z.shape[:1])}, "
            f"got {g.dtype}{fmt_shape(g.shape)}"
        )
    return z.shape, z.dtype


def target_error(bad: int, n: Any) -> str:
    """The message of a cross_entropy target out of range (every backend prints the same)."""
    return (
        f"cross_entropy: target {bad} is out of range [0, {n}): targets must be class indices "
        f"of the logits' {n} classes (a label of -1 does not mean 'ignore')"
    )


def check_targets(y: Any, n: int) -> Any:
    """``y`` when every value is a class index in ``[0, n)``, else an ``IndexRangeError``."""
    if not y.size:
        return y
    if y.dtype == np.int64:  # one pass: a negative int64 read as uint64 exceeds any class count
        bad_any = bool(y.view(np.uint64).max() >= n)
    else:
        bad_any = bool(y.min() < 0 or y.max() >= n)
    if bad_any:
        bad = int(y[(y < 0) | (y >= n)].ravel()[0])
        raise IndexRangeError(target_error(bad, n))
    return y


def _targets_infer(inputs: tuple[Node, ...], attrs: dict[str, Any]) -> tuple[Shape, DType]:
    y, z = inputs
    if y.dtype.name != "int64":
        raise DTypeError(f"cross_entropy: targets must be integers (int64), got {y.dtype}")
    if z.ndim != 2:
        raise ShapeError(f"cross_entropy: logits must be (n, classes), got {fmt_shape(z.shape)}")
    if y.op == "constant" and isinstance(z.shape[1], int):  # known now: refused when traced
        check_targets(y.attrs["value"].array, z.shape[1])
    return y.shape, y.dtype


def _targets_eval(ctx: Any, y: Any, z: Any) -> Any:
    return check_targets(y, z.shape[1])


def _c_check_targets(e: Emitter, node: Node) -> list[str]:
    y, z = node.inputs
    return e.check_range(node, y, e.c(z.shape[1]), "SG_ERR_TARGET", "0")


def _c_targets(e: Emitter, node: Node, out: str) -> list[str]:
    return _c_check_targets(e, node) + e.copy(node, node.inputs[0], out)


def _rows(z: Any, y: Any) -> tuple[Any, Any, Any]:
    """Per row: the max (keepdims), sum(exp(z - max)) (keepdims) and the picked logit.
    (Array methods and one temporary: an eager training step evaluates this twice.)"""
    n = len(z)
    picked = _picked(z, y)
    if not (n and z.shape[1]):
        zeros = np.zeros((n, 1), z.dtype)
        return zeros, zeros.copy(), np.zeros(n, z.dtype)
    with np.errstate(all="ignore"):
        m = z.max(axis=1, keepdims=True)
        e = np.subtract(z, m)
        np.exp(e, out=e)
        s = e.sum(axis=1, keepdims=True)
    return m, s, picked


def _picked(z: Any, y: Any) -> Any:
    """``z[i, y[i]]`` per row, ``y`` in ``[-C, C)`` as for indexing (NumPy checks the range as
    it reads: the range is searched only to name the bad index)."""
    try:
        return z[np.arange(len(z)), y]
    except IndexError:
        check_range(y, z.shape[1], "indexing")
        raise


def _nll_eval(ctx: Any, z: Any, y: Any) -> Any:
    m, s, picked = _rows(z, y)
    with np.errstate(all="ignore"):
        return (m[:, 0] - picked) + np.log(s[:, 0])


def _grad_eval(ctx: Any, z: Any, y: Any, g: Any) -> Any:
    n = len(z)
    _picked(z, y)  # (the range check)
    with np.errstate(all="ignore"):
        if not (n and z.shape[1]):
            return np.zeros(z.shape, z.dtype) * g[:, None]
        out = np.subtract(z, z.max(axis=1, keepdims=True))
        np.exp(out, out=out)
        out /= out.sum(axis=1, keepdims=True)
        out[np.arange(n), y] -= 1
        out *= g[:, None]
        return out


def _nll_vjp(g: Node, out: Node, z: Node, y: Node) -> tuple[Node | None, ...]:
    return apply("softmax_nll_grad", (z, y, g)), None


def _grad_vjp(w: Node, out: Node, z: Node, y: Node, g: Node) -> tuple[Node | None, ...]:
    """out = g[:, None] * (p - onehot(y)) with p = softmax(z); for a cotangent w:
    dz = g[:, None] * p * (w - sum(w * p, 1)), dg = sum(w * p, 1) - w[i, y[i]]."""
    from symgrad.ops import api

    n = z.shape[0]
    p = api.softmax(z, axis=1)
    wp = api.sum(w * p, 1, keepdims=True)
    g2 = api.reshape(g, (n, 1))
    dz = g2 * p * (w - wp)
    dg = api.reshape(wp, (n,)) - apply("gather", (w, api.arange(n), y))
    return dz, None, dg


def _c_rows(e: Emitter, node: Node, out: str) -> list[str]:
    """The targets checked like gather's index, then one runtime call per row of ``z`` (n, C)
    with its target wrapped into ``[0, C)``."""
    z, y = node.inputs[:2]
    n, c = (e.c(d) for d in z.shape)
    t = "f32" if z.dtype is FLOAT32 else "f64"
    row = f"&{e.ref(z)}[_i * {c}]"
    if node.op == "softmax_nll":
        e.need(f"softmax_nll_{t}", *(("expf",) if t == "f32" else ()))
        call = f"{out}[_i] = _sg_softmax_nll_{t}({row}, {c}, _y);"
    else:
        e.need(f"softmax_nll_grad_{t}", f"sum_{t}", *(("expf",) if t == "f32" else ()))
        g = e.at(node.inputs[2], "_i")
        call = f"_sg_softmax_nll_grad_{t}(&{out}[_i * {c}], {row}, {c}, _y, {g});"
    return e.check_range(node, y, c, "SG_ERR_INDEX", f"-{c}") + [
        f"for (int64_t _i = 0; _i < {n}; _i++) {{",
        f"    int64_t _y = {e.at(y, '_i')};",
        f"    if (_y < 0) _y += {c};",
        f"    {call}",
        "}",
    ]


register(
    OpDef(
        "softmax_nll",
        Kind.INDEX,
        2,
        eval=_nll_eval,
        infer=_nll_infer,
        vjp=_nll_vjp,
        emit={"numpy": "_softmax_nll({0}, {1})", "c": _c_rows},
        helpers={"numpy": ("softmax_nll", "check")},
        reports_site=True,
        doc="softmax_nll(z, y): -log(softmax(z[i])[y[i]]) per row of z (n, C) in one stable pass "
        "(row max, log-sum-exp and the picked logit); the fused cross-entropy",
    )
)
register(
    OpDef(
        "softmax_nll_grad",
        Kind.INDEX,
        3,
        eval=_grad_eval,
        infer=_grad_infer,
        vjp=_grad_vjp,
        emit={"numpy": "_softmax_nll_grad({0}, {1}, {2})", "c": _c_rows},
        helpers={"numpy": ("softmax_nll", "check")},
        reports_site=True,
        doc="softmax_nll_grad(z, y, g): g[i] * (softmax(z[i]) - one_hot(y[i])), the VJP of "
        "softmax_nll, row by row without a one-hot",
    )
)
register(
    OpDef(
        "class_targets",
        Kind.INDEX,
        2,
        eval=_targets_eval,
        infer=_targets_infer,
        differentiable=False,
        emit={
            "numpy": "_class_targets({0}, {1}.shape[1])",
            "c": _c_targets,
            "c-check": _c_check_targets,
        },
        alias=True,
        helpers={"numpy": ("class_targets",)},
        reports_site=True,
        doc="class_targets(y, z): the targets y unchanged, checked to be class indices in [0, C) "
        "of the logits z (n, C); cross_entropy reads its targets through it",
    )
)
