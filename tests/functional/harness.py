"""Run a server in a subprocess and talk raw HTTP/1.x to it.

``ServerProcess`` starts ``tests/apps/launcher.py`` with the interpreter running pytest, so the
``waitress`` under test is whichever one that interpreter has installed (real Waitress 3.0.2 or
ours). ``Connection`` is a deliberately small HTTP client over a plain socket: it sends exactly
the bytes a test gives it and parses responses strictly, so framing mistakes show up as
failures instead of being papered over by a forgiving client library.

Every blocking operation has a bound: socket reads time out after ``IO_TIMEOUT`` seconds, and
the whole wait for a response or an event is capped, so a misbehaving server fails a test rather
than hanging the run.
"""

import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS_DIR = os.path.dirname(HERE)
LAUNCHER = os.path.join(TESTS_DIR, "apps", "launcher.py")

STARTUP_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
IO_TIMEOUT = 5.0
RESPONSE_DEADLINE = 20.0

DEFAULT_APP = "apps.wsgi_app:app"


class ServerStartError(RuntimeError):
    pass


class ServerFactory:
    """Starts server processes and stops them all at the end of the session.

    ``get`` shares one running server per (app, transport, options) between tests, which keeps
    the suite fast; ``start`` gives a caller a server of its own (to stop it, or to own its
    whole log).
    """

    def __init__(self):
        self._shared = {}
        self._all = []
        self._dirs = []

    def _workdir(self):
        # Short path: AF_UNIX socket paths are limited to about 100 bytes.
        d = tempfile.mkdtemp(prefix="wt-")
        self._dirs.append(d)
        return d

    def start(self, app=DEFAULT_APP, transport="tcp", **options):
        """A new server process, private to the caller."""
        server = ServerProcess(app, options, transport, self._workdir())
        self._all.append(server)
        return server.start()

    def get(self, app=DEFAULT_APP, transport="tcp", **options):
        """A running server shared with other tests that ask for the same configuration."""
        key = (app, transport, json.dumps(options, sort_keys=True))
        server = self._shared.get(key)
        if server is not None and not server.alive():
            # Replace it so one crash does not fail every later test, but report the crash.
            self._shared[key] = self.start(app, transport, **options)
            raise AssertionError(
                "shared server %r had exited; its log:\n%s" % (server, server.log_text())
            )
        if server is None:
            server = self._shared[key] = self.start(app, transport, **options)
        return server

    def stop_all(self):
        for server in self._all:
            server.stop()
        for d in self._dirs:
            shutil.rmtree(d, ignore_errors=True)


class ServerProcess:
    """One server subprocess: an app, its create_server options and a transport."""

    # Run in the child before the server starts (e.g. resource limits); a subclass sets it.
    preexec_fn = None

    def __init__(self, app_spec, options, transport, workdir):
        self.app_spec = app_spec
        self.transport = transport
        self.options = dict(options)
        self.workdir = workdir
        self.host = "127.0.0.1"
        self.port = None
        self.unix_path = None
        if transport == "unix":
            self.unix_path = os.path.join(workdir, "s.sock")
            self.options["unix_socket"] = self.unix_path
        elif transport == "tcp":
            self.options.setdefault("host", self.host)
            self.options.setdefault("port", 0)
        else:
            raise ValueError(transport)
        self.log_path = os.path.join(workdir, "server.log")
        self.proc = None
        self.stdout_rest = b""

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self):
        self._log = open(self.log_path, "wb")
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        self.proc = subprocess.Popen(
            [sys.executable, LAUNCHER, self.app_spec, json.dumps(self.options)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
            cwd=self.workdir,
            env=env,
            preexec_fn=self.preexec_fn,
        )
        line = self._read_stdout_line(STARTUP_TIMEOUT)
        if line is None:
            self.kill()
            raise ServerStartError(
                "server did not report ready within %.0fs; log:\n%s"
                % (STARTUP_TIMEOUT, self.log_text())
            )
        if self.transport == "tcp":
            self.port = int(line)
        elif line != "ready":
            self.kill()
            raise ServerStartError("unexpected launcher output %r" % line)
        return self

    def _read_stdout_line(self, timeout):
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        buf = b""
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in buf:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not sel.select(remaining):
                    return None
                data = os.read(fd, 4096)
                if not data:
                    return None
                buf += data
        line, _, self.stdout_rest = buf.partition(b"\n")
        return line.decode().strip()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM (not SIGINT: a background process may ignore it), bounded wait, then kill.

        Returns the exit code, or None if the process had to be killed.
        """
        if self.proc is None:
            return None
        code = self.proc.poll()
        if code is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                code = None
        self._close_pipes()
        return code

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(STOP_TIMEOUT)
        self._close_pipes()

    def _close_pipes(self):
        if self.proc is not None and self.proc.stdout is not None:
            try:
                rest = self.proc.stdout.read() if self.proc.poll() is not None else b""
            except (OSError, ValueError):
                rest = b""
            self.stdout_rest += rest
            self.proc.stdout.close()
        log = getattr(self, "_log", None)
        if log is not None and not log.closed:
            log.close()

    # -- logs --------------------------------------------------------------------------------

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def log_mark(self):
        return os.path.getsize(self.log_path)

    def log_since(self, mark):
        with open(self.log_path, "rb") as f:
            f.seek(mark)
            return f.read().decode("utf-8", "replace")

    def wait_for_log(self, needle, mark=0, timeout=10.0):
        """Log text after ``mark`` once it contains ``needle`` (log writes may trail the response)."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_since(mark)
            if needle in text or time.monotonic() > deadline:
                return text
            time.sleep(0.02)

    # -- clients -----------------------------------------------------------------------------

    @property
    def address(self):
        return self.unix_path if self.transport == "unix" else (self.host, self.port)

    def raw_socket(self, timeout=IO_TIMEOUT):
        if self.transport == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(self.address)
        return sock

    def connect(self, timeout=IO_TIMEOUT):
        return Connection(self.raw_socket(timeout))

    def request(self, method, target, headers=(), body=b"", version="1.1"):
        """One request on a fresh connection; returns the Response."""
        with self.connect() as conn:
            conn.send(build_request(method, target, headers, body, version))
            return conn.read_response(method)

    def get(self, target, headers=(), version="1.1"):
        return self.request("GET", target, headers, version=version)

    def wait_for_events(self, key, predicate, timeout=10.0):
        """Poll ``/events?id=key`` until ``predicate(events)`` holds or the timeout passes."""
        deadline = time.monotonic() + timeout
        while True:
            events = json.loads(self.get("/events?id=" + key).body)
            if predicate(events) or time.monotonic() > deadline:
                return events
            time.sleep(0.02)

    def __repr__(self):
        return "<ServerProcess %s %s %r>" % (self.transport, self.app_spec, self.options)


def build_request(method, target, headers=(), body=b"", version="1.1"):
    """Bytes of one request. Adds Host (HTTP/1.1) and Content-Length (when there is a body and
    no Transfer-Encoding) unless the test gave them."""
    headers = list(headers)
    names = {name.lower() for name, _ in headers}
    if version == "1.1" and "host" not in names:
        headers.insert(0, ("Host", "localhost"))
    if body and "content-length" not in names and "transfer-encoding" not in names:
        headers.append(("Content-Length", str(len(body))))
    lines = ["%s %s HTTP/%s" % (method, target, version)]
    lines += ["%s: %s" % (name, value) for name, value in headers]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + body


def chunked(body, sizes):
    """``body`` in the chunked transfer coding, cut into pieces of the given sizes."""
    out = []
    pos = 0
    for size in sizes:
        piece = body[pos : pos + size]
        pos += size
        if piece:
            out.append(b"%x\r\n%s\r\n" % (len(piece), piece))
    assert pos >= len(body), "sizes do not cover the body"
    out.append(b"0\r\n\r\n")
    return b"".join(out)


class ProtocolError(AssertionError):
    pass


class Response:
    def __init__(self, version, status, reason, headers, raw_head):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # [(name, value)] in wire order
        self.raw_head = raw_head
        self.body = b""
        self.chunked = False
        self.chunk_sizes = []
        self.close_delimited = False

    def header(self, name):
        values = self.header_values(name)
        if len(values) > 1:
            raise AssertionError("header %s appears %d times" % (name, len(values)))
        return values[0] if values else None

    def header_values(self, name):
        return [v for n, v in self.headers if n.lower() == name.lower()]

    def header_names(self):
        return [n for n, _ in self.headers]

    @property
    def wants_close(self):
        return any(
            "close" in [t.strip().lower() for t in v.split(",")]
            for v in self.header_values("Connection")
        )

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<Response %s %s %r %r>" % (self.status, self.reason, self.headers, self.body[:200])


class Connection:
    """A client socket with a receive buffer and a strict response parser."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.eof = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        self.sock.sendall(data)

    def send_in_background(self, data):
        """Send from a thread, so the test can read responses while a large pipeline goes out
        (a server may stop reading until its responses are consumed)."""
        errors = []

        def run():
            try:
                self.sock.sendall(data)
            except OSError as e:
                errors.append(e)

        t = threading.Thread(target=run, daemon=True)
        t.start()
        t.errors = errors
        return t

    def shutdown_write(self):
        self.sock.shutdown(socket.SHUT_WR)

    def _fill(self, deadline):
        if self.eof:
            return False
        if time.monotonic() > deadline:
            raise TimeoutError("response not complete within the deadline")
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _read_line(self, deadline):
        while b"\r\n" not in self.buf:
            if not self._fill(deadline):
                raise ProtocolError("connection closed inside a line: %r" % self.buf)
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def _read_exact(self, n, deadline):
        while len(self.buf) < n:
            if not self._fill(deadline):
                raise ProtocolError(
                    "connection closed after %d of %d body bytes" % (len(self.buf), n)
                )
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_some(self):
        """At least one more byte (or EOF): returns False on EOF."""
        return self._fill(time.monotonic() + RESPONSE_DEADLINE)

    def read_until_close(self, deadline=None):
        deadline = deadline or time.monotonic() + RESPONSE_DEADLINE
        while self._fill(deadline):
            pass
        data, self.buf = self.buf, b""
        return data

    def read_head(self, deadline=None):
        """Status line and headers of the next response (interim ones included)."""
        deadline = deadline or time.monotonic() + RESPONSE_DEADLINE
        raw = []
        line = self._read_line(deadline)
        raw.append(line)
        parts = line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            raise ProtocolError("bad status line %r" % line)
        version = parts[0][5:].decode("ascii")
        status = int(parts[1])
        reason = parts[2].decode("latin-1") if len(parts) > 2 else ""
        headers = []
        while True:
            line = self._read_line(deadline)
            raw.append(line)
            if not line:
                break
            name, sep, value = line.partition(b":")
            if not sep or not name or name != name.strip():
                raise ProtocolError("bad header line %r" % line)
            headers.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))
        return Response(version, status, reason, headers, b"\r\n".join(raw) + b"\r\n")

    def read_response(self, method="GET", deadline=None):
        """The next response, body read per its framing (RFC 9112 section 6.3)."""
        deadline = deadline or time.monotonic() + RESPONSE_DEADLINE
        resp = self.read_head(deadline)
        if method == "HEAD" or resp.status < 200 or resp.status in (204, 304):
            return resp
        te = resp.header_values("Transfer-Encoding")
        cl = resp.header_values("Content-Length")
        if te:
            if cl:
                raise ProtocolError("both Transfer-Encoding and Content-Length: %r" % resp)
            if [t.strip().lower() for t in ",".join(te).split(",")] != ["chunked"]:
                raise ProtocolError("unexpected Transfer-Encoding %r" % te)
            resp.chunked = True
            resp.body = self._read_chunked(resp, deadline)
        elif cl:
            if len(set(cl)) != 1 or not cl[0].isdigit():
                raise ProtocolError("bad Content-Length %r" % cl)
            resp.body = self._read_exact(int(cl[0]), deadline)
        else:
            resp.close_delimited = True
            resp.body = self.read_until_close(deadline)
        return resp

    def _read_chunked(self, resp, deadline):
        body = []
        while True:
            line = self._read_line(deadline)
            size_text = line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise ProtocolError("bad chunk size line %r" % line)
            if size == 0:
                break
            resp.chunk_sizes.append(size)
            body.append(self._read_exact(size, deadline))
            if self._read_exact(2, deadline) != b"\r\n":
                raise ProtocolError("chunk not terminated by CRLF")
        while self._read_line(deadline):  # trailer section
            pass
        return b"".join(body)

    def assert_closed(self):
        """The server closes the connection and sends nothing more."""
        rest = self.read_until_close()
        assert rest == b"", "unexpected bytes before close: %r" % rest[:200]


def assert_serves(server):
    """The server still answers a fresh client correctly."""
    resp = server.get("/hello")
    assert resp.status == 200, resp
    assert resp.body == b"Hello, world!"
