"""Elementwise ops (NumPy broadcasting): arithmetic, transcendental, comparisons, where, cast.

Owns: one OpDef per elementwise op — evaluation, shape rule, VJP (returning graph nodes in the
output's shape; the autodiff driver undoes broadcasting) and the emission templates of each
backend (``{0}``, ``{1}`` are operands; in C, ``{f}`` is ``f`` for float32 and empty for float64).
May import: numpy and ``symgrad.ir``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from symgrad.ir.dtypes import BOOL, DType, as_dtype
from symgrad.ir.node import Node, Shape
from symgrad.ir.opdef import (
    NO_SURFACE,
    Kind,
    OpDef,
    Surface,
    apply,
    broadcast_shapes,
    const,
    register,
    unify_dtypes,
)
from symgrad.ops import scalar as sc
from symgrad.ops.infer import ew_infer, require_bool


def where(c: Node, a: Node, b: Node) -> Node:
    return apply("where", (c, a, b))


def zeros_like(x: Node) -> Node:
    return const(0, x.dtype)


def _ew(
    name: str,
    arity: int,
    fn: Any,
    vjp: Any,
    doc: str,
    numpy: str,
    c: str,
    float_only: bool = True,
    commutative: bool = False,
    bool_ok: bool = True,
    scalar: Any = None,
    c_by_dtype: dict[str, str] | None = None,
    helpers: tuple[str, ...] = (),
    surface: Surface = NO_SURFACE,
    kinks: str = "",
) -> OpDef:
    return register(
        OpDef(
            name,
            Kind.ELEMENTWISE,
            arity,
            eval=lambda ctx, *xs: fn(*xs),
            infer=ew_infer(float_only, bool_ok=bool_ok),
            vjp=vjp,
            doc=doc,
            emit={"numpy": numpy, "c": c, **{f"c:{k}": v for k, v in (c_by_dtype or {}).items()}},
            commutative=commutative,
            scalar=scalar,
            helpers={"numpy": helpers} if helpers else {},
            surface=surface,
            kinks=kinks,
        )
    )


def _div_eval(a: Any, b: Any) -> Any:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.true_divide(a, b)


def _guard(fn: Any) -> Any:
    def run(*xs: Any) -> Any:
        with np.errstate(all="ignore"):
            return fn(*xs)

    return run


def _sigmoid(x: Any) -> Any:
    # stable in both tails: exp of a non-positive number only
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype)


def _pow_vjp(g: Node, out: Node, x: Node, y: Node) -> tuple[Node | None, ...]:
    if y.op == "const":
        c = y.attrs["value"]
        if c == 0:  # x ** 0 == 1: zero gradient, also at x == 0 (0 * 0 ** -1 would be nan)
            return None, None
        dx = x if c == 2 else x ** (c - 1)
        return g * (c * dx if c != 1 else 1.0), None
    return g * y * x ** (y - 1.0), g * out * apply("log", (x,))


# -- arithmetic ------------------------------------------------------------------------------
_ew(
    "add",
    2,
    np.add,
    lambda g, out, a, b: (g, g),
    "a + b",
    "{0} + {1}",
    "{0} + {1}",
    float_only=False,
    commutative=True,
    scalar=sc.add,
    c_by_dtype={"int64": "(int64_t)((uint64_t){0} + (uint64_t){1})"},
    surface=Surface("add", True, ufuncs=("add",), symbol="+"),
)
_ew(
    "sub",
    2,
    np.subtract,
    lambda g, out, a, b: (g, -g),
    "a - b",
    "{0} - {1}",
    "{0} - {1}",
    float_only=False,
    bool_ok=False,
    scalar=sc.sub,
    c_by_dtype={"int64": "(int64_t)((uint64_t){0} - (uint64_t){1})"},
    surface=Surface("sub", True, ufuncs=("subtract",), symbol="-"),
)
_ew(
    "mul",
    2,
    np.multiply,
    lambda g, out, a, b: (g * b, g * a),
    "a * b",
    "{0} * {1}",
    "{0} * {1}",
    float_only=False,
    commutative=True,
    scalar=sc.mul,
    c_by_dtype={"int64": "(int64_t)((uint64_t){0} * (uint64_t){1})"},
    surface=Surface("mul", True, ufuncs=("multiply",), symbol="*"),
)
_ew(
    "div",
    2,
    _div_eval,
    lambda g, out, a, b: (g / b, -g * out / b),
    "a / b (true division)",
    "{0} / {1}",
    "{0} / {1}",
    scalar=sc.div,
    surface=Surface("truediv", True, ufuncs=("true_divide", "divide"), symbol="/"),
)
_ew(
    "neg",
    1,
    np.negative,
    lambda g, out, x: (-g,),
    "-x",
    "-{0}",
    "-{0}",
    float_only=False,
    bool_ok=False,
    scalar=sc.neg,
    c_by_dtype={"int64": "(int64_t)(0 - (uint64_t){0})"},
    surface=Surface("neg", ufuncs=("negative",), symbol="-"),
)
_ew(
    "pow",
    2,
    _guard(np.power),
    _pow_vjp,
    "x ** y (y a tensor or a number)",
    "{0} ** {1}",
    "pow{f}({0}, {1})",
    scalar=sc.pow_,
    surface=Surface("pow", True, ufuncs=("power",), symbol="**"),
)
# -- transcendental --------------------------------------------------------------------------
_ew(
    "exp",
    1,
    _guard(np.exp),
    lambda g, out, x: (g * out,),
    "e ** x",
    "np.exp({0})",
    "exp{f}({0})",
    scalar=sc.exp,
    c_by_dtype={"float32": "_sg_expf({0})"},
    surface=Surface(method="exp", function="exp", ufuncs=("exp",)),
)
_ew(
    "log",
    1,
    _guard(np.log),
    lambda g, out, x: (g / x,),
    "natural logarithm",
    "np.log({0})",
    "log{f}({0})",
    scalar=sc.log,
    surface=Surface(method="log", function="log", ufuncs=("log",)),
)
_ew(
    "tanh",
    1,
    np.tanh,
    lambda g, out, x: (g * (1.0 - out * out),),
    "hyperbolic tangent",
    "np.tanh({0})",
    "tanh{f}({0})",
    scalar=sc.tanh,
    c_by_dtype={"float32": "_sg_tanhf({0})"},
    surface=Surface(method="tanh", function="tanh", ufuncs=("tanh",)),
)
_ew(
    "sigmoid",
    1,
    _sigmoid,
    lambda g, out, x: (g * out * (1.0 - out),),
    "logistic function 1 / (1 + e ** -x), computed stably",
    "_sigmoid({0})",
    "_sg_sigmoid{f}({0})",
    scalar=sc.sigmoid,
    helpers=("sigmoid",),
    surface=Surface(method="sigmoid", function="sigmoid"),
)
_ew(
    "relu",
    1,
    lambda x: np.maximum(x, 0),
    lambda g, out, x: (where(apply("gt", (out, zeros_like(out))), g, zeros_like(g)),),
    "max(x, 0); gradient 0 at 0 (like micrograd and PyTorch)",
    "np.maximum({0}, 0)",
    "({0} > 0 ? {0} : 0)",
    scalar=sc.relu,
    c_by_dtype={"float": "({0} > 0 || {0} != {0} ? {0} : 0)"},
    surface=Surface(method="relu", function="relu"),
    kinks="zero",
)
_ew(
    "sqrt",
    1,
    _guard(np.sqrt),
    lambda g, out, x: (g * 0.5 / out,),
    "square root",
    "np.sqrt({0})",
    "sqrt{f}({0})",
    scalar=sc.sqrt,
    surface=Surface(method="sqrt", function="sqrt", ufuncs=("sqrt",)),
)
_ew(
    "abs",
    1,
    np.abs,
    lambda g, out, x: (g * apply("sign", (x,)),),
    "absolute value; gradient sign(x), 0 at 0",
    "np.abs({0})",
    "fabs{f}({0})",
    float_only=False,
    scalar=sc.abs_,
    c_by_dtype={"int64": "({0} < 0 ? (int64_t)(0 - (uint64_t){0}) : {0})", "bool": "{0}"},
    surface=Surface("abs", method="abs", ufuncs=("absolute",)),
    kinks="zero",
)
_ew(
    "sign",
    1,
    np.sign,
    lambda g, out, x: (None,),
    "-1, 0 or 1; zero gradient",
    "np.sign({0})",
    "(({0} > 0) - ({0} < 0))",
    float_only=False,
    bool_ok=False,
    c_by_dtype={"float": "({0} > 0 ? 1 : ({0} < 0 ? -1 : ({0} == 0 ? 0 : {0})))", "bool": "{0}"},
    surface=Surface(ufuncs=("sign",)),
    kinks="zero",
)


def _minmax_vjp(pick: str) -> Any:
    def vjp(g: Node, out: Node, a: Node, b: Node) -> tuple[Node | None, ...]:
        # the winner takes the gradient; exact ties split it evenly (like PyTorch)
        win = apply(pick, (a, b))
        tie = apply("eq", (a, b))
        half = where(tie, g * 0.5, g)
        z = zeros_like(g)
        return where(win, half, where(tie, half, z)), where(win, z, where(tie, half, g))

    return vjp


_ew(
    "maximum",
    2,
    np.maximum,
    _minmax_vjp("gt"),
    "elementwise maximum; ties split the gradient evenly",
    "np.maximum({0}, {1})",
    "({0} > {1} ? {0} : {1})",
    float_only=False,
    commutative=True,
    c_by_dtype={"float": "({0} > {1} || {0} != {0} ? {0} : {1})"},
    surface=Surface(function="maximum", ufuncs=("maximum",)),
    kinks="ties",
)
_ew(
    "minimum",
    2,
    np.minimum,
    _minmax_vjp("lt"),
    "elementwise minimum; ties split the gradient evenly",
    "np.minimum({0}, {1})",
    "({0} < {1} ? {0} : {1})",
    float_only=False,
    commutative=True,
    c_by_dtype={"float": "({0} < {1} || {0} != {0} ? {0} : {1})"},
    surface=Surface(function="minimum", ufuncs=("minimum",)),
    kinks="ties",
)

# -- comparisons (bool results, no gradient) -------------------------------------------------
_CMP = {  # the Python operator method stems are the op names
    "lt": (np.less, "<", "less"),
    "le": (np.less_equal, "<=", "less_equal"),
    "gt": (np.greater, ">", "greater"),
    "ge": (np.greater_equal, ">=", "greater_equal"),
    "eq": (np.equal, "==", "equal"),
    "ne": (np.not_equal, "!=", "not_equal"),
}
for _name, (_fn, _sym, _ufunc) in _CMP.items():
    register(
        OpDef(
            _name,
            Kind.ELEMENTWISE,
            2,
            eval=lambda ctx, a, b, _fn=_fn: _fn(a, b),
            infer=ew_infer(float_only=False, out_dtype=BOOL),
            differentiable=False,
            doc=f"a {_sym} b (bool result, no gradient)",
            emit={"numpy": f"{{0}} {_sym} {{1}}", "c": f"({{0}} {_sym} {{1}})"},
            commutative=_name in ("eq", "ne"),
            kinks="ties",
            surface=Surface(
                _name, ufuncs=(_ufunc,), symbol=_sym, ordering=_sym not in ("==", "!=")
            ),
        )
    )


def _where_infer(inputs: tuple[Node, ...], attrs: dict[str, Any]) -> tuple[Shape, DType]:
    c, a, b = inputs
    require_bool(c, "where's condition")
    dt = unify_dtypes("where", (a, b))
    return broadcast_shapes(c.shape, a.shape, b.shape), dt


register(
    OpDef(
        "where",
        Kind.ELEMENTWISE,
        3,
        eval=lambda ctx, c, a, b: np.where(c, a, b),
        infer=_where_infer,
        vjp=lambda g, out, c, a, b: (
            None,
            where(c, g, zeros_like(g)),
            where(c, zeros_like(g), g),
        ),
        doc="c ? a : b elementwise; no gradient flows into the condition",
        emit={"numpy": "np.where({0}, {1}, {2})", "c": "({0} ? {1} : {2})"},
    )
)


def _cast_infer(inputs: tuple[Node, ...], attrs: dict[str, Any]) -> tuple[Shape, DType]:
    return inputs[0].shape, as_dtype(attrs["dtype"])


def _cast_vjp(g: Node, out: Node, x: Node, dtype: str) -> tuple[Node | None, ...]:
    if not x.dtype.is_float:
        return (None,)
    return (apply("cast", (g,), {"dtype": x.dtype.name}),)


register(
    OpDef(
        "cast",
        Kind.ELEMENTWISE,
        1,
        eval=lambda ctx, x: x.astype(ctx.dtype),
        infer=_cast_infer,
        vjp=_cast_vjp,
        doc="convert to another dtype (x.astype(dtype)); gradient flows between float dtypes",
        emit={"numpy": "{0}.astype(np.{dtype})", "c": "({ctype})({0})"},
    )
)

register(
    OpDef(
        "detach",
        Kind.ELEMENTWISE,
        1,
        eval=lambda ctx, x: x,
        infer=lambda inputs, attrs: (inputs[0].shape, inputs[0].dtype),
        differentiable=False,
        doc="identity in the forward pass; stops the gradient (stop_gradient)",
        emit={"numpy": "{0}", "c": "{0}"},
        alias=True,
    )
)


def cast(x: Node, dtype: Any) -> Node:
    dt = as_dtype(dtype)
    if dt is x.dtype:
        return x
    return apply("cast", (x,), {"dtype": dt.name})
