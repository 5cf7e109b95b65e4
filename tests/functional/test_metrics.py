"""Prometheus metrics from the engine (``metrics_listen``; docs/metrics.md).

Real server subprocesses with a metrics listener; every scrape is parsed with
``prometheus_client``'s own parser. The counters must move as requests are answered (by the
app and by the engine), the gauges must follow connections and busy threads, and with worker
processes any worker must report the whole server, per worker, across a rolling restart.
"""

import signal
import socket
import threading
import time

import pytest
from functional.harness import ServerStartError, build_request
from functional.metrics_scrape import Scrape, scrape
from functional.workers_harness import Supervised, free_port, write_app


def wait_until(predicate, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def scrape_until(port, predicate, what, timeout=10.0):
    """The first scrape for which ``predicate(scrape)`` holds."""
    found = []

    def check():
        s = Scrape(port)
        if predicate(s):
            found.append(s)
            return True
        return False

    wait_until(check, timeout, what)
    return found[-1]


@pytest.fixture
def metered(private_server):
    def start(**options):
        port = free_port()
        server = private_server(metrics_listen=f"127.0.0.1:{port}", **options)
        server.metrics_port = port
        return server

    return start


def test_counters_move_with_app_and_engine_answers(metered):
    server = metered()
    before = Scrape(server.metrics_port)
    for _ in range(3):
        assert server.get("/hello").status == 200
    assert server.request("POST", "/echo", [("Content-Length", "5")], b"hello").status == 200
    assert server.get("/not_found").status == 404
    assert server.get("/error").status == 500
    # Answered by the engine itself: a malformed request line, a head over the limit.
    with server.raw_socket() as sock:
        sock.sendall(b"GET\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.0 400 Bad Request")
    with server.connect() as conn:
        conn.send(build_request("GET", "/hello", [("X-Big", "a" * 300_000)]))
        assert conn.read_response().status == 431
    assert server.get("/hello").status == 200  # and it still serves

    # A response is counted when it is written; its app time once its worker is done with the
    # task, which may be just after the client has the response: wait for both.
    after = scrape_until(
        server.metrics_port,
        lambda s: s.value("waitress_requests_total") - before.value("waitress_requests_total") >= 9
        and s.value("waitress_app_duration_seconds_count") - before.value("waitress_app_duration_seconds_count") >= 7,
        "9 requests and 7 app calls counted")

    def moved(name, **labels):
        return after.value(name, **labels) - before.value(name, **labels)

    assert moved("waitress_requests_total", method="GET", status="2xx") == 4
    assert moved("waitress_requests_total", method="POST", status="2xx") == 1
    assert moved("waitress_requests_total", method="GET", status="4xx") == 1
    assert moved("waitress_requests_total", method="GET", status="5xx") == 1
    # No head was parsed for the 400 and the 431: no method to count them under.
    assert moved("waitress_requests_total", method="other", status="4xx") == 2
    assert moved("waitress_engine_errors_total", status="400") == 1
    assert moved("waitress_engine_errors_total", status="431") == 1
    assert moved("waitress_request_duration_seconds_count") == 9
    assert moved("waitress_app_duration_seconds_count") == 7  # not the engine's two
    assert moved("waitress_queue_wait_seconds_count") == 7
    assert moved("waitress_connections_accepted_total") == 9
    assert moved("waitress_received_bytes_total") > 262_144
    assert moved("waitress_sent_bytes_total") > 7 * 100
    assert after.types["waitress_request_duration_seconds"] == "histogram"
    # Buckets are cumulative and end at the count.
    buckets = [
        (float(s.labels["le"]), s.value)
        for s in after.samples
        if s.name == "waitress_request_duration_seconds_bucket"
    ]
    assert [v for _, v in sorted(buckets)] == sorted(v for _, v in buckets)
    assert max(v for _, v in buckets) == after.value("waitress_request_duration_seconds_count")
    assert after.value("process_resident_memory_bytes") > 1 << 20
    assert after.value("waitress_listen_backlog", listener=f"127.0.0.1:{server.port}") > 0
    assert after.labels("waitress_requests_total", "worker") == {"0"}


def test_open_connections_and_busy_threads(metered):
    server = metered(threads=1)
    conns = [server.connect() for _ in range(3)]
    try:
        for conn in conns:
            conn.send(build_request("GET", "/hello"))
            assert conn.read_response().status == 200
        s = scrape_until(server.metrics_port, lambda s: s.value("waitress_connections_open") == 3, "3 open connections")
        assert s.value("waitress_threads", state="idle") == 1
        # One request holds the only thread; a second waits for it. The scrape is answered
        # meanwhile: the endpoint needs no worker thread.
        conns[0].send(build_request("GET", "/sleep?ms=1500"))
        time.sleep(0.2)
        conns[1].send(build_request("GET", "/sleep?ms=10"))
        busy = scrape_until(server.metrics_port, lambda s: s.value("waitress_requests_waiting") == 1, "a request waiting for the thread")
        assert busy.value("waitress_threads", state="busy") == 1
        assert busy.value("waitress_threads", state="idle") == 0
        assert conns[0].read_response().status == 200
        assert conns[1].read_response().status == 200
    finally:
        for conn in conns:
            conn.close()
    # The thread counts itself idle just after it hands over the response: wait for that.
    s = scrape_until(
        server.metrics_port,
        lambda s: s.value("waitress_connections_open") == 0 and s.value("waitress_threads", state="busy") == 0,
        "connections closed and the thread idle",
    )
    assert s.value("waitress_requests_waiting") == 0
    assert s.value("waitress_threads", state="idle") == 1
    # The second request waited about as long as the first one slept.
    assert s.value("waitress_queue_wait_seconds_bucket", le="0.5") < s.value("waitress_queue_wait_seconds_count")


def test_spilled_bodies_and_responses_are_counted(metered):
    server = metered(inbuf_overflow=65536, outbuf_overflow=65536)
    body = bytes(range(256)) * 1024  # 256 KiB: past inbuf_overflow
    resp = server.request("POST", "/echo", [("Content-Length", str(len(body)))], body)
    assert resp.status == 200 and resp.body == body
    s = Scrape(server.metrics_port)
    assert s.value("waitress_request_bodies_spilled_total") == 1
    # Streamed items of 100 kB each: past outbuf_overflow, through a spill file. (A
    # one-item response is handed over whole with its end and never spills.)
    resp = server.get("/chunks?n=8&size=100000")
    assert resp.status == 200 and len(resp.body) > 800_000
    s = scrape_until(server.metrics_port, lambda s: s.value("waitress_responses_spilled_total") == 1, "the spilled response counted")
    assert s.value("waitress_request_bodies_spilled_total") == 1
    small = server.request("POST", "/echo", [("Content-Length", "3")], b"abc")
    assert small.body == b"abc"
    s = Scrape(server.metrics_port)
    assert s.value("waitress_request_bodies_spilled_total") == 1
    assert s.value("waitress_responses_spilled_total") == 1


def test_limit_pauses_are_counted(metered):
    server = metered(connection_limit=2)
    first, second = server.connect(), server.connect()
    try:
        first.send(build_request("GET", "/hello"))
        assert first.read_response().status == 200
        second.send(build_request("GET", "/hello"))
        assert second.read_response().status == 200
        s = scrape_until(server.metrics_port, lambda s: s.value("waitress_accepting_paused") == 1, "accepting paused at the limit")
        assert s.value("waitress_accept_pauses_total", reason="connection_limit") == 1
        assert s.value("waitress_connection_limit") == 2
    finally:
        first.close()
        second.close()
    assert server.get("/hello").status == 200
    s = Scrape(server.metrics_port)
    assert s.value("waitress_accepting_paused") == 0


def test_the_endpoint_answers_only_metrics(metered):
    server = metered()
    port = server.metrics_port
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        f = sock.makefile("rb")
        # Keep-alive: two scrapes and a HEAD on one connection, then a 404 and a 405.
        for method in ("GET", "GET", "HEAD"):
            sock.sendall(f"{method} /metrics HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            status = f.readline()
            assert status == b"HTTP/1.1 200 OK\r\n"
            length = None
            while True:
                line = f.readline()
                if line == b"\r\n":
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            assert length > 1000
            if method == "GET":
                text = f.read(length).decode()
                assert "# TYPE waitress_requests_total counter" in text
        sock.sendall(b"GET /other HTTP/1.1\r\nHost: x\r\n\r\n")
        assert f.readline() == b"HTTP/1.1 404 Not Found\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"DELETE /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = sock.makefile("rb").read()
        assert data.startswith(b"HTTP/1.1 405 Method Not Allowed\r\n")
        assert b"\r\nAllow: GET, HEAD\r\n" in data
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"NOT HTTP\r\n\r\n")
        data = sock.makefile("rb").read()  # answered, then closed
        assert data.startswith(b"HTTP/1.0 400 Bad Request\r\n")
    assert "waitress_requests_total" in scrape(port)
    assert server.get("/hello").status == 200


def test_idle_and_surplus_scrape_connections_are_closed(metered):
    # channel_timeout applies to scrape connections as to others; past 32 open ones a new
    # connection is closed at once. Afterwards a scrape is answered.
    server = metered(channel_timeout=1)
    port = server.metrics_port
    idle = socket.create_connection(("127.0.0.1", port), timeout=10)
    opened = time.monotonic()
    assert idle.recv(1) == b""  # closed by the server, not by our timeout
    assert 0.5 < time.monotonic() - opened < 9
    idle.close()
    held = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(32)]
    try:
        # Each of the 32 is served (a scrape is answered on it), so all are open at once.
        for sock in held:
            sock.sendall(b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(64).startswith(b"HTTP/1.1 200 OK\r\n")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as surplus:
            surplus.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                assert surplus.recv(64) == b""
            except ConnectionResetError:
                pass
    finally:
        for sock in held:
            sock.close()
    assert "waitress_requests_total" in wait_until(lambda: _scrape_or_none(port), what="a scrape")
    assert server.get("/hello").status == 200


def _scrape_or_none(port):
    try:
        return scrape(port)
    except OSError:
        return None


def test_a_metrics_port_in_use_fails_at_start_with_its_address(private_server):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(ServerStartError) as info:
            private_server(metrics_listen=f"127.0.0.1:{port}")
    assert f"cannot listen on metrics_listen 127.0.0.1:{port}: Address already in use" in str(info.value)


def test_workers_report_the_whole_server(tmp_path):
    write_app(str(tmp_path), "v1")
    metrics_port = free_port()
    server = Supervised(tmp_path, ["--workers=2", "--threads=2", f"--metrics-listen=127.0.0.1:{metrics_port}"]).start()
    try:
        server.wait_serving(2)
        total = 40
        done = []

        def client():
            for _ in range(total // 4):
                done.append(server.get("/")[0])

        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert done == [200] * total
        # Whichever worker answers, the scrape covers both.
        for _ in range(6):
            s = Scrape(metrics_port)
            assert s.value("waitress_requests_total") == total
            assert s.labels("waitress_requests_total", "worker") <= {"1", "2"}
            assert s.labels("process_resident_memory_bytes", "worker") == {"1", "2"}
            assert s.value("waitress_workers") == 2
        per_worker = {w: s.value("waitress_requests_total", worker=w) for w in ("1", "2")}

        # A rolling restart: the old workers' counters stay in the totals.
        server.signal(signal.SIGHUP)
        server.wait_serving(4)
        assert server.get("/")[0] == 200

        s = scrape_until(
            metrics_port,
            lambda s: s.value("waitress_workers") == 2 and s.value("waitress_requests_total") == total + 1,
            "2 workers and every request counted",
            timeout=20,
        )
        for w, count in per_worker.items():
            assert s.value("waitress_requests_total", worker=w) >= count
    finally:
        server.stop()
