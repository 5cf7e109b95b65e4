#!/usr/bin/env python3
"""Throughput/latency benchmark: Waitress 3.0.2 vs Granian vs ours (method: bench/README.md).

Hello-world WSGI app, server pinned to CPU 0 and wrk to CPU 1, interleaved
rounds (A B C, A B C, ...), each measured run on a freshly started server with
a warm-up first; medians across rounds. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    bl.add_timing_args(p, 10, 2, 3)
    p.add_argument("--connections", "-c", default=bl.env_default("BENCH_CONNECTIONS", "16"),
                   help="comma-separated wrk connection counts (env BENCH_CONNECTIONS, default 16)")
    p.add_argument("--sweep", action="store_true", help="shorthand for --connections 1,16,64")
    p.add_argument("--servers", "-s", default=bl.env_default("BENCH_SERVERS", "waitress,granian,ours"),
                   help="comma-separated contenders from: " + ", ".join(bl.CONTENDERS)
                   + " (env BENCH_SERVERS, default waitress,granian,ours)")
    p.add_argument("--threads", type=int, default=4, help="--threads for Waitress and ours (default 4)")
    p.add_argument("--quick", action="store_true", help="smoke test: 3 s runs, 1 s warm-up, 1 round")
    bl.add_common_args(p)
    a = p.parse_args(argv)
    if a.quick:
        a.duration, a.warmup, a.rounds = 3, 1, 1
    if a.sweep:
        a.connections = "1,16,64"
    a.conn_list = [int(x) for x in str(a.connections).split(",") if x.strip()]
    a.server_list = [s.strip() for s in a.servers.split(",") if s.strip()]
    unknown = [s for s in a.server_list if s not in bl.CONTENDERS]
    if unknown:
        p.error(f"unknown server(s) {unknown}; choose from {list(bl.CONTENDERS)}")
    if a.duration < 1 or a.rounds < 1 or a.warmup < 0:
        p.error("duration and rounds must be >= 1, warmup >= 0")
    return a


def measure(c: bl.Contender, conns: int, rnd: int, a, logdir: Path) -> dict:
    port = bl.free_port()
    pin = [] if a.no_pin else ["taskset", "-c", a.server_cpu]
    client_cpu = None if a.no_pin else a.client_cpu
    srv = bl.Server(cmd=pin + c.command(port, a.threads),
                    log_path=logdir / f"{c.name}-c{conns}-r{rnd}.log", port=port)
    rec: dict = {"server": c.name, "connections": conns, "round": rnd, "port": port}
    srv.start()
    try:
        t0 = time.monotonic()
        srv.wait_ready(a.start_timeout)
        rec["startup_s"] = round(time.monotonic() - t0, 3)
        if a.warmup:
            bl.run(bl.wrk_cmd(port, conns, a.warmup, client_cpu, latency=False),
                   timeout=a.warmup + 60)
        cpu0 = bl.session_cpu_seconds(srv.pid)
        proc = bl.run(bl.wrk_cmd(port, conns, a.duration, client_cpu), timeout=a.duration + 60)
        cpu1 = bl.session_cpu_seconds(srv.pid)
        if not srv.alive():
            raise RuntimeError(f"server died during the run; log tail:\n{bl.tail(srv.log_path)}")
        rec.update(bl.parse_wrk(proc.stdout))
        rec["wrk_output"] = proc.stdout
        rec["server_cpu_s"] = round(cpu1 - cpu0, 3)
        if rec.get("requests"):
            rec["cpu_us_per_req"] = (cpu1 - cpu0) * 1e6 / rec["requests"]
        if rec.get("elapsed_s"):
            rec["server_cpu_util"] = (cpu1 - cpu0) / rec["elapsed_s"]
    finally:
        rec["exit_code"] = srv.stop()
    return rec


def median_or_none(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt_lat(us):
    if us is None:
        return "-"
    return f"{us / 1000:.2f} ms" if us >= 1000 else f"{us:.0f} µs"


def fmt_rps(x):
    return "-" if x is None else f"{x:,.0f}"


def fmt_k(x):
    return f"{x / 1000:.1f}k"


def fmt_ratio(x, ref):
    return "-" if x is None or not ref else f"{x / ref:.2f}"


def summarise(records, conn_list, server_list):
    summary = {}
    for conns in conn_list:
        for name in server_list:
            rs = [r for r in records if r["server"] == name and r["connections"] == conns]
            ok = [r for r in rs if "rps" in r]
            summary[(conns, name)] = {
                "rounds_ok": len(ok), "rounds_failed": len(rs) - len(ok),
                "rps": median_or_none([r["rps"] for r in ok]),
                "p50_us": median_or_none([r.get("p50_us") for r in ok]),
                "p99_us": median_or_none([r.get("p99_us") for r in ok]),
                "cpu_us_per_req": median_or_none([r.get("cpu_us_per_req") for r in ok]),
                "server_cpu_util": median_or_none([r.get("server_cpu_util") for r in ok]),
                "rps_rounds": [r["rps"] for r in ok],
                "errors": sum(r.get("error_total", 0) for r in ok),
                "failures": [r["error"] for r in rs if "error" in r],
            }
    return summary


def render(meta, summary, conn_list, server_list, skipped) -> str:
    out = [f"# Benchmark {meta['timestamp']}: hello-world WSGI app", ""]
    out.append(f"- {meta['rounds']} interleaved round(s) × {meta['duration_s']} s per run after "
               f"{meta['warmup_s']} s warm-up; medians across rounds; every run on a fresh server")
    out.append(f"- server on CPU {meta['server_cpu']}, wrk (1 thread) on CPU {meta['client_cpu']}"
               if meta["pinned"] else "- NOT PINNED (--no-pin): numbers are not comparable")
    out.append(f"- Waitress and ours: --threads={meta['threads']}; Granian {meta['versions'].get('granian')}: "
               "1 worker, --http 1, blocking threads as named (Granian's WSGI default is "
               "backpressure/2 = 512, spawned on demand)")
    out.append(f"- machine: {meta['machine']['cpu_model']}, {meta['machine']['nproc']} CPUs, "
               f"load avg at start {' '.join(meta['machine']['loadavg'])}; python {meta['python']}; "
               f"{meta['wrk']}; repo {meta['git_rev']}")
    out.append("- CPU µs/req: server CPU time (user+sys, all its threads and processes) / requests; "
               "server CPU: that time / run time, in cores (well under 1.0 at saturation means CPU 0 "
               "was shared with something else: distrust that run)")
    out.append("")
    for name, why in skipped.items():
        out.append(f"**{bl.CONTENDERS[name].label} skipped:** {why.splitlines()[0]}")
        out.append("")
    gran_ref_name = next((n for n in ("granian", "granian-bt4") if n in server_list), None)
    for conns in conn_list:
        out.append(f"## {conns} connection{'s' if conns != 1 else ''}")
        out.append("")
        out.append("| server | req/s | p50 | p99 | CPU µs/req | server CPU | × Waitress | × Granian "
                   "| req/s per round | errors |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---|---:|")
        ref_w = summary.get((conns, "waitress"), {}).get("rps")
        ref_g = summary.get((conns, gran_ref_name), {}).get("rps") if gran_ref_name else None
        for name in server_list:
            label = bl.CONTENDERS[name].label
            if name in skipped:
                out.append(f"| {label} | skipped | | | | | | | | |")
                continue
            s = summary[(conns, name)]
            if s["rps"] is None:
                why = (s["failures"] or ["no data"])[0].splitlines()[0][:120].replace("|", "/")
                out.append(f"| {label} | failed: {why} | | | | | | | | |")
                continue
            per_round = ", ".join(fmt_k(x) for x in s["rps_rounds"])
            if s["rounds_failed"]:
                per_round += f" ({s['rounds_failed']} failed)"
            cpu = "-" if s["cpu_us_per_req"] is None else f"{s['cpu_us_per_req']:.1f}"
            util = "-" if s["server_cpu_util"] is None else f"{s['server_cpu_util']:.2f}"
            out.append(f"| {label} | {fmt_rps(s['rps'])} | {fmt_lat(s['p50_us'])} | {fmt_lat(s['p99_us'])} | "
                       f"{cpu} | {util} | {fmt_ratio(s['rps'], ref_w)} | {fmt_ratio(s['rps'], ref_g)} | "
                       f"{per_round} | {s['errors']} |")
        out.append("")
    if gran_ref_name:
        out.append(f"× Granian is relative to `{gran_ref_name}`. Ratios within one run are what count; "
                   "absolute numbers drift on shared machines.")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    a = parse_args(argv)
    stamp, logdir = bl.start_run(a, "")

    needs_peers = any(bl.CONTENDERS[s].kind in ("waitress", "granian") for s in a.server_list)
    if needs_peers:
        bl.ensure_peer_venv(logdir / "setup-peers.log")

    skipped, ours_note = bl.setup_ours(a, logdir)
    active = [s for s in a.server_list if s not in skipped]

    versions = {}
    if needs_peers:
        versions["waitress"] = bl.pip_version_of(bl.VENV_PEERS, "waitress")
        versions["granian"] = bl.pip_version_of(bl.VENV_PEERS, "granian")
    if "ours" in active:
        versions["ours"] = bl.pip_version_of(bl.VENV_OURS, "waitress")

    meta = {
        "timestamp": stamp, "duration_s": a.duration, "warmup_s": a.warmup, "rounds": a.rounds,
        "connections": a.conn_list, "servers": a.server_list, "threads": a.threads,
        "pinned": not a.no_pin, "server_cpu": a.server_cpu, "client_cpu": a.client_cpu,
        "machine": bl.machine_info(), "python": platform.python_version(),
        "server_python": bl.server_python_version(bl.VENV_PEERS if needs_peers else bl.VENV_OURS),
        "wrk": bl.wrk_version(), "git_rev": bl.git_rev(), "versions": versions,
        "skipped": skipped, "ours": ours_note,
        "commands": {s: " ".join(bl.CONTENDERS[s].command("PORT", a.threads)) for s in active},
    }
    meta["python"] = meta["server_python"] or meta["python"]

    total_runs = a.rounds * len(a.conn_list) * len(active)
    est = total_runs * (a.duration + a.warmup + 2)
    bl.log(f"{total_runs} measured runs, roughly {est // 60} min {est % 60} s; logs in {logdir}")

    records = []
    n = 0
    for rnd in range(1, a.rounds + 1):
        for conns in a.conn_list:
            for name in active:
                n += 1
                c = bl.CONTENDERS[name]
                try:
                    rec = measure(c, conns, rnd, a, logdir)
                    bl.log(f"[{n}/{total_runs}] round {rnd} c={conns} {name}: {rec['rps']:,.0f} req/s "
                           f"p50 {fmt_lat(rec.get('p50_us'))} p99 {fmt_lat(rec.get('p99_us'))}"
                           + (f" ERRORS {rec['errors']}" if rec.get("error_total") else ""))
                except Exception as exc:  # noqa: BLE001
                    rec = {"server": name, "connections": conns, "round": rnd, "error": str(exc)}
                    bl.log(f"[{n}/{total_runs}] round {rnd} c={conns} {name}: FAILED: {exc}")
                records.append(rec)
                time.sleep(0.5)

    summary = summarise(records, a.conn_list, a.server_list)
    md = render(meta, summary, a.conn_list, a.server_list, skipped)
    md_path = a.out_dir / f"{stamp}.md"
    json_path = a.out_dir / f"{stamp}.json"
    md_path.write_text(md)
    json_path.write_text(json.dumps({
        "meta": meta,
        "summary": [{"connections": k[0], "server": k[1], **v} for k, v in summary.items()],
        "runs": records,
    }, indent=2))
    sys.stdout.write(md)
    sys.stdout.flush()
    bl.log(f"wrote {md_path} and {json_path}")
    failed = any(s["rps"] is None for k, s in summary.items() if k[1] in active)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
