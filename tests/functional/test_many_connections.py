"""Ten thousand idle keep-alive connections (docs/behaviour.md, "Connections").

One NIO event loop holds every connection, so an idle connection should cost little memory
and nothing else: the server keeps serving other clients normally, and releases every
descriptor once the clients go away. The test raises RLIMIT_NOFILE for itself before it
starts the server (the subprocess inherits the limit) and skips when the hard limit is too low.

Run with ``pytest -s`` to see the measured memory per idle connection.
"""

import errno
import os
import resource
import selectors
import shutil
import socket
import subprocess
import time

import pytest

from functional.harness import assert_serves, build_request
from functional.procstats import vm_rss, fd_count, wait_until

APP = "apps.output_app:app"
N = 10000
# Connects per batch: below the listen backlog, even the 128 the server listens with now (see
# test_listen_backlog_is_kept_while_serving), so no handshake is dropped.
BATCH = 100
TOTAL_BUDGET = 60.0
PER_CONNECTION_BOUND = 64 * 1024

REQUEST = build_request("GET", "/hello")
BODY = b"Hello, world!"


@pytest.fixture
def raised_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = N + 100
    if hard != resource.RLIM_INFINITY and hard < need:
        pytest.skip("hard RLIMIT_NOFILE is %d; %d connections need at least %d" % (hard, N, need))
    wanted = need + 1000 if hard == resource.RLIM_INFINITY else min(hard, need + 1000)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def open_batch(address, count, deadline):
    """``count`` connected non-blocking sockets (connects in parallel)."""
    socks = []
    sel = selectors.DefaultSelector()
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            socks.append(s)
            err = s.connect_ex(address)
            if err not in (0, errno.EINPROGRESS):
                raise OSError(err, "connect: %s" % os.strerror(err))
            sel.register(s, selectors.EVENT_WRITE)
        pending = len(socks)
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("%d connects still pending" % pending)
            for key, _ in sel.select(min(left, 1.0)):
                s = key.fileobj
                sel.unregister(s)
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    raise OSError(err, "connect: %s" % os.strerror(err))
                pending -= 1
        return socks
    except BaseException:
        for s in socks:
            s.close()
        raise
    finally:
        sel.close()


def request_on_all(socks, deadline):
    """One GET /hello on every socket; reads each complete response (keep-alive)."""
    sel = selectors.DefaultSelector()
    bufs = {}
    try:
        for s in socks:
            s.send(REQUEST)  # tiny, into an empty send buffer
            sel.register(s, selectors.EVENT_READ)
            bufs[s] = b""
        pending = len(socks)
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("%d responses still pending" % pending)
            for key, _ in sel.select(min(left, 1.0)):
                s = key.fileobj
                data = s.recv(65536)
                if not data:
                    raise AssertionError("server closed a keep-alive connection: %r" % bufs[s])
                bufs[s] += data
                if bufs[s].endswith(BODY):
                    head = bufs[s].split(b"\r\n", 1)[0]
                    assert head == b"HTTP/1.1 200 OK", bufs[s]
                    assert b"\r\nConnection: close" not in bufs[s], bufs[s]
                    sel.unregister(s)
                    pending -= 1
    finally:
        sel.close()


def test_ten_thousand_idle_keepalive_connections(raised_nofile, private_server):
    s = private_server(APP, connection_limit=N + 1000)
    pid = s.proc.pid
    t_start = time.monotonic()
    deadline = t_start + TOTAL_BUDGET

    # Warm up (worker thread states, allocator pools), then take the baseline.
    warm = [socket.create_connection(s.address) for _ in range(8)]
    try:
        request_on_all([w for w in warm], time.monotonic() + 20)
    finally:
        for w in warm:
            w.close()
    assert wait_until(lambda: fd_count(pid) < 40, 10)
    time.sleep(0.3)
    rss_before = vm_rss(pid)
    fds_before = fd_count(pid)

    conns = []
    try:
        while len(conns) < N:
            conns += open_batch(s.address, min(BATCH, N - len(conns)), deadline)
            # Let the server accept the batch (one descriptor each) before the next one, so a
            # full accept queue never drops a handshake.
            n = len(conns)
            accepted = wait_until(
                lambda: fd_count(pid) >= fds_before + n, max(1, deadline - time.monotonic()), 0.005
            )
            assert accepted, "server accepted %d of %d connections" % (fd_count(pid) - fds_before, n)
        t_open = time.monotonic() - t_start
        time.sleep(0.3)
        rss_connected = vm_rss(pid)

        for i in range(0, N, BATCH):
            request_on_all(conns[i : i + BATCH], deadline)
        t_requests = time.monotonic() - t_start
        time.sleep(0.5)
        rss_idle = vm_rss(pid)

        # Another client is served normally while 10,000 connections sit idle.
        t0 = time.monotonic()
        assert_serves(s)
        latency = time.monotonic() - t0
        # The idle connections are still alive: a second request on some of them.
        sample = conns[:: N // 100]
        for c in sample:
            c.setblocking(True)
            c.settimeout(10)
        request_on_all(sample, time.monotonic() + 20)

        per_connected = (rss_connected - rss_before) / float(N)
        per_idle = (rss_idle - rss_before) / float(N)
        print(
            "\n%d connections: opened in %.1f s, one request each done at %.1f s; "
            "server RSS %d KiB before, %d KiB connected (%.0f bytes/connection), "
            "%d KiB idle keep-alive after one request (%.0f bytes/connection); "
            "another client served in %.3f s"
            % (
                N, t_open, t_requests, rss_before // 1024, rss_connected // 1024, per_connected,
                rss_idle // 1024, per_idle, latency,
            )
        )
        assert latency < 5.0
        assert per_idle < PER_CONNECTION_BOUND, "%.0f bytes per idle connection" % per_idle
        assert s.alive()
    finally:
        for c in conns:
            c.close()

    # The server releases every connection once the clients are gone.
    released = wait_until(lambda: fd_count(pid) <= fds_before + 5, 30, step=0.2)
    assert released, "server still holds %d descriptors after all clients closed" % (
        fd_count(pid) - fds_before
    )
    assert_serves(s)
    assert "Traceback" not in s.log_text()
    time.sleep(0.3)  # let pending log records out before the fixture's SIGTERM


def listen_queue_size(port, host="127.0.0.1"):
    """The accept-queue size (listen backlog) of the TCP listener on ``host:port``, from ss.

    Matched on the whole local address: on a shared machine another process may listen on
    the same port number at another address."""
    out = subprocess.run(
        ["ss", "-Hltn", "sport = :%d" % port], capture_output=True, text=True, timeout=10
    ).stdout
    for line in out.splitlines():
        fields = line.split()
        # State Recv-Q Send-Q Local Peer; for a listener Send-Q is the backlog.
        if len(fields) >= 4 and fields[0] == "LISTEN" and fields[3] == "%s:%d" % (host, port):
            return int(fields[2])
    raise AssertionError("no listener on %s:%d in %r" % (host, port, out))


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2)")
@pytest.mark.parametrize("backlog", [None, 2048])
def test_listen_backlog_is_kept_while_serving(private_server, backlog):
    """``backlog`` (default 1024, as in Waitress) is the listen queue size once the server
    runs, not only between create_server and run()."""
    options = {} if backlog is None else {"backlog": backlog}
    s = private_server(APP, **options)
    assert_serves(s)
    expected = min(backlog or 1024, int(open("/proc/sys/net/core/somaxconn").read()))
    assert listen_queue_size(s.port) == expected
