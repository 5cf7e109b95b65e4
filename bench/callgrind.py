#!/usr/bin/env python3
"""Instructions per request under callgrind (method: bench/README.md).

For each server: start it under `valgrind --tool=callgrind`, send exactly N1
keep-alive requests, stop it; again with N2 requests; then

    Ir per request = (Ir(N2) - Ir(N1)) / (N2 - N1)

which cancels interpreter start-up, import, connection set-up and shutdown.
Valgrind here cannot read Swift 6.3 debug info, so our extension
waitress/_native*.so is replaced in .venv-ours by a copy made with
`objcopy --strip-debug` first. See bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl  # noqa: E402


# bjoern and fastwsgi run the app on their one thread: a single-process baseline
# for what the app itself costs (bench/apps/run_c_server.py).
SERVERS = {**bl.CONTENDERS,
           "bjoern": bl.Contender("bjoern", "bjoern", "bjoern"),
           "fastwsgi": bl.Contender("fastwsgi", "fastwsgi", "fastwsgi")}
APPS = {"hello": bl.APP_TARGET, "flask": "flask_json_app:app"}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--servers", "-s", default=os.environ.get("CG_SERVERS", "waitress,ours"),
                   help="comma-separated from: " + ", ".join(SERVERS) + " (env CG_SERVERS, default waitress,ours)")
    p.add_argument("--app", default="hello", choices=sorted(APPS),
                   help="the app: hello (bench/apps/hello_app.py, default) or flask (the Flask JSON "
                        "route of bench/apps/flask_json_app.py); every response must equal the first one")
    p.add_argument("--baseline", type=int, default=int(os.environ.get("CG_BASELINE", 2000)),
                   help="N1: requests in the baseline run (env CG_BASELINE, default 2000)")
    p.add_argument("--requests", "-n", type=int, default=int(os.environ.get("CG_REQUESTS", 22000)),
                   help="N2: requests in the main run (env CG_REQUESTS, default 22000)")
    p.add_argument("--connections", "-c", type=int, default=16,
                   help="connections (default 16; with --close, connections open at a time)")
    p.add_argument("--close", action="store_true",
                   help="a new connection per request (Connection: close, as wrk -H 'Connection: close') "
                        "instead of keep-alive: Ir per request then includes accepting and closing")
    p.add_argument("--tls", action="store_true",
                   help="HTTPS (ours only): a P-256 self-signed certificate is made for the run and passed "
                        "as --ssl-certfile/--ssl-keyfile; the load client speaks TLS (Python's ssl, "
                        "handshakes before the first request, so keep-alive Ir per request excludes them)")
    p.add_argument("--threads", type=int, default=4, help="--threads for Waitress and ours (default 4)")
    p.add_argument("--no-install", action="store_true", default=bool(os.environ.get("BENCH_NO_INSTALL")),
                   help="do not (re)install our package (env BENCH_NO_INSTALL=1)")
    p.add_argument("--ours-src", type=Path, default=os.environ.get("BENCH_OURS_SRC") or None)
    p.add_argument("--start-timeout", type=float, default=300.0)
    p.add_argument("--run-timeout", type=float, default=1800.0, help="bound on one load run, seconds")
    p.add_argument("--ours-args", default="",
                   help="extra flags for ours, e.g. '--access-log=/tmp/a.log' or '--metrics-listen=127.0.0.1:9109'")
    p.add_argument("--keep", action="store_true", help="keep the callgrind.out files (in the results logs dir)")
    p.add_argument("--out-dir", type=Path, default=bl.RESULTS_DIR)
    a = p.parse_args(argv)
    a.server_list = [s.strip() for s in a.servers.split(",") if s.strip()]
    bad = [s for s in a.server_list if s not in SERVERS]
    if bad:
        p.error(f"unknown server(s) {bad}")
    gran = [s for s in a.server_list if SERVERS[s].kind == "granian"]
    if gran:
        # Tried: under valgrind (--trace-children=yes) Granian's worker process is not
        # profiled and the main process hangs on SIGTERM. Not supported.
        p.error(f"{gran}: Granian cannot be profiled by this script (multi-process; hangs "
                "on shutdown under valgrind); use waitress, ours, bjoern or fastwsgi")
    if a.tls and a.server_list != ["ours"]:
        p.error("--tls profiles ours only (-s ours)")
    if a.close and a.app != "hello":
        p.error("--close drives the hello app only")
    if not 0 < a.baseline < a.requests:
        p.error("need 0 < --baseline < --requests")
    return a


def strip_native_in_venv() -> list[str]:
    """Replace waitress/_native*.so in .venv-ours by a debug-stripped copy."""
    done = []
    for so in sorted(bl.VENV_OURS.glob("lib/python*/site-packages/waitress/_native*.so")):
        tmp = so.with_name(so.name + ".stripping")
        bl.run(["objcopy", "--strip-debug", str(so), str(tmp)], timeout=300)
        os.replace(tmp, so)
        done.append(str(so))
    return done


def callgrind_totals(out_dir: Path) -> tuple[int, int]:
    """Sum of Ir over every callgrind.out file (all processes); (Ir, files)."""
    total, files = 0, 0
    for f in out_dir.glob("callgrind.out.*"):
        found = None
        with open(f, errors="replace") as fh:
            for line in fh:
                if line.startswith("totals:"):
                    found = int(line.split()[1])
                elif line.startswith("summary:") and found is None:
                    found = int(line.split()[1])
        if found is not None:
            total += found
            files += 1
    return total, files


def one_run(c: bl.Contender, n: int, a, logdir: Path) -> dict:
    port = bl.free_port()
    out_dir = Path(tempfile.mkdtemp(prefix=f"cg-{c.name}-{n}-", dir=logdir))
    vg = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_dir}/callgrind.out.%p"]
    cmd = c.command(port, a.threads, APPS[a.app])
    if c.kind == "ours" and a.ours_args:
        cmd[-1:-1] = shlex.split(a.ours_args)  # before the app
    tls = None
    if a.tls:
        cmd[-1:-1] = [f"--ssl-certfile={a.certificate[0]}", f"--ssl-keyfile={a.certificate[1]}"]
        tls = bl.tls_client_context()
    srv = bl.Server(cmd=["taskset", "-c", "0"] + vg + cmd,
                    log_path=logdir / f"callgrind-{c.name}-{n}.log", port=port)
    srv.start()
    try:
        t0 = time.monotonic()
        if a.app == "hello":
            srv.wait_ready(a.start_timeout, tls=tls)  # includes one sanity GET, same in both runs
            expected = bl.EXPECTED_BODY
        else:
            srv.wait_ready(a.start_timeout, hello=False)
            status, expected = bl.http_get(port, timeout=a.start_timeout, tls=tls)
            if status != 200:
                raise RuntimeError(f"sanity GET / gave status {status} body {expected[:80]!r}")
        t1 = time.monotonic()
        if a.close:
            elapsed = bl.drive_requests_close(port, n, a.connections, a.run_timeout, tls=tls)
        else:
            elapsed = bl.drive_requests(port, n, a.connections, a.run_timeout, expected, tls=tls)
    finally:
        # SIGTERM: the guest dies by the signal's default action (or exits via its handler),
        # and callgrind writes its profile on the way out. Bounded; SIGKILL after.
        code = srv.stop(grace=120.0)
    ir, files = callgrind_totals(out_dir)
    if not files:
        raise RuntimeError(f"no callgrind output (server exit {code}); log tail:\n{bl.tail(srv.log_path)}")
    if not a.keep:
        shutil.rmtree(out_dir, ignore_errors=True)
    return {"requests": n, "ir": ir, "files": files, "startup_s": round(t1 - t0, 1),
            "load_s": round(elapsed, 1), "exit_code": code}


def main(argv=None) -> int:
    a = parse_args(argv)
    bl.install_cleanup_handlers()
    bl.ensure_tool("valgrind", "valgrind")
    bl.ensure_tool("objcopy", "binutils")
    try:  # the load client (this process) on CPU 1, the server on CPU 0
        os.sched_setaffinity(0, {1})
    except OSError:
        pass
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    a.out_dir.mkdir(parents=True, exist_ok=True)
    logdir = a.out_dir / f"callgrind-{stamp}-logs"
    logdir.mkdir(parents=True, exist_ok=True)

    if any(SERVERS[s].kind in ("waitress", "bjoern", "fastwsgi") for s in a.server_list):
        bl.ensure_peer_venv(logdir / "setup-peers.log")
    skipped = {}
    stripped = []
    if "ours" in a.server_list:
        ok, msg = bl.install_ours(logdir / "setup-ours.log", skip_install=a.no_install, src=a.ours_src)
        if ok:
            stripped = strip_native_in_venv()
            bl.log(f"{msg}; stripped debug info from {len(stripped)} extension file(s)")
            ok, msg2 = bl.check_ours_importable()
            if not ok:
                skipped["ours"] = "after objcopy --strip-debug: " + msg2
        else:
            skipped["ours"] = msg
        if "ours" in skipped:
            bl.log("SKIPPING ours: " + skipped["ours"])

    a.certificate = bl.make_tls_certificate(logdir) if a.tls else None

    results = {}
    for name in a.server_list:
        if name in skipped:
            continue
        c = SERVERS[name]
        try:
            runs = []
            for n in (a.baseline, a.requests):
                bl.log(f"{name}: callgrind run with {n} requests over {a.connections} connections"
                       + (" (a new connection per request)" if a.close else ""))
                r = one_run(c, n, a, logdir)
                bl.log(f"{name}: N={n} Ir={r['ir']:,} (start-up {r['startup_s']} s, load {r['load_s']} s)")
                runs.append(r)
            per_req = (runs[1]["ir"] - runs[0]["ir"]) / (a.requests - a.baseline)
            results[name] = {"runs": runs, "ir_per_request": per_req,
                             "naive_ir_per_request": runs[1]["ir"] / a.requests}
        except Exception as exc:  # noqa: BLE001
            results[name] = {"error": str(exc)}
            bl.log(f"{name}: FAILED: {exc}")

    ref = results.get("waitress", {}).get("ir_per_request")
    lines = [f"# Instructions per request (callgrind) {stamp}", "",
             f"- {a.app} app ({APPS[a.app]}); Ir per request = (Ir(N2) - Ir(N1)) / (N2 - N1) with N1 = {a.baseline}, "
             f"N2 = {a.requests}, " + (f"a new connection per request (Connection: close), {a.connections} at a time"
                                     if a.close else f"{a.connections} keep-alive connections (one request in flight each)"),
             f"- Waitress and ours: --threads={a.threads}{'; ours with ' + a.ours_args if a.ours_args else ''}"
             f"{'; over TLS (a P-256 self-signed certificate, Python ssl client)' if a.tls else ''}; server process under callgrind pinned to CPU 0; "
             f"repo {bl.git_rev()}", ""]
    for name, why in skipped.items():
        lines += [f"**{SERVERS[name].label} skipped:** {why.splitlines()[0]}", ""]
    lines += ["| server | Ir / request | × Waitress | Ir(N1) | Ir(N2) | naive Ir(N2)/N2 |",
              "|---|---:|---:|---:|---:|---:|"]
    for name in a.server_list:
        label = SERVERS[name].label
        r = results.get(name)
        if r is None:
            lines.append(f"| {label} | skipped | | | | |")
        elif "error" in r:
            lines.append(f"| {label} | failed: {r['error'].splitlines()[0][:100]} | | | | |")
        else:
            ratio = f"{r['ir_per_request'] / ref:.3f}" if ref else "-"
            lines.append(f"| {label} | {r['ir_per_request']:,.0f} | {ratio} | {r['runs'][0]['ir']:,} | "
                         f"{r['runs'][1]['ir']:,} | {r['naive_ir_per_request']:,.0f} |")
    md = "\n".join(lines) + "\n"
    (a.out_dir / f"callgrind-{stamp}.md").write_text(md)
    (a.out_dir / f"callgrind-{stamp}.json").write_text(json.dumps(
        {"timestamp": stamp, "baseline": a.baseline, "requests": a.requests, "close": a.close, "tls": a.tls,
         "connections": a.connections, "threads": a.threads, "skipped": skipped,
         "stripped": stripped, "results": results}, indent=2))
    sys.stdout.write(md)
    bl.log(f"wrote {a.out_dir / f'callgrind-{stamp}.md'}")
    return 1 if any("error" in r for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
