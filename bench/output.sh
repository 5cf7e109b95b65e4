#!/usr/bin/env bash
# Output benchmark (files, large/streamed bodies, uploads): see bench/README.md.
# All arguments go to output.py (try --help).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "${BENCH_PYTHON:-python3}" "$here/output.py" "$@"
