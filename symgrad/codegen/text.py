"""User text in generated code: identifiers are generated, everything else is escaped.

Owns: the identifier policy (a user name is used only when it is a plain ASCII identifier that
is not a keyword of Python, C or C++ nor one of the generated name patterns) and escaping of text
placed in line comments, C block comments and string literals, so user text can never end a
comment or a literal and become code. May import: the standard library.

What the escapes guard against (tested in ``tests/security/test_text.py``):

- a line break ends a ``#`` or ``//`` comment. Every character ``str.splitlines`` breaks on
  (``\\n \\r \\v \\f \\x1c \\x1d \\x1e \\x85 U+2028 U+2029``) becomes a space, since code that
  post-processes generated text may split on any of them;
- other control characters, bidirectional-override characters ("Trojan Source") and lone
  surrogates (which cannot be written as UTF-8) are shown as escapes (``\\x07``, ``\\u202e``);
  NUL is shown as ``\\0``;
- ``*/`` closes a C block comment; a trailing backslash or the trigraph ``??/`` continues a C
  line comment onto the next line; ``coding:`` on one of a Python file's first two lines would
  change the file's encoding (PEP 263) -- these are broken up;
- quotes and backslashes end string literals: Python literals are ``repr`` (one line, exact), C
  literals escape everything outside printable ASCII (and ``?``) as octal.
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
    union unsigned void volatile while _Bool _Complex _Imaginary _Alignas _Alignof _Atomic
    _Generic _Noreturn _Static_assert _Thread_local bool true false nullptr constexpr typeof
    typeof_unqual alignas alignof static_assert thread_local asm fortran NULL main
    int8_t int16_t int32_t int64_t uint8_t uint16_t uint32_t uint64_t size_t ptrdiff_t errno
    exp log tanh sqrt pow fabs expf logf tanhf sqrtf powf fabsf
    """.split()
)
# C++ keywords: an exported header declares its prototypes inside extern "C" for C++ callers
CPP_KEYWORDS = frozenset(
    """
    and and_eq bitand bitor catch char8_t char16_t char32_t class co_await co_return co_yield
    compl concept const_cast consteval constinit decltype delete dynamic_cast explicit export
    friend mutable namespace new noexcept not not_eq operator or or_eq private protected public
    reinterpret_cast requires static_cast template this throw try typeid typename using virtual
    wchar_t xor xor_eq final override import module
    """.split()
)
RESERVED = frozenset({"np", "numpy", "forward", "backward", "saved", "self", "args", "math"})

_LINE_BREAKS = "\r\n\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_CODING = re.compile(r"(coding)([:=])")


def is_safe_name(name: str) -> bool:
    """Whether ``name`` may be used as an identifier in generated Python and C."""
    return (
        isinstance(name, str)
        and bool(_IDENT.match(name))
        and not keyword.iskeyword(name)
        and not keyword.issoftkeyword(name)
        and name not in C_KEYWORDS
        and name not in CPP_KEYWORDS
        and name not in RESERVED
        and not _GENERATED.match(name)
        and len(name) <= 64
    )


def _visible(ch: str) -> str:
    """``ch``, or an escape showing it when it is a control, bidi or surrogate character."""
    o = ord(ch)
    if ch == "\x00":
        return "\\0"
    if ch == "\t":
        return ch
    if o < 0x20 or 0x7F <= o < 0xA0:
        return f"\\x{o:02x}"
    if ch in _BIDI or 0xD800 <= o < 0xE000:
        return f"\\u{o:04x}"
    return ch


def _scrub(text: str, limit: int) -> str:
    text = str(text)
    if len(text) > 4 * limit:  # escaping can only lengthen the text: drop what is cut anyway
        text = text[: 4 * limit]
    text = text.replace("\r\n", " ")
    for ch in _LINE_BREAKS:
        text = text.replace(ch, " ")
    text = "".join(_visible(ch) for ch in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def line_comment(text: str, limit: int = 120) -> str:
    """Text safe inside a ``#`` or ``//`` comment: one line, no NUL or control character,
    bounded length, no trailing backslash or trigraph that could continue a C comment onto the
    next line, and no PEP 263 encoding declaration."""
    t = _scrub(text, limit)
    while "??" in t:
        t = t.replace("??", "? ?")
    t = _CODING.sub(r"\1 \2", t)
    return t.rstrip("\\ ")


def block_comment(text: str, limit: int = 120) -> str:
    """Text safe inside a C ``/* ... */`` comment: cannot close it or continue a line."""
    t = line_comment(text, limit)
    while "*/" in t or "/*" in t:
        t = t.replace("*/", "* /").replace("/*", "/ *")
    return t


def py_string(text: str) -> str:
    """A Python string literal holding ``text`` exactly: ``repr``, which escapes quotes,
    backslashes, line breaks, controls, bidi characters and surrogates, on one line."""
    return repr(str(text))


def c_string(text: str) -> str:
    """A C string literal holding ``text`` (non-ASCII and controls as octal escapes)."""
    out = []
    for b in str(text).encode("utf-8", "backslashreplace"):
        c = chr(b)
        if c in '"\\':
            out.append("\\" + c)
        elif 32 <= b < 127 and c != "?":
            out.append(c)
        else:
            out.append(f"\\{b:03o}")
    return '"' + "".join(out) + '"'
