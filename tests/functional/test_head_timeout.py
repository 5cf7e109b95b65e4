"""request_head_timeout: a bound on the time to receive a complete request head
(docs/differences.md; docs/behaviour.md, "Reliability").

``channel_timeout`` is an idle timeout, as in Waitress, so a client that trickles a byte of
its head every half second is never idle and keeps its connection for ever: 100 of them fill
the default ``connection_limit`` and nobody else is served. With the bound, such a head gets
``408 Request Timeout`` and the connection closes; here 300 trickling clients against
``connection_limit=100`` must not keep a well-behaved client from being served once the bound
has passed (2 s here, swept every second).
"""

import errno
import selectors
import socket
import threading
import time

from functional.harness import assert_serves, build_request

APP = "apps.wsgi_app:app"
TRICKLERS = 300
HEAD = b"GET /hello HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 4000


def connect_all(address, n):
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        err = s.connect_ex(address)
        assert err in (0, errno.EINPROGRESS), err
        socks.append(s)
    return socks


def trickle(socks, stop):
    """One byte of HEAD on every socket every half second, until ``stop``."""
    i = 0
    while not stop.is_set() and i < len(HEAD):
        for s in socks:
            try:
                s.send(HEAD[i : i + 1])
            except OSError:
                pass  # not connected yet, or closed by the server
        i += 1
        stop.wait(0.5)


def test_trickling_heads_do_not_hold_the_server(private_server):
    s = private_server(APP, request_head_timeout=2, cleanup_interval=1, connection_limit=100)
    assert_serves(s)
    socks = connect_all(s.address, TRICKLERS)
    stop = threading.Event()
    thread = threading.Thread(target=trickle, args=(socks, stop), daemon=True)
    thread.start()
    try:
        time.sleep(1.0)
        # Queued behind 300 trickling clients, 100 of them accepted: served once the bound
        # has passed for enough of them (about three rounds of 2-3 s).
        start = time.monotonic()
        with s.connect(timeout=40) as c:
            c.send(build_request("GET", "/hello"))
            resp = c.read_response(deadline=time.monotonic() + 40)
        waited = time.monotonic() - start
        assert resp.status == 200 and resp.body == b"Hello, world!"
        print("\nserved after %.1f s behind %d trickling clients" % (waited, TRICKLERS))
        # The first tricklers were answered 408 and closed.
        first = socks[0]
        first.setblocking(True)
        first.settimeout(10)
        data = b""
        while True:
            try:
                piece = first.recv(65536)
            except ConnectionResetError:
                break
            if not piece:
                break
            data += piece
        assert data.startswith(b"HTTP/1.0 408 Request Timeout\r\n"), data[:200]
        assert b"the request head was not received within 2 seconds" in data
    finally:
        stop.set()
        thread.join(5)
        for sock in socks:
            sock.close()
    assert_serves(s)


def test_a_complete_head_is_not_cut_by_the_bound(private_server):
    """The bound is on the head only: a request whose body arrives slowly, and a keep-alive
    connection idle between requests, outlive it."""
    s = private_server(APP, request_head_timeout=1, cleanup_interval=1)
    with s.connect(timeout=10) as c:
        c.send(build_request("GET", "/hello"))
        assert c.read_response().status == 200
        # Idle between requests past the head bound, after a stray blank line (allowed
        # before a request line, RFC 9112 section 2.2): no head has started.
        c.send(b"\r\n")
        time.sleep(2.5)
        c.send(build_request("POST", "/echo", [("Content-Length", "6")]))
        for b in b"abc":
            time.sleep(0.8)
            c.send(bytes([b]))
        time.sleep(0.8)
        c.send(b"def")
        resp = c.read_response("POST")
        assert resp.status == 200 and resp.body == b"abcdef"
