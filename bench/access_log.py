#!/usr/bin/env python3
"""What observing costs: hello at 16 connections with ``access_log`` off, to a file, to stdout
redirected to a file, with ``metrics_listen`` on and scraped every second, and with Paste's
TransLogger around the app instead (writing to a file); and, for the comparison a Waitress user
would make, real Waitress 3.0.2 without and with TransLogger. One run: server pinned to CPU 0,
wrk (and the scraper) to CPU 1, interleaved rounds, medians, ratios to "off" of the same server.

    bench/bench.py run access-log [--python PY] [--seconds 5] [--rounds 3] [--no-waitress]

``--python`` is an interpreter with this project's waitress installed (and ``paste`` for the
TransLogger row; the row is skipped without it); default: the worktree's .venv. Real Waitress
comes from bench/.venv-waitress (made by benchlib, with paste added here).
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
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

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


class Scraper:
    """GET /metrics once a second, as Prometheus would, on the client's CPU."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.scrapes = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        os.sched_setaffinity(0, {1})
        while not self.stopped.wait(1.0):
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
                if r.status == 200 and b"waitress_requests_total" in r.read():
                    self.scrapes += 1


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, all its threads included."""
    rest = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


def run_mode(python: str, workdir: Path, mode: str, seconds: int, waitress_python: str) -> tuple[float, float]:
    """(req/s, server CPU microseconds per request) of one measured run."""
    port = free_port()
    if mode.startswith("waitress"):
        python = waitress_python
    args = [python, "-m", "waitress", f"--listen=127.0.0.1:{port}", "--threads=4"]
    stdout = subprocess.DEVNULL
    app = "hello_app:app"
    scraper = None
    if mode == "metrics":
        scraper = Scraper(free_port())
        args.append(f"--metrics-listen=127.0.0.1:{scraper.port}")
    if mode == "file":
        args.append(f"--access-log={workdir / 'access.log'}")
    elif mode == "stdout":
        args.append("--access-log=-")
        stdout = open(workdir / "stdout.log", "ab")
    elif mode in ("translogger", "waitress-translogger"):
        app = "translogged_app:app"
    proc = subprocess.Popen(["taskset", "-c", "0"] + args + [app], cwd=workdir, stdout=stdout,
                            stderr=subprocess.DEVNULL)
    try:
        wait_listening(port)
        url = f"http://127.0.0.1:{port}/"
        subprocess.run(["taskset", "-c", "1", "wrk", "-t1", "-c16", "-d1s", url], capture_output=True)
        if scraper:
            scraper.thread.start()
        cpu_before = cpu_seconds(proc.pid)
        out = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", "-c16", f"-d{seconds}s", url],
                             capture_output=True, text=True).stdout
        cpu = cpu_seconds(proc.pid) - cpu_before
        match = re.search(r"Requests/sec:\s+([\d.]+)", out)
        total = re.search(r"(\d+) requests in", out)
        if not match or "Non-2xx" in out or "Socket errors" in out:
            raise RuntimeError("wrk: " + out)
        if scraper:
            scraper.stopped.set()
            scraper.thread.join(10)
            if scraper.scrapes < seconds - 1:
                raise RuntimeError(f"only {scraper.scrapes} scrapes in {seconds} s")
        return float(match.group(1)), cpu * 1e6 / max(1, int(total.group(1)) if total else 1)
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
    parser.add_argument("--no-waitress", action="store_true", help="skip the real Waitress rows")
    parser.add_argument("--modes", help="comma-separated subset of the modes to run (off is always run)")
    opts = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is needed (apt-get install wrk)")
        return 1
    workdir = Path(tempfile.mkdtemp(prefix="bench-access-"))
    (workdir / "hello_app.py").write_text(APP)
    (workdir / "translogged_app.py").write_text(TRANSLOGGED % str(workdir / "translogger.log"))
    modes = ["off", "file", "stdout", "metrics"]
    has_paste = subprocess.run([opts.python, "-c", "import paste.translogger"],
                               capture_output=True).returncode == 0
    if has_paste:
        modes.append("translogger")
    waitress_python = ""
    if not opts.no_waitress:
        import benchlib

        logf = workdir / "setup.log"
        benchlib.ensure_peer_venv(logf)
        waitress_python = str(benchlib.venv_python(benchlib.VENV_PEERS))
        benchlib.run([waitress_python, "-m", "pip", "install", "-q", "paste==3.10.1"], timeout=300, log_file=logf)
        modes += ["waitress-off", "waitress-translogger"]
    if opts.modes:
        wanted = {"off"} | set(opts.modes.split(","))
        unknown = wanted - set(modes)
        if unknown:
            print(f"unknown or unavailable mode(s): {', '.join(sorted(unknown))}; modes: {', '.join(modes)}")
            return 2
        if any(m.startswith("waitress") for m in wanted):
            wanted.add("waitress-off")
        modes = [m for m in modes if m in wanted]
    results: dict[str, list[float]] = {m: [] for m in modes}
    cpu: dict[str, list[float]] = {m: [] for m in modes}
    for r in range(opts.rounds):
        for mode in modes:
            rate, micros = run_mode(opts.python, workdir, mode, opts.seconds, waitress_python)
            results[mode].append(rate)
            cpu[mode].append(micros)
            print(f"round {r + 1} {mode:20s} {rate:10.0f} req/s {micros:8.1f} us CPU/request", flush=True)
    # On a shared machine req/s can move 2x between runs of one mode; the server's CPU time
    # per request is the steadier figure.
    print("\nhello, 16 connections, medians; ratios to the same server with nothing on:")
    print(f"  {'mode':20s} {'req/s':>10s} {'ratio':>6s} {'CPU us/req':>11s} {'ratio':>6s}")
    for mode in modes:
        base_mode = "waitress-off" if mode.startswith("waitress") else "off"
        median = statistics.median(results[mode])
        base = statistics.median(results[base_mode])
        micros = statistics.median(cpu[mode])
        base_micros = statistics.median(cpu[base_mode])
        print(f"  {mode:20s} {median:10.0f} {median / base:6.3f} {micros:11.1f} {micros / base_micros:6.3f}")
    if "waitress-translogger" in results and "translogger" in results:
        ours = statistics.median(results["file"])
        theirs = statistics.median(results["waitress-translogger"])
        print(f"\nours with access_log to a file / Waitress with TransLogger: {ours / theirs:5.2f}x")
    if (workdir / "access.log").exists():
        lines = sum(1 for _ in open(workdir / "access.log", "rb"))
        print(f"\n(access.log has {lines} lines; {workdir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
