"""bench/peers.py's bookkeeping: ratios per round, n/a peers, the summary, peak RSS.

No speed is measured or asserted here: the records are made up, and the RSS
check reads a process that holds a known amount of memory.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))
import benchlib  # noqa: E402
import peers  # noqa: E402


def rec(w, server, rnd, rps, **kw):
    return {"workload": w, "server": server, "round": rnd, "rps": rps,
            "p50_us": 100.0, "p99_us": kw.pop("p99_us", 1000.0), "cpu_us_per_req": 1e6 / rps,
            "req_per_cpu_s": rps, "peak_rss_kib": 20480, "server_cpu_util": 1.0, **kw}


def meta(workloads, servers, skipped=None):
    return {"timestamp": "t", "duration_s": 5, "warmup_s": 1, "rounds": 3, "connections": 16,
            "servers": servers, "workloads": workloads, "threads": 4, "pinned": True,
            "server_cpu": "0", "client_cpu": "1", "versions": {}, "git_rev": "x", "python": "3.11",
            "wrk": "wrk", "skipped": skipped or {},
            "machine": {"cpu_model": "cpu", "nproc": 2, "loadavg": ["0", "0", "0"], "kernel": "k"}}


def test_ratios_are_medians_of_per_round_ratios_and_skip_incomplete_rounds():
    records = [rec("hello", "waitress", 1, 100), rec("hello", "ours", 1, 300),
               rec("hello", "waitress", 2, 200), rec("hello", "ours", 2, 200),
               rec("hello", "waitress", 3, 50), rec("hello", "ours", 3, 400),
               {"workload": "hello", "server": "waitress", "round": 4, "error": "died"},
               rec("hello", "ours", 4, 10)]
    assert peers.round_ratios(records, "hello", "ours", "waitress") == [3.0, 1.0, 8.0]
    # The median of the ratios (3.0), not the ratio of the medians (300/100 here too, so
    # check a case where they differ).
    assert peers.median_ratio(records, "hello", "ours", "waitress") == 3.0
    records[5]["rps"] = 100  # round 3: ours 100 / waitress 50 = 2.0
    assert peers.median_ratio(records, "hello", "ours", "waitress") == 2.0
    summary = peers.summarise(records, ["hello"], ["waitress", "ours"])
    assert summary[("hello", "ours")]["rps"] == 150  # median of 300, 200, 100, 10
    assert summary[("hello", "waitress")]["rounds_failed"] == 1
    assert summary[("hello", "waitress")]["failures"] == ["died"]

def test_na_peer_is_reported_with_its_reason_and_left_out_of_the_best_peers():
    w, servers = "echo", ["waitress", "bjoern", "fastwsgi", "granian", "ours"]
    records = []
    for rnd in (1, 2, 3):
        records += [rec(w, "waitress", rnd, 100), rec(w, "granian", rnd, 300),
                    rec(w, "ours", rnd, 150 * rnd),
                    {"workload": w, "server": "bjoern", "round": rnd,
                     "na": "check request failed: connection reset"},
                    rec(w, "fastwsgi", rnd, 500)]
    summary = peers.summarise(records, [w], servers)
    assert summary[(w, "bjoern")]["na"] == "check request failed: connection reset"
    assert summary[(w, "bjoern")]["rps"] is None
    ranked = peers.ranked_peers(records, summary, w, servers)
    assert [n for n, _ in ranked] == ["fastwsgi", "granian"]
    md = peers.render(meta([w], servers), records, summary)
    row = next(l for l in md.splitlines() if l.startswith("| 1 MiB upload echoed back"))
    # ours x Waitress: median(1.5, 3.0, 4.5) = 3.0; best peers fastwsgi 5.00, Granian 3.00;
    # ours / fastwsgi: median(0.3, 0.6, 0.9) = 0.6; ours / Granian: 1.0; p99 equal: 1.0.
    assert row == ("| 1 MiB upload echoed back | 3.00 | fastwsgi 5.00, Granian 3.00 | 0.60 | 1.00 | 1.00 |")
    assert "- echo, bjoern: check request failed: connection reset" in md
    assert "| bjoern | n/a: check request failed: connection reset |" in md


def test_a_server_that_worked_in_one_round_is_not_na():
    records = [{"workload": "hello", "server": "fastwsgi", "round": 1, "na": "check failed"},
               rec("hello", "fastwsgi", 2, 1000)]
    summary = peers.summarise(records, ["hello"], ["fastwsgi"])
    assert summary[("hello", "fastwsgi")]["na"] is None
    assert summary[("hello", "fastwsgi")]["rps"] == 1000


def test_report_without_ours_says_skipped_and_still_renders():
    servers = ["waitress", "granian", "ours"]
    records = [rec("flask", "waitress", 1, 100), rec("flask", "granian", 1, 150)]
    summary = peers.summarise(records, ["flask"], ["waitress", "granian"])
    md = peers.render(meta(["flask"], servers, {"ours": "pip install failed"}), records, summary)
    assert "**ours skipped**: pip install failed" in md
    assert "| Flask JSON route (`GET /`) | - | Granian 1.50 | - | - | - |" in md
    assert "| Flask, requests per server CPU-second | - (Waitress 100) | Granian 150 |" in md


def test_peak_rss_counts_every_process_of_the_server_session():
    # A parent and a child in their own session, each touching 40 MB.
    code = ("import os, sys, time\n"
            "b = bytearray(40 * 1024 * 1024)\n"
            "for i in range(0, len(b), 4096): b[i] = 1\n"
            "if os.fork() == 0:\n"
            "    c = bytearray(40 * 1024 * 1024)\n"
            "    for i in range(0, len(c), 4096): c[i] = 1\n"
            "    print('child', flush=True); time.sleep(60); os._exit(0)\n"
            "time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        assert proc.stdout.readline().strip() == "child"
        kib = benchlib.session_peak_rss_kib(proc.pid)
        # At least both 40 MB buffers (the child's copy of the parent's counts too).
        assert kib >= 80 * 1024, kib
    finally:
        os.killpg(proc.pid, 9)
        proc.wait(timeout=10)


def test_unknown_server_or_workload_is_refused():
    with pytest.raises(SystemExit):
        peers.parse_args(["-s", "waitress,tornado"])
    with pytest.raises(SystemExit):
        peers.parse_args(["-w", "hello,websocket"])
    a = peers.parse_args(["--quick", "-s", "bjoern,ours", "-w", "hello-close,django"])
    assert (a.duration, a.warmup, a.rounds) == (3, 1, 1)
    assert a.server_list == ["bjoern", "ours"] and a.workload_list == ["hello-close", "django"]
