#!/usr/bin/env python3
"""HTTPS: the hello app over TLS against gunicorn (gthread, --certfile/--keyfile) and Granian
(--ssl-certificate/--ssl-keyfile), in the same run, on two workloads: 16 keep-alive
connections, and a new TLS connection per request (wrk with ``Connection: close``, 16 at a
time). Server pinned to CPU 0 and wrk to CPU 1, as the other benchmarks; rounds interleaved,
medians, ratios to ours. A plain-HTTP row for ours shows what TLS costs it.

    bench/bench.py run tls [--seconds 5] [--rounds 3]

Ours is the worktree's .venv (``make install`` first); the peers come from
bench/requirements-peers.txt in bench/.venv-waitress. The certificate is a P-256 self-signed
one made with ``openssl req`` for the run (every server then negotiates TLS 1.3 with
AES-128-GCM or AES-256-GCM). wrk does not verify certificates.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl  # noqa: E402

OURS_PY = bl.REPO_ROOT / ".venv" / "bin" / "python"
SERVERS = ["ours", "gunicorn", "granian", "ours-plain"]
WORKLOADS = {"keep-alive": [], "new-connection": ["-H", "Connection: close"]}


def command(name: str, port: int, cert: str, key: str) -> list[str]:
    pin = ["taskset", "-c", "0"]
    if name in ("ours", "ours-plain"):
        tls = [f"--ssl-certfile={cert}", f"--ssl-keyfile={key}"] if name == "ours" else []
        return pin + [str(OURS_PY), "-m", "waitress", f"--listen={bl.HOST}:{port}", "--threads=4", *tls,
                      bl.APP_TARGET]
    if name == "gunicorn":
        return pin + [str(bl.VENV_PEERS / "bin" / "gunicorn"), "-k", "gthread", "--threads", "4", "-w", "1",
                      "-b", f"{bl.HOST}:{port}", "--chdir", str(bl.APPS_DIR), "--graceful-timeout", "3",
                      "--certfile", cert, "--keyfile", key, bl.APP_TARGET]
    if name == "granian":
        return pin + [str(bl.VENV_PEERS / "bin" / "granian"), "--interface", "wsgi", "--http", "1",
                      "--host", bl.HOST, "--port", str(port), "--workers", "1", "--working-dir",
                      str(bl.APPS_DIR), "--ssl-certificate", cert, "--ssl-keyfile", key, bl.APP_TARGET]
    raise ValueError(name)


def wait_ready(srv: bl.Server, scheme: str, timeout: float = 30.0) -> None:
    url = f"{scheme}://{bl.HOST}:{srv.port}/"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not srv.alive():
            raise RuntimeError("server exited:\n" + bl.tail(srv.log_path))
        out = subprocess.run(["curl", "-sk", "--max-time", "2", url], capture_output=True)
        if out.returncode == 0 and out.stdout == bl.EXPECTED_BODY:
            return
        time.sleep(0.1)
    raise RuntimeError("server not ready:\n" + bl.tail(srv.log_path))


def measure(name: str, workload: str, a, cert: str, key: str, logdir: Path, rnd: int) -> dict:
    port = bl.free_port()
    scheme = "http" if name == "ours-plain" else "https"
    srv = bl.Server(cmd=command(name, port, cert, key), log_path=logdir / f"{name}-{workload}-r{rnd}.log",
                    port=port)
    srv.start()
    try:
        wait_ready(srv, scheme)
        wrk = ["taskset", "-c", "1", "wrk", "-t1", f"-c{a.connections}", "--timeout", "5s", "--latency",
               *WORKLOADS[workload]]
        url = f"{scheme}://{bl.HOST}:{port}/"
        bl.run(wrk + ["-d1s", url], timeout=60)  # warm-up
        out = bl.run(wrk + [f"-d{a.seconds:g}s", url], timeout=a.seconds + 60).stdout
        rec = bl.parse_wrk(out)
    finally:
        srv.stop()
    return rec


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=5)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("-c", "--connections", type=int, default=16)
    a = p.parse_args()
    bl.install_cleanup_handlers()
    bl.ensure_tool("wrk", "wrk")
    logdir = bl.RESULTS_DIR / time.strftime("tls-%Y%m%d-%H%M%S")
    logdir.mkdir(parents=True, exist_ok=True)
    bl.ensure_peer_venv(logdir / "setup.log")
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench-tls-") as tmp:
        cert, key = bl.make_tls_certificate(Path(tmp))
        for rnd in range(a.rounds):
            for workload in WORKLOADS:
                for name in SERVERS:
                    rec = measure(name, workload, a, cert, key, logdir, rnd)
                    results.setdefault((workload, name), []).append(rec)
                    bl.log(f"round {rnd + 1} {workload} {name}: {rec['rps']:.0f} req/s, "
                           f"p99 {rec.get('p99_us', 0) / 1000:.2f} ms, errors {rec['error_total']}")
    print(f"\nhello, {a.connections} connections, {a.seconds:g} s runs, {a.rounds} interleaved rounds, "
          f"server on CPU 0, wrk on CPU 1; median req/s (ratio to ours over TLS); machine {bl.machine_info()}")
    bl.print_ratio_table("workload", WORKLOADS, SERVERS, results, "ours")
    return 0


if __name__ == "__main__":
    sys.exit(main())
