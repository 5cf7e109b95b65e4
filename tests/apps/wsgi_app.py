"""The plain WSGI application most functional tests talk to.

Each endpoint is one function below; the first segment of PATH_INFO picks it. Endpoints are
written against PEP 3333 only (no framework), so every byte a test sees is the server's doing.
Query parameters tune an endpoint; ``id`` names a key in ``recorder`` for endpoints that report
what happened inside the server (``close()`` calls, generators stopped early).
"""

import hashlib
import io
import json
import os
import sys
import threading
import time
from urllib.parse import parse_qs

from apps import recorder

TEXT = [("Content-Type", "text/plain")]


def _query(environ):
    return {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}


def _json(start_response, obj, status="200 OK"):
    body = json.dumps(obj, sort_keys=True).encode("utf-8")
    start_response(
        status,
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]


# -- basics ---------------------------------------------------------------------------------


def hello(environ, start_response):
    # A one-item list and no Content-Length: the server computes it.
    start_response("200 OK", list(TEXT))
    return [b"Hello, world!"]


def uri(environ, start_response):
    """Echo REQUEST_URI; tells pipelined responses apart."""
    body = environ["REQUEST_URI"].encode("latin-1")
    start_response("200 OK", TEXT + [("Content-Length", str(len(body)))])
    return [body]


def sleep(environ, start_response):
    time.sleep(int(_query(environ).get("ms", "100")) / 1000.0)
    body = environ["REQUEST_URI"].encode("latin-1")
    start_response("200 OK", TEXT + [("Content-Length", str(len(body)))])
    return [body]


def _describe(value):
    if value is None or isinstance(value, (str, bool, int)):
        return [type(value).__name__, value]
    if isinstance(value, tuple):
        return ["tuple", list(value)]
    return [type(value).__name__, None]


def environ_dump(environ, start_response):
    """The environ as JSON: each key maps to [type name, value] (value only for plain types)."""
    result = {key: _describe(value) for key, value in environ.items()}
    body = environ["wsgi.input"].read()
    disconnected = environ.get("waitress.client_disconnected")
    probes = {
        "body": body.decode("latin-1"),
        "errors_methods": [
            m for m in ("write", "writelines", "flush") if callable(getattr(environ["wsgi.errors"], m, None))
        ],
        "input_methods": [
            m
            for m in ("read", "readline", "readlines", "__iter__")
            if callable(getattr(environ["wsgi.input"], m, None))
        ],
        "file_wrapper_callable": callable(environ.get("wsgi.file_wrapper")),
        "client_disconnected": disconnected() if callable(disconnected) else "not callable",
    }
    return _json(start_response, {"environ": result, "probes": probes})


# -- request bodies -------------------------------------------------------------------------


def echo(environ, start_response):
    """The request body back, with what the app saw about its framing in X- headers."""
    body = environ["wsgi.input"].read()
    headers = [
        ("Content-Type", "application/octet-stream"),
        ("Content-Length", str(len(body))),
        ("X-Method", environ["REQUEST_METHOD"]),
        ("X-Content-Length", environ.get("CONTENT_LENGTH", "-")),
        ("X-Transfer-Encoding", environ.get("HTTP_TRANSFER_ENCODING", "-")),
    ]
    start_response("200 OK", headers)
    return [body]


def digest(environ, start_response):
    """Length and SHA-256 of the body, read in pieces (large uploads)."""
    stream = environ["wsgi.input"]
    h = hashlib.sha256()
    total = 0
    while True:
        piece = stream.read(65536)
        if not piece:
            break
        h.update(piece)
        total += len(piece)
    return _json(
        start_response,
        {
            "length": total,
            "sha256": h.hexdigest(),
            "content_length": environ.get("CONTENT_LENGTH"),
            "transfer_encoding": environ.get("HTTP_TRANSFER_ENCODING"),
        },
    )


def run_input_ops(stream, ops):
    """Apply ``ops`` (e.g. "read:5,readline,readlines:7,iter") to a file-like object.

    Shared by the app (on wsgi.input) and the tests (on io.BytesIO) so both sides agree on
    what each op means. Results are latin-1 strings, or lists of them.
    """
    out = []
    for op in ops.split(","):
        name, _, arg = op.partition(":")
        n = int(arg) if arg else None
        if name == "read":
            res = stream.read() if n is None else stream.read(n)
        elif name == "readline":
            res = stream.readline() if n is None else stream.readline(n)
        elif name == "readlines":
            res = stream.readlines() if n is None else stream.readlines(n)
        elif name == "iter":
            res = list(iter(stream))
        else:
            raise ValueError(op)
        if isinstance(res, list):
            out.append([x.decode("latin-1") for x in res])
        else:
            out.append(res.decode("latin-1"))
    return out


def input_ops(environ, start_response):
    ops = _query(environ)["ops"]
    return _json(start_response, run_input_ops(environ["wsgi.input"], ops))


# -- response framing -----------------------------------------------------------------------


def chunks(environ, start_response):
    """A generator with no Content-Length: chunked on HTTP/1.1, close-delimited on HTTP/1.0."""
    q = _query(environ)
    n = int(q.get("n", "3"))
    size = int(q.get("size", "10"))
    start_response("200 OK", list(TEXT))

    def gen():
        if q.get("empty_first"):
            yield b""
        for i in range(n):
            yield (b"%d:" % i) + b"x" * size + b";"

    return gen()


def list2(environ, start_response):
    # Two items: the server must not compute a Content-Length from the first one.
    start_response("200 OK", list(TEXT))
    return [b"part1-", b"part2"]


HEAD_BODY = b"body that GET returns and HEAD must not"


def head(environ, start_response):
    start_response(
        "200 OK",
        TEXT + [("Content-Length", str(len(HEAD_BODY))), ("X-Marker", "head-test")],
    )
    if environ["REQUEST_METHOD"] == "HEAD":
        return []
    return [HEAD_BODY]


def status(environ, start_response):
    """``/status/204`` etc.: that status, and a body the server must drop."""
    code = environ["PATH_INFO"].split("/")[2]
    reasons = {"204": "No Content", "304": "Not Modified"}
    start_response("%s %s" % (code, reasons[code]), [("X-Status-Test", code)])
    return [b"this body must never reach the client"]


def write(environ, start_response):
    """Uses the write() callable from start_response, then an iterable."""
    q = _query(environ)
    parts = [b"first-", b"second-", b"third"]
    headers = list(TEXT)
    if q.get("cl"):
        headers.append(("Content-Length", str(sum(map(len, parts)))))
    w = start_response("200 OK", headers)
    w(parts[0])
    w(parts[1])
    return [parts[2]]


def content_length(environ, start_response):
    """Declares one Content-Length and produces another number of bytes (in two pieces)."""
    q = _query(environ)
    declared, actual = int(q["declared"]), int(q["actual"])
    start_response("200 OK", TEXT + [("Content-Length", str(declared))])
    data = b"".join(b"%d" % (i % 10) for i in range(actual))
    half = actual // 2
    return iter([data[:half], data[half:]])


def headers(environ, start_response):
    q = _query(environ)
    hdrs = [("content-type", "text/plain"), ("x-lower-case-name", "v1")]
    if q.get("server"):
        hdrs.append(("Server", "app-server/1.0"))
    if q.get("date"):
        hdrs.append(("Date", "Tue, 01 Jan 2019 00:00:00 GMT"))
    hdrs.append(("Set-Cookie", "a=1"))
    hdrs.append(("Set-Cookie", "b=2"))
    start_response("200 OK", hdrs)
    return [b"ok"]


# -- file_wrapper ---------------------------------------------------------------------------


class RecordingFile(io.FileIO):
    """A real file (with fileno) that reports its close()."""

    key = None

    def close(self):
        if not self.closed and self.key:
            recorder.record(self.key, "file closed")
        super().close()


class ReadOnlyStream:
    """File-like with read() and close() only: no fileno, no seek, no tell."""

    def __init__(self, data, key):
        self._data = io.BytesIO(data)
        self._key = key

    def read(self, n=-1):
        return self._data.read(n)

    def close(self):
        recorder.record(self._key, "stream closed")


def _pattern(size):
    return bytes(i % 251 for i in range(size))


def file(environ, start_response):
    q = _query(environ)
    f = RecordingFile(q["path"], "rb")
    f.key = q.get("id")
    if q.get("offset"):
        f.seek(int(q["offset"]))
    hdrs = [("Content-Type", "application/octet-stream")]
    if q.get("cl"):
        hdrs.append(("Content-Length", q["cl"]))
    start_response("200 OK", hdrs)
    return environ["wsgi.file_wrapper"](f, 8192)


def filelike(environ, start_response):
    q = _query(environ)
    stream = ReadOnlyStream(_pattern(int(q["size"])), q["id"])
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return environ["wsgi.file_wrapper"](stream, int(q.get("block", "4096")))


def bytesio(environ, start_response):
    q = _query(environ)
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return environ["wsgi.file_wrapper"](io.BytesIO(_pattern(int(q["size"]))))


class UnseekableRaw(io.RawIOBase):
    """Has seek() and tell() (from IOBase) but says it is not seekable:
    calling them raises io.UnsupportedOperation."""

    def __init__(self, data):
        self._data = io.BytesIO(data)

    def readable(self):
        return True

    def readinto(self, buffer):
        chunk = self._data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def unseekable(environ, start_response):
    """file_wrapper over a non-seekable file: ?kind=rawio or ?kind=pipe."""
    q = _query(environ)
    data = _pattern(int(q["size"]))
    if q.get("kind") == "pipe":
        read_end, write_end = os.pipe()
        threading.Thread(target=_fill_pipe, args=(write_end, data), daemon=True).start()
        f = os.fdopen(read_end, "rb", buffering=0)
    else:
        f = UnseekableRaw(data)
    hdrs = [("Content-Type", "application/octet-stream")]
    if q.get("cl"):
        hdrs.append(("Content-Length", q["cl"]))
    start_response("200 OK", hdrs)
    return environ["wsgi.file_wrapper"](f, int(q.get("block", "4096")))


def _fill_pipe(fd, data):
    with os.fdopen(fd, "wb") as out:
        out.write(data)


# -- close() and errors ---------------------------------------------------------------------


class ClosingIterable:
    """Yields ``n`` chunks (raising at ``fail_at`` if given) and records close()."""

    def __init__(self, key, n, fail_at=None, size=16):
        self.key, self.n, self.fail_at, self.size = key, n, fail_at, size
        self.count = 0

    def __iter__(self):
        for i in range(self.n):
            if i == self.fail_at:
                raise RuntimeError("failure inside app_iter %s" % self.key)
            self.count += 1
            yield b"x" * self.size
        recorder.record(self.key, "exhausted")

    def close(self):
        recorder.record(self.key, "close after %d" % self.count)


def closing(environ, start_response):
    q = _query(environ)
    fail_at = int(q["fail_at"]) if "fail_at" in q else None
    size = int(q.get("size", "16"))
    n = int(q.get("n", "3"))
    hdrs = list(TEXT)
    if q.get("cl"):
        hdrs.append(("Content-Length", str(n * size)))
    start_response("200 OK", hdrs)
    return ClosingIterable(q["id"], n, fail_at, size)


def events(environ, start_response):
    return _json(start_response, recorder.events(_query(environ)["id"]))


def error(environ, start_response):
    raise RuntimeError("boom %s" % _query(environ).get("msg", ""))


def thread_name(environ, start_response):
    """The name of the worker thread in Python's threading (after ?ms=N of sleep)."""
    time.sleep(int(_query(environ).get("ms", "0")) / 1000.0)
    name = threading.current_thread().name.encode()
    start_response("200 OK", TEXT + [("Content-Length", str(len(name)))])
    return [name]


def str_body(environ, start_response):
    """A str body item: PEP 3333 requires bytes."""
    start_response("200 OK", TEXT)
    return ["not bytes %s" % _query(environ).get("msg", "")]


def not_iterable(environ, start_response):
    """An app result that cannot be iterated."""
    start_response("200 OK", TEXT)
    return len(_query(environ).get("msg", ""))


def error_after_headers(environ, start_response):
    """Content-Length 100, ten bytes out, then an exception: the client must see a short body."""
    msg = _query(environ).get("msg", "")
    start_response("200 OK", TEXT + [("Content-Length", "100")])

    def gen():
        yield b"0123456789"
        raise RuntimeError("late boom %s" % msg)

    return gen()


def bad_start_response(environ, start_response):
    case = environ["PATH_INFO"].split("/")[2]
    if case == "status_bytes":
        start_response(b"200 OK", list(TEXT))
    elif case == "status_int":
        start_response(200, list(TEXT))
    elif case == "status_crlf":
        start_response("200 OK\r\nX-Injected: 1", list(TEXT))
    elif case == "value_crlf":
        start_response("200 OK", TEXT + [("X-Foo", "a\r\nX-Injected: 1")])
    elif case == "value_lf":
        start_response("200 OK", TEXT + [("X-Foo", "a\nX-Injected: 1")])
    elif case == "name_crlf":
        start_response("200 OK", TEXT + [("X-Injected: 1\r\nX-Foo", "a")])
    elif case == "name_bytes":
        start_response("200 OK", TEXT + [(b"X-Foo", "a")])
    elif case == "value_int":
        start_response("200 OK", TEXT + [("X-Foo", 1)])
    elif case == "hop":
        name = _query(environ)["name"]
        start_response("200 OK", TEXT + [(name, "x")])
    elif case == "twice":
        start_response("200 OK", list(TEXT))
        start_response("200 OK", list(TEXT))
    elif case == "no_start_response":
        return [b"body without start_response"]
    else:
        raise ValueError(case)
    return [b"should not be sent"]


def exc_info(environ, start_response):
    case = environ["PATH_INFO"].split("/")[2]
    if case == "replace":
        # An error before anything was sent: the second call replaces status and headers.
        start_response("200 OK", TEXT + [("X-First", "1")])
        try:
            raise ValueError("replaced")
        except ValueError:
            start_response(
                "500 Custom Error", TEXT + [("X-Second", "2")], sys.exc_info()
            )
        return [b"custom error body"]
    if case == "first_call":
        # exc_info on the first call is allowed and just starts the response.
        try:
            raise ValueError("first")
        except ValueError:
            start_response("503 Service Unavailable", list(TEXT), sys.exc_info())
        return [b"unavailable"]
    if case == "after_write":
        # Headers are out: start_response must re-raise, and the server closes the connection.
        w = start_response("200 OK", TEXT + [("Content-Length", "100")])
        w(b"partial")
        try:
            raise ValueError("too late %s" % _query(environ).get("msg", ""))
        except ValueError:
            start_response("500 Internal Server Error", list(TEXT), sys.exc_info())
        return [b"never"]
    raise ValueError(case)


def endless(environ, start_response):
    """Streams until the client goes away; records how far it got when close() came."""
    key = _query(environ)["id"]
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return ClosingIterable(key, 10**9, size=65536)


# -- large body items and kept wsgi.input ---------------------------------------------------

# One object sent by every /shared-big response: large items reach the socket without a copy
# while the server holds a reference, given back once they are written.
SHARED_BIG = bytes(range(256)) * 1000 + b"end"
KEPT_INPUTS = []


def shared_big(environ, start_response):
    """SHARED_BIG as one item (``?framing=length``, ``short`` (a Content-Length 1000 short of
    it), ``chunked`` (two items, no length) or ``generator``); ``?refs=1`` reports the
    object's reference count instead."""
    q = _query(environ)
    if q.get("refs"):
        return _json(start_response, {"refs": sys.getrefcount(SHARED_BIG)})
    framing = q.get("framing", "length")
    if framing == "length":
        start_response("200 OK", [("Content-Length", str(len(SHARED_BIG)))])
        return [SHARED_BIG]
    if framing == "short":
        start_response("200 OK", [("Content-Length", str(len(SHARED_BIG) - 1000))])
        return [SHARED_BIG]
    start_response("200 OK", list(TEXT))
    if framing == "chunked":
        return [SHARED_BIG, SHARED_BIG]
    return iter([b"head:", SHARED_BIG, b":tail"])


def keep_input(environ, start_response):
    """Keeps wsgi.input past the request (as an app holding the environ would) and answers
    with the first 10 bytes of the body."""
    stream = environ["wsgi.input"]
    KEPT_INPUTS.append(stream)
    body = stream.read(10)
    start_response("200 OK", TEXT + [("Content-Length", str(len(body)))])
    return [body]


def wrap_input(environ, start_response):
    """The request's own body sent back through wsgi.file_wrapper (a spilled body's file is
    then read after the task ends)."""
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return environ["wsgi.file_wrapper"](environ["wsgi.input"], 65536)


def kept_input(environ, start_response):
    """What the last kept wsgi.input gives now, from another request: whether it is closed,
    and what reading it yields (or the exception's name)."""
    stream = KEPT_INPUTS[-1]
    try:
        stream.seek(0)
        read = stream.read().decode("latin-1")
    except Exception as e:
        read = type(e).__name__
    return _json(start_response, {"closed": stream.closed, "read": read})


def not_found(environ, start_response):
    start_response("404 Not Found", TEXT + [("Content-Length", "9")])
    return [b"not found"]


ROUTES = {
    "hello": hello,
    "uri": uri,
    "sleep": sleep,
    "environ": environ_dump,
    "echo": echo,
    "digest": digest,
    "input": input_ops,
    "chunks": chunks,
    "list2": list2,
    "head": head,
    "status": status,
    "write": write,
    "content-length": content_length,
    "headers": headers,
    "file": file,
    "filelike": filelike,
    "bytesio": bytesio,
    "unseekable": unseekable,
    "closing": closing,
    "events": events,
    "error": error,
    "error-after-headers": error_after_headers,
    "thread": thread_name,
    "str-body": str_body,
    "not-iterable": not_iterable,
    "bad-start-response": bad_start_response,
    "exc-info": exc_info,
    "endless": endless,
    "shared-big": shared_big,
    "keep-input": keep_input,
    "kept-input": kept_input,
    "wrap-input": wrap_input,
}


def app(environ, start_response):
    path = environ["PATH_INFO"]
    # Routed by the first segment, however many slashes lead (PATH_INFO keeps them all).
    name = path.lstrip("/").split("/")[0] if path.startswith("/") else ""
    return ROUTES.get(name, not_found)(environ, start_response)
