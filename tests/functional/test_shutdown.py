"""Graceful shutdown on SIGTERM (docs/behaviour.md, "Shutdown"): the server stops accepting,
closes idle connections, lets requests in service finish and flushes their whole responses,
then exits (the launcher turns SIGTERM into SystemExit(0), so the exit code is 0).

Requests "in service" use ``/hold`` of ``apps/output_app.py``: it records "started" and then
sleeps, or waits for a gate file the test creates, so the test knows the request is in the
application when it sends the signal.
"""

import signal
import socket
import struct
import time
import uuid

import pytest

from functional.harness import Connection, assert_serves, build_request

APP = "apps.output_app:app"
EXIT_TIMEOUT = 10.0


def new_key():
    return uuid.uuid4().hex


def start_held_request(server, target):
    """Sends ``target`` (a /hold request) and waits until the app is running it."""
    key = target.split("id=")[1].split("&")[0]
    conn = server.connect(timeout=10)
    conn.send(build_request("GET", target))
    events = server.wait_for_events(key, lambda ev: "started" in ev)
    assert "started" in events, events
    return conn


def idle_keepalive(server):
    """A connection that has had one response and is now idle (kept alive)."""
    conn = server.connect()
    conn.send(build_request("GET", "/hello"))
    resp = conn.read_response()
    assert resp.status == 200 and not resp.wants_close
    return conn


def wait_exit(server, timeout=EXIT_TIMEOUT):
    try:
        return server.proc.wait(timeout)
    except Exception:
        return None


def try_new_connection(server):
    """After SIGTERM: a new connection is refused, or accepted by the kernel but never served.

    Returns the socket when the kernel accepted the connection (the caller checks it again
    after the server exited), else None.
    """
    family = socket.AF_UNIX if server.transport == "unix" else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(2)
    try:
        sock.connect(server.address)
    except (ConnectionRefusedError, FileNotFoundError, socket.timeout):
        sock.close()
        return None
    try:
        sock.sendall(build_request("GET", "/hello"))
    except OSError:
        sock.close()
        return None
    sock.settimeout(1.0)
    try:
        data = sock.recv(65536)
    except socket.timeout:
        data = None  # not served (yet): good
    except ConnectionResetError:
        data = b""
    assert not data, "a connection made after SIGTERM was served: %r" % data
    return sock


@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_request_in_service_finishes_after_sigterm(private_server, transport):
    s = private_server(APP, transport=transport)
    key = new_key()
    pad = 300 * 1024  # more than one socket buffer's worth to flush
    busy = start_held_request(s, "/hold?id=%s&ms=1500&pad=%d" % (key, pad))
    idle = idle_keepalive(s)
    try:
        s.proc.send_signal(signal.SIGTERM)
        # The idle keep-alive connection is closed by the shutdown, without a response.
        idle.assert_closed()
        # The request in service gets its complete response.
        resp = busy.read_response()
        assert resp.status == 200
        assert resp.body == b"held " + key.encode() + b" " + b"z" * pad
        code = wait_exit(s)
        assert code == 0, "exit code %r; log:\n%s" % (code, s.log_text())
    finally:
        busy.close()
        idle.close()
    s.stop()
    assert b"stopped" in s.stdout_rest


@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_sigterm_closes_idle_and_refuses_new_while_request_in_service(
    private_server, transport, tmp_path
):
    """Gated: the request stays in service until the test opens the gate, so what happens to
    idle and new connections is observed while the server is draining."""
    s = private_server(APP, transport=transport)
    key = new_key()
    gate = str(tmp_path / "gate")
    busy = start_held_request(s, "/hold?id=%s&gate=%s" % (key, gate))
    idle = idle_keepalive(s)
    late = None
    try:
        s.proc.send_signal(signal.SIGTERM)
        idle.assert_closed()  # bounded by the harness's read timeout
        assert s.alive(), "server exited with a request in service"
        late = try_new_connection(s)
        assert s.alive()
        with open(gate, "wb"):
            pass
        resp = busy.read_response()
        assert resp.status == 200
        assert resp.body == b"held " + key.encode() + b" "
        code = wait_exit(s)
        assert code == 0, "exit code %r; log:\n%s" % (code, s.log_text())
        if late is not None:
            # Accepted by the kernel only: the server exited without answering it.
            late.settimeout(5)
            try:
                data = late.recv(65536)
            except ConnectionResetError:
                data = b""
            assert data == b"", "a connection made after SIGTERM was served: %r" % data
    finally:
        busy.close()
        idle.close()
        if late is not None:
            late.close()
        with open(gate, "wb"):
            pass
    s.stop()


def test_response_streaming_at_sigterm_is_flushed_completely(private_server, tmp_path):
    """A slow generator response in progress when SIGTERM arrives is completed, chunk
    framing included, before the server exits."""
    s = private_server(APP)
    gate_dir = tmp_path / "gates"
    gate_dir.mkdir()
    key = new_key()
    conn = s.connect(timeout=10)
    try:
        conn.send(build_request("GET", "/gated?n=3&id=%s&dir=%s" % (key, gate_dir)))
        head = conn.read_head()
        assert head.header("Transfer-Encoding") == "chunked"
        s.proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        assert s.alive()
        (gate_dir / "1").write_bytes(b"")
        (gate_dir / "2").write_bytes(b"")
        # Parse the rest of the chunked body with the strict parser.
        body = b""
        while True:
            line = conn._read_line(time.monotonic() + 20)
            size = int(line, 16)
            if size == 0:
                assert conn._read_line(time.monotonic() + 20) == b""
                break
            body += conn._read_exact(size, time.monotonic() + 20)
            assert conn._read_exact(2, time.monotonic() + 20) == b"\r\n"
        assert body == b"item 0;item 1;item 2;"
        assert wait_exit(s) == 0, s.log_text()
    finally:
        conn.close()
    s.stop()


def test_second_sigterm_cuts_the_drain_short(private_server, tmp_path):
    """A request whose app holds a worker for 15 s: a second SIGTERM cuts the drain short,
    closes what is left and ends run() without waiting for the app. (Waitress's
    ThreadedTaskDispatcher.shutdown waits at most 5 s for busy worker threads, logs
    "N thread(s) still running" and returns; its threads are daemon threads.)"""
    s = private_server(APP)
    key = new_key()
    gate = str(tmp_path / "never-opened")
    busy = start_held_request(s, "/hold?id=%s&gate=%s&timeout=15" % (key, gate))
    try:
        t0 = time.monotonic()
        s.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert s.alive(), "exited at the first SIGTERM with a request in service"
        s.proc.send_signal(signal.SIGTERM)
        # What is left is closed: the held request's connection ends without a response.
        busy.sock.settimeout(5)
        rest = busy.read_until_close()
        closed_after = time.monotonic() - t0
        assert rest == b"", rest
        code = wait_exit(s, 20)
        elapsed = time.monotonic() - t0
        print("\nsecond SIGTERM: connection closed after %.2f s, exit code %r after %.2f s"
              % (closed_after, code, elapsed))
        assert code is not None, "server still running 20 s after a second SIGTERM"
        assert elapsed < 8.0, (
            "run() returned %.1f s after the first SIGTERM, only once the app's 15 s hold "
            "ended; log:\n%s" % (elapsed, s.log_text())
        )
    finally:
        busy.close()
    s.stop()


def _reset_mid_response(server):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.settimeout(5)
    sock.connect(server.address)
    conn = Connection(sock)
    conn.send(build_request("GET", "/endless?id=%s" % new_key()))
    deadline = time.monotonic() + 10
    conn.read_head(deadline)
    while len(conn.buf) < 128 * 1024:
        assert conn._fill(deadline)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _connection_limit_cycle(server):
    """Reach connection_limit (2) and drop below it: the server logs both transitions."""
    conns = [server.connect() for _ in range(2)]
    for c in conns:
        c.send(build_request("GET", "/hello"))
        assert c.read_response().status == 200
    extra = server.connect()  # waits in the backlog while accepting is paused
    extra.send(build_request("GET", "/hello"))
    server.wait_for_log("connection limit")
    for c in conns:
        c.close()
    assert extra.read_response().status == 200
    extra.close()


@pytest.mark.parametrize("trigger", ["client-reset", "connection-limit"])
def test_sigterm_soon_after_logged_event_stops_server(private_server, trigger):
    """SIGTERM while the server is writing log records that come from its event loop (a client
    that reset mid-response; connection_limit reached and left) must not be lost. Tried a few
    times, since the loss is a race."""
    for attempt in range(4):
        if trigger == "client-reset":
            s = private_server(APP, threads=1)
            _reset_mid_response(s)
            assert_serves(s)
        else:
            s = private_server(APP, connection_limit=2)
            _connection_limit_cycle(s)
        t0 = time.monotonic()
        s.proc.send_signal(signal.SIGTERM)
        code = wait_exit(s, EXIT_TIMEOUT)
        if code is None:
            s.stop(timeout=1)  # a second SIGTERM, then kill
            pytest.fail(
                "attempt %d: server still running %.0f s after SIGTERM (no request in service)"
                "; log:\n%s" % (attempt, time.monotonic() - t0, s.log_text())
            )
        assert code == 0, s.log_text()
        s.stop()


@pytest.mark.parametrize("version", ["1.1", "1.0"])
def test_response_finishing_during_drain_says_connection_close(private_server, version):
    """A keep-alive client whose request is in service when SIGTERM arrives gets a response
    carrying ``Connection: close`` and then the close, so it (or a proxy) sends its next
    request elsewhere instead of meeting a connection that ends without a response."""
    s = private_server(APP)
    key = new_key()
    target = "/hold?id=%s&ms=1000" % key
    headers = [("Connection", "keep-alive")] if version == "1.0" else []
    conn = s.connect(timeout=10)
    try:
        conn.send(build_request("GET", target, headers, version=version))
        assert "started" in s.wait_for_events(key, lambda ev: "started" in ev)
        s.proc.send_signal(signal.SIGTERM)
        resp = conn.read_response()
        assert resp.status == 200
        assert resp.wants_close, resp.headers
        assert "keep-alive" not in [v.lower() for v in resp.header_values("Connection")]
        conn.assert_closed()
        assert wait_exit(s) == 0
    finally:
        conn.close()
