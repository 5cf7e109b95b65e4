"""The engine's access log (``access_log``, ``access_log_format``; docs/access-log.md).

Real server subprocesses: lines for normal requests, for errors the engine answers itself, for
keep-alive and pipelined requests, under worker processes, to standard output and to a Python
logger; a rename and SIGUSR1 (logrotate) moves writing to a new file; a log that cannot be
written loses lines, never requests. ``combined`` is compared byte for byte with Paste's
TransLogger around the same app, for the same requests.
"""

import json
import os
import re
import signal
import time

import pytest

from functional.harness import build_request
from functional.workers_harness import Load, Supervised, write_app

# Apache's combined format; the groups: address, user, time, request line, status, bytes,
# referer, user agent.
COMBINED = re.compile(
    r'^(\S+) - (\S+) \[(\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\] '
    r'"((?:[^"\\]|\\.)*)" (\d{3}) (\S+) "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)"$'
)


def wait_for_lines(path, count, timeout=10.0):
    """The file's lines once it has at least ``count`` (lines are written within a second)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = read_lines(path)
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def read_lines(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    assert data == b"" or data.endswith(b"\n"), "a partial line: %r" % data[-200:]
    return data.decode("latin-1").splitlines()


def serves(server):
    assert server.get("/hello").status == 200


@pytest.fixture
def utc(monkeypatch):
    # TransLogger prints time.altzone's offset whenever the zone has summer time, even in
    # winter; in UTC both print +0000.
    monkeypatch.setenv("TZ", "UTC")


# The same requests to both servers: (method, target, headers, body).
SAME_REQUESTS = [
    ("GET", "/uri", [], b""),
    ("GET", "/hello", [("User-Agent", "agent/1.0 (x; y)"), ("Referer", "http://example.com/page")], b""),
    ("GET", "/uri/a%20b/c+d?x=1&y=%2F", [], b""),
    ("GET", "/uri/%7Euser/%E9t%C3%A9", [], b""),
    ("HEAD", "/head", [("User-Agent", "")], b""),
    ("POST", "/echo", [("Content-Length", "5")], b"hello"),
    ("GET", "/chunks?n=2", [], b""),
    ("GET", "/missing", [("Referer", "")], b""),
    ("GET", "/status/204", [], b""),
]


def translogger_lines(server, count, timeout=10.0):
    """The combined-format lines TransLogger logged, once there are ``count``."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [l for l in server.log_text().splitlines() if COMBINED.match(l)]
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def send_all(server, requests):
    with server.connect() as conn:
        for method, target, headers, body in requests:
            conn.send(build_request(method, target, headers, body))
            conn.read_response(method)


def test_combined_is_translogger_byte_for_byte(private_server, tmp_path, utc):
    path = str(tmp_path / "access.log")
    ours = private_server(access_log=path)
    paste = private_server("apps.translogged:app")
    send_all(ours, SAME_REQUESTS)
    send_all(paste, SAME_REQUESTS)
    mine = wait_for_lines(path, len(SAME_REQUESTS))
    theirs = translogger_lines(paste, len(SAME_REQUESTS))
    assert len(mine) == len(theirs) == len(SAME_REQUESTS), (mine, theirs)

    def without_time(line):
        # TransLogger stamps the time the app was called, the engine the request's first
        # byte: they may fall in different seconds. Both must be well-formed.
        match = COMBINED.match(line)
        assert match, line
        return line.replace(match.group(3), "TIME")

    assert [without_time(l) for l in mine] == [without_time(l) for l in theirs]
    # Spot checks of what the comparison covers.
    assert mine[0].startswith('127.0.0.1 - - [') and mine[0].endswith('"GET /uri HTTP/1.1" 200 4 "-" "-"')
    assert '"GET /uri/a%20b/c%2Bd?x=1&y=%2F HTTP/1.1"' in mine[2]
    assert '"GET /uri/~user/%C3%A9t%C3%83%C2%A9 HTTP/1.1"' in mine[3]
    assert mine[1].endswith('"GET /hello HTTP/1.1" 200 - "http://example.com/page" "agent/1.0 (x; y)"')
    stamp = COMBINED.match(mine[0]).group(3)
    assert abs(time.mktime(time.strptime(stamp[:-6], "%d/%b/%Y:%H:%M:%S")) - time.time()) < 600


def test_address_is_the_one_a_trusted_proxy_names(private_server, tmp_path, utc):
    # %(h)s is REMOTE_ADDR as the app sees it, as TransLogger logs it: the client's address
    # when a trusted proxy gives it, the peer's when the request carries none.
    path = str(tmp_path / "access.log")
    proxy = dict(trusted_proxy="127.0.0.1", trusted_proxy_headers="x-forwarded-for")
    ours = private_server(access_log=path, **proxy)
    paste = private_server("apps.translogged:app", **proxy)
    requests = [
        ("GET", "/uri", [("X-Forwarded-For", "203.0.113.7")], b""),
        ("GET", "/uri", [], b""),
        ("GET", "/uri", [("X-Forwarded-For", "2001:db8::1, 198.51.100.2")], b""),
    ]
    send_all(ours, requests)
    send_all(paste, requests)
    mine = wait_for_lines(path, len(requests))
    theirs = translogger_lines(paste, len(requests))
    assert [COMBINED.match(l).group(1) for l in mine] == ["203.0.113.7", "127.0.0.1", "198.51.100.2"]
    assert [COMBINED.match(l).group(1) for l in theirs] == [COMBINED.match(l).group(1) for l in mine]
    serves(ours)


def test_client_values_are_escaped(private_server, tmp_path):
    # The one deliberate difference from TransLogger, which writes them raw: quotes and
    # backslashes are escaped and other bytes outside printable ASCII written as \xHH (as
    # Apache does), so a client cannot end a quoted field or forge a line.
    path = str(tmp_path / "access.log")
    server = private_server(access_log=path)
    resp = server.get("/uri", [("User-Agent", 'a "b" \\ c\tz\xe9')])
    assert resp.status == 200
    (line,) = wait_for_lines(path, 1)
    assert line.endswith('"-" "a \\"b\\" \\\\ c\\x09z\\xe9"'), line
    assert COMBINED.match(line)


def test_gunicorn_atoms(private_server, tmp_path):
    path = str(tmp_path / "access.log")
    fmt = (
        '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" '
        "%(D)s %(T)s %(M)s %(L)s %(P)s %({REMOTE_PORT}e)s %(m)s %(U)s %(q)s %(H)s %(B)s %(p)s "
        "[%({x-trace}i)s] [%({content-type}o)s] [%({x-absent}o)s] 100%%"
    )
    server = private_server(access_log=path, access_log_format=fmt)
    with server.connect() as conn:
        port = conn.sock.getsockname()[1]
        conn.send(
            build_request(
                "GET",
                "/sleep?ms=150",
                [("Authorization", "Basic Ym9iOnNlY3JldA=="), ("X-Trace", "t-1"), ("User-Agent", "ua")],
            )
        )
        resp = conn.read_response()
    assert resp.status == 200
    (line,) = wait_for_lines(path, 1)
    head, _, rest = line.partition('"GET /sleep?ms=150 HTTP/1.1" ')
    assert re.match(r"^127\.0\.0\.1 - bob \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] $", head), line
    fields = rest.split(" ")
    assert fields[:4] == ["200", str(len(resp.body)), '"-"', '"ua"'], line
    micros, seconds, millis, decimal = int(fields[4]), int(fields[5]), int(fields[6]), fields[7]
    # The app slept 150 ms: the request took at least that.
    assert micros >= 150_000
    assert millis == micros // 1000 and seconds == micros // 1_000_000
    assert decimal == "%d.%06d" % (micros // 1_000_000, micros % 1_000_000)
    assert fields[8] == fields[9] == str(port)
    assert fields[10:15] == ["GET", "/sleep", "ms=150", "HTTP/1.1", str(len(resp.body))]
    assert int(fields[15]) != os.getpid()
    assert fields[16:] == ["[t-1]", "[text/plain]", "[-]", "100%"]


def test_json_lines(private_server, tmp_path):
    path = str(tmp_path / "access.log")
    server = private_server(access_log=path, access_log_format="json")
    with server.connect() as conn:
        conn.send(build_request("GET", "/uri/caf%C3%A9?q=\"1\"", [("User-Agent", 'a\\b "c"')]))
        resp = conn.read_response()
        conn.send(b"GET /x HTTP/9.9\r\n\r\n")
        assert conn.read_response().status == 505
    lines = wait_for_lines(path, 2)
    first, second = [json.loads(l) for l in lines]
    assert first["method"] == "GET" and first["target"] == '/uri/caf%C3%A9?q="1"'
    assert first["protocol"] == "HTTP/1.1" and first["status"] == 200
    assert first["bytes"] == len(resp.body) and first["user_agent"] == 'a\\b "c"'
    assert first["referer"] is None and first["remote_addr"] == "127.0.0.1"
    assert isinstance(first["remote_port"], int) and first["duration_us"] >= 0
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$", first["time"])
    assert second["status"] == 505 and second["request_line"] == "GET /x HTTP/9.9"


def test_engine_answered_errors_are_logged(private_server, tmp_path):
    path = str(tmp_path / "access.log")
    server = private_server(
        access_log=path,
        max_request_header_size=1000,
        max_request_body_size=100,
        trusted_proxy="127.0.0.1",
        trusted_proxy_headers="x-forwarded-proto",
    )
    cases = [
        (b"GET /big HTTP/1.1\r\nX-Big: " + b"a" * 1200 + b"\r\n\r\n", 431),
        (b"POST /echo HTTP/1.1\r\nContent-Length: 5000\r\n\r\n", 413),
        (b"GET /v HTTP/2.0\r\n\r\n", 505),
        (b"G\x01T / HTTP/1.1\r\n\r\n", 400),
        (b"GET /proxied HTTP/1.1\r\nX-Forwarded-Proto: gopher\r\n\r\n", 400),
    ]
    for raw, status in cases:
        with server.connect() as conn:
            conn.send(raw)
            assert conn.read_response().status == status
        serves(server)
    lines = wait_for_lines(path, 2 * len(cases))
    assert len(lines) == 2 * len(cases), lines
    errors, hellos = lines[0::2], lines[1::2]
    assert all('"GET /hello HTTP/1.1" 200 - ' in l for l in hellos), hellos
    parsed = [COMBINED.match(l) for l in errors]
    assert all(parsed), errors
    assert [int(m.group(5)) for m in parsed] == [status for _, status in cases]
    assert parsed[0].group(4) == "GET /big HTTP/1.1"
    assert parsed[1].group(4) == "POST /echo HTTP/1.1"
    assert parsed[2].group(4) == "GET /v HTTP/2.0"
    assert parsed[3].group(4) == "G\\x01T / HTTP/1.1"
    assert parsed[4].group(4) == "GET /proxied HTTP/1.1"
    # Every engine page carries its Content-Length, which combined logs.
    assert all(m.group(6).isdigit() for m in parsed)


def test_keep_alive_and_pipelined_requests(private_server, tmp_path):
    path = str(tmp_path / "access.log")
    server = private_server(access_log=path, access_log_format='%(r)s %(s)s %(B)s')
    with server.connect() as conn:
        conn.send(build_request("GET", "/uri?1"))
        conn.read_response()
        conn.send(b"".join(build_request("GET", "/uri?%d" % i) for i in range(2, 6)))
        for _ in range(4):
            assert conn.read_response().status == 200
        conn.send(build_request("GET", "/sleep?ms=10"))
        conn.read_response()
    lines = wait_for_lines(path, 6)
    assert lines == ["GET /uri?%d HTTP/1.1 200 %d" % (i, len("/uri?1")) for i in range(1, 6)] + [
        "GET /sleep?ms=10 HTTP/1.1 200 12"
    ]


def read_stdout_lines(server, count, timeout=10.0):
    """The next ``count`` lines of the server's stdout (after its port line)."""
    deadline = time.monotonic() + timeout
    data = server.stdout_rest
    fd = server.proc.stdout.fileno()
    os.set_blocking(fd, False)
    while data.count(b"\n") < count and time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            time.sleep(0.02)
            continue
        if not chunk:
            break
        data += chunk
    return data.decode("latin-1").splitlines()[:count]


def test_standard_output(private_server):
    server = private_server(access_log="-", access_log_format="%(m)s %(U)s %(s)s")
    for i in range(3):
        assert server.get("/uri/%d" % i).status == 200
    lines = read_stdout_lines(server, 3)
    assert lines == ["GET /uri/%d 200" % i for i in range(3)]


def test_python_logger(private_server):
    server = private_server(access_log="logger:wsgi.access", access_log_format="%(m)s %(U)s %(s)s")
    assert server.get("/uri/py").status == 200
    text = server.wait_for_log("GET /uri/py 200")
    assert "INFO:wsgi.access:GET /uri/py 200" in text


def test_sigusr1_reopens_after_rename(private_server, tmp_path):
    path = str(tmp_path / "access.log")
    server = private_server(access_log=path, access_log_format="%(U)s")
    assert server.get("/uri/before").status == 200
    assert wait_for_lines(path, 1) == ["/uri/before"]
    os.rename(path, path + ".1")
    assert server.get("/uri/between").status == 200
    server.proc.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert os.path.exists(path), server.log_text()
    assert server.get("/uri/after").status == 200
    assert wait_for_lines(path, 1) == ["/uri/after"]
    assert wait_for_lines(path + ".1", 2) == ["/uri/before", "/uri/between"]
    assert server.alive()


def test_unwritable_log_loses_lines_not_requests(private_server):
    # /dev/full: every write fails with ENOSPC, as on a full disk.
    server = private_server(access_log="/dev/full")
    for _ in range(3):
        serves(server)
    text = server.wait_for_log("access log: write failed")
    assert "No space left on device" in text
    assert text.count("access log: write failed") == 1
    serves(server)


def test_closed_stdout_loses_lines_not_requests(private_server):
    server = private_server(access_log="-")
    server.proc.stdout.close()
    for _ in range(3):
        serves(server)
    server.wait_for_log("access log: write failed")
    serves(server)
    assert server.alive()


def test_bad_format_is_refused(private_server):
    from functional.harness import ServerStartError

    with pytest.raises(ServerStartError) as info:
        private_server(access_log="-", access_log_format="%(h)s %(nope)s")
    assert "unknown atom %(nope)s" in str(info.value)


@pytest.fixture
def supervised(tmp_path):
    started = []

    def start(args):
        write_app(str(tmp_path), "v1")
        s = Supervised(tmp_path, args).start()
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def test_workers_write_whole_lines(supervised, tmp_path):
    path = str(tmp_path / "access.log")
    # A long line (the user agent) makes torn or interleaved writes visible.
    server = supervised(["--workers=2", "--access-log=" + path, "--access-log-format=%(p)s %(U)s %({x-pad}i)s"])
    pids = server.wait_serving(2)
    pad = "p" * 3000
    with Load(server.port, clients=8, target="/?{id}") as load:
        deadline = time.monotonic() + 30
        while len(load.results) < 400 and time.monotonic() < deadline:
            time.sleep(0.05)
    answered = len(load.results)
    assert answered >= 400 and not load.failures
    # Requests with the long header, on fresh connections, from several threads at once.
    import concurrent.futures

    def padded(i):
        sock = __import__("socket").create_connection(("127.0.0.1", server.port), timeout=5)
        from functional.harness import Connection

        with Connection(sock) as conn:
            conn.send(build_request("GET", "/padded", [("X-Pad", pad)]))
            return conn.read_response().status

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(padded, range(200)))
    assert statuses == [200] * 200
    lines = wait_for_lines(path, answered + 200)
    assert len(lines) == answered + 200
    pattern = re.compile(r"^(\d+) (/|/padded) (-|%s)$" % pad)
    assert all(pattern.match(l) for l in lines), [l[:80] for l in lines if not pattern.match(l)][:3]
    assert {int(pattern.match(l).group(1)) for l in lines} <= set(pids)
    assert sum(1 for l in lines if l.endswith(pad)) == 200

    # SIGUSR1 to the supervisor reaches every worker and kills none.
    os.rename(path, path + ".1")
    server.signal(signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert os.path.exists(path), server.log()
    assert server.get("/")[0] == 200
    assert "exited" not in server.log() and "killed" not in server.log()
    assert len(server.serving_pids()) == 2
