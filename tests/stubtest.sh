#!/usr/bin/env bash
# Checks the typed stub of the Swift core against the compiled module:
#   python -m mypy.stubtest waitress._native
# run with the project's venv (or $PYTHON) against the *installed* package, whose
# waitress/_native.pyi (package data) must be the project's src/waitress/_native.pyi.
#
# Usage: tests/stubtest.sh            (from anywhere; installs mypy into the venv if missing)
# Exit status: stubtest's (0 = the stub matches the runtime module).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"

if ! "$PYTHON" -c "import mypy.stubtest" >/dev/null 2>&1; then
    echo "stubtest.sh: installing mypy into $("$PYTHON" -c 'import sys; print(sys.prefix)')" >&2
    "$PYTHON" -m pip install --quiet mypy
fi

# Run outside the source tree so that neither mypy nor the import system can pick up
# src/waitress (or a stray waitress/ directory) instead of the installed package.
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

PKG_DIR="$("$PYTHON" -c 'import os, waitress; print(os.path.dirname(waitress.__file__))')"
case "$PKG_DIR" in
    "$ROOT/src"*)
        echo "stubtest.sh: waitress is imported from the source tree ($PKG_DIR), not installed" >&2
        exit 2
        ;;
esac
if [ ! -f "$PKG_DIR/_native.pyi" ]; then
    echo "stubtest.sh: $PKG_DIR/_native.pyi is missing: the stub is not shipped as package data" >&2
    exit 2
fi
if ! cmp -s "$PKG_DIR/_native.pyi" "$ROOT/src/waitress/_native.pyi"; then
    echo "stubtest.sh: the installed stub differs from src/waitress/_native.pyi;" \
        "reinstall first: cd $ROOT && $PYTHON -m pip install -q ." >&2
    exit 2
fi

echo "stubtest.sh: $("$PYTHON" -m mypy --version); stub $PKG_DIR/_native.pyi"
exec "$PYTHON" -m mypy.stubtest waitress._native
