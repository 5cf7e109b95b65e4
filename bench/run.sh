#!/usr/bin/env bash
# Hello-world throughput benchmark (`bench/bench.py run hello`): see bench/README.md. All arguments go to run.py
# (try --help, or --quick for a short smoke run).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "${BENCH_PYTHON:-python3}" "$here/run.py" "$@"
