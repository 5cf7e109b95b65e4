#!/usr/bin/env python3
"""Ours against every peer on the work users run (method: bench/README.md, section peers).

Workloads: hello keep-alive, hello with a new connection per request (Connection: close),
a Flask JSON route, a Django JSON view, a 1 MiB upload echoed back, 64 KiB from memory,
a chunked stream and a 16 MiB file through wsgi.file_wrapper. Servers: Waitress 3.0.2,
Granian (default and 4 blocking threads), gunicorn gthread, bjoern, fastwsgi and ours.
Server pinned to CPU 0, wrk to CPU 1, a fresh server per measured run, interleaved rounds,
medians. Reports req/s, p50/p99, server CPU per request, peak RSS, and a summary of
ratios to Waitress and to the best peer. A workload a server cannot serve correctly
(its check request fails) is n/a for that server, with the reason.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl  # noqa: E402
import output as outb  # noqa: E402  (its data file, body checks and CPU-busy reader)

LUA = bl.BENCH_DIR / "lua"
JSON_DOC = {"message": "Hello, World!", "items": list(range(20)), "ok": True}


@dataclass(frozen=True)
class Workload:
    name: str
    title: str           # as in the summary table
    app: str             # module:callable in bench/apps
    path: str = "/"
    method: str = "GET"
    script: Path | None = None


WORKLOADS = {w.name: w for w in (
    Workload("hello", "hello, keep-alive", "hello_app:app"),
    Workload("hello-close", "hello, a new connection per request", "hello_app:app",
             script=LUA / "close.lua"),
    Workload("flask", "Flask JSON route (`GET /`)", "flask_json_app:app"),
    Workload("django", "Django JSON view (`GET /`)", "django_app:app"),
    Workload("echo", "1 MiB upload echoed back", "output_app:app", "/echo", "POST", LUA / "post1m.lua"),
    Workload("mem64k", "64 KiB response from memory", "output_app:app", "/mem64k"),
    Workload("stream", "chunked: 100 × 1 KiB from a generator", "output_app:app", "/stream"),
    Workload("file", "16 MiB file through wsgi.file_wrapper", "output_app:app", "/file"),
)}

CONTENDERS = {c.name: c for c in (
    bl.CONTENDERS["waitress"],
    bl.Contender("granian", "Granian", "granian"),
    bl.Contender("granian-bt4", "Granian (4 threads)", "granian", 4),
    bl.Contender("gunicorn", "gunicorn gthread", "gunicorn"),
    bl.Contender("bjoern", "bjoern", "bjoern"),
    bl.Contender("fastwsgi", "fastwsgi", "fastwsgi"),
    bl.Contender("ours", "ours", "ours"),
    # The opt-in inline dispatch: the app on the event loop thread, as bjoern runs it.
    bl.Contender("ours-inline", "ours (inline)", "ours", extra=("--dispatch=inline",)),
)}
# Not peers in the summary: the reference and ours.
NOT_PEERS = ("waitress", "ours", "ours-inline")
OURS = ("ours", "ours-inline")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    bl.add_timing_args(p, 5, 1, 3)
    p.add_argument("--connections", "-c", type=int, default=bl.env_default("BENCH_CONNECTIONS", 16),
                   help="wrk connections (env BENCH_CONNECTIONS, default 16)")
    p.add_argument("--servers", "-s", default=bl.env_default("BENCH_SERVERS", ",".join(CONTENDERS)),
                   help="comma-separated from: " + ", ".join(CONTENDERS) + " (env BENCH_SERVERS, default all)")
    p.add_argument("--workloads", "-w", default=bl.env_default("BENCH_WORKLOADS", ",".join(WORKLOADS)),
                   help="comma-separated from: " + ", ".join(WORKLOADS) + " (env BENCH_WORKLOADS, default all)")
    p.add_argument("--threads", type=int, default=4,
                   help="threads of Waitress, ours and gunicorn (default 4)")
    p.add_argument("--quick", action="store_true", help="smoke run: 3 s runs, 1 s warm-up, 1 round")
    bl.add_common_args(p)
    p.add_argument("--render", type=Path, metavar="JSON",
                   help="measure nothing: print the markdown report of an earlier run's JSON")
    a = p.parse_args(argv)
    if a.quick:
        a.duration, a.warmup, a.rounds = 3, 1, 1
    a.server_list = bl.parse_choices(p, a.servers, CONTENDERS, "server(s)")
    a.workload_list = bl.parse_choices(p, a.workloads, WORKLOADS, "workload(s)")
    if a.duration < 1 or a.rounds < 1 or a.warmup < 0 or a.connections < 1:
        p.error("duration, rounds and connections must be >= 1, warmup >= 0")
    return a


# --------------------------------------------------------------------------
# Checks and measurements
# --------------------------------------------------------------------------

class NotApplicable(Exception):
    """The server does not serve this workload correctly: n/a, with the reason."""


def check_workload(port: int, wl: Workload, file_sha: str) -> dict:
    """One request of the workload with a stdlib client; the body must be the right one."""
    if wl.name in outb.WORKLOADS:
        return outb.check_response(port, outb.WORKLOADS[wl.name], file_sha)
    headers = {"Connection": "close"} if wl.name == "hello-close" else {}
    conn = http.client.HTTPConnection(bl.HOST, port, timeout=30)
    try:
        conn.request("GET", wl.path, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        facts = {"status": resp.status, "bytes": len(data),
                 "connection": (resp.getheader("Connection") or "").lower()}
    finally:
        conn.close()
    if facts["status"] != 200:
        raise RuntimeError(f"sanity GET {wl.path}: status {facts['status']}")
    if wl.app.startswith("hello_app"):
        ok = data == bl.EXPECTED_BODY
    else:
        try:
            ok = json.loads(data) == JSON_DOC
        except ValueError:
            ok = False
    if not ok:
        raise RuntimeError(f"sanity GET {wl.path}: wrong body {data[:80]!r}")
    return facts


def measure(c: bl.Contender, wl: Workload, rnd: int, a, logdir: Path, file_sha: str) -> dict:
    port = bl.free_port()
    pin = [] if a.no_pin else ["taskset", "-c", a.server_cpu]
    client_cpu = None if a.no_pin else a.client_cpu
    srv = bl.Server(cmd=pin + c.command(port, a.threads, wl.app),
                    log_path=logdir / f"{wl.name}-{c.name}-r{rnd}.log", port=port)
    rec: dict = {"workload": wl.name, "server": c.name, "round": rnd, "port": port}
    srv.start()
    try:
        t0 = time.monotonic()
        srv.wait_ready(a.start_timeout, hello=False)
        rec["startup_s"] = round(time.monotonic() - t0, 3)
        try:
            rec["check"] = check_workload(port, wl, file_sha)
        except (OSError, RuntimeError, ValueError, http.client.HTTPException) as exc:
            raise NotApplicable(f"check request failed: {exc or type(exc).__name__}") from exc
        if a.warmup:
            bl.run(bl.wrk_cmd(port, a.connections, a.warmup, client_cpu, latency=False, path=wl.path,
                              script=wl.script), timeout=a.warmup + 60)
        busy0 = None if a.no_pin else outb.cpu_busy_seconds(a.server_cpu)
        wrk0 = outb.children_cpu_seconds()
        cpu0 = bl.session_cpu_seconds(srv.pid)
        proc = bl.run(bl.wrk_cmd(port, a.connections, a.duration, client_cpu, path=wl.path,
                                 script=wl.script), timeout=a.duration + 60)
        cpu1 = bl.session_cpu_seconds(srv.pid)
        wrk1 = outb.children_cpu_seconds()  # wrk is the only child reaped in between
        busy1 = None if a.no_pin else outb.cpu_busy_seconds(a.server_cpu)
        rec["peak_rss_kib"] = bl.session_peak_rss_kib(srv.pid)
        if not srv.alive():
            raise RuntimeError(f"server died during the run; log tail:\n{bl.tail(srv.log_path)}")
        rec.update(bl.parse_wrk(proc.stdout))
        rec["wrk_output"] = proc.stdout
        cpu = cpu1 - cpu0
        rec["server_cpu_s"] = round(cpu, 3)
        if rec.get("requests"):
            rec["cpu_us_per_req"] = cpu * 1e6 / rec["requests"]
            if cpu > 0:
                rec["req_per_cpu_s"] = rec["requests"] / cpu
        if rec.get("elapsed_s"):
            rec["server_cpu_util"] = cpu / rec["elapsed_s"]
            rec["wrk_cpu_util"] = (wrk1 - wrk0) / rec["elapsed_s"]
            if busy0 is not None and busy1 is not None:
                rec["cpu0_busy"] = (busy1 - busy0) / rec["elapsed_s"]
    finally:
        rec["exit_code"] = srv.stop()
    return rec


# --------------------------------------------------------------------------
# Summary
# --------------------------------------------------------------------------

KEYS = ("rps", "p50_us", "p99_us", "cpu_us_per_req", "req_per_cpu_s", "peak_rss_kib",
        "server_cpu_util", "cpu0_busy", "wrk_cpu_util")


def summarise(records, workloads, servers) -> dict:
    summary = {}
    for w in workloads:
        for name in servers:
            rs = [r for r in records if r["workload"] == w and r["server"] == name]
            ok = [r for r in rs if "rps" in r]
            s = {"rounds_ok": len(ok), "rounds_failed": sum("error" in r for r in rs),
                 "na": None if ok else next((r["na"] for r in rs if "na" in r), None),
                 "rps_rounds": [r["rps"] for r in ok],
                 "errors": sum(r.get("error_total", 0) for r in ok),
                 "failures": [r["error"] for r in rs if "error" in r]}
            for k in KEYS:
                s[k] = outb.median_or_none([r.get(k) for r in ok])
            summary[(w, name)] = s
    return summary


def round_ratios(records, w: str, num: str, den: str, key: str = "rps") -> list[float]:
    """num/den of `key` per round in which both have a figure for workload w."""
    by = {}
    for r in records:
        if r["workload"] == w and key in r and r["server"] in (num, den):
            by.setdefault(r["round"], {})[r["server"]] = r[key]
    return [v[num] / v[den] for v in by.values() if num in v and den in v and v[den]]


def median_ratio(records, w, num, den, key="rps"):
    return outb.median_or_none(round_ratios(records, w, num, den, key))


def ranked_peers(records, summary, w, servers, key="rps") -> list[tuple[str, float]]:
    """Peers with a figure for w, best first, by the median per-round ratio to Waitress
    (or by their median `key` when Waitress has none)."""
    out = []
    for name in servers:
        if name in NOT_PEERS or summary[(w, name)][key] is None:
            continue
        x = median_ratio(records, w, name, "waitress", key) if "waitress" in servers else None
        out.append((name, x if x is not None else summary[(w, name)][key]))
    return sorted(out, key=lambda t: -t[1])


def summary_table(records, summary, workloads, servers) -> list[str]:
    out = ["| workload, {c} connections | ours × Waitress | best peers × Waitress | ours ÷ best peer "
           "| ours ÷ Granian | p99: ours ÷ Granian |", "|---|---:|---:|---:|---:|---:|"]

    def label(n):
        return CONTENDERS[n].label

    def f2(x):
        return "-" if x is None else f"{x:.2f}"

    for w in workloads:
        ranked = ranked_peers(records, summary, w, servers)
        best = ", ".join(f"{label(n)} {x:.2f}" for n, x in ranked[:2]) or "-"
        for us in [n for n in OURS if n in servers]:
            ours_w = median_ratio(records, w, us, "waitress")
            vs_best = median_ratio(records, w, us, ranked[0][0]) if ranked else None
            vs_gran = median_ratio(records, w, us, "granian")
            p99 = median_ratio(records, w, us, "granian", "p99_us")
            title = WORKLOADS[w].title + ("" if us == "ours" else ", " + label(us))
            out.append(f"| {title} | {f2(ours_w)} | {best} | {f2(vs_best)} | {f2(vs_gran)} | {f2(p99)} |")
        if w == "flask" and "ours" in servers:
            def per_cpu(n):
                x = summary.get((w, n), {}).get("req_per_cpu_s")
                return "-" if x is None else f"{x:,.0f}"
            ranked_cpu = ranked_peers(records, summary, w, servers, "req_per_cpu_s")
            best_cpu = ", ".join(f"{label(n)} {per_cpu(n)}" for n, _ in ranked_cpu[:2]) or "-"
            cpu_vs_best = (median_ratio(records, w, "ours", ranked_cpu[0][0], "req_per_cpu_s")
                           if ranked_cpu else None)
            out.append(f"| Flask, requests per server CPU-second | {per_cpu('ours')} (Waitress "
                       f"{per_cpu('waitress')}) | {best_cpu} | {f2(cpu_vs_best)} | "
                       f"{f2(median_ratio(records, w, 'ours', 'granian', 'req_per_cpu_s'))} | |")
    return out


def also_lines(records, summary, workloads, servers) -> list[str]:
    """The figures the goals name beside the ratios: RSS and p99 with new connections,
    keep-alive against Granian in every round, wrapper fallbacks."""
    out = []

    def get(w, n, k):
        return summary.get((w, n), {}).get(k)

    if "hello-close" in workloads:
        rss = ", ".join(f"{CONTENDERS[n].label} {fmt_rss(get('hello-close', n, 'peak_rss_kib'))}"
                        for n in servers if get("hello-close", n, "peak_rss_kib") is not None)
        p99 = ", ".join(f"{CONTENDERS[n].label} {outb.fmt_lat(get('hello-close', n, 'p99_us'))}"
                        for n in servers if get("hello-close", n, "p99_us") is not None)
        out.append(f"- new connection per request: peak RSS MiB {rss or '-'}; p99 {p99 or '-'}")
    if "hello" in workloads:
        per = round_ratios(records, "hello", "ours", "granian")
        if per:
            out.append("- hello keep-alive, ours ÷ Granian per round: " + ", ".join(f"{x:.2f}" for x in per))
    if "file" in workloads:
        fb = [CONTENDERS[r["server"]].label for r in records
              if r.get("workload") == "file" and r.get("round") == 1
              and (r.get("check") or {}).get("file_wrapper") == "fallback"]
        if fb:
            out.append(f"- no `wsgi.file_wrapper` in {', '.join(fb)}: at /file the app used PEP 3333's "
                       "fallback (an iterable of 64 KiB reads)")
    return out + ([""] if out else [])


def fmt_rss(kib):
    return "-" if kib is None else f"{kib / 1024:.0f}"


def render(meta, records, summary) -> str:
    workloads, servers, skipped = meta["workloads"], meta["servers"], meta.get("skipped", {})
    v = meta["versions"]
    out = [f"# Peers benchmark {meta['timestamp']}: ours against every peer on the work users run", ""]
    out.append(f"- {meta['rounds']} interleaved round(s) × {meta['duration_s']} s per run after "
               f"{meta['warmup_s']} s warm-up, {meta['connections']} connections; medians across rounds; "
               "ratios are medians of per-round ratios; every run on a fresh server")
    out.append(f"- server on CPU {meta['server_cpu']}, wrk (1 thread) on CPU {meta['client_cpu']}"
               if meta["pinned"] else "- NOT PINNED (--no-pin): numbers are not comparable")
    out.append(f"- Waitress {v.get('waitress', '?')} and ours: --threads={meta['threads']}; "
               f"Granian {v.get('granian', '?')}: --interface wsgi --http 1 --workers 1, default blocking "
               f"threads and 4; gunicorn {v.get('gunicorn', '?')}: -k gthread --threads {meta['threads']} -w 1; "
               f"bjoern {v.get('bjoern', '?')} and fastwsgi {v.get('fastwsgi', '?')}: one process, the app "
               f"on their I/O thread; Flask {v.get('flask', '?')}, Django {v.get('django', '?')}")
    out.append(f"- ours: {v.get('ours', '?')} at `{meta['git_rev']}`; Python {meta['python']}; {meta['wrk']}")
    m = meta["machine"]
    out.append(f"- machine: {m['cpu_model']}, {m['nproc']} CPUs, load average at start "
               f"{' '.join(m['loadavg'])}, kernel {m['kernel']} (shared with other work: absolute "
               "figures drift, read the ratios)")
    for name, why in skipped.items():
        out.append(f"- **{name} skipped**: {why.splitlines()[0]}")
    out += ["", "## Summary (req/s ratios)", ""]
    out += [l.replace("{c}", str(meta["connections"])) for l in summary_table(records, summary, workloads, servers)]
    out += ["", "Best peers: the two with the highest median req/s ratio to Waitress in that workload "
            "(any of Granian default/4 threads, gunicorn, bjoern, fastwsgi). ours ÷ best peer: "
            "against the first of them; ours ÷ Granian: against Granian's default (p99: below 1 is better).", ""]
    out += also_lines(records, summary, workloads, servers)

    def cell(w, n, fn):
        if n in skipped:
            return "skipped"
        s = summary[(w, n)]
        if s["na"]:
            return "n/a"
        if s["rps"] is None:
            return "failed"
        return fn(s)

    def matrix(title, fn):
        lines = [f"## {title}", "", "| workload | " + " | ".join(CONTENDERS[n].label for n in servers) + " |",
                 "|---|" + "---:|" * len(servers)]
        for w in workloads:
            lines.append(f"| {w} | " + " | ".join(cell(w, n, fn) for n in servers) + " |")
        return lines + [""]

    out += matrix("req/s", lambda s: f"{s['rps']:,.0f}")
    out += matrix("p99 latency", lambda s: outb.fmt_lat(s["p99_us"]))
    out += matrix("server CPU µs per request", lambda s: outb.fmt_num(s["cpu_us_per_req"], ",.1f"))
    out += matrix("peak RSS, MiB (VmHWM, summed over the server's processes)",
                  lambda s: fmt_rss(s["peak_rss_kib"]))

    nas = [(w, n, summary[(w, n)]["na"]) for w in workloads for n in servers
           if n not in skipped and summary[(w, n)]["na"]]
    if nas:
        out += ["## n/a", ""]
        out += [f"- {w}, {CONTENDERS[n].label}: {why.splitlines()[0][:200]}" for w, n, why in nas]
        out.append("")

    for w in workloads:
        wl = WORKLOADS[w]
        out += [f"## `{wl.method} {wl.path}` ({w}): {wl.title}", "",
                "| server | req/s | × Waitress | p50 | p99 | CPU µs/req | req per CPU-s | peak RSS MiB "
                "| server CPU | CPU 0 busy | wrk CPU | req/s per round | errors |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
        for n in servers:
            label = CONTENDERS[n].label
            first = cell(w, n, lambda s: None)
            if first is not None:
                why = ("" if first == "skipped" else summary[(w, n)]["na"] if first == "n/a"
                       else (summary[(w, n)]["failures"] or ["no data"])[0])
                why = why.splitlines()[0][:120].replace("|", "/") if why else ""
                out.append(f"| {label} | {first}{': ' + why if why else ''} | | | | | | | | | | | |")
                continue
            s = summary[(w, n)]
            per_round = ", ".join(f"{x / 1000:.1f}k" if x >= 1000 else f"{x:.0f}" for x in s["rps_rounds"])
            if s["rounds_failed"]:
                per_round += f" ({s['rounds_failed']} failed)"
            xw = median_ratio(records, w, n, "waitress")
            out.append(f"| {label} | {s['rps']:,.0f} | {outb.fmt_num(xw, '.2f')} | {outb.fmt_lat(s['p50_us'])} | "
                       f"{outb.fmt_lat(s['p99_us'])} | {outb.fmt_num(s['cpu_us_per_req'], ',.1f')} | "
                       f"{outb.fmt_num(s['req_per_cpu_s'], ',.0f')} | {fmt_rss(s['peak_rss_kib'])} | "
                       f"{outb.fmt_num(s['server_cpu_util'], '.2f')} | {outb.fmt_num(s['cpu0_busy'], '.2f')} | "
                       f"{outb.fmt_num(s['wrk_cpu_util'], '.2f')} | {per_round} | {s['errors']} |")
        out.append("")
    out.append("CPU µs/req and req per CPU-s: server CPU time (user+sys of all its processes and threads, "
               "from /proc) over the requests wrk completed. server CPU: cores the server used; CPU 0 busy: "
               "all of CPU 0 (a gap to server CPU means someone else ran there); wrk CPU: cores wrk used (near 1.00 "
               "the client set the pace). Peak RSS: VmHWM at the end of "
               "the run, start-up and warm-up included. errors: wrk's socket errors and non-2xx responses.")
    return "\n".join(out) + "\n"


def render_json(path: Path) -> str:
    data = json.loads(path.read_text())
    summary = {}
    for row in data["summary"]:
        row = dict(row)
        for k in KEYS:  # runs recorded before a column was added
            row.setdefault(k, None)
        summary[(row.pop("workload"), row.pop("server"))] = row
    return render(data["meta"], data["runs"], summary)


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def main(argv=None) -> int:
    a = parse_args(argv)
    if a.render:
        sys.stdout.write(render_json(a.render))
        return 0
    stamp, logdir = bl.start_run(a, "peers-")

    file_sha = outb.ensure_data_file() if "file" in a.workload_list else ""
    os.environ["BENCH_OUTPUT_FILE"] = str(outb.DATA_FILE)  # servers inherit the environment

    needs_peers = any(s not in OURS for s in a.server_list)
    if needs_peers:
        bl.ensure_peer_venv(logdir / "setup-peers.log")
    skipped, ours_note = bl.setup_ours(a, logdir)
    if any(s in OURS for s in a.server_list) and not skipped:
        # The real apps need Flask and Django in ours' venv too (the same pins).
        pins = [l.strip() for l in bl.PEER_REQUIREMENTS.read_text().splitlines()
                if l.strip().lower().startswith(("flask==", "django=="))]
        bl.run([str(bl.venv_python(bl.VENV_OURS)), "-m", "pip", "install", "-q", *pins],
               timeout=900, log_file=logdir / "setup-ours.log")
    active = [s for s in a.server_list if s not in skipped]

    versions = {}
    if needs_peers:
        for dist in ("waitress", "granian", "gunicorn", "bjoern", "fastwsgi", "flask", "django"):
            versions[dist] = bl.pip_version_of(bl.VENV_PEERS, dist)
    if any(s in OURS for s in active):
        versions["ours"] = bl.pip_version_of(bl.VENV_OURS, "waitress")
    server_py = bl.server_python_version(bl.VENV_PEERS if needs_peers else bl.VENV_OURS)
    client_cpu = None if a.no_pin else a.client_cpu
    meta = {
        "timestamp": stamp, "duration_s": a.duration, "warmup_s": a.warmup, "rounds": a.rounds,
        "connections": a.connections, "servers": a.server_list, "workloads": a.workload_list,
        "threads": a.threads, "pinned": not a.no_pin, "server_cpu": a.server_cpu, "client_cpu": a.client_cpu,
        "machine": bl.machine_info(), "python": server_py or platform.python_version(),
        "wrk": bl.wrk_version(), "git_rev": bl.git_rev(), "versions": versions,
        "skipped": skipped, "ours": ours_note,
        "argv": sys.argv[1:],
        "commands": {s: " ".join(CONTENDERS[s].command("PORT", a.threads, "APP")) for s in active},
        "wrk_commands": {w: " ".join(bl.wrk_cmd("PORT", a.connections, a.duration, client_cpu,
                                                path=WORKLOADS[w].path, script=WORKLOADS[w].script))
                         for w in a.workload_list},
        "apps": {w: WORKLOADS[w].app for w in a.workload_list},
    }

    total = a.rounds * len(a.workload_list) * len(active)
    est = total * (a.duration + a.warmup + 2)
    bl.log(f"{total} measured runs, roughly {est // 60} min {est % 60} s; logs in {logdir}")
    records = []
    na: dict[tuple[str, str], str] = {}
    n = 0
    for rnd in range(1, a.rounds + 1):
        for w in a.workload_list:
            for name in active:
                n += 1
                tag = f"[{n}/{total}] round {rnd} {w} {name}"
                if (w, name) in na:
                    records.append({"workload": w, "server": name, "round": rnd, "na": na[(w, name)]})
                    bl.log(f"{tag}: n/a ({na[(w, name)].splitlines()[0]})")
                    continue
                try:
                    rec = measure(CONTENDERS[name], WORKLOADS[w], rnd, a, logdir, file_sha)
                    bl.log(f"{tag}: {rec['rps']:,.0f} req/s p99 {outb.fmt_lat(rec.get('p99_us'))} "
                           f"{rec.get('cpu_us_per_req', 0):.1f} CPU µs/req RSS {fmt_rss(rec.get('peak_rss_kib'))} MiB"
                           + (f" ERRORS {rec['errors']}" if rec.get("error_total") else ""))
                except NotApplicable as exc:
                    na[(w, name)] = str(exc)
                    rec = {"workload": w, "server": name, "round": rnd, "na": str(exc)}
                    bl.log(f"{tag}: n/a: {exc}")
                except Exception as exc:  # noqa: BLE001
                    rec = {"workload": w, "server": name, "round": rnd, "error": str(exc)}
                    bl.log(f"{tag}: FAILED: {exc}")
                records.append(rec)
                time.sleep(0.3)

    summary = summarise(records, a.workload_list, a.server_list)
    md_path = a.out_dir / f"peers-{stamp}.md"
    json_path = a.out_dir / f"peers-{stamp}.json"
    json_path.write_text(json.dumps({
        "meta": meta,
        "summary": [{"workload": k[0], "server": k[1], **v} for k, v in summary.items()],
        "runs": records,
    }, indent=2))
    md = render(meta, records, summary)
    md_path.write_text(md)
    sys.stdout.write(md)
    sys.stdout.flush()
    bl.log(f"wrote {md_path} and {json_path}")
    # Exit 1 only if a contender failed every round of a workload it could serve.
    failed = any(s["rps"] is None and not s["na"] for k, s in summary.items() if k[1] in active)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
