#!/usr/bin/env bash
# Instructions per request under valgrind/callgrind: see bench/README.md.
# All arguments go to callgrind.py (try --help).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "${BENCH_PYTHON:-python3}" "$here/callgrind.py" "$@"
