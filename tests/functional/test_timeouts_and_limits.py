"""Idle and slow connections (``channel_timeout``, ``cleanup_interval``) and
``connection_limit``, over real sockets.

Waitress's rules: a connection with no request in service and no activity for
``channel_timeout`` seconds is closed by the maintenance sweep (every ``cleanup_interval``),
whether it is idle between requests or stopped in the middle of a head or a body; a request in
service is never cut off by it. A slow client costs no worker, so trickling clients do not delay
anybody else. With ``connection_limit`` connections open the server stops accepting: new clients
wait in the listen backlog and are served as soon as a slot frees; nobody is refused.

The time bounds are functional (the behaviour happens at all, and reasonably soon), not
benchmarks; every wait in here is bounded.
"""

import json
import socket
import threading
import time
import uuid

import pytest

from functional.harness import build_request

APP = "apps.hostile_app:app"
TIMEOUT = 2  # channel_timeout
CLEANUP = 1  # cleanup_interval (an int option in Waitress)
# Closed no earlier than this after the last activity ...
EARLIEST = TIMEOUT - 0.5
# ... and no later than this (timeout + one sweep + slack for a loaded machine).
LATEST = TIMEOUT + CLEANUP + 3.0


@pytest.fixture(scope="module")
def timed(server_factory):
    return server_factory.start(APP, channel_timeout=TIMEOUT, cleanup_interval=CLEANUP)


@pytest.fixture(scope="module")
def limited(server_factory):
    return server_factory.start(APP, connection_limit=5)


def time_until_closed(sock, limit=LATEST + 2):
    """Seconds until the server closes ``sock`` (reading and keeping whatever arrives)."""
    start = time.monotonic()
    received = b""
    sock.settimeout(0.2)
    while time.monotonic() - start < limit:
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return time.monotonic() - start, received
        if not data:
            return time.monotonic() - start, received
        received += data
    raise AssertionError("connection still open after %.1fs (received %r)" % (limit, received[:200]))


def get_ok(server, target="/hello", deadline=5.0):
    with server.connect(timeout=deadline) as conn:
        conn.send(build_request("GET", target))
        return conn.read_response(deadline=time.monotonic() + deadline)


def hits(server):
    return json.loads(get_ok(server, "/hits").body)


# -- channel_timeout ------------------------------------------------------------------------


def test_idle_keep_alive_connection_closed_after_timeout(timed):
    with timed.connect() as conn:
        conn.send(build_request("GET", "/hello"))
        assert conn.read_response().status == 200
        elapsed, received = time_until_closed(conn.sock)
    assert received == b""
    assert EARLIEST <= elapsed <= LATEST, elapsed
    assert get_ok(timed).status == 200


def test_connection_that_never_sends_closed_after_timeout(timed):
    sock = timed.raw_socket()
    try:
        elapsed, received = time_until_closed(sock)
    finally:
        sock.close()
    assert received == b""
    assert EARLIEST <= elapsed <= LATEST, elapsed


def test_connection_stopped_mid_head_closed(timed):
    with timed.connect() as conn:
        conn.send(b"GET /info?mid-head HTTP/1.1\r\nHost: x\r\nX-Partial: abc")
        elapsed, received = time_until_closed(conn.sock)
    assert EARLIEST <= elapsed <= LATEST, elapsed
    # Nothing was complete, so nothing is answered (Waitress closes silently).
    assert received == b""
    assert get_ok(timed).status == 200


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_connection_stopped_mid_body_closed_and_app_not_called(timed, framing):
    token = "mid-body-%s-%s" % (framing, uuid.uuid4().hex[:8])
    if framing == "content-length":
        data = build_request("POST", "/info?" + token, [("Content-Length", "100")]) + b"x" * 10
    else:
        data = build_request("POST", "/info?" + token, [("Transfer-Encoding", "chunked")]) + b"64\r\n" + b"x" * 10
    with timed.connect() as conn:
        conn.send(data)
        elapsed, received = time_until_closed(conn.sock)
    assert EARLIEST <= elapsed <= LATEST, elapsed
    assert received == b""
    assert not any(token in h for h in hits(timed))


def test_active_keep_alive_connection_not_closed(timed):
    # Requests every 0.5 s for longer than channel_timeout: activity keeps it open.
    with timed.connect() as conn:
        end = time.monotonic() + TIMEOUT + CLEANUP + 0.5
        n = 0
        while time.monotonic() < end:
            conn.send(build_request("GET", "/uri?n=%d" % n))
            resp = conn.read_response(deadline=time.monotonic() + 5)
            assert resp.body == b"/uri?n=%d" % n
            n += 1
            time.sleep(0.5)
        assert n >= 6


def test_request_in_service_not_cut_off_by_timeout(timed):
    # The app runs longer than channel_timeout; the sweep must leave it alone.
    with timed.connect(timeout=10) as conn:
        conn.send(build_request("GET", "/sleep?ms=%d" % int((TIMEOUT + CLEANUP + 0.5) * 1000)))
        resp = conn.read_response(deadline=time.monotonic() + 15)
        assert resp.status == 200
        assert resp.body.startswith(b"/sleep")


def test_trickling_clients_do_not_delay_others(timed):
    """20 connections each sending one byte of a head per second (slowloris); a normal client
    is still answered promptly, every time, while they trickle."""
    n_slow = 20
    trickle_for = 4.0
    slow = [timed.raw_socket() for _ in range(n_slow)]
    payload = b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 100
    stop = threading.Event()

    def trickle():
        i = 0
        while not stop.is_set() and i < len(payload):
            for s in slow:
                try:
                    s.sendall(payload[i : i + 1])
                except OSError:
                    pass
            i += 1
            stop.wait(1.0)

    t = threading.Thread(target=trickle, daemon=True)
    t.start()
    try:
        end = time.monotonic() + trickle_for
        times = []
        while time.monotonic() < end:
            start = time.monotonic()
            resp = get_ok(timed, "/uri?while-trickling", deadline=5.0)
            times.append(time.monotonic() - start)
            assert resp.status == 200
            assert resp.body == b"/uri?while-trickling"
            time.sleep(0.25)
        assert len(times) >= 5
        # Each request within 2 s; one outlier (up to 5 s) is tolerated on a loaded machine.
        assert max(times) < 5.0, times
        assert len([x for x in times if x >= 2.0]) <= 1, times
    finally:
        stop.set()
        t.join(3)
        for s in slow:
            s.close()
    assert not t.is_alive()


# -- connection_limit -----------------------------------------------------------------------


def _responds_within(conn, seconds):
    """The next response if one starts within ``seconds``, else None (conn stays usable)."""
    conn.sock.settimeout(seconds)
    try:
        data = conn.sock.recv(65536)
    except socket.timeout:
        return None
    finally:
        conn.sock.settimeout(5)
    conn.buf += data
    if not data:
        conn.eof = True
    return conn.read_response(deadline=time.monotonic() + 5)


def test_connection_limit_queues_instead_of_refusing(limited):
    # Five connections take every slot: three served once (now idle), two never sending.
    held = []
    waiting = []
    try:
        for i in range(3):
            conn = limited.connect()
            conn.send(build_request("GET", "/uri?held-%d" % i))
            assert conn.read_response(deadline=time.monotonic() + 5).body == b"/uri?held-%d" % i
            held.append(conn)
        for i in range(2):
            held.append(limited.connect())
        time.sleep(0.2)  # let the server accept the silent two

        # A sixth and a seventh client: TCP connect succeeds (backlog), nothing answered yet.
        for i in range(2):
            conn = limited.connect()
            conn.send(build_request("GET", "/uri?waiting-%d" % i))
            waiting.append(conn)
        for conn in waiting:
            assert _responds_within(conn, 0.7) is None, "served beyond connection_limit"

        # One slot frees: the sixth is served, the seventh still waits.
        held.pop().close()
        resp = _responds_within(waiting[0], 3.0)
        assert resp is not None, "not served after a slot was freed"
        assert resp.body == b"/uri?waiting-0"
        assert _responds_within(waiting[1], 0.5) is None, (
            "a 7th client was served while 5 others were open (connection_limit=5): "
            "freeing one slot admitted more than one waiting client"
        )

        # Another frees (an idle keep-alive one): the seventh is served, nothing was dropped.
        held.pop(0).close()
        resp = _responds_within(waiting[1], 3.0)
        assert resp is not None, "not served after a second slot was freed"
        assert resp.body == b"/uri?waiting-1"

        # The admitted connections are ordinary keep-alive connections.
        waiting[0].send(build_request("GET", "/uri?again"))
        assert waiting[0].read_response(deadline=time.monotonic() + 5).body == b"/uri?again"
    finally:
        for conn in held:
            conn.close()
        for conn in waiting:
            conn.close()
    # All slots free again: fresh clients are served at once.
    for i in range(6):
        start = time.monotonic()
        assert get_ok(limited, "/uri?after-%d" % i).body == b"/uri?after-%d" % i
        assert time.monotonic() - start < 2.0


def test_connection_limit_burst_all_served(limited):
    # Twelve clients at once against five slots, each closing after its response (HTTP/1.0):
    # all are served, none refused or reset.
    socks = []
    try:
        for i in range(12):
            conn = limited.connect(timeout=10)
            conn.send(build_request("GET", "/uri?burst-%d" % i, version="1.0"))
            socks.append(conn)
        for i, conn in enumerate(socks):
            resp = conn.read_response(deadline=time.monotonic() + 10)
            assert resp.body == b"/uri?burst-%d" % i
    finally:
        for conn in socks:
            conn.close()


def test_connection_limit_not_exceeded_by_a_burst(limited):
    # Eight keep-alive clients arrive together at an idle server with five slots: at most five
    # are admitted (served); the others are served as admitted ones leave.
    time.sleep(0.3)  # connections of earlier tests are gone
    conns = []
    try:
        for i in range(8):
            conn = limited.connect()
            conn.send(build_request("GET", "/uri?burst-ka-%d" % i))
            conns.append(conn)
        # The first client is always admitted; once it is answered, give the others a moment.
        assert _responds_within(conns[0], 5.0) is not None, "first client not served"
        time.sleep(0.5)
        served = [conns[0]] + [c for c in conns[1:] if _responds_within(c, 0.05) is not None]
        assert 1 <= len(served) <= 5, "%d connections admitted with connection_limit=5" % len(served)
        pending = [c for c in conns if c not in served]
        deadline = time.monotonic() + 10
        while pending:
            assert time.monotonic() < deadline, "%d clients never served" % len(pending)
            if served:
                served.pop(0).close()
            for c in list(pending):
                if _responds_within(c, 0.3) is not None:
                    pending.remove(c)
                    served.append(c)
    finally:
        for conn in conns:
            conn.close()
