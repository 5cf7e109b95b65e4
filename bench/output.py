#!/usr/bin/env python3
"""Response-output benchmark: files, large and streamed bodies, uploads (method: bench/README.md).

Workloads of bench/apps/output_app.py, served alike by real Waitress 3.0.2,
Granian, gunicorn (gthread) and ours: /file (16 MiB through
wsgi.file_wrapper), /mem64k, /stream (100 x 1 KiB, chunked), /echo (1 MiB
POST echoed), and /file-noseek on ours (the file without fileno: the
read/write path, as the reference for sendfile). Server pinned to CPU 0, wrk
to CPU 1, every measured run on a fresh server after a warm-up, interleaved
rounds, medians. Reports req/s, p99, ratios to Waitress and server CPU
seconds per GiB sent. See bench/README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import platform
import resource
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl  # noqa: E402

APP = "output_app:app"
DATA_DIR = bl.BENCH_DIR / ".data"
DATA_FILE = DATA_DIR / "file16m.bin"
FILE_SIZE = 16 * 1024 * 1024
POST_SCRIPT = bl.BENCH_DIR / "lua" / "post1m.lua"
POST_SIZE = 1024 * 1024
GIB = 1024 ** 3

# Must match apps/output_app.py.
MEM64K = bytes(range(256)) * 256
STREAM_BODY = b"0123456789abcdef" * 64 * 100


@dataclass(frozen=True)
class Workload:
    name: str
    path: str
    title: str
    method: str = "GET"
    script: Path | None = None


WORKLOADS = {
    "file": Workload("file", "/file", "16 MiB file through wsgi.file_wrapper"),
    "file-noseek": Workload("file-noseek", "/file-noseek",
                            "the same file, wrapped without fileno/seek/tell (read/write loop)"),
    "mem64k": Workload("mem64k", "/mem64k", "64 KiB from memory (one-item list, Content-Length)"),
    "stream": Workload("stream", "/stream", "100 x 1 KiB from a generator (no Content-Length)"),
    "echo": Workload("echo", "/echo", "1 MiB POST body read from wsgi.input and echoed",
                     method="POST", script=POST_SCRIPT),
}

CONTENDERS = {
    "waitress": bl.CONTENDERS["waitress"],
    "granian": bl.Contender("granian", "Granian", "granian"),
    "gunicorn": bl.Contender("gunicorn", "gunicorn gthread", "gunicorn"),
    "ours": bl.CONTENDERS["ours"],
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    bl.add_timing_args(p, 5, 1, 1)
    p.add_argument("--connections", "-c", default=bl.env_default("BENCH_CONNECTIONS", "1,16"),
                   help="comma-separated wrk connection counts (env BENCH_CONNECTIONS, default 1,16)")
    p.add_argument("--servers", "-s", default=bl.env_default("BENCH_SERVERS", "waitress,granian,gunicorn,ours"),
                   help="comma-separated from: " + ", ".join(CONTENDERS)
                   + " (env BENCH_SERVERS, default all)")
    p.add_argument("--workloads", "-w", default=bl.env_default("BENCH_WORKLOADS", "file,mem64k,stream,echo"),
                   help="comma-separated from: file, mem64k, stream, echo (default all); file brings "
                   "file-noseek for the --noseek-servers")
    p.add_argument("--noseek-servers", default="ours",
                   help="servers also measured at /file-noseek (default ours; '' = none)")
    p.add_argument("--threads", type=int, default=4,
                   help="--threads of Waitress, ours and gunicorn (default 4)")
    bl.add_common_args(p)
    p.add_argument("--render", type=Path, metavar="JSON",
                   help="measure nothing: print the markdown report of an earlier run's JSON")
    a = p.parse_args(argv)
    a.conn_list = [int(x) for x in str(a.connections).split(",") if x.strip()]
    a.server_list = bl.parse_choices(p, a.servers, CONTENDERS, "server(s)")
    a.workload_list = bl.parse_choices(p, a.workloads, WORKLOADS, "workload(s)")
    a.noseek_list = bl.parse_choices(p, a.noseek_servers, CONTENDERS, "--noseek-servers")
    if a.duration < 1 or a.rounds < 1 or a.warmup < 0:
        p.error("duration and rounds must be >= 1, warmup >= 0")
    return a


# --------------------------------------------------------------------------
# Data, checks and measurements
# --------------------------------------------------------------------------

def ensure_data_file() -> str:
    """Create the 16 MiB file once (random bytes); return its sha256."""
    if not (DATA_FILE.exists() and DATA_FILE.stat().st_size == FILE_SIZE):
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        tmp = DATA_FILE.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            for _ in range(FILE_SIZE // (1 << 20)):
                fh.write(os.urandom(1 << 20))
        tmp.replace(DATA_FILE)
        bl.log(f"created {DATA_FILE} ({FILE_SIZE} bytes)")
    return hashlib.sha256(DATA_FILE.read_bytes()).hexdigest()


def check_response(port: int, wl: Workload, file_sha: str, timeout: float = 30.0) -> dict:
    """One request of the workload with a stdlib client; verify the body; return framing facts."""
    body = os.urandom(POST_SIZE) if wl.method == "POST" else None
    conn = http.client.HTTPConnection(bl.HOST, port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/octet-stream"} if body is not None else {}
        conn.request(wl.method, wl.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        facts = {
            "status": resp.status,
            "bytes": len(data),
            "framing": ("chunked" if (resp.getheader("Transfer-Encoding") or "").lower() == "chunked"
                        else "content-length" if resp.getheader("Content-Length") is not None
                        else "close-delimited"),
        }
        if resp.getheader("X-Bench-Wrapper"):
            facts["file_wrapper"] = resp.getheader("X-Bench-Wrapper")
    finally:
        conn.close()
    if facts["status"] != 200:
        raise RuntimeError(f"sanity {wl.method} {wl.path}: status {facts['status']}")
    if wl.name.startswith("file"):
        ok = len(data) == FILE_SIZE and hashlib.sha256(data).hexdigest() == file_sha
    elif wl.name == "mem64k":
        ok = data == MEM64K
    elif wl.name == "stream":
        ok = data == STREAM_BODY
    else:
        ok = data == body
    if not ok:
        raise RuntimeError(f"sanity {wl.method} {wl.path}: wrong body ({len(data)} bytes)")
    return facts


def cpu_busy_seconds(cpu: str) -> float | None:
    """Busy time (all but idle and iowait) of one CPU from /proc/stat, in seconds."""
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith(f"cpu{cpu} "):
                v = [int(x) for x in line.split()[1:]]
                busy = sum(v[:8]) - v[3] - v[4]  # user nice system idle iowait irq softirq steal
                return busy / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        pass
    return None


def children_cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def measure(c: bl.Contender, wl: Workload, conns: int, rnd: int, a, logdir: Path, file_sha: str) -> dict:
    port = bl.free_port()
    pin = [] if a.no_pin else ["taskset", "-c", a.server_cpu]
    client_cpu = None if a.no_pin else a.client_cpu
    srv = bl.Server(cmd=pin + c.command(port, a.threads, APP),
                    log_path=logdir / f"{wl.name}-{c.name}-c{conns}-r{rnd}.log", port=port)
    rec: dict = {"workload": wl.name, "server": c.name, "connections": conns, "round": rnd, "port": port}
    srv.start()
    try:
        t0 = time.monotonic()
        srv.wait_ready(a.start_timeout)
        rec["startup_s"] = round(time.monotonic() - t0, 3)
        rec["check"] = check_response(port, wl, file_sha)
        if a.warmup:
            bl.run(bl.wrk_cmd(port, conns, a.warmup, client_cpu, latency=False, path=wl.path,
                              script=wl.script), timeout=a.warmup + 60)
        busy0 = None if a.no_pin else cpu_busy_seconds(a.server_cpu)
        cbusy0 = None if a.no_pin else cpu_busy_seconds(a.client_cpu)
        wrk0 = children_cpu_seconds()
        u0, s0 = bl.session_cpu_split(srv.pid)
        proc = bl.run(bl.wrk_cmd(port, conns, a.duration, client_cpu, path=wl.path, script=wl.script),
                      timeout=a.duration + 60)
        u1, s1 = bl.session_cpu_split(srv.pid)
        wrk1 = children_cpu_seconds()  # wrk is the only child reaped in between
        busy1 = None if a.no_pin else cpu_busy_seconds(a.server_cpu)
        cbusy1 = None if a.no_pin else cpu_busy_seconds(a.client_cpu)
        if not srv.alive():
            raise RuntimeError(f"server died during the run; log tail:\n{bl.tail(srv.log_path)}")
        rec.update(bl.parse_wrk(proc.stdout))
        rec["bytes_read"] = bl.parse_wrk_bytes(proc.stdout)
        rec["wrk_output"] = proc.stdout
        cpu = (u1 - u0) + (s1 - s0)
        rec["server_cpu_s"] = round(cpu, 3)
        rec["server_user_s"] = round(u1 - u0, 3)
        rec["server_sys_s"] = round(s1 - s0, 3)
        if rec.get("requests"):
            rec["cpu_us_per_req"] = cpu * 1e6 / rec["requests"]
        if rec.get("bytes_read"):
            rec["cpu_s_per_gib"] = cpu / (rec["bytes_read"] / GIB)
        if rec.get("elapsed_s"):
            rec["server_cpu_util"] = cpu / rec["elapsed_s"]
            if rec.get("bytes_read"):
                rec["gib_per_s"] = rec["bytes_read"] / GIB / rec["elapsed_s"]
            rec["wrk_cpu_util"] = (wrk1 - wrk0) / rec["elapsed_s"]
            if busy0 is not None and busy1 is not None:
                rec["cpu0_busy"] = (busy1 - busy0) / rec["elapsed_s"]
            if cbusy0 is not None and cbusy1 is not None:
                rec["cpu1_busy"] = (cbusy1 - cbusy0) / rec["elapsed_s"]
    finally:
        rec["exit_code"] = srv.stop()
    return rec


# --------------------------------------------------------------------------
# Summary and report
# --------------------------------------------------------------------------

def median_or_none(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt_lat(us):
    if us is None:
        return "-"
    if us >= 1e6:
        return f"{us / 1e6:.2f} s"
    return f"{us / 1000:.2f} ms" if us >= 1000 else f"{us:.0f} µs"


def fmt_num(x, spec):
    return "-" if x is None else format(x, spec)


def fmt_ratio(x, ref):
    return "-" if x is None or not ref else f"{x / ref:.2f}"


def plan(a, servers) -> list[tuple[str, str]]:
    """(workload, server) pairs in run order within one round and connection count."""
    pairs = []
    for w in a.workload_list:
        pairs += [(w, s) for s in servers]
        if w == "file":
            pairs += [("file-noseek", s) for s in a.noseek_list if s in servers]
    return pairs


KEYS = ("rps", "p50_us", "p99_us", "cpu_us_per_req", "cpu_s_per_gib", "gib_per_s",
        "server_cpu_util", "cpu0_busy", "wrk_cpu_util", "cpu1_busy")


def summarise(records, pairs, conn_list):
    summary = {}
    for w, name in pairs:
        for conns in conn_list:
            rs = [r for r in records if r["workload"] == w and r["server"] == name and r["connections"] == conns]
            ok = [r for r in rs if "rps" in r]
            s = {"rounds_ok": len(ok), "rounds_failed": len(rs) - len(ok),
                 "rps_rounds": [r["rps"] for r in ok],
                 "errors": sum(r.get("error_total", 0) for r in ok),
                 "failures": [r["error"] for r in rs if "error" in r],
                 "check": next((r["check"] for r in ok if "check" in r), None)}
            for k in KEYS:
                s[k] = median_or_none([r.get(k) for r in ok])
            summary[(w, conns, name)] = s
    return summary


def render(meta, summary, pairs, conn_list, skipped) -> str:
    v = meta["versions"]
    out = [f"# Output benchmark {meta['timestamp']}: files, large, streamed and uploaded bodies", ""]
    out.append(f"- {meta['rounds']} interleaved round(s) × {meta['duration_s']} s per run after "
               f"{meta['warmup_s']} s warm-up; medians across rounds; every run on a fresh server")
    out.append(f"- server on CPU {meta['server_cpu']}, wrk (1 thread) on CPU {meta['client_cpu']}"
               if meta["pinned"] else "- NOT PINNED (--no-pin): numbers are not comparable")
    out.append(f"- Waitress {v.get('waitress', '?')} and ours: --threads={meta['threads']}; "
               f"gunicorn {v.get('gunicorn', '?')}: -k gthread --threads {meta['threads']} -w 1; "
               f"Granian {v.get('granian', '?')}: --interface wsgi --http 1 --workers 1 (default blocking threads)")
    out.append(f"- app `bench/apps/output_app.py`; ours: {v.get('ours', '?')} at `{meta['git_rev']}`; "
               f"Python {meta['python']}; {meta['wrk']}")
    m = meta["machine"]
    out.append(f"- machine: {m['cpu_model']}, {m['nproc']} CPUs, load average at start "
               f"{' '.join(m['loadavg'])}, kernel {m['kernel']}")
    wrappers = {}
    for (w, conns, name), s in summary.items():
        if w == "file" and s["check"] and "file_wrapper" in s["check"]:
            wrappers[name] = s["check"]["file_wrapper"]
    fallback = [CONTENDERS[n].label for n, k in wrappers.items() if k == "fallback"]
    if fallback:
        out.append(f"- no `wsgi.file_wrapper` in {', '.join(fallback)}: the app used PEP 3333's fallback "
                   "(an iterable of 64 KiB reads)")
    for name, why in skipped.items():
        out.append(f"- **{name} skipped**: {why.splitlines()[0]}")
    out.append("")
    out.append("CPU s/GiB: server CPU time (user+sys of its whole process tree, from /proc) per GiB that wrk "
               "read. server CPU: cores used by the server during the run; CPU 0 busy: all of CPU 0 "
               "(server + anything else on it; a gap to server CPU means CPU 0 was shared); wrk CPU: cores used by wrk "
               "(near 1.00: the client, not the server, set the pace); CPU 1 busy: all of CPU 1 (a gap to wrk "
               "CPU: the client's CPU was shared). "
               "×W: req/s relative to Waitress at the same connection count.")
    out.append("")

    # Overview: req/s ratios to Waitress.
    servers = []
    for _, s in pairs:
        if s not in servers:
            servers.append(s)
    out.append("## req/s relative to Waitress")
    out.append("")
    out.append("| workload | conns | " + " | ".join(CONTENDERS[s].label for s in servers) + " |")
    out.append("|---|---:|" + "---:|" * len(servers))
    workloads = []
    for w, _ in pairs:
        if w not in workloads:
            workloads.append(w)
    for w in workloads:
        for conns in conn_list:
            ref = summary.get(("file" if w == "file-noseek" else w, conns, "waitress"), {}).get("rps")
            cells = []
            for s in servers:
                x = summary.get((w, conns, s), {}).get("rps")
                cells.append(fmt_ratio(x, ref) if (w, s) in pairs and s not in skipped else "")
            out.append(f"| {WORKLOADS[w].path} | {conns} | " + " | ".join(cells) + " |")
    out.append("")
    if "file-noseek" in workloads:
        out.append("/file-noseek is relative to Waitress at /file.")
        out.append("")

    for w in workloads:
        wl = WORKLOADS[w]
        out.append(f"## `{wl.method} {wl.path}`: {wl.title}")
        out.append("")
        out.append("| conns | server | req/s | ×W | p50 | p99 | GiB/s | CPU s/GiB | CPU µs/req | server CPU "
                   "| CPU 0 busy | wrk CPU | CPU 1 busy | framing | errors |")
        out.append("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
        for conns in conn_list:
            ref = summary.get(("file" if w == "file-noseek" else w, conns, "waitress"), {}).get("rps")
            for ww, name in pairs:
                if ww != w:
                    continue
                label = CONTENDERS[name].label
                if name in skipped:
                    out.append(f"| {conns} | {label} | skipped | | | | | | | | | | | | |")
                    continue
                s = summary[(w, conns, name)]
                if s["rps"] is None:
                    why = (s["failures"] or ["no data"])[0].splitlines()[0][:120].replace("|", "/")
                    out.append(f"| {conns} | {label} | failed: {why} | | | | | | | | | | | | |")
                    continue
                framing = (s["check"] or {}).get("framing", "?")
                if (s["check"] or {}).get("file_wrapper") == "fallback":
                    framing += " (fallback wrapper)"
                errs = str(s["errors"]) + (f" ({s['rounds_failed']} runs failed)" if s["rounds_failed"] else "")
                out.append(
                    f"| {conns} | {label} | {fmt_num(s['rps'], ',.0f')} | {fmt_ratio(s['rps'], ref)} | "
                    f"{fmt_lat(s['p50_us'])} | {fmt_lat(s['p99_us'])} | {fmt_num(s['gib_per_s'], '.2f')} | "
                    f"{fmt_num(s['cpu_s_per_gib'], '.3f')} | {fmt_num(s['cpu_us_per_req'], ',.0f')} | "
                    f"{fmt_num(s['server_cpu_util'], '.2f')} | {fmt_num(s['cpu0_busy'], '.2f')} | "
                    f"{fmt_num(s['wrk_cpu_util'], '.2f')} | {fmt_num(s['cpu1_busy'], '.2f')} | {framing} | {errs} |")
        out.append("")
    if meta["rounds"] > 1:
        out.append("req/s per round: see the JSON (`summary[].rps_rounds`).")
    out.append("Ratios within one run are what count; absolute numbers drift on shared machines. "
               "For /file, req/s is often limited by wrk (CPU 1) copying 16 MiB per response: "
               "CPU s/GiB is the server-side measure.")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def render_json(path: Path) -> str:
    data = json.loads(path.read_text())
    summary, pairs = {}, []
    for row in data["summary"]:
        row = dict(row)
        key = (row.pop("workload"), row.pop("connections"), row.pop("server"))
        summary[key] = row
        if (key[0], key[2]) not in pairs:
            pairs.append((key[0], key[2]))
    for k in summary.values():
        for key in KEYS:
            k.setdefault(key, None)
    meta = data["meta"]
    return render(meta, summary, pairs, meta["connections"], meta.get("skipped", {}))


def main(argv=None) -> int:
    a = parse_args(argv)
    if a.render:
        sys.stdout.write(render_json(a.render))
        return 0
    stamp, logdir = bl.start_run(a, "output-")

    file_sha = ensure_data_file()
    os.environ["BENCH_OUTPUT_FILE"] = str(DATA_FILE)  # servers inherit the environment

    needs_peers = any(CONTENDERS[s].kind != "ours" for s in a.server_list)
    if needs_peers:
        bl.ensure_peer_venv(logdir / "setup-peers.log")

    skipped, ours_note = bl.setup_ours(a, logdir)
    active = [s for s in a.server_list if s not in skipped]

    versions = {}
    if needs_peers:
        for dist in ("waitress", "granian", "gunicorn"):
            versions[dist] = bl.pip_version_of(bl.VENV_PEERS, dist)
    if "ours" in active:
        versions["ours"] = bl.pip_version_of(bl.VENV_OURS, "waitress")

    pairs = plan(a, a.server_list)          # skipped servers get a "skipped" row
    run_pairs = [(w, s) for w, s in pairs if s in active]
    server_py = bl.server_python_version(bl.VENV_PEERS if needs_peers else bl.VENV_OURS)
    meta = {
        "timestamp": stamp, "duration_s": a.duration, "warmup_s": a.warmup, "rounds": a.rounds,
        "connections": a.conn_list, "servers": a.server_list, "workloads": a.workload_list,
        "noseek_servers": a.noseek_list, "threads": a.threads,
        "pinned": not a.no_pin, "server_cpu": a.server_cpu, "client_cpu": a.client_cpu,
        "machine": bl.machine_info(), "python": server_py or platform.python_version(),
        "wrk": bl.wrk_version(), "git_rev": bl.git_rev(), "versions": versions,
        "skipped": skipped, "ours": ours_note, "data_file": str(DATA_FILE), "data_sha256": file_sha,
        "commands": {s: " ".join(CONTENDERS[s].command("PORT", a.threads, APP)) for s in active},
        "wrk_commands": {w: " ".join(bl.wrk_cmd("PORT", "N", a.duration,
                                                None if a.no_pin else a.client_cpu,
                                                path=WORKLOADS[w].path, script=WORKLOADS[w].script))
                         for w in dict.fromkeys(w for w, _ in run_pairs)},
    }

    total_runs = a.rounds * len(a.conn_list) * len(run_pairs)
    est = total_runs * (a.duration + a.warmup + 2)
    bl.log(f"{total_runs} measured runs, roughly {est // 60} min {est % 60} s; logs in {logdir}")

    records = []
    n = 0
    for rnd in range(1, a.rounds + 1):
        for w in dict.fromkeys(w for w, _ in run_pairs):
            for conns in a.conn_list:
                for ww, name in run_pairs:
                    if ww != w:
                        continue
                    n += 1
                    tag = f"[{n}/{total_runs}] round {rnd} {WORKLOADS[w].path} c={conns} {name}"
                    try:
                        rec = measure(CONTENDERS[name], WORKLOADS[w], conns, rnd, a, logdir, file_sha)
                        gib = rec.get("cpu_s_per_gib")
                        bl.log(f"{tag}: {rec['rps']:,.1f} req/s p99 {fmt_lat(rec.get('p99_us'))} "
                               f"server CPU {rec.get('server_cpu_util', 0):.2f}"
                               + (f" ({gib:.3f} s/GiB)" if gib is not None else "")
                               + (f" ERRORS {rec['errors']}" if rec.get("error_total") else ""))
                    except Exception as exc:  # noqa: BLE001
                        rec = {"workload": w, "server": name, "connections": conns, "round": rnd,
                               "error": str(exc)}
                        bl.log(f"{tag}: FAILED: {exc}")
                    records.append(rec)
                    time.sleep(0.3)

    summary = summarise(records, pairs, a.conn_list)
    md = render(meta, summary, pairs, a.conn_list, skipped)
    md_path = a.out_dir / f"output-{stamp}.md"
    json_path = a.out_dir / f"output-{stamp}.json"
    md_path.write_text(md)
    json_path.write_text(json.dumps({
        "meta": meta,
        "summary": [{"workload": k[0], "connections": k[1], "server": k[2], **v} for k, v in summary.items()],
        "runs": records,
    }, indent=2))
    sys.stdout.write(md)
    sys.stdout.flush()
    bl.log(f"wrote {md_path} and {json_path}")
    failed = any(s["rps"] is None for k, s in summary.items() if k[2] in active)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
