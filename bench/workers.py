"""Worker processes: ours with --workers=2 against one worker, gunicorn -w 2 -k gthread
--threads 4 and Granian --workers 2, on the hello app and a Flask JSON app; and wrk's error
count for ours while it is reloaded with SIGHUP under load.

Usage: python3 bench/workers.py [-d SECONDS] [-r ROUNDS] [-c CONNECTIONS] [--no-reload]

Unpinned (the point is to use both cores), wrk beside the servers on the same 2 cores, rounds
interleaved, medians reported.  Ours is the repository's .venv (``make install`` first); the
peers come from bench/requirements-peers.txt in bench/.venv-waitress, plus Flask.  Absolute
numbers on a shared machine drift: read the ratios within one run.
"""
from __future__ import annotations

import argparse
import signal
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl  # noqa: E402

OURS_PY = bl.REPO_ROOT / ".venv" / "bin" / "python"
APPS = {"hello": "hello_app:app", "flask-json": "flask_json_app:app"}


def command(name: str, port: int, app: str) -> list[str]:
    listen = f"--listen={bl.HOST}:{port}"
    if name == "ours-w1":
        return [str(OURS_PY), "-m", "waitress", listen, "--threads=4", app]
    if name == "ours-w2":
        return [str(OURS_PY), "-m", "waitress", listen, "--threads=4", "--workers=2", app]
    if name == "gunicorn-w2":
        return [str(bl.VENV_PEERS / "bin" / "gunicorn"), "-k", "gthread", "--threads", "4", "-w", "2",
                "-b", f"{bl.HOST}:{port}", "--chdir", str(bl.APPS_DIR), "--graceful-timeout", "3", app]
    if name == "granian-w2":
        return [str(bl.VENV_PEERS / "bin" / "granian"), "--interface", "wsgi", "--http", "1",
                "--host", bl.HOST, "--port", str(port), "--workers", "2",
                "--working-dir", str(bl.APPS_DIR), app]
    raise ValueError(name)


SERVERS = ["ours-w1", "ours-w2", "gunicorn-w2", "granian-w2"]


def wait_ready(srv: bl.Server, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not srv.alive():
            raise RuntimeError("server exited:\n" + bl.tail(srv.log_path))
        try:
            status, _ = bl.http_get(srv.port, timeout=2)
            if status == 200:
                # Every worker up (ours logs each; the peers' are quick): a moment more.
                time.sleep(1.0)
                return
        except (OSError, RuntimeError, ValueError):
            pass
        time.sleep(0.1)
    raise RuntimeError("server not ready:\n" + bl.tail(srv.log_path))


def measure(name: str, app: str, a, logdir: Path, rnd: int) -> dict:
    port = bl.free_port()
    srv = bl.Server(cmd=command(name, port, app), log_path=logdir / f"{name}-{app.split(':')[0]}-r{rnd}.log",
                    port=port)
    srv.start()
    try:
        wait_ready(srv)
        if a.warmup:
            bl.run(bl.wrk_cmd(port, a.connections, a.warmup, None, latency=False), timeout=a.warmup + 60)
        import subprocess

        cpu0 = bl.session_cpu_seconds(srv.proc.pid)
        wrk = subprocess.Popen(bl.wrk_cmd(port, a.connections, a.duration, None), stdout=subprocess.PIPE, text=True)
        time.sleep(a.duration / 2)
        # wrk's connections stay open for the whole run: how they landed on the workers.
        spread = sorted(bl.connections_per_process(port).values(), reverse=True)
        out, _ = wrk.communicate(timeout=a.duration + 60)
        rec = bl.parse_wrk(out)
        rec["spread"] = spread
        # Server CPU (supervisor and workers, all threads) during the run: cores used, and
        # requests per CPU-second, which says whether a second worker had a core to run on.
        cpu = bl.session_cpu_seconds(srv.proc.pid) - cpu0
        rec["cores"] = cpu / a.duration
        rec["per_cpu_s"] = rec["rps"] * a.duration / cpu if cpu > 0 else 0.0
    finally:
        srv.stop()
    return rec


def reload_under_load(a, logdir: Path) -> dict:
    """wrk against ours --workers=2 for 8 s, SIGHUP at 2 s and 5 s."""
    port = bl.free_port()
    srv = bl.Server(cmd=command("ours-w2", port, APPS["flask-json"]), log_path=logdir / "reload.log", port=port)
    srv.start()
    try:
        wait_ready(srv)
        import subprocess

        wrk = subprocess.Popen(bl.wrk_cmd(port, a.connections, 8, None), stdout=subprocess.PIPE, text=True)
        for at in (2, 5):
            time.sleep(at - (0 if at == 2 else 2))
            srv.proc.send_signal(signal.SIGHUP)
        out, _ = wrk.communicate(timeout=60)
        rec = bl.parse_wrk(out)
        rec["reloads"] = bl.tail(srv.log_path, 400).count("Reloading:")
    finally:
        srv.stop()
    return rec


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-d", "--duration", type=float, default=5)
    p.add_argument("--warmup", type=float, default=1)
    p.add_argument("-r", "--rounds", type=int, default=2)
    p.add_argument("-c", "--connections", type=int, default=16)
    p.add_argument("--no-reload", action="store_true")
    a = p.parse_args()
    bl.install_cleanup_handlers()
    bl.ensure_tool("wrk", "wrk")
    logdir = bl.RESULTS_DIR / time.strftime("workers-%Y%m%d-%H%M%S")
    logdir.mkdir(parents=True, exist_ok=True)
    bl.ensure_peer_venv(logdir / "setup.log")
    for py in (bl.venv_python(bl.VENV_PEERS), OURS_PY):
        bl.run([str(py), "-m", "pip", "install", "-q", "flask"], timeout=600, log_file=logdir / "setup.log")
    results: dict = {}
    for rnd in range(a.rounds):
        for app_name, app in APPS.items():
            for name in SERVERS:
                rec = measure(name, app, a, logdir, rnd)
                results.setdefault((app_name, name), []).append(rec)
                bl.log(f"round {rnd + 1} {app_name} {name}: {rec['rps']:.0f} req/s, errors {rec['error_total']}, "
                       f"server {rec['cores']:.2f} cores, {rec['per_cpu_s']:.0f} req per CPU-s, "
                       f"connections per process {'/'.join(map(str, rec['spread']))}")
    print(f"\n{a.connections} connections, {a.duration:g} s runs, {a.rounds} interleaved rounds, unpinned, "
          f"median req/s (ratio to ours-w1); machine {bl.machine_info()}")
    bl.print_ratio_table("app", APPS, SERVERS, results, "ours-w1")
    print("\nServer CPU during the run, median cores used / requests per server CPU-second:")
    for app_name in APPS:
        cells = []
        for name in SERVERS:
            recs = results[(app_name, name)]
            cells.append(f"{name} {statistics.median(r['cores'] for r in recs):.2f} / "
                         f"{statistics.median(r['per_cpu_s'] for r in recs):,.0f}")
        print(f"- {app_name}: " + ", ".join(cells))
    print("\nwrk's connections per process, mid-run, each round:")
    for (app_name, name), recs in results.items():
        print(f"- {app_name} {name}: " + ", ".join("/".join(map(str, r["spread"])) for r in recs))
    if not a.no_reload:
        rec = reload_under_load(a, logdir)
        print(f"\nSIGHUP twice during 8 s of wrk -c{a.connections} on ours --workers=2 (Flask JSON): "
              f"{rec.get('requests')} requests, {rec['rps']:.0f} req/s, reloads logged {rec['reloads']}, "
              f"socket errors and non-2xx: {rec['errors'] or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
