#!/usr/bin/env bash
# The one benchmark command: `bench/bench.sh list`, `bench/bench.sh run NAME [args...]`.
# See bench/README.md. All arguments go to bench.py.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "${BENCH_PYTHON:-python3}" "$here/bench.py" "$@"
