"""HTTPS across a server's life: certificate rotation under load (one process: SIGHUP and
``reload_certificates()``; worker processes: SIGHUP), close_notify on a graceful drain,
``connection_limit`` and output backpressure over TLS (docs/tls.md).

Real server subprocesses on loopback, certificates made with trustme, Python's ssl module as
the client (with ``suppress_ragged_eofs=False`` where a clean TLS close must be told apart from
a bare TCP FIN). Under load, every request of every client must succeed; each limit crossed is
followed by a request that must be served.
"""

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

import pytest

from functional.harness import Connection, build_request

pytest.importorskip("trustme")

from functional.procstats import vm_rss  # noqa: E402
from functional.test_output_path import (  # noqa: E402
    PacedConnection, expected_big_digest, new_key, read_body_digest)
from functional.tls_harness import (  # noqa: E402, F401 (fixtures)
    certs, other_certs, tls_connection, tls_socket)
from functional.workers_harness import Load, Supervised, pid_alive, write_app  # noqa: E402

MiB = 1024 * 1024
KiB = 1024


def trusting(*all_certs):
    """A client context that trusts every given CA (a client across a rotation)."""
    context = ssl.create_default_context(cafile=all_certs[0].ca_file)
    for more in all_certs[1:]:
        context.load_verify_locations(more.ca_file)
    return context


def presented(port, context):
    """The leaf certificate a new connection to ``port`` is given (DER)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    with context.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
        return sock.getpeercert(binary_form=True)


def install(source, chain, key):
    """Puts ``source``'s certificate and key where the server reads them."""
    shutil.copy(source.chain, chain)
    shutil.copy(source.key, key)


# -- rotation under load, one process ---------------------------------------------------------

# Serves a JSON app; each line on stdin calls server.reload_certificates() and prints its result.
RELOADING_SERVER = r'''
import json, logging, os, sys, threading
logging.basicConfig(level=logging.INFO)
import waitress

def app(environ, start_response):
    body = json.dumps({"pid": os.getpid()}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]

server = waitress.create_server(app, **json.loads(sys.argv[1]))
print(server.effective_port, flush=True)

def commands():
    for line in sys.stdin:
        print("reloaded" if server.reload_certificates() else "kept", flush=True)

threading.Thread(target=commands, daemon=True).start()
server.run()
'''


class ReloadingServer:
    def __init__(self, directory, options):
        self.log_path = os.path.join(directory, "server.log")
        script = os.path.join(directory, "reloading_server.py")
        with open(script, "w") as f:
            f.write(RELOADING_SERVER)
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, script, json.dumps(dict(options, host="127.0.0.1", port=0))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, cwd=directory, text=True,
        )
        self.port = int(self.proc.stdout.readline())

    def reload_certificates(self):
        self.proc.stdin.write("reload\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_for_log(self, needle, count=1, timeout=10.0):
        deadline = time.monotonic() + timeout
        while self.log().count(needle) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.log()

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.proc.stdin.close()
        self.proc.stdout.close()
        self._log.close()


@pytest.fixture
def reloading_server(tmp_path):
    started = []

    def start(**options):
        server = ReloadingServer(str(tmp_path), options)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def tls_load(port, context, clients, headers=()):
    """``clients`` threads requesting over TLS; ``Connection: close`` in ``headers`` makes
    each request a new connection."""
    raw = lambda: socket.create_connection(("127.0.0.1", port), timeout=10)  # noqa: E731
    return Load(port, clients=clients, headers=headers,
                connect=lambda: context.wrap_socket(raw(), server_hostname="127.0.0.1"))


def test_rotation_under_load_fails_no_request(reloading_server, certs, other_certs, tmp_path):
    chain, key = str(tmp_path / "chain.pem"), str(tmp_path / "key.pem")
    install(certs, chain, key)
    server = reloading_server(ssl_certfile=chain, ssl_keyfile=key, threads=4)
    both = trusting(certs, other_certs)
    assert presented(server.port, both) == certs.leaf_der
    established = Connection(both.wrap_socket(
        socket.create_connection(("127.0.0.1", server.port), timeout=10), server_hostname="127.0.0.1"))
    established.send(build_request("GET", "/"))
    assert established.read_response().status == 200

    # Clients on keep-alive connections, and clients making a new connection per request.
    with tls_load(server.port, both, 3) as kept, \
            tls_load(server.port, both, 3, [("Connection", "close")]) as fresh:
        kept.wait_count(100)
        fresh.wait_count(50)
        # SIGHUP.
        install(other_certs, chain, key)
        server.proc.send_signal(signal.SIGHUP)
        assert "Reloaded TLS certificates" in server.wait_for_log("Reloaded TLS certificates")
        assert presented(server.port, both) == other_certs.leaf_der
        kept.wait_count(kept.count() + 100)
        fresh.wait_count(fresh.count() + 50)
        # reload_certificates(), from another thread than the one serving.
        install(certs, chain, key)
        assert server.reload_certificates() == "reloaded"
        assert presented(server.port, both) == certs.leaf_der
        kept.wait_count(kept.count() + 100)
        fresh.wait_count(fresh.count() + 50)
    for load in (kept, fresh):
        assert load.failures == []
        assert sorted({status for _, status, _ in load.results}) == [200]
    # The connection made before both rotations keeps its certificate and still serves.
    assert established.sock.getpeercert(binary_form=True) == certs.leaf_der
    established.send(build_request("GET", "/"))
    assert established.read_response().status == 200
    established.close()
    assert "Socket error" not in server.log()


# -- rotation with worker processes -----------------------------------------------------------


def two_tls_workers(tmp_path, certs):
    """A supervisor with two workers serving ``certs`` from files in ``tmp_path``:
    (server, chain path, key path)."""
    chain, key = str(tmp_path / "chain.pem"), str(tmp_path / "key.pem")
    install(certs, chain, key)
    write_app(str(tmp_path), "v1")
    server = Supervised(tmp_path, ["--workers=2", "--ssl-certfile=" + chain, "--ssl-keyfile=" + key]).start()
    return server, chain, key


def test_sighup_with_workers_rotates_every_worker_without_a_failure(certs, other_certs, tmp_path):
    server, chain, key = two_tls_workers(tmp_path, certs)
    try:
        old = set(server.wait_serving(2))
        both = trusting(certs, other_certs)
        assert presented(server.port, both) == certs.leaf_der
        with tls_load(server.port, both, 4) as load:
            load.wait_count(200)
            install(other_certs, chain, key)
            server.signal(signal.SIGHUP)
            new = set(server.wait_serving(4)[2:])
            server.wait_for(
                lambda t: all("(pid %d) exited with status 0" % pid in t for pid in old),
                what="old workers drained")
            load.wait_count(load.count() + 200)
        assert load.failures == []
        assert all(status == 200 for _, status, _ in load.results)
        assert not any(pid_alive(pid) for pid in old)
        # New connections reach both new workers, and each presents the new certificate.
        seen = {}
        for _ in range(400):
            raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            with Connection(both.wrap_socket(raw, server_hostname="127.0.0.1")) as conn:
                leaf = conn.sock.getpeercert(binary_form=True)
                conn.send(build_request("GET", "/"))
                response = conn.read_response()
            assert response.status == 200
            seen.setdefault(json.loads(response.body)["pid"], set()).add(leaf)
            if len(seen) == 2:
                break
        assert set(seen) == new
        assert all(leaves == {other_certs.leaf_der} for leaves in seen.values())
    finally:
        server.stop()


def test_sighup_with_workers_and_a_bad_new_certificate_keeps_the_old_workers(certs, other_certs, tmp_path):
    # The new workers cannot start with a broken certificate file: the old ones keep serving
    # with the old certificate (no failed request), the failure is logged naming the file, and
    # once the file is good the next SIGHUP rolls the workers onto it.
    server, chain, key = two_tls_workers(tmp_path, certs)
    try:
        old = set(server.wait_serving(2))
        both = trusting(certs, other_certs)
        with tls_load(server.port, both, 3) as load:
            load.wait_count(100)
            with open(chain, "w") as f:
                f.write("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
            server.signal(signal.SIGHUP)
            text = server.wait_for(lambda t: "The reload is abandoned" in t, what="the reload abandoned")
            # One line naming the file, no traceback, no retry loop.
            assert "could not start: ssl_certfile: %s" % chain in text
            assert "Traceback" not in text and "before serving" not in text
            load.wait_count(load.count() + 200)
            assert set(server.serving_pids()) >= old
            assert all(pid_alive(pid) for pid in old)
            assert presented(server.port, both) == certs.leaf_der
            install(other_certs, chain, key)
            server.signal(signal.SIGHUP)
            server.wait_for(
                lambda t: all("(pid %d) exited with status 0" % pid in t for pid in old),
                what="old workers drained after the good file")
            load.wait_count(load.count() + 100)
        assert load.failures == []
        assert all(status == 200 for _, status, _ in load.results)
        assert presented(server.port, both) == other_certs.leaf_der
    finally:
        server.stop()


# -- close_notify on a graceful drain ---------------------------------------------------------


def read_tls_close(sock):
    """Reads until the server closes; returns the bytes. A TCP close without TLS's
    close_notify raises ssl.SSLEOFError here (ragged EOFs are not suppressed)."""
    data = b""
    while True:
        piece = sock.recv(65536)
        if not piece:
            return data
        data += piece


def test_graceful_drain_sends_close_notify(private_server, certs):
    server = private_server(**certs.options())
    context = certs.client_context()
    # Handshake done, no request yet.
    fresh = tls_socket(server, context, suppress_ragged_eofs=False)
    # A keep-alive connection that has been served and is idle.
    served = tls_socket(server, context, suppress_ragged_eofs=False)
    served.sendall(build_request("GET", "/hello"))
    response = b""
    while not response.endswith(b"Hello, world!"):
        response += served.recv(65536)
    # A request in service when the drain begins: answered, then closed cleanly.
    busy = tls_socket(server, context, suppress_ragged_eofs=False)
    busy.sendall(build_request("GET", "/sleep?ms=1000"))
    mark = server.log_mark()
    time.sleep(0.3)  # the request reaches the app
    server.proc.send_signal(signal.SIGTERM)
    for sock in (fresh, served):
        assert read_tls_close(sock) == b""
    answered = read_tls_close(busy)
    assert answered.startswith(b"HTTP/1.1 200 OK\r\n"), answered
    for sock in (fresh, served, busy):
        # Our close_notify in reply; the server has ours too, or closed after sending its own.
        try:
            sock.unwrap()
        except (ssl.SSLError, OSError):
            pass
        sock.close()
    assert server.proc.wait(20) == 0
    assert "Socket error" not in server.log_since(mark)


def test_openssl_s_client_sees_close_notify_on_drain(private_server, certs):
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    server = private_server(**certs.options())
    client = subprocess.Popen(
        ["openssl", "s_client", "-connect", "127.0.0.1:%d" % server.port, "-CAfile", certs.ca_file,
         "-verify_return_error", "-msg", "-ign_eof"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        # Once the handshake is done the server is drained; s_client reports what it received.
        deadline = time.monotonic() + 20
        out = b""
        while b"Verify return code: 0" not in out and time.monotonic() < deadline:
            out += client.stdout.read1(65536)
        assert b"Verify return code: 0" in out, out
        server.proc.send_signal(signal.SIGTERM)
        rest, _ = client.communicate(timeout=20)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
    out += rest
    # -msg shows each record: "<<<" for received ones, the server's close_notify among them
    # (s_client's own close_notify, sent at its exit, is a ">>>" line).
    received = [line for line in out.splitlines() if line.startswith(b"<<< ")]
    assert any(b"Alert" in line and b"close_notify" in line for line in received), out[-2000:]
    assert server.proc.wait(20) == 0


# -- connection_limit over TLS ----------------------------------------------------------------

REACHED = "reached the connection limit"


def test_connection_limit_over_tls_then_the_waiting_client_is_served(private_server, certs):
    server = private_server(connection_limit=2, **certs.options())
    mark = server.log_mark()
    context = certs.client_context()
    served = tls_connection(server, context)
    served.send(build_request("GET", "/hello"))
    assert served.read_response().status == 200
    # A TCP connection that never starts its handshake holds the other slot.
    silent = socket.create_connection((server.host, server.port), timeout=10)
    assert REACHED in server.wait_for_log(REACHED, mark)
    # A third client's handshake waits for a slot (it is not accepted yet).
    outcome = {}

    def third():
        try:
            with tls_connection(server, context) as conn:
                conn.send(build_request("GET", "/uri/third"))
                outcome["body"] = conn.read_response().body
        except Exception as exc:  # reported by the assertion below
            outcome["error"] = exc

    waiting = threading.Thread(target=third, daemon=True)
    waiting.start()
    waiting.join(0.5)
    assert waiting.is_alive() and outcome == {}
    silent.close()
    waiting.join(20)
    assert outcome == {"body": b"/uri/third"}
    # Still serving: the kept connection and a new one.
    served.send(build_request("GET", "/hello"))
    assert served.read_response().body == b"Hello, world!"
    served.close()
    with tls_connection(server, context) as conn:
        conn.send(build_request("GET", "/hello"))
        assert conn.read_response().body == b"Hello, world!"


# -- backpressure over TLS --------------------------------------------------------------------


def test_slow_tls_client_large_response_bounded_memory(private_server, certs):
    server = private_server("apps.output_app:app", threads=2, outbuf_overflow=65536,
                            outbuf_high_watermark=MiB, **certs.options())
    context = certs.client_context()
    size = 20 * MiB
    pid = server.proc.pid

    def slow_tls_socket():
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * KiB)
        sock.settimeout(10)
        sock.connect((server.host, server.port))
        return context.wrap_socket(sock, server_hostname="127.0.0.1")

    # Warm up with a response of the same shape read at full speed, then take the baseline.
    with Connection(slow_tls_socket()) as warm:
        warm.send(build_request("GET", "/big?size=%d&cl=1" % (4 * MiB)))
        assert len(warm.read_response(deadline=time.monotonic() + 60).body) == 4 * MiB
    time.sleep(0.2)
    rss0 = vm_rss(pid)
    key = new_key()
    state = {"max_rss": rss0, "events_mid": None}

    def on_pause(received):
        state["max_rss"] = max(state["max_rss"], vm_rss(pid))
        if state["events_mid"] is None and received >= 4 * MiB:
            with tls_connection(server, context) as side:  # another client is served meanwhile
                side.send(build_request("GET", "/events?id=" + key))
                state["events_mid"] = side.read_response().json()

    with PacedConnection(slow_tls_socket(), step=256 * KiB, pause=0.05, on_pause=on_pause) as conn:
        conn.send(build_request("GET", "/big?size=%d&id=%s&cl=1" % (size, key)))
        deadline = time.monotonic() + 120
        response = conn.read_head(deadline)
        assert response.status == 200 and response.header("Content-Length") == str(size)
        digest, got = read_body_digest(conn, size, deadline)
        assert got == size and digest == expected_big_digest(size)
        conn.paced = False
        conn.send(build_request("GET", "/hello"))
        assert conn.read_response().body == b"Hello, world!"
    assert state["events_mid"] is not None, "the slow read never reached 4 MiB"
    # With a 1 MiB high watermark the app cannot have produced 20 MiB when 4 MiB were read.
    assert "done" not in state["events_mid"], state
    growth = state["max_rss"] - rss0
    print("\nTLS: server RSS baseline %d KiB, max growth during a slow 20 MiB read: %d KiB"
          % (rss0 // KiB, growth // KiB))
    assert growth < 8 * MiB, "server RSS grew by %d KiB for a 20 MiB response" % (growth // KiB)
