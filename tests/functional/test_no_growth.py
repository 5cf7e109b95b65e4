"""Nothing grows: memory and descriptors return to their level after each kind of traffic
(docs/behaviour.md, "Reliability").

Each case runs a warm-up round (allocator pools, worker thread states, the first temporary
files), takes the server's RSS and descriptor count, runs more rounds of the same traffic and
checks that both come back within a small bound. The bounds are generous (a few MiB, a few
descriptors) and far below what a per-connection or per-request leak costs at these counts:
before the fix for it, every connection left about 1.1 KB behind (its handler, channel context,
pipeline and response channel held each other), 21 MB per 20,000 connections.

Run with ``pytest -s`` to see the figures.
"""

import socket
import time

import pytest

from functional.harness import assert_serves, build_request
from functional.procstats import vm_rss, fd_count

APP = "apps.wsgi_app:app"
# Small overflow thresholds, so that uploads and responses of 20 kB go through temporary files.
OPTIONS = dict(inbuf_overflow=4096, outbuf_overflow=16384, connection_limit=200)
RSS_BOUND = 4 * 1024 * 1024
FD_SLACK = 3

HELLO = build_request("GET", "/hello")
HELLO_CLOSE = build_request("GET", "/hello", [("Connection", "close")])
UPLOAD_BODY = b"u" * 20000
UPLOAD = build_request("POST", "/echo", body=UPLOAD_BODY)


def settled(pid, baseline_fds, timeout=10.0):
    """Waits until the server holds no more descriptors than ``baseline_fds`` (closing
    connections may trail the client's close), then returns (rss, fds)."""
    deadline = time.monotonic() + timeout
    while fd_count(pid) > baseline_fds and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    return vm_rss(pid), fd_count(pid)


def connect_and_close(s, n):
    """Connections that send nothing (a health check, a client that gives up)."""
    for _ in range(n):
        socket.create_connection(s.address).close()


def new_connection_per_request(s, n):
    """Behind nginx's default proxy_http_version 1.0: one request per connection."""
    for _ in range(n):
        with s.connect() as c:
            c.send(HELLO_CLOSE)
            assert c.read_response().status == 200


def keep_alive(s, n):
    per = 500
    for _ in range(n // per):
        with s.connect() as c:
            for _ in range(per):
                c.send(HELLO)
                assert c.read_response().body == b"Hello, world!"


def pipelined(s, n):
    depth = 20
    for _ in range(n // depth):
        with s.connect() as c:
            c.send(HELLO * depth)
            for _ in range(depth):
                assert c.read_response().body == b"Hello, world!"


def spilled_uploads_and_responses(s, n):
    """20 kB bodies echoed back: past inbuf_overflow and outbuf_overflow both."""
    with s.connect() as c:
        for _ in range(n):
            c.send(UPLOAD)
            resp = c.read_response("POST")
            assert resp.status == 200 and resp.body == UPLOAD_BODY


CASES = {
    "connect_and_close": (connect_and_close, 20000),
    "new_connection_per_request": (new_connection_per_request, 5000),
    "keep_alive": (keep_alive, 20000),
    "pipelined": (pipelined, 20000),
    "spilled_bodies": (spilled_uploads_and_responses, 2000),
}


@pytest.fixture(scope="module")
def churn_server(server_factory):
    s = server_factory.start(APP, **OPTIONS)
    yield s
    s.stop()


@pytest.mark.parametrize("case", sorted(CASES))
def test_traffic_leaves_nothing_behind(churn_server, case):
    s = churn_server
    pid = s.proc.pid
    run, n = CASES[case]
    run(s, n)  # warm-up
    rss_base, fds_base = settled(pid, fd_count(pid))
    figures = []
    for _ in range(2):
        run(s, n)
        rss, fds = settled(pid, fds_base)
        figures.append((rss, fds))
    growth = figures[-1][0] - rss_base
    print(
        "\n%s: %d per round; RSS %d KiB after warm-up, then %s KiB; descriptors %d, then %s"
        % (
            case, n, rss_base // 1024, [r // 1024 for r, _ in figures], fds_base,
            [f for _, f in figures],
        )
    )
    assert growth < RSS_BOUND, "RSS grew by %d KiB over %d rounds of %d" % (
        growth // 1024, len(figures), n
    )
    assert figures[-1][1] <= fds_base + FD_SLACK, "descriptors %d -> %d" % (
        fds_base, figures[-1][1]
    )
    assert_serves(s)
    assert "Traceback" not in s.log_text()
