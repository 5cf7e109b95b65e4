"""The output path: streaming item by item, backpressure and memory bounds for slow clients,
``wsgi.file_wrapper`` (sendfile) responses, client disconnects and
``waitress.client_disconnected`` (docs/behaviour.md, "Output" and "Connections").

Slow clients are real sockets with a small SO_RCVBUF (set before connect, so the advertised
window stays small) that read in paced steps. Where a test must know that the client received
something *before* the application produced the next piece, the application waits on a gate
file the test creates (``apps/output_app.py``), so the proof does not depend on timing.
"""

import hashlib
import os
import socket
import struct
import time
import uuid

import pytest

from apps.output_app import big_pieces
from functional.harness import (
    IO_TIMEOUT,
    Connection,
    ProtocolError,
    assert_serves,
    build_request,
)
from functional.metrics_scrape import Scrape
from functional.workers_harness import free_port

APP = "apps.output_app:app"
MiB = 1024 * 1024
KiB = 1024


# -- helpers --------------------------------------------------------------------------------


def new_key():
    return uuid.uuid4().hex


def deadline_in(seconds):
    return time.monotonic() + seconds


def vm_rss(pid):
    """Resident set size of a process, in bytes."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS for pid %d" % pid)


def fd_targets(pid):
    out = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            out.append(os.readlink("/proc/%d/fd/%s" % (pid, fd)))
        except OSError:
            pass
    return out


def spill_files(pid):
    """The server's open descriptors on unlinked regular files (output spill files)."""
    return [t for t in fd_targets(pid) if t.startswith("/") and t.endswith("(deleted)")]


def slow_socket(server, rcvbuf=16 * KiB, timeout=IO_TIMEOUT):
    """A client socket whose receive buffer is set small before connecting."""
    family = socket.AF_UNIX if server.transport == "unix" else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(timeout)
    sock.connect(server.address)
    return sock


class PacedConnection(Connection):
    """A Connection that pauses after every ``step`` bytes received (a slow reader).

    ``on_pause(received)`` runs at each pause, before the sleep: tests sample the server's
    memory and check on other clients there.
    """

    def __init__(self, sock, step=256 * KiB, pause=0.05, on_pause=None):
        super().__init__(sock)
        self.step = step
        self.pause = pause
        self.on_pause = on_pause
        self.received = 0
        self._since_pause = 0
        self.paced = True

    def _fill(self, deadline):
        before = len(self.buf)
        ok = super()._fill(deadline)
        if ok and self.paced:
            n = len(self.buf) - before
            self.received += n
            self._since_pause += n
            if self._since_pause >= self.step:
                self._since_pause = 0
                if self.on_pause is not None:
                    self.on_pause(self.received)
                time.sleep(self.pause)
        return ok


def read_body_digest(conn, length, deadline):
    """Consume a ``length``-byte body without holding it; returns (sha256 hexdigest, length)."""
    h = hashlib.sha256()
    got = 0
    while got < length:
        if not conn.buf and not conn._fill(deadline):
            raise ProtocolError("connection closed after %d of %d body bytes" % (got, length))
        take = conn.buf[: length - got]
        conn.buf = conn.buf[len(take) :]
        h.update(take)
        got += len(take)
    return h.hexdigest(), got


def expected_big_digest(size, piece=256 * KiB):
    h = hashlib.sha256()
    for p in big_pieces(size, piece):
        h.update(p)
    return h.hexdigest()


def read_chunk(conn, deadline):
    """One chunk of a chunked body (strictly framed); None for the last chunk (trailers read)."""
    line = conn._read_line(deadline)
    size_text = line.split(b";", 1)[0]
    if not size_text or size_text.strip(b"0123456789abcdefABCDEF"):
        raise ProtocolError("bad chunk size line %r" % line)
    size = int(size_text, 16)
    if size == 0:
        while conn._read_line(deadline):
            pass
        return None
    data = conn._read_exact(size, deadline)
    if conn._read_exact(2, deadline) != b"\r\n":
        raise ProtocolError("chunk of %d bytes not followed by CRLF" % size)
    return data


def read_chunked_until(conn, wanted, deadline):
    """Read chunks until the body so far ends with ``wanted``; returns that body part."""
    got = b""
    while not got.endswith(wanted):
        data = read_chunk(conn, deadline)
        if data is None:
            raise ProtocolError("last chunk came before %r (got %r)" % (wanted, got))
        got += data
        if len(got) > len(wanted) + 4096:
            raise ProtocolError("expected %r, got %r" % (wanted, got))
    return got


def read_raw_until(conn, wanted, deadline):
    """Close-delimited bodies: read until the buffer ends with ``wanted`` (not consumed past)."""
    while not conn.buf.endswith(wanted):
        if len(conn.buf) > len(wanted) + 4096:
            raise ProtocolError("expected %r, got %r" % (wanted, conn.buf))
        if not conn._fill(deadline):
            raise ProtocolError("connection closed before %r (got %r)" % (wanted, conn.buf))
    data, conn.buf = conn.buf, b""
    return data


def settle_logs():
    """Let the server write out log records from its event loop before the test's server is
    stopped. (A SIGTERM that arrives while such records are being written is lost: see
    test_shutdown.py::test_sigterm_soon_after_client_resets_stops_server.)"""
    time.sleep(0.3)


def open_gate(gate_dir, i):
    with open(os.path.join(gate_dir, str(i)), "wb"):
        pass


@pytest.fixture
def gate_dir(tmp_path):
    d = tmp_path / "gates"
    d.mkdir()
    return str(d)


@pytest.fixture
def shared(server_factory, transport):
    """The output app on a shared server (4 threads), over TCP and a Unix socket."""
    return server_factory.get(APP, transport)


# -- 1. streaming ---------------------------------------------------------------------------


def test_generator_items_reach_client_before_the_next_is_produced(shared, gate_dir):
    key = new_key()
    dl = deadline_in(20)
    with shared.connect() as conn:
        conn.send(build_request("GET", "/gated?n=3&id=%s&dir=%s" % (key, gate_dir)))
        resp = conn.read_head(dl)
        assert resp.status == 200
        assert resp.header("Transfer-Encoding") == "chunked"
        assert resp.header("Content-Length") is None
        # Item 0 arrives while the application is still blocked before item 1.
        assert read_chunked_until(conn, b"item 0;", dl) == b"item 0;"
        assert shared.wait_for_events(key, lambda ev: True) == ["yield 0"]
        open_gate(gate_dir, 1)
        assert read_chunked_until(conn, b"item 1;", dl) == b"item 1;"
        assert shared.wait_for_events(key, lambda ev: True) == ["yield 0", "yield 1"]
        open_gate(gate_dir, 2)
        assert read_chunked_until(conn, b"item 2;", dl) == b"item 2;"
        assert read_chunk(conn, dl) is None  # terminating zero chunk, then trailers
        assert conn.buf == b""
        # Framing was exact: the connection is still usable.
        conn.send(build_request("GET", "/hello"))
        assert conn.read_response().body == b"Hello, world!"
    events = shared.wait_for_events(key, lambda ev: any(e.startswith("close") for e in ev))
    assert events == ["yield 0", "yield 1", "yield 2", "done", "close after 3"]


def test_server_sent_events_stream(shared, gate_dir):
    key = new_key()
    dl = deadline_in(20)
    with shared.connect() as conn:
        conn.send(
            build_request(
                "GET",
                "/gated?sse=1&n=4&id=%s&dir=%s" % (key, gate_dir),
                [("Accept", "text/event-stream")],
            )
        )
        resp = conn.read_head(dl)
        assert resp.status == 200
        assert resp.header("Content-Type") == "text/event-stream"
        assert resp.header("Cache-Control") == "no-cache"
        assert resp.header("Transfer-Encoding") == "chunked"
        for i in range(4):
            if i:
                open_gate(gate_dir, i)
            event = b"id: %d\nevent: tick\ndata: item %d\n\n" % (i, i)
            assert read_chunked_until(conn, event, dl) == event
            # Not yet produced: the next event (its gate is closed).
            assert ("yield %d" % (i + 1)) not in shared.wait_for_events(key, lambda ev: True)
        assert read_chunk(conn, dl) is None


def test_http10_streaming_is_close_delimited(shared, gate_dir):
    key = new_key()
    dl = deadline_in(20)
    with shared.connect() as conn:
        conn.send(build_request("GET", "/gated?n=3&id=%s&dir=%s" % (key, gate_dir), version="1.0"))
        resp = conn.read_head(dl)
        assert resp.status == 200
        assert resp.version == "1.0"
        assert resp.header("Content-Length") is None
        assert resp.header("Transfer-Encoding") is None
        assert read_raw_until(conn, b"item 0;", dl) == b"item 0;"
        open_gate(gate_dir, 1)
        assert read_raw_until(conn, b"item 1;", dl) == b"item 1;"
        open_gate(gate_dir, 2)
        assert conn.read_until_close(dl) == b"item 2;"
    events = shared.wait_for_events(key, lambda ev: any(e.startswith("close") for e in ev))
    assert events == ["yield 0", "yield 1", "yield 2", "done", "close after 3"]


def test_streaming_with_app_content_length(shared, gate_dir):
    key = new_key()
    dl = deadline_in(20)
    with shared.connect() as conn:
        conn.send(build_request("GET", "/gated?n=2&cl=14&id=%s&dir=%s" % (key, gate_dir)))
        resp = conn.read_head(dl)
        assert resp.header("Content-Length") == "14"
        assert resp.header("Transfer-Encoding") is None
        assert conn._read_exact(7, dl) == b"item 0;"
        open_gate(gate_dir, 1)
        assert conn._read_exact(7, dl) == b"item 1;"
        conn.send(build_request("GET", "/hello"))
        assert conn.read_response().body == b"Hello, world!"


def test_slow_generator_items_arrive_one_by_one(shared):
    """A generator sleeping 0.3 s between items: each item is at the client before the
    generator produced the next one (the app puts its production time into each item)."""
    dl = deadline_in(20)
    arrived = []  # client time at which item i was complete
    body = b""
    with shared.connect() as conn:
        conn.send(build_request("GET", "/paced?n=4&ms=300"))
        resp = conn.read_head(dl)
        assert resp.header("Transfer-Encoding") == "chunked"
        while True:
            data = read_chunk(conn, dl)
            if data is None:
                break
            body += data
            now = time.time()
            while len(arrived) < body.count(b";"):
                arrived.append(now)
    parts = body.rstrip(b";").split(b";")
    assert [int(p.split(b"@")[0]) for p in parts] == [0, 1, 2, 3]
    produced = [float(p.split(b"@")[1]) for p in parts]
    for i in range(3):
        assert arrived[i] < produced[i + 1], (i, arrived, produced)


# -- 2. backpressure and memory -------------------------------------------------------------


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_slow_client_large_response_bounded_memory(private_server, framing):
    s = private_server(APP, threads=2, outbuf_overflow=65536, outbuf_high_watermark=MiB)
    size = 20 * MiB
    pid = s.proc.pid
    # Warm up with a response of the same shape read at full speed, then take the baseline.
    warm = s.get("/big?size=%d" % (4 * MiB))
    assert len(warm.body) == 4 * MiB
    assert_serves(s)
    time.sleep(0.2)
    rss0 = vm_rss(pid)

    key = new_key()
    state = {"max_rss": rss0, "checked": False, "side_latency": None, "events_mid": None}

    def on_pause(received):
        state["max_rss"] = max(state["max_rss"], vm_rss(pid))
        if not state["checked"] and received >= 4 * MiB:
            state["checked"] = True
            t0 = time.monotonic()
            resp = s.get("/hello")  # the second worker, while the first one is held
            state["side_latency"] = time.monotonic() - t0
            assert resp.body == b"Hello, world!"
            state["events_mid"] = s.wait_for_events(key, lambda ev: True)

    conn = PacedConnection(slow_socket(s), step=256 * KiB, pause=0.05, on_pause=on_pause)
    with conn:
        cl = "&cl=1" if framing == "content-length" else ""
        conn.send(build_request("GET", "/big?size=%d&id=%s%s" % (size, key, cl)))
        dl = deadline_in(60)
        resp = conn.read_head(dl)
        assert resp.status == 200
        if framing == "content-length":
            assert resp.header("Content-Length") == str(size)
            digest, got = read_body_digest(conn, size, dl)
        else:
            assert resp.header("Transfer-Encoding") == "chunked"
            h = hashlib.sha256()
            got = 0
            while True:
                data = read_chunk(conn, dl)
                if data is None:
                    break
                h.update(data)
                got += len(data)
            digest = h.hexdigest()
        assert got == size
        assert digest == expected_big_digest(size)
        conn.paced = False
        conn.send(build_request("GET", "/hello"))
        assert conn.read_response().body == b"Hello, world!"

    assert state["checked"], "the slow read never reached 4 MiB"
    # The other client was served while the slow one held a worker (generous bound).
    assert state["side_latency"] < 3.0, state
    # Backpressure: with 1 MiB high watermark, the app could not have produced 20 MiB while
    # the client had read only about 4 MiB.
    assert "done" not in state["events_mid"], state
    growth = state["max_rss"] - rss0
    print("\n[%s] server RSS baseline %d KiB, max growth during slow 20 MiB read: %d KiB"
          % (framing, rss0 // 1024, growth // 1024))
    assert growth < 8 * MiB, "server RSS grew by %d KiB for a 20 MiB response" % (growth // 1024)
    events = s.wait_for_events(key, lambda ev: any(e.startswith("close") for e in ev))
    assert events[0] == "done" and events[1].startswith("close after")


# -- 3. a slow client below the high watermark does not hold the worker ---------------------


def test_slow_client_below_watermark_does_not_hold_only_worker(private_server):
    s = private_server(APP, threads=1)  # default outbuf_high_watermark (16 MiB)
    size = 5 * MiB
    key = new_key()
    conn = Connection(slow_socket(s))
    with conn:
        conn.send(build_request("GET", "/big?size=%d&cl=1&id=%s" % (size, key)))
        dl = deadline_in(30)
        resp = conn.read_head(dl)
        assert resp.header("Content-Length") == str(size)
        # The client reads nothing more for now. The only worker has queued all 5 MiB and is
        # free: another client is served (each /events poll needs that worker).
        t0 = time.monotonic()
        events = s.wait_for_events(key, lambda ev: "done" in ev)
        assert "done" in events, events
        assert_serves(s)
        assert time.monotonic() - t0 < 5.0
        # The slow client is still far from the end of its response.
        assert len(conn.buf) < 1 * MiB
        # Several MiB are pending, more than outbuf_overflow (1 MiB): past that they live in
        # an unlinked temporary file.
        spills = spill_files(s.proc.pid)
        assert spills, "no unlinked spill file among %r" % fd_targets(s.proc.pid)
        digest, got = read_body_digest(conn, size, dl)
        assert digest == expected_big_digest(size)
        conn.send(build_request("GET", "/hello"))
        assert conn.read_response().body == b"Hello, world!"
    events = s.wait_for_events(key, lambda ev: any(e.startswith("close") for e in ev))
    assert events[:2] == ["done", "close after 20"]
    # The spill file is closed once the response is out.
    deadline = deadline_in(5)
    while spill_files(s.proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not spill_files(s.proc.pid), fd_targets(s.proc.pid)


def test_last_item_sent_with_the_end_keeps_the_output_counts(private_server):
    """A one-item generator with a Content-Length: when the item and the end reach the event
    loop in one batch (Outbox.drain; most of the time for small items, nearly always under load),
    they go out as one write and the item's pending count is released there. Were it never
    released, the connection's count would reach outbuf_overflow (1 MiB) within a thousand
    such responses of 1 KB, and every later response on it would go through a spill file."""
    port = free_port()
    s = private_server(APP, threads=2, metrics_listen="127.0.0.1:%d" % port)
    with s.connect() as conn:
        digest = expected_big_digest(1000, piece=1000)
        for _ in range(1000):
            conn.send(build_request("GET", "/big?size=1000&piece=1000&cl=1"))
            resp = conn.read_response(deadline=deadline_in(10))
            assert resp.status == 200
            assert sha(resp.body) == digest
        size = 600 * 1000
        conn.send(build_request("GET", "/big?size=%d&piece=%d&cl=1" % (size, size)))
        resp = conn.read_response(deadline=deadline_in(10))
        assert sha(resp.body) == expected_big_digest(size, piece=size)
    assert Scrape(port).value("waitress_responses_spilled_total") == 0
    assert_serves(s)


# -- 4. wsgi.file_wrapper -------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("files") / "big.bin"
    data = os.urandom(16 * MiB)
    path.write_bytes(data)
    return str(path), data


def sha(data):
    return hashlib.sha256(data).hexdigest()


def test_file_wrapper_16mib_file(shared, big_file):
    path, data = big_file
    key = new_key()
    with shared.connect() as conn:
        conn.send(build_request("GET", "/file?path=%s&id=%s" % (path, key)))
        dl = deadline_in(30)
        resp = conn.read_head(dl)
        assert resp.status == 200
        assert resp.header("Content-Length") == str(len(data))
        assert resp.header("Transfer-Encoding") is None
        digest, got = read_body_digest(conn, len(data), dl)
        assert digest == sha(data)
        conn.send(build_request("GET", "/hello"))
        assert conn.read_response().body == b"Hello, world!"
    assert shared.wait_for_events(key, lambda ev: ev) == ["file closed"]


def test_file_wrapper_after_seek_sends_remaining(shared, big_file):
    path, data = big_file
    key = new_key()
    offset = 5 * MiB + 12345
    with shared.connect() as conn:
        conn.send(build_request("GET", "/file?path=%s&offset=%d&id=%s" % (path, offset, key)))
        dl = deadline_in(30)
        resp = conn.read_head(dl)
        assert resp.header("Content-Length") == str(len(data) - offset)
        digest, got = read_body_digest(conn, len(data) - offset, dl)
        assert digest == sha(data[offset:])
        conn.send(build_request("GET", "/hello"))
        assert conn.read_response().body == b"Hello, world!"
    assert shared.wait_for_events(key, lambda ev: ev) == ["file closed"]


@pytest.mark.parametrize("offset", [0, 777])
def test_file_wrapper_smaller_app_content_length_is_honoured(shared, big_file, offset):
    path, data = big_file
    key = new_key()
    cl = 3 * MiB + 1
    with shared.connect() as conn:
        conn.send(
            build_request("GET", "/file?path=%s&offset=%d&cl=%d&id=%s" % (path, offset, cl, key))
        )
        resp = conn.read_response(deadline=deadline_in(30))
        assert resp.header("Content-Length") == str(cl)
        assert sha(resp.body) == sha(data[offset : offset + cl])
        # Nothing past Content-Length was sent: the next response parses.
        conn.send(build_request("GET", "/hello"))
        assert conn.read_response().body == b"Hello, world!"
    assert shared.wait_for_events(key, lambda ev: ev) == ["file closed"]


def test_file_wrapper_http10(shared, big_file):
    path, data = big_file
    key = new_key()
    resp = shared.get("/file?path=%s&id=%s" % (path, key), version="1.0")
    assert resp.header("Content-Length") == str(len(data))
    assert sha(resp.body) == sha(data)
    assert shared.wait_for_events(key, lambda ev: ev) == ["file closed"]


@pytest.mark.parametrize("offset", [0, 1000])
def test_file_wrapper_bytesio_without_fileno(shared, offset):
    size = 3 * MiB + 5
    expected = b"".join(big_pieces(size, 65536))[offset:]
    key = new_key()
    with shared.connect() as conn:
        conn.send(build_request("GET", "/bytesio?size=%d&offset=%d&id=%s" % (size, offset, key)))
        resp = conn.read_response(deadline=deadline_in(30))
        assert resp.status == 200
        assert resp.header("Content-Length") == str(len(expected))
        assert sha(resp.body) == sha(expected)
        conn.send(build_request("GET", "/hello"))
        assert conn.read_response().body == b"Hello, world!"
    assert shared.wait_for_events(key, lambda ev: ev) == ["bytesio closed"]


@pytest.mark.parametrize("kind", ["file", "bytesio"])
def test_file_wrapper_head_sends_headers_only(shared, big_file, kind):
    path, data = big_file
    key = new_key()
    if kind == "file":
        target, size, event = "/file?path=%s&id=%s" % (path, key), len(data), "file closed"
    else:
        size = 100 * KiB
        target, event = "/bytesio?size=%d&id=%s" % (size, key), "bytesio closed"
    with shared.connect() as conn:
        conn.send(build_request("HEAD", target))
        resp = conn.read_response("HEAD", deadline_in(20))
        assert resp.status == 200
        assert resp.header("Content-Length") == str(size)
        # No body bytes: the next response on the connection starts right after the head.
        conn.send(build_request("GET", "/hello"))
        assert conn.read_response().body == b"Hello, world!"
        assert conn.buf == b""
    assert shared.wait_for_events(key, lambda ev: ev) == [event]


def test_file_wrapper_slow_client_does_not_hold_only_worker(private_server, big_file):
    """sendfile of a 15 MiB file region (below the 16 MiB high watermark) to a client that
    reads nothing: the only worker is free for other clients."""
    path, data = big_file
    s = private_server(APP, threads=1)
    key = new_key()
    offset = 1 * MiB
    conn = Connection(slow_socket(s))
    with conn:
        conn.send(build_request("GET", "/file?path=%s&offset=%d&id=%s" % (path, offset, key)))
        dl = deadline_in(40)
        resp = conn.read_head(dl)
        assert resp.header("Content-Length") == str(len(data) - offset)
        t0 = time.monotonic()
        assert_serves(s)
        assert time.monotonic() - t0 < 5.0
        digest, got = read_body_digest(conn, len(data) - offset, dl)
        assert digest == sha(data[offset:])
    assert s.wait_for_events(key, lambda ev: ev) == ["file closed"]


# -- 5. disconnects -------------------------------------------------------------------------


def _abandon(sock, how):
    if how == "reset":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@pytest.mark.parametrize("how", ["close", "reset"])
def test_disconnect_mid_generator_response_closes_app_iter(private_server, how):
    s = private_server(APP, threads=1)
    key = new_key()
    sock = slow_socket(s, rcvbuf=64 * KiB)
    conn = Connection(sock)
    conn.send(build_request("GET", "/endless?id=%s" % key))
    dl = deadline_in(20)
    resp = conn.read_head(dl)
    assert resp.status == 200
    while len(conn.buf) < 200 * KiB:
        assert conn._fill(dl)
    _abandon(sock, how)
    # The only worker must come back: this poll is served by it, and it sees close().
    events = s.wait_for_events(key, lambda ev: any(e.startswith("close") for e in ev), 15)
    assert len(events) == 1 and events[0].startswith("close after"), events
    assert_serves(s)
    assert s.alive()
    log = s.log_text()
    assert "Traceback" not in log, log
    settle_logs()


def test_client_gone_mid_response_is_logged_like_waitress(private_server):
    """Waitress treats ECONNRESET/EPIPE as an ordinary disconnect (wasyncore's _DISCONNECTED):
    "Client disconnected while serving /path" at INFO, and no "Socket error" record. Three
    clients go away mid-response (close with unread data, and resets)."""
    s = private_server(APP, threads=1)
    for how in ("close", "reset", "reset"):
        key = new_key()
        sock = slow_socket(s, rcvbuf=64 * KiB)
        conn = Connection(sock)
        conn.send(build_request("GET", "/endless?id=%s" % key))
        dl = deadline_in(20)
        conn.read_head(dl)
        while len(conn.buf) < 200 * KiB:
            assert conn._fill(dl)
        _abandon(sock, how)
        s.wait_for_events(key, lambda ev: any(e.startswith("close") for e in ev), 15)
        assert_serves(s)
    time.sleep(0.5)
    log = s.log_text()
    assert log.count("INFO:waitress:Client disconnected while serving /endless") == 3, log
    assert "Socket error" not in log, log
    settle_logs()


@pytest.mark.parametrize("kind", ["big-content-length", "file"])
def test_disconnect_mid_large_response(private_server, big_file, kind):
    path, data = big_file
    s = private_server(APP, threads=1, outbuf_high_watermark=MiB)
    key = new_key()
    if kind == "file":
        target, closed = "/file?path=%s&id=%s" % (path, key), "file closed"
    else:
        target, closed = "/big?size=%d&cl=1&id=%s" % (40 * MiB, key), "close after"
    sock = slow_socket(s)
    conn = Connection(sock)
    conn.send(build_request("GET", target))
    dl = deadline_in(20)
    conn.read_head(dl)
    while len(conn.buf) < 100 * KiB:
        assert conn._fill(dl)
    _abandon(sock, "close")
    events = s.wait_for_events(key, lambda ev: any(e.startswith(closed) for e in ev), 15)
    assert any(e.startswith(closed) for e in events), events
    assert "done" not in events
    assert_serves(s)
    # The server keeps serving large responses afterwards.
    resp = s.get("/big?size=%d&cl=1" % (2 * MiB))
    assert sha(resp.body) == expected_big_digest(2 * MiB)
    settle_logs()


def test_client_disconnected_after_shutdown_wr(shared):
    key = new_key()
    with shared.connect() as conn:
        conn.send(build_request("GET", "/poll-disconnect?id=%s&timeout=10" % key))
        events = shared.wait_for_events(key, lambda ev: ev)
        assert events == ["first False"]
        # The app keeps polling and keeps seeing False while the client is connected.
        time.sleep(0.3)
        assert shared.wait_for_events(key, lambda ev: True) == ["first False"]
        conn.shutdown_write()
        events = shared.wait_for_events(key, lambda ev: len(ev) > 1, 12)
        assert events == ["first False", "final True"]


def test_client_disconnected_after_close(shared):
    key = new_key()
    conn = shared.connect()
    conn.send(build_request("GET", "/poll-disconnect?id=%s&timeout=10" % key))
    assert shared.wait_for_events(key, lambda ev: ev) == ["first False"]
    conn.close()
    events = shared.wait_for_events(key, lambda ev: len(ev) > 1, 12)
    assert events == ["first False", "final True"]
    assert_serves(shared)
