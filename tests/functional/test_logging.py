"""What the server logs, on which logger, at which level (Waitress 3.0.2's messages).

The launcher configures ``logging.basicConfig(level=INFO)``, so each record reaches the server
log as ``LEVEL:logger:message``. Tests marked with the ``impl`` fixture run the same scenario
against real Waitress 3.0.2 too (``functional/reference.py``), which shows the expectation is
Waitress's behaviour and not a guess; the reference runs are skipped if no reference
interpreter can be had.

* ``waitress``: "Exception while serving /path" with the traceback (ERROR).
* ``waitress.queue``: "Task queue depth is N" (WARNING) when requests wait for a worker.
* ``waitress``: a client that resets its connection (SO_LINGER 0) while a response streams is
  an ordinary disconnect in Waitress: "Client disconnected while serving /path" at INFO and no
  "Socket error" (wasyncore treats ECONNRESET/EPIPE as _DISCONNECTED), whatever
  ``log_socket_errors`` says. Waitress logs "Socket error" (with a traceback) only for other
  OSErrors from recv/send, which a local client cannot provoke.
* ``waitress``: connection_limit transitions, WARNING when reached and INFO when below again.
"""

import re
import socket
import struct
import threading
import time
import uuid

import pytest

from functional.harness import Connection, build_request
from functional.reference import reference_problem, reference_python, start_reference_server

APP = "apps.wsgi_app:app"
OUTPUT_APP = "apps.output_app:app"


@pytest.fixture(params=["ours", "waitress"])
def impl(request, private_server):
    """start(app, **options) for the server under test, or for real Waitress 3.0.2."""
    if request.param == "ours":
        yield private_server
        return
    if reference_python() is None:
        pytest.skip("real Waitress 3.0.2 unavailable: %s" % reference_problem())
    started = []

    def start(app=APP, transport="tcp", **options):
        s = start_reference_server(app, transport, **options)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


# -- "Exception while serving" ------------------------------------------------------------------


@pytest.mark.parametrize(
    "target, path",
    [
        ("/error?msg=%s", "/error"),
        ("/error/a%%20b?msg=%s", "/error/a b"),
        ("/error-after-headers?msg=%s", "/error-after-headers"),
    ],
)
def test_exception_while_serving_is_logged_with_traceback(impl, target, path):
    s = impl(APP)
    msg = uuid.uuid4().hex
    with s.connect() as conn:
        conn.send(build_request("GET", target % msg))
        try:
            conn.read_response()
        except AssertionError:
            pass  # after the head was sent, the response is cut short
    log = s.wait_for_log(msg)
    lines = log.splitlines()
    i = lines.index("ERROR:waitress:Exception while serving %s" % path)
    assert lines[i + 1] == "Traceback (most recent call last):"
    tail = lines[i + 2:]
    assert any(re.match(r"RuntimeError: (late )?boom %s$" % msg, line) for line in tail), log
    assert_serves_app(s)


def assert_serves_app(s):
    resp = s.get("/hello")
    assert resp.status == 200 and resp.body == b"Hello, world!"


@pytest.mark.parametrize(
    "route, error",
    [("/str-body", r"TypeError: .*\bstr\b"), ("/not-iterable", r"TypeError: .*\bint\b")],
    ids=["str-body-item", "not-iterable"],
)
def test_errors_found_by_the_server_are_logged_with_a_traceback(impl, route, error):
    # Raised outside the app's frames (by the server's iteration), still a whole
    # "Traceback (most recent call last):" record, as Waitress logs it.
    s = impl(APP)
    mark = s.log_mark()
    with s.connect() as conn:
        conn.send(build_request("GET", route + "?msg=x"))
        try:
            conn.read_response()
        except AssertionError:
            pass  # Waitress cuts the response short after its head
    deadline = time.monotonic() + 5
    while "Exception while serving %s" % route not in s.log_since(mark):
        assert time.monotonic() < deadline, s.log_since(mark)
        time.sleep(0.05)
    time.sleep(0.2)
    lines = s.log_since(mark).splitlines()
    i = lines.index("ERROR:waitress:Exception while serving %s" % route)
    assert lines[i + 1] == "Traceback (most recent call last):", lines
    assert any(re.match(error, line) for line in lines[i + 2:]), lines
    assert_serves_app(s)


def test_worker_threads_are_named_as_waitress_names_them(impl):
    # Pyramid's default log format prints %(threadName)s.
    s = impl(APP, threads=3)
    names = []

    def ask():
        names.append(s.get("/thread?ms=300").body.decode())

    clients = [threading.Thread(target=ask) for _ in range(3)]
    for c in clients:
        c.start()
    for c in clients:
        c.join(10)
    assert sorted(names) == ["waitress-0", "waitress-1", "waitress-2"]


def test_exception_path_with_url_prefix(impl):
    """The path in the message is the whole request path, prefix included."""
    s = impl(APP, url_prefix="/pre")
    msg = uuid.uuid4().hex
    s.get("/pre/error?msg=" + msg)
    log = s.wait_for_log(msg)
    assert "ERROR:waitress:Exception while serving /pre/error\nTraceback" in log, log


# -- "Task queue depth is N" ----------------------------------------------------------------------


def _queue_depths(s, mark):
    log = s.log_since(mark)
    return log, [int(d) for d in re.findall(r"^WARNING:waitress\.queue:Task queue depth is (\d+)$", log, re.M)]


def warm_up(s):
    """One request, then a pause: the worker threads are started and waiting for work.

    Right after start-up, workers that have not reached their wait yet count as busy (in
    Waitress too), so a request arriving then may log a queue depth on a loaded machine.
    """
    assert s.get("/uri?warm-up").status == 200
    time.sleep(0.3)


def _run_clients(s, waves, ms):
    """Requests to /sleep on fresh connections: ``waves`` is [(delay_seconds, count)]; all
    connections are opened first, each wave is sent at its delay."""
    results = []
    conns = []
    for delay, count in waves:
        for _ in range(count):
            conns.append((delay, s.connect(timeout=10)))

    def client(delay, conn, i):
        with conn:
            time.sleep(delay)
            conn.send(build_request("GET", "/sleep?ms=%d&n=%d" % (ms, i)))
            results.append(conn.read_response(deadline=time.monotonic() + 15).status)

    threads = [threading.Thread(target=client, args=(d, c, i)) for i, (d, c) in enumerate(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert results == [200] * len(conns)


@pytest.mark.parametrize(
    "waves, deepest",
    [
        # Four at once: three wait for the worker.
        ([(0, 4)], 3),
        # One, then two while it runs (backlog 2), then two more while the second runs: the
        # backlog reaches 3 (the third request and the two new ones) after a first report.
        ([(0, 1), (0.05, 2), (0.3, 2)], 3),
    ],
    ids=["burst", "two-waves"],
)
def test_task_queue_depth_warning(impl, waves, deepest):
    """threads=1 and a slow app: requests wait for the only worker.

    Waitress logs one warning per queued task (so every depth up to the deepest);
    docs/differences.md says this server logs once per burst "with the deepest depth seen".
    Either way the deepest backlog must be reported on the ``waitress.queue`` logger, and
    soon (not only when some later request arrives).
    """
    s = impl(APP, threads=1)
    warm_up(s)
    mark = s.log_mark()
    _run_clients(s, waves, 250)
    # A rate-limited report may trail the burst; allow it 1.5 s (no further request: the
    # server may stay idle for hours, and the backlog must be reported when it happened).
    deadline = time.monotonic() + 1.5
    while True:
        log, depths = _queue_depths(s, mark)
        if (depths and max(depths) >= deepest) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert depths, "no 'Task queue depth' warning on the waitress.queue logger:\n" + log
    assert max(depths) == deepest, (
        "the backlog reached %d requests, but the deepest depth logged is %d "
        "(all queue warnings: %r)" % (deepest, max(depths), depths)
    )


def test_no_queue_warning_right_after_start_up(private_server):
    # Workers still starting are idle, not busy: one request at a time never waits.
    for _ in range(3):
        s = private_server(APP, threads=4)
        for i in range(3):
            assert s.get("/uri?%d" % i).status == 200
        time.sleep(0.2)
        assert "Task queue depth" not in s.log_since(0)
        s.stop()


def test_no_queue_warning_when_workers_are_free(private_server):
    s = private_server(APP, threads=4)
    warm_up(s)
    mark = s.log_mark()
    for i in range(5):
        assert s.get("/uri?%d" % i).status == 200
    time.sleep(0.2)
    assert "Task queue depth" not in s.log_since(mark)


# -- socket errors --------------------------------------------------------------------------------


def reset_during_stream(s, after_first_item):
    """GET a slow stream, then close with SO_LINGER 0 (the client sends RST)."""
    sock = s.raw_socket()
    conn = Connection(sock)
    conn.send(build_request("GET", "/paced?n=15&ms=80"))
    if after_first_item:
        deadline = time.monotonic() + 10
        resp = conn.read_head(deadline)
        assert resp.status == 200
        while not conn.buf:
            assert conn._fill(deadline)
    else:
        time.sleep(0.1)  # the app is running, nothing read yet
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@pytest.mark.parametrize("log_socket_errors", [True, False])
@pytest.mark.parametrize("after_first_item", [True, False], ids=["mid-body", "before-head-read"])
def test_connection_reset_is_a_disconnect_not_a_socket_error(impl, log_socket_errors, after_first_item):
    s = impl(OUTPUT_APP, threads=2, log_socket_errors=log_socket_errors)
    mark = s.log_mark()
    reset_during_stream(s, after_first_item)
    s.wait_for_log("Client disconnected while serving /paced", mark, timeout=10)
    time.sleep(0.4)  # a "Socket error" record may trail
    log = s.log_since(mark)
    assert "INFO:waitress:Client disconnected while serving /paced" in log, log
    assert "Socket error" not in log, (
        "a connection reset (ECONNRESET) is an ordinary disconnect for Waitress 3.0.2, logged "
        "only as 'Client disconnected while serving', with log_socket_errors=%s:\n%s"
        % (log_socket_errors, log)
    )
    assert "Traceback" not in log, log
    resp = s.get("/hello")
    assert resp.status == 200


# -- connection_limit -----------------------------------------------------------------------------

REACHED = "WARNING:waitress:total open connections reached the connection limit, no longer accepting new connections"
BELOW = "INFO:waitress:total open connections dropped below the connection limit, listening again"


def test_connection_limit_transitions_are_logged(private_server):
    s = private_server(APP, connection_limit=2)
    mark = s.log_mark()
    held = []
    try:
        for i in range(2):
            conn = s.connect()
            conn.send(build_request("GET", "/uri?held%d" % i))
            assert conn.read_response(deadline=time.monotonic() + 5).status == 200
            held.append(conn)
        log = s.wait_for_log(REACHED, mark)
        assert REACHED in log, log
        assert BELOW not in log
        # A third client waits in the backlog.
        waiting = s.connect()
        held.append(waiting)
        waiting.send(build_request("GET", "/uri?waiting"))
        time.sleep(0.3)
        assert BELOW not in s.log_since(mark)
        held.pop(0).close()
        # The slot is taken again by the waiting client at once, so the server may stay at
        # the limit; "listening again" must have been logged when it dropped below.
        resp = waiting.read_response(deadline=time.monotonic() + 5)
        assert resp.body == b"/uri?waiting"
        log = s.wait_for_log(BELOW, mark)
        assert BELOW in log, log
        assert log.index(REACHED) < log.index(BELOW)
    finally:
        for conn in held:
            conn.close()
    time.sleep(0.3)
    assert_serves_app(s)
    log = s.log_since(mark)
    # Every "reached" is followed by a "below" once everything is closed again.
    lines = [l for l in log.splitlines() if l in (REACHED, BELOW)]
    assert lines and lines[0] == REACHED and lines[-1] == BELOW, lines
    assert all(a != b for a, b in zip(lines, lines[1:])), "transitions must alternate: %r" % lines
