"""Test application for the output path: streaming, backpressure, file_wrapper, disconnects
and shutdown.

The first segment of PATH_INFO picks an endpoint; query parameters tune it. Endpoints that
report what happened inside the server record events in ``recorder`` under the ``id`` query
parameter; ``/events?id=KEY`` reads them back (the harness's ``wait_for_events``).

Tests steer some endpoints through *gate files*: the app blocks (with a bounded wait) until a
file the test creates appears, so a test decides exactly when the application may go on and
can prove that the client received something before the application produced the next piece.
"""

import hashlib
import io
import os
import time

from apps import recorder
from apps.wsgi_app import _json, _query

# Every wait inside the app is bounded, so a test that fails half-way cannot leave a worker
# thread (or a shutting-down server) stuck forever.
GATE_TIMEOUT = 15.0

BLOCK_SIZE = 1024 * 1024


def _make_block():
    out = bytearray()
    counter = 0
    while len(out) < BLOCK_SIZE:
        out += hashlib.sha256(b"output-app-%d" % counter).digest()
        counter += 1
    return bytes(out[:BLOCK_SIZE])


# Built at import so it is part of the server's baseline memory, not of a response's cost.
BLOCK = _make_block()


def big_piece(i, piece_size):
    """Piece ``i`` of a /big body: its index, then bytes of BLOCK (pieces differ, so lost,
    repeated or reordered pieces change the digest)."""
    head = b"%012d" % i
    start = (i * 4099) % (BLOCK_SIZE - piece_size + 1)
    return head + BLOCK[start : start + piece_size - len(head)]


def big_pieces(size, piece_size):
    """The pieces of a /big body of ``size`` bytes (tests use it to compute the digest)."""
    i = 0
    left = size
    while left > 0:
        n = min(piece_size, left)
        piece = big_piece(i, piece_size)[:n]
        yield piece
        left -= n
        i += 1


def wait_for_file(path, timeout=GATE_TIMEOUT):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


class RecordingIterable:
    """Wraps a generator; records ``close()`` (and how many items went out before it)."""

    def __init__(self, key, gen):
        self.key = key
        self.gen = gen
        self.count = 0

    def __iter__(self):
        for item in self.gen:
            self.count += 1
            yield item

    def close(self):
        recorder.record(self.key, "close after %d" % self.count)
        self.gen.close()


# -- basics ---------------------------------------------------------------------------------


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"Hello, world!"]


def events(environ, start_response):
    return _json(start_response, recorder.events(_query(environ)["id"]))


# -- streaming ------------------------------------------------------------------------------


def gated(environ, start_response):
    """``n`` items; item 0 at once, item ``i`` only once the file ``DIR/i`` exists.

    ``sse=1`` makes it a server-sent event stream. Records "yield i" just before each item
    goes to the server and "gate i timeout" if a gate never opened.
    """
    q = _query(environ)
    key = q["id"]
    gate_dir = q["dir"]
    n = int(q.get("n", "2"))
    sse = q.get("sse") == "1"
    ctype = "text/event-stream" if sse else "text/plain"
    headers = [("Content-Type", ctype), ("Cache-Control", "no-cache")]
    if q.get("cl"):
        headers.append(("Content-Length", q["cl"]))
    start_response("200 OK", headers)

    def gen():
        for i in range(n):
            if i > 0 and not wait_for_file(os.path.join(gate_dir, str(i))):
                recorder.record(key, "gate %d timeout" % i)
                return
            recorder.record(key, "yield %d" % i)
            if sse:
                yield b"id: %d\nevent: tick\ndata: item %d\n\n" % (i, i)
            else:
                yield b"item %d;" % i
        recorder.record(key, "done")

    return RecordingIterable(key, gen())


def paced(environ, start_response):
    """``n`` items with ``ms`` milliseconds between them (a slow generator)."""
    q = _query(environ)
    n = int(q.get("n", "3"))
    ms = int(q.get("ms", "300"))
    start_response("200 OK", [("Content-Type", "text/plain")])

    def gen():
        for i in range(n):
            if i:
                time.sleep(ms / 1000.0)
            yield b"%d@%.6f;" % (i, time.time())

    return gen()


# -- large responses ------------------------------------------------------------------------


def big(environ, start_response):
    """``size`` bytes from memory in ``piece``-byte items; records "done" after the last one
    and "close after N" on close(). ``cl=1`` declares Content-Length."""
    q = _query(environ)
    key = q.get("id")
    size = int(q["size"])
    piece_size = int(q.get("piece", str(256 * 1024)))
    headers = [("Content-Type", "application/octet-stream")]
    if q.get("cl") == "1":
        headers.append(("Content-Length", str(size)))
    start_response("200 OK", headers)

    def gen():
        for piece in big_pieces(size, piece_size):
            yield piece
        if key:
            recorder.record(key, "done")

    if key:
        return RecordingIterable(key, gen())
    return gen()


def endless(environ, start_response):
    """Streams ``piece``-byte items until the client goes away (or ``limit`` items)."""
    q = _query(environ)
    key = q["id"]
    piece_size = int(q.get("piece", "65536"))
    limit = int(q.get("limit", str(10**6)))
    start_response("200 OK", [("Content-Type", "application/octet-stream")])

    def gen():
        for i in range(limit):
            yield big_piece(i, piece_size)
        recorder.record(key, "exhausted")

    return RecordingIterable(key, gen())


# -- client_disconnected --------------------------------------------------------------------


def poll_disconnect(environ, start_response):
    """Records the first client_disconnected() value, then polls it (bounded) until True."""
    q = _query(environ)
    key = q["id"]
    check = environ["waitress.client_disconnected"]
    first = check()
    recorder.record(key, "first %s" % first)
    deadline = time.monotonic() + float(q.get("timeout", "10"))
    polls = 0
    value = first
    while not value and time.monotonic() < deadline:
        time.sleep(0.01)
        polls += 1
        value = check()
    recorder.record(key, "final %s" % value)
    body = b"disconnected=%s" % str(value).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


# -- file_wrapper ---------------------------------------------------------------------------


class RecordingFile(io.FileIO):
    """A real file (has fileno) that records its close()."""

    key = None

    def close(self):
        if not self.closed and self.key:
            recorder.record(self.key, "file closed")
        super().close()


class RecordingBytesIO(io.BytesIO):
    """In memory: fileno() raises io.UnsupportedOperation."""

    key = None

    def close(self):
        if not self.closed and self.key:
            recorder.record(self.key, "bytesio closed")
        super().close()


def _wrapped(environ, start_response, f, q):
    """Serve `f` through wsgi.file_wrapper after the query's offset and Content-Length."""
    f.key = q.get("id")
    if q.get("offset"):
        f.seek(int(q["offset"]))
    headers = [("Content-Type", "application/octet-stream")]
    if q.get("cl"):
        headers.append(("Content-Length", q["cl"]))
    start_response("200 OK", headers)
    return environ["wsgi.file_wrapper"](f, int(q.get("block", "8192")))


def file(environ, start_response):
    q = _query(environ)
    return _wrapped(environ, start_response, RecordingFile(q["path"], "rb"), q)


def bytesio(environ, start_response):
    q = _query(environ)
    data = b"".join(big_pieces(int(q["size"]), 65536))
    return _wrapped(environ, start_response, RecordingBytesIO(data), q)


# -- shutdown -------------------------------------------------------------------------------


def hold(environ, start_response):
    """Records "started", waits for the gate file (or sleeps ``ms``), then answers."""
    q = _query(environ)
    key = q["id"]
    recorder.record(key, "started")
    if "gate" in q:
        opened = wait_for_file(q["gate"], float(q.get("timeout", str(GATE_TIMEOUT))))
        recorder.record(key, "gate opened" if opened else "gate timeout")
    else:
        time.sleep(int(q.get("ms", "1500")) / 1000.0)
    body = b"held " + key.encode() + b" " + b"z" * int(q.get("pad", "0"))
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    recorder.record(key, "returning")
    return [body]


ROUTES = {
    "hello": hello,
    "events": events,
    "gated": gated,
    "paced": paced,
    "big": big,
    "endless": endless,
    "poll-disconnect": poll_disconnect,
    "file": file,
    "bytesio": bytesio,
    "hold": hold,
}


def not_found(environ, start_response):
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "9")])
    return [b"not found"]


def app(environ, start_response):
    path = environ["PATH_INFO"]
    name = path.split("/")[1] if path.startswith("/") else ""
    return ROUTES.get(name, not_found)(environ, start_response)
