#!/usr/bin/env python3
"""The access log's cost: hello at 16 connections with ``access_log`` off, to a file, to stdout
redirected to a file, and with Paste's TransLogger around the app instead (writing to a file),
in one run: server pinned to CPU 0, wrk to CPU 1, interleaved rounds, medians, ratios to "off".

    bench/bench.py run access-log [--python PY] [--seconds 5] [--rounds 3]

``--python`` is an interpreter with this project's waitress installed (and ``paste`` for the
TransLogger row; the row is skipped without it); default: the worktree's .venv.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

APP = '''
import logging, sys
def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [b"Hello, world!"]
app = hello
'''

TRANSLOGGED = '''
import logging
from paste.translogger import TransLogger
from hello_app import hello
_log = logging.getLogger("wsgi")
_handler = logging.FileHandler(%r)
_handler.setFormatter(logging.Formatter("%%(message)s"))
_log.addHandler(_handler)
_log.propagate = False
app = TransLogger(hello, logger=_log)
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start")


def run_mode(python: str, workdir: Path, mode: str, seconds: int) -> float:
    port = free_port()
    args = [python, "-m", "waitress", f"--listen=127.0.0.1:{port}", "--threads=4"]
    stdout = subprocess.DEVNULL
    app = "hello_app:app"
    if mode == "file":
        args.append(f"--access-log={workdir / 'access.log'}")
    elif mode == "stdout":
        args.append("--access-log=-")
        stdout = open(workdir / "stdout.log", "ab")
    elif mode == "translogger":
        app = "translogged_app:app"
    proc = subprocess.Popen(["taskset", "-c", "0"] + args + [app], cwd=workdir, stdout=stdout,
                            stderr=subprocess.DEVNULL)
    try:
        wait_listening(port)
        url = f"http://127.0.0.1:{port}/"
        subprocess.run(["taskset", "-c", "1", "wrk", "-t1", "-c16", "-d1s", url], capture_output=True)
        out = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", "-c16", f"-d{seconds}s", url],
                             capture_output=True, text=True).stdout
        match = re.search(r"Requests/sec:\s+([\d.]+)", out)
        if not match or "Non-2xx" in out or "Socket errors" in out:
            raise RuntimeError("wrk: " + out)
        return float(match.group(1))
    finally:
        proc.terminate()
        proc.wait(30)
        if stdout is not subprocess.DEVNULL:
            stdout.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=str(HERE.parent / ".venv" / "bin" / "python"))
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    opts = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is needed (apt-get install wrk)")
        return 1
    workdir = Path(tempfile.mkdtemp(prefix="bench-access-"))
    (workdir / "hello_app.py").write_text(APP)
    (workdir / "translogged_app.py").write_text(TRANSLOGGED % str(workdir / "translogger.log"))
    modes = ["off", "file", "stdout"]
    has_paste = subprocess.run([opts.python, "-c", "import paste.translogger"],
                               capture_output=True).returncode == 0
    if has_paste:
        modes.append("translogger")
    results: dict[str, list[float]] = {m: [] for m in modes}
    for r in range(opts.rounds):
        for mode in modes:
            results[mode].append(run_mode(opts.python, workdir, mode, opts.seconds))
            print(f"round {r + 1} {mode:12s} {results[mode][-1]:10.0f} req/s", flush=True)
    base = statistics.median(results["off"])
    print("\nhello, 16 connections, median req/s and ratio to the log off:")
    for mode in modes:
        median = statistics.median(results[mode])
        print(f"  {mode:12s} {median:10.0f}  {median / base:5.3f}")
    lines = sum(1 for _ in open(workdir / "access.log", "rb"))
    print(f"\n(access.log has {lines} lines; {workdir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
