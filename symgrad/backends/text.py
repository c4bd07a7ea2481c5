"""User text in generated code: identifiers are generated, everything else is escaped.

Owns: the identifier policy (a user name is used only when it is a plain identifier that is not
a keyword of Python or C nor one of the generated name patterns) and escaping of text placed in
line comments, C block comments and string literals, so user text can never end a comment or a
literal and become code. May import: the standard library.
"""

from __future__ import annotations

import keyword
import re

_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_GENERATED = re.compile(r"(t|saved|in|c|d|dim)\d+\Z|g_.*|_.*")
C_KEYWORDS = frozenset(
    """
    auto break case char const continue default do double else enum extern float for goto if
    inline int long register restrict return short signed sizeof static struct switch typedef
    union unsigned void volatile while _Bool _Complex _Imaginary bool true false NULL main
    int64_t int32_t size_t ptrdiff_t errno exp log tanh sqrt pow fabs expf logf tanhf sqrtf
    powf fabsf
    """.split()
)
RESERVED = frozenset({"np", "numpy", "forward", "backward", "saved", "self", "args", "math"})


def is_safe_name(name: str) -> bool:
    """Whether ``name`` may be used as an identifier in generated Python and C."""
    return (
        bool(_IDENT.match(name))
        and not keyword.iskeyword(name)
        and not keyword.issoftkeyword(name)
        and name not in C_KEYWORDS
        and name not in RESERVED
        and not _GENERATED.match(name)
        and len(name) <= 64
    )


def _scrub(text: str, limit: int) -> str:
    text = text.replace("\x00", "\\0")
    for ch in ("\r\n", "\n", "\r", "\u2028", "\u2029", "\x0b", "\x0c", "\x85"):
        text = text.replace(ch, " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def line_comment(text: str, limit: int = 120) -> str:
    """Text safe inside a ``#`` or ``//`` comment: one line, no NUL, bounded length, no
    trailing backslash or trigraph that could continue the comment onto the next line."""
    t = _scrub(text, limit)
    while "??" in t:
        t = t.replace("??", "? ?")
    return t.rstrip("\\ ")


def block_comment(text: str, limit: int = 120) -> str:
    """Text safe inside a C ``/* ... */`` comment: cannot close it or continue a line."""
    t = line_comment(text, limit)
    while "*/" in t or "/*" in t:
        t = t.replace("*/", "* /").replace("/*", "/ *")
    return t


def py_string(text: str) -> str:
    """A Python string literal holding ``text`` exactly (repr escapes quotes and controls)."""
    return repr(text.replace("\x00", "\\0"))


def c_string(text: str) -> str:
    """A C string literal holding ``text`` (non-ASCII and controls as octal escapes)."""
    out = []
    for b in text.encode("utf-8"):
        c = chr(b)
        if c in '"\\':
            out.append("\\" + c)
        elif 32 <= b < 127 and c != "?":
            out.append(c)
        else:
            out.append(f"\\{b:03o}")
    return '"' + "".join(out) + '"'
