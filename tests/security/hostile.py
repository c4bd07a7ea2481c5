"""Hostile strings, a user model made of them (file path, source lines, labels, op name), and
checks that generated code carries no executable trace of them.

Every payload, if it ever became code, would create the file ``PWNED`` in the working directory
(``open("PWNED", "w")`` in Python, ``system("touch PWNED")`` in C), or break out of a comment or a
string literal. The checks parse generated Python with ``ast`` and strip C comments and literals
with a small lexer, so they look at the code a compiler sees, not at the text.
"""

from __future__ import annotations

import ast
import importlib.util
import io
import itertools
import keyword
import re
import tokenize
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

import numpy as np

PWNED = "PWNED"
INDENT = " " * 8  # the indentation of statements inside generated functions

# id -> text; each would become code (or end a comment or literal) if it were not escaped
PAYLOADS: dict[str, str] = {
    "c_comment": '*/ system("touch PWNED"); /*',
    "py_newline": '\n import os; open("PWNED","w")',
    "py_newline_indented": f'\n{INDENT}open("PWNED", "w")',
    "triple_quote": '"""; open("PWNED", "w"); """',
    "quotes": "'; open('PWNED', 'w'); '\"\\",
    "hash": '# open("PWNED", "w")',
    "nul": 'a\x00b\x00\n open("PWNED", "w")',
    "cr": f'\r{INDENT}open("PWNED", "w")',
    "crlf": f'\r\n{INDENT}open("PWNED", "w")',
    "u2028": f'\u2028{INDENT}open("PWNED", "w")',
    "u2029": f'\u2029{INDENT}open("PWNED", "w")',
    "x1c": f'\x1c{INDENT}open("PWNED", "w")',  # str.splitlines() breaks lines here
    "vt_ff_nel": f'\x0b\x0c\x85{INDENT}open("PWNED", "w")',
    "c_splice": 'x \\\n system("touch PWNED");',  # a backslash continues a // comment
    "trigraph": '??/\n system("touch PWNED");',  # ??/ is a backslash in C99 with trigraphs
    "coding": "coding: utf_7 +AAo-open(+ACI-PWNED+ACI-, +ACI-w+ACI-)",  # PEP 263
    "bidi": '\u202e open("PWNED", "w") \u2066',
    "controls": "\x07\x08\x1b[2J\x7f\x9b",
    "long": "L" * 100_000 + ' */ system("touch PWNED"); /*',
    "unicode": "ünïcødé λ 中文 🙂 ﬁ",
    "surrogate": "\udcff\ud800",  # os.fsdecode of a file name that is not UTF-8
    "jinja": "{{ 7 * 7 }} {% raw %} {# x #}",
    "format": "{0} {} %s %n %x",
}
ALL_IN_ONE = " ".join(PAYLOADS.values())
# characters on which some tool or other ends a line (Python and C themselves: \n and \r)
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"

# identifiers that are fine in Python but not in the C of the kernels, or that the C or Python
# headers define, or that the generated code uses itself
ODD_IDENTIFIERS = [
    "int", "double", "restrict", "register", "auto", "signed", "static", "inline", "main",
    "NULL", "EOF", "errno", "NAN", "INFINITY", "M_PI", "SIZE_MAX", "stdin", "malloc", "free",
    "new", "delete", "this", "template", "operator", "match", "case", "type", "print", "np",
    "forward", "backward", "saved", "t0", "g_x", "in0", "sg_forward", "SG_OK", "Py_None",
    "λ", "ｘ", "x" * 80,
]  # fmt: skip

C_KEYWORDS = frozenset(
    """
    auto break case char const continue default do double else enum extern float for goto if
    inline int long register restrict return short signed sizeof static struct switch typedef
    union unsigned void volatile while _Bool _Complex _Imaginary _Alignas _Alignof _Atomic
    _Generic _Noreturn _Static_assert _Thread_local bool true false nullptr
    """.split()
)
CPP_KEYWORDS = frozenset(
    """
    and and_eq asm bitand bitor catch class compl const_cast delete dynamic_cast explicit
    export friend mutable namespace new noexcept not not_eq operator or or_eq private protected
    public reinterpret_cast static_cast template this throw try typeid typename using virtual
    xor xor_eq
    """.split()
)
ASCII_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def no_payload_ran(*dirs: Path) -> bool:
    """Whether no payload file exists in ``dirs``."""
    return not any((d / PWNED).exists() for d in dirs)


# -- Python ------------------------------------------------------------------------------------


class _Blank(ast.NodeTransformer):
    def visit_Constant(self, node: ast.Constant) -> ast.Constant:
        return ast.Constant("") if isinstance(node.value, str) else node


def python_identifiers(tree: ast.AST) -> set[str]:
    out: set[str] = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Name):
            out.add(n.id)
        elif isinstance(n, ast.arg):
            out.add(n.arg)
        elif isinstance(n, ast.FunctionDef | ast.ClassDef):
            out.add(n.name)
        elif isinstance(n, ast.Attribute):
            out.add(n.attr)
        elif isinstance(n, ast.keyword) and n.arg:
            out.add(n.arg)
        elif isinstance(n, ast.alias):
            out.update(x for x in (n.name, n.asname) if x)
    return out


def check_python(source: str, user_names: Iterable[str] = (), imports: Iterable[str] = ()) -> None:
    """``source`` compiles; it imports only numpy (and ``imports``); with every string literal
    blanked it mentions no payload; comments hold no line break; its identifiers are ASCII and a
    user name is used as one only when it is a plain identifier that is not a keyword."""
    tree = ast.parse(source)
    compile(source, "<generated>", "exec")
    allowed = {"numpy", *imports}
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            assert {a.name for a in n.names} <= allowed, ast.unparse(n)
        assert not isinstance(n, ast.ImportFrom), ast.unparse(n)
    code = ast.unparse(_Blank().visit(ast.parse(source)))
    for word in (PWNED, "system", "open(", "__import__", "exec(", "eval(", "import os;"):
        assert word not in code, f"{word!r} is in the generated code:\n{code[:2000]}"
    names = python_identifiers(tree)
    bad = sorted(nm for nm in names if not ASCII_IDENT.match(nm))
    assert not bad, bad
    for nm in user_names:
        if nm in names:
            assert ASCII_IDENT.match(nm) and not keyword.iskeyword(nm), nm
            assert not keyword.issoftkeyword(nm) and nm not in C_KEYWORDS | CPP_KEYWORDS, nm
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            assert not any(ch in tok.string for ch in LINE_BREAKS), repr(tok.string[:200])
            assert "\x00" not in tok.string
    head = source.split("\n")[:2]
    assert not any(re.search(r"coding[:=]\s*[-\w.]+", line) for line in head), head


# -- C -----------------------------------------------------------------------------------------

_C_TOKEN = re.compile(
    r"""
    (?P<splice>\\\n)
  | (?P<line>//[^\n]*)
  | (?P<block>/\*.*?\*/)
  | (?P<str>"(?:[^"\\\n]|\\.)*")
  | (?P<chr>'(?:[^'\\\n]|\\.)*')
  | (?P<other>.)
    """,
    re.S | re.X,
)


def c_code(source: str) -> str:
    """``source`` with comments, string and character literals and line splices removed (as a
    C compiler's first phases would; unterminated comments or literals fail the test)."""
    out: list[str] = []
    for m in _C_TOKEN.finditer(source):
        kind = m.lastgroup
        if kind == "line":
            assert not m.group().endswith("\\"), m.group()[-200:]  # continues onto the next line
            out.append(" ")
        elif kind in ("block", "splice"):
            out.append(" ")
        elif kind == "str":
            out.append('""')
        elif kind == "chr":
            out.append("'x'")
        else:
            out.append(m.group())
    code = "".join(out)
    assert "/*" not in code and "*/" not in code, "an unterminated or broken comment"
    assert '"' not in code.replace('""', ""), "an unterminated string literal"
    return code


def c_declared_names(code: str) -> set[str]:
    """Names of parameters, locals and fields declared with a value type (after c_code)."""
    ty = r"(?:double|float|int64_t|_Bool|size_t|int|char|void)"
    decl = re.compile(rf"\b{ty}\s*(?:\*\s*)*(?:const\s+)?(?:restrict\s+)?\**\s*([A-Za-z_]\w*)")
    return set(decl.findall(code))


def check_c(source: str, user_names: Iterable[str] = ()) -> None:
    """Outside comments and literals ``source`` is ASCII, mentions no payload, and declares no
    user name that is not a plain identifier or that is a C or C++ keyword."""
    code = c_code(source)
    assert code.isascii(), sorted({ch for ch in code if not ch.isascii()})[:10]
    assert "??" not in source.replace("\\?", ""), "a trigraph"
    for word in (PWNED, "system", "import", "open("):
        assert word not in code, word
    declared = c_declared_names(code)
    for nm in declared:
        assert ASCII_IDENT.match(nm), nm
        assert nm not in C_KEYWORDS and nm not in CPP_KEYWORDS, nm
    for nm in user_names:
        if nm in declared:
            assert ASCII_IDENT.match(nm) and nm not in C_KEYWORDS | CPP_KEYWORDS, nm


# -- a user model whose file path and source lines are hostile -----------------------------------

# directories and a file name with payloads ("/" in a payload makes nested directories)
MODEL_DIR = (
    'coding:utf_7 src */ system("touch PWNED"); /* \n import os; open("PWNED","w") #"""'
    "\r\u2028\u2029\x1c ünï 中文"
)
MODEL_FILE = f'mo\ndel\u2028 #""" \x1c{INDENT}open("PWNED","w") ??= λ.py'  # (no "/")

# comments on the model's lines: everything a source line can hold (not \n, \r or NUL)
SOURCE_COMMENTS = (
    '*/ system("touch PWNED"); /* """ \'\'\' # ??/ ünï 中文 🙂 \\',
    f'\x1c{INDENT}open("PWNED","w") \u2028{INDENT}open("PWNED","w") \u2029 \x0b \x0c'
    f' \x85{INDENT}open("PWNED","w") \u202e \x07 \x1b[2J {{{{ 7 * 7 }}}} %s %n \\',
    "coding: utf_7 +AAo-open(+ACI-PWNED+ACI-, +ACI-w+ACI-) " + "Z" * 100_000 + " */ /*",
)

MODEL_TEMPLATE = """\
import numpy as np
import sympy

import symgrad as sg

W = sg.Tensor(np.linspace(-1.0, 1.0, 6).reshape(3, 2), requires_grad=True, label=LABEL_W)
B = sg.Tensor(np.array([0.25, -0.5]), requires_grad=True, label=LABEL_B)
OP = sg.elementwise(OP_NAME, lambda x: x * sympy.tanh(x))


def f(x):
    h = x @ W  # COMMENT0
    y = OP(h) + B  # COMMENT1
    return (y * y).sum()  # COMMENT2


def loss(t, own, model_forward):  # COMMENT0
    # parameter names that the exported C training step uses itself, or that start with the
    # export's name: generated identifiers replace them
    return f(t) + (own * model_forward).sum()  # COMMENT1
"""


def model_text(label_w: str, label_b: str, op_name: str) -> str:
    text = MODEL_TEMPLATE
    for k, comment in enumerate(SOURCE_COMMENTS):
        text = text.replace(f"COMMENT{k}", comment)
    for key, value in (("LABEL_W", label_w), ("LABEL_B", label_b), ("OP_NAME", op_name)):
        text = text.replace(key, ascii(value))
    return text


def reference(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[float, list[np.ndarray]]:
    """The model's value and its gradients with respect to x, W and B, by hand."""
    h = x @ w
    th = np.tanh(h)
    y = h * th + b
    g_y = 2 * y
    g_h = g_y * (th + h * (1 - th * th))
    return float(np.sum(y * y)), [g_h @ w.T, x.T @ g_h, g_y.sum(axis=0)]


X = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75], [0.0, 1.0, -2.0], [0.3, 0.2, 0.1]])
_count = itertools.count()


def import_model(tmp_path: Path, label_w: str, label_b: str, op_name: str) -> ModuleType:
    """Write the hostile model file under a hostile path and import it."""
    folder = tmp_path / MODEL_DIR
    folder.mkdir(parents=True)
    path = folder / MODEL_FILE
    path.write_text(model_text(label_w, label_b, op_name), encoding="utf-8")
    name = f"sg_hostile_model_{next(_count)}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.f.__code__.co_filename == str(path)
    return module
