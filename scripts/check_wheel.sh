#!/usr/bin/env bash
# Packaging check: build the wheel, install it (with its dependencies) into a fresh virtual
# environment, and run scripts/wheel_smoke.py against it from a directory outside the checkout,
# so that only the installed wheel -- never the source tree -- can be imported.
#
# Usage: scripts/check_wheel.sh            (uses .venv/bin/python, which needs the `build` package:
#                                            `make install-test`)
#        BUILD_PYTHON=/path/to/python scripts/check_wheel.sh
set -euo pipefail

start=$SECONDS
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_PYTHON="${BUILD_PYTHON:-$ROOT/.venv/bin/python}"

fail() {
    echo "check_wheel: FAIL: $*" >&2
    echo "check_wheel: failed after $((SECONDS - start))s" >&2
    exit 1
}

[ -x "$BUILD_PYTHON" ] || fail "no interpreter at $BUILD_PYTHON (run 'make install-test' first)"
"$BUILD_PYTHON" -c 'import build' 2>/dev/null \
    || fail "the 'build' package is missing from $BUILD_PYTHON (run 'make install-test')"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/symgrad-wheel-check.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

echo "check_wheel: building the wheel"
if ! "$BUILD_PYTHON" -m build --wheel --outdir "$TMP/dist" "$ROOT" >"$TMP/build.log" 2>&1; then
    cat "$TMP/build.log" >&2
    fail "building the wheel failed (log above)"
fi
shopt -s nullglob
wheels=("$TMP"/dist/symgrad-*.whl)
shopt -u nullglob
[ "${#wheels[@]}" -eq 1 ] || fail "expected exactly one symgrad wheel, found ${#wheels[@]}"
wheel="${wheels[0]}"
echo "check_wheel: built $(basename "$wheel")"

echo "check_wheel: installing it into a fresh virtual environment"
"$BUILD_PYTHON" -m venv "$TMP/venv" || fail "could not create a virtual environment"
VPY="$TMP/venv/bin/python"
if ! "$VPY" -m pip install --quiet --disable-pip-version-check "$wheel" >"$TMP/install.log" 2>&1; then
    cat "$TMP/install.log" >&2
    fail "installing the wheel failed (log above)"
fi

# Run from an empty directory outside the checkout; -I (isolated mode) keeps the script's own
# directory, the current directory, PYTHON* variables and user site-packages off sys.path.
mkdir "$TMP/run"
echo "check_wheel: running scripts/wheel_smoke.py in that environment"
if ! (cd "$TMP/run" && "$VPY" -I "$ROOT/scripts/wheel_smoke.py" "$ROOT"); then
    fail "the smoke test of the installed wheel failed (output above)"
fi

echo "check_wheel: ok ($(basename "$wheel")) in $((SECONDS - start))s"
