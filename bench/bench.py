#!/usr/bin/env python3
"""The one entry point to the benchmarks: `bench.py list`, `bench.py run NAME [args...]`.

Each name runs an existing script of this directory with the arguments given (try
`bench.py run NAME --help`); the method and every option are in bench/README.md. To add a
tool, add a line to TOOLS.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# name: (script in bench/, one-line description)
TOOLS: dict[str, tuple[str, str]] = {
    "hello": ("run.py", "hello-world throughput and latency under wrk: Waitress, Granian, ours"),
    "output": ("output.py", "response output: file_wrapper file, 64 KiB, chunked stream, 1 MiB echo"),
    "peers": ("peers.py", "ours vs Waitress, Granian, gunicorn, bjoern, fastwsgi: hello, close, Flask, Django, upload, 64 KiB, stream, file"),
    "callgrind": ("callgrind.py", "instructions per hello request under callgrind: Waitress, ours"),
    "soak": ("soak.py", "mixed traffic for --minutes against the installed server; RSS, fds, spill growth"),
    "workers": ("workers.py", "--workers=2 vs 1, gunicorn -w 2 gthread, Granian --workers 2; errors across SIGHUP"),
    "accept-spread": ("accept_spread.py", "2 workers: a shared accept queue vs SO_REUSEPORT under an uneven load"),
    "tls": ("tls.py", "hello over HTTPS, keep-alive and a new TLS connection per request: gunicorn, Granian, ours"),
    "access-log": ("access_log.py", "hello at c16: access_log off, to a file, to stdout, metrics scraped every 1 s, TransLogger (ours and Waitress)"),
}

USAGE = "usage: bench.py list | bench.py run NAME [args...]   (see bench/README.md)"


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if argv else 2
    if argv[0] == "list":
        width = max(len(n) for n in TOOLS)
        for name, (script, what) in TOOLS.items():
            print(f"{name:<{width}}  {what}  [{script}]")
        return 0
    if argv[0] == "run" and len(argv) >= 2:
        name = argv[1]
        if name not in TOOLS:
            print(f"bench.py: no tool {name!r}; `bench.py list` shows them", file=sys.stderr)
            return 2
        script = HERE / TOOLS[name][0]
        python = os.environ.get("BENCH_PYTHON") or sys.executable
        # exec: signals (Ctrl-C, SIGTERM) and the exit status are the script's own.
        os.execv(python, [python, str(script), *argv[2:]])
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
