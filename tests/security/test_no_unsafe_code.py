"""No pickle, and no eval/exec or other code loading in symgrad except the documented sites.

The package's Python files are tokenised (so docstrings and comments do not count) and every
use of a dangerous name is compared with an allow-list that says why each one is safe; the
code templates are searched as text. Adding a use anywhere else fails this test: document it in
docs/security.md and here, or do without it.
"""

from __future__ import annotations

import io
import re
import tokenize
from collections import Counter
from pathlib import Path

import pytest

import symgrad

PACKAGE = Path(symgrad.__file__).resolve().parent
TEMPLATES = PACKAGE / "codegen" / "templates"

# names whose use loads or runs code, or deserialises objects
DANGEROUS = frozenset(
    """
    pickle cPickle _pickle dill cloudpickle joblib marshal shelve copyreg
    eval exec execfile __import__ compile_command runpy run_path run_module
    exec_module load_module lambdify sympify parse_expr ExtensionFileLoader
    system popen spawnl spawnv execv execve execvp
    """.split()
)
BUILTINS = frozenset({"eval", "exec", "execfile", "__import__"})
# (file, name): how many uses, and why each is safe
ALLOWED: dict[tuple[str, str], tuple[int, str]] = {
    ("runtime/load.py", "exec"): (
        1,
        "runs a generated NumPy module from the cache, from exactly the bytes that were "
        "checked (owner, mode, and sha256 by the cache's lookup just before), or from the "
        "source symgrad just generated in memory (when the cache cannot be written)",
    ),
    ("runtime/load.py", "exec_module"): (
        1,
        "loads a compiled extension from a verified cache entry (the cache checks owner, mode "
        "and sha256; the loader checks owner, mode and that it is not a symlink)",
    ),
    ("runtime/load.py", "ExtensionFileLoader"): (1, "the same extension load"),
    ("model_ref.py", "exec_module"): (
        1,
        "imports the user's own model file, named on the command line (trusted code)",
    ),
    ("sympy_ops/evaluate.py", "lambdify"): (
        2,
        "SymPy prints code from an expression that _check_expr limits to the op's own symbols "
        "and SymPy's functions: no user text is printed (the op name is never code)",
    ),
}


def _uses(path: Path) -> Counter[str]:
    """Dangerous names used as code (not attribute definitions, strings or comments)."""
    found: Counter[str] = Counter()
    toks = list(tokenize.generate_tokens(io.StringIO(path.read_text("utf-8")).readline))
    for i, tok in enumerate(toks):
        if tok.type != tokenize.NAME or tok.string not in DANGEROUS:
            continue
        before = toks[i - 1].string if i else ""
        after = toks[i + 1].string if i + 1 < len(toks) else ""
        if before == "def":
            continue
        if tok.string in BUILTINS and (before == "." or after in ("=", ":")):
            continue  # OpDef.eval, eval=... : an attribute or a field, not the builtin
        found[tok.string] += 1
    return found


def test_the_scan_finds_what_it_looks_for(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        '"""pickle eval( in a docstring"""\n'
        "import pickle  # eval( in a comment\n"
        "x = eval('1')\n"
        "exec(compile('y = 2', 'f', 'exec'))\n"
        "module = __import__('os')\n"
        "op.eval(ctx)\n"
        "OpDef(eval=f)\n"
        "os.system('x')\n"
    )
    want = {"pickle": 1, "eval": 1, "exec": 1, "__import__": 1, "system": 1}
    assert _uses(probe) == Counter(want)


def test_no_pickle_eval_or_exec_except_the_documented_sites() -> None:
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 30
    seen: dict[tuple[str, str], int] = {}
    for path in files:
        rel = path.relative_to(PACKAGE).as_posix()
        for name, n in _uses(path).items():
            seen[(rel, name)] = n
    unexpected = {k: v for k, v in seen.items() if k not in ALLOWED}
    assert not unexpected, f"undocumented uses of dangerous names: {unexpected}"
    for site, (count, why) in ALLOWED.items():
        assert seen.get(site) == count, (site, seen.get(site), why)


def test_no_pickle_in_templates_and_npz_files_are_loaded_without_it() -> None:
    files = sorted(p for p in TEMPLATES.rglob("*") if p.is_file())
    assert files
    loads = 0
    for path in files:
        text = path.read_text("utf-8")
        assert re.search(r"\b(eval|exec|__import__|marshal)\s*\(", text) is None, path
        assert "allow_pickle=True" not in text.replace(" ", ""), path
        assert "pickle" not in text.replace("allow_pickle=False", ""), path
        for m in re.finditer(r"np\.load\(", text):
            loads += 1
            call = text[m.end() : text.index(")\n", m.end())]
            assert "allow_pickle=False" in call.replace(" ", ""), path
    assert loads == 1  # the exported NumPy module's weights


@pytest.mark.parametrize("word", ["allow_pickle=True", "pickle.load", "yaml.load", "shell=True"])
def test_no_unsafe_options_in_the_package(word: str) -> None:
    for path in PACKAGE.rglob("*.py"):
        code = "".join(
            t.string
            for t in tokenize.generate_tokens(io.StringIO(path.read_text("utf-8")).readline)
            if t.type not in (tokenize.COMMENT, tokenize.STRING)
        )
        assert word.replace(" ", "") not in code, path
