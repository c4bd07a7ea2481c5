"""The escaping helpers and the identifier policy (``symgrad.codegen.text``), on the payloads
and on arbitrary text (Hypothesis): whatever the text, a comment stays one comment and a string
literal holds exactly the text."""

from __future__ import annotations

import ast
import io
import keyword
import re
import tokenize

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from symgrad.codegen.text import block_comment, c_string, is_safe_name, line_comment, py_string
from tests.security.hostile import (
    C_KEYWORDS,
    CPP_KEYWORDS,
    LINE_BREAKS,
    ODD_IDENTIFIERS,
    PAYLOADS,
    c_code,
)

TEXTS = [*PAYLOADS.values(), "", "plain", "\\", "*", "/", "??", "?\\", "coding=latin-1"]
any_text = st.text(
    st.characters(codec=None, exclude_categories=()), max_size=300
) | st.sampled_from(TEXTS)


def _python_comment(text: str) -> list[tokenize.TokenInfo]:
    src = f"x = 1  # {line_comment(text)}\ny = 2\n"
    return list(tokenize.generate_tokens(io.StringIO(src).readline))


def _c_string_value(literal: str) -> bytes:
    """The bytes a C compiler makes of the literal (only the escapes c_string uses)."""
    assert literal[0] == literal[-1] == '"'
    body, out, i = literal[1:-1], bytearray(), 0
    while i < len(body):
        ch = body[i]
        assert ch != '"' and ch.isascii() and ch.isprintable() and ch != "?", repr(ch)
        if ch == "\\":
            nxt = body[i + 1]
            if nxt in '"\\':
                out.append(ord(nxt))
                i += 2
            else:
                assert re.fullmatch(r"[0-7]{3}", body[i + 1 : i + 4]), body[i : i + 4]
                out.append(int(body[i + 1 : i + 4], 8))
                i += 4
        else:
            out.append(ord(ch))
            i += 1
    return bytes(out)


def _check_line_comment(text: str) -> None:
    out = line_comment(text)
    assert not any(ch in out for ch in LINE_BREAKS) and "\x00" not in out
    assert not re.search(r"[\x00-\x08\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", out)
    assert not re.search(r"coding[:=]", out)
    assert "??" not in out and not out.endswith("\\")
    assert len(out) <= 120
    out.encode("utf-8")  # no lone surrogates: the file can be written
    toks = _python_comment(text)
    assert [t.type for t in toks].count(tokenize.COMMENT) == 1
    assert [t.string for t in toks if t.type == tokenize.NAME] == ["x", "y"]
    code = c_code(f"int x; // {out}\nint y;\n")
    assert code.split() == ["int", "x;", "int", "y;"]


def _check_block_comment(text: str) -> None:
    out = block_comment(text)
    assert "*/" not in out and "/*" not in out
    code = c_code(f"int x; /* {out} */ int y;\n")
    assert code.split() == ["int", "x;", "int", "y;"]


def _check_py_string(text: str) -> None:
    lit = py_string(text)
    assert "\n" not in lit and "\r" not in lit
    assert ast.literal_eval(lit) == text
    tree = ast.parse(f"x = {lit}  # {line_comment(text)}\n")
    assert len(tree.body) == 1 and isinstance(tree.body[0], ast.Assign)
    lit.encode("utf-8")


def _check_c_string(text: str) -> None:
    lit = c_string(text)
    assert lit.isascii() and "??" not in lit
    assert _c_string_value(lit) == text.encode("utf-8", "backslashreplace")
    assert c_code(f"const char *s = {lit};").split() == ["const", "char", "*s", "=", '"";']


@pytest.mark.parametrize("text", TEXTS, ids=range(len(TEXTS)))
def test_each_payload_is_escaped(text: str) -> None:
    _check_line_comment(text)
    _check_block_comment(text)
    _check_py_string(text)
    _check_c_string(text)


@settings(max_examples=300, deadline=None)
@given(any_text)
def test_any_text_is_escaped(text: str) -> None:
    _check_line_comment(text)
    _check_block_comment(text)
    _check_py_string(text)
    _check_c_string(text)


def test_escapes_keep_the_text_readable() -> None:
    assert line_comment("h = x @ W  # ünï λ") == "h = x @ W  # ünï λ"
    assert line_comment("a\x00b\x07c\u202ed") == "a\\0b\\x07c\\u202ed"
    assert line_comment("a\nb\rc\u2028d") == "a b c d"
    assert block_comment('*/ system("x") /*') == '* / system("x") / *'
    assert line_comment("L" * 100_000).endswith("...") and len(line_comment("L" * 10**5)) == 120
    assert line_comment("# -*- coding: latin-1 -*-") == "# -*- coding : latin-1 -*-"
    assert py_string("a\x00b") == "'a\\x00b'"
    assert c_string('a"b\\c?\n') == '"a\\"b\\\\c\\077\\012"'


@pytest.mark.parametrize("name", ODD_IDENTIFIERS + ["x y", "1x", "", "x-y", "é", "_x", "x\x00"])
def test_odd_names_are_not_identifiers_of_generated_code(name: str) -> None:
    odd = (
        not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name)
        or keyword.iskeyword(name)
        or keyword.issoftkeyword(name)
        or name in C_KEYWORDS | CPP_KEYWORDS
        or len(name) > 64
    )
    if odd:
        assert not is_safe_name(name)
    assert not is_safe_name(name) or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name)


@pytest.mark.parametrize("name", ["x", "W1", "weights", "hidden_2", "bias"])
def test_plain_names_are_kept(name: str) -> None:
    assert is_safe_name(name)


@pytest.mark.parametrize("word", sorted(set(keyword.kwlist) | C_KEYWORDS | CPP_KEYWORDS))
def test_no_keyword_of_python_c_or_cpp_is_a_safe_name(word: str) -> None:
    assert not is_safe_name(word)
