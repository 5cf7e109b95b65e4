"""PasteDeploy end to end: ``use = egg:waitress#main`` in an ini file.

A subprocess loads the app (``loadapp``, an app factory in ``apps.env_echo``) and the server
(``loadserver``, which finds ``waitress:serve_paste`` through the package's
``paste.server_runner`` entry point) from a generated ini, and serves. Every option in the
ini is a string, as PasteDeploy passes them; the server must coerce them as Waitress does.
"""

import importlib
import json
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from functional.command_server import TESTS_DIR, CommandServer, can_connect, free_port, http_get

SCRIPT = textwrap.dedent(
    """
    import signal, sys
    sys.path.insert(0, {tests!r})

    def on_term(signum, frame):
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_term)
    from paste.deploy import loadapp, loadserver
    app = loadapp("config:" + {ini!r})
    server = loadserver("config:" + {ini!r})
    print("loaded", type(server).__name__, flush=True)
    sys.exit(server(app))
    """
)


@pytest.fixture(scope="module")
def pastedeploy():
    """PasteDeploy in the interpreter under test (installed with pip if missing)."""
    try:
        importlib.import_module("paste.deploy")
    except ImportError:
        out = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "pastedeploy"],
                             capture_output=True, text=True, timeout=300)
        if out.returncode != 0:
            pytest.skip("PasteDeploy is not installed and pip could not install it:\n" + out.stderr[-1500:])
        importlib.invalidate_caches()
    return True


def write_ini(path, server_lines, app_lines=()):
    ini = "[app:main]\nuse = call:apps.env_echo:factory\n%s\n\n[server:main]\nuse = egg:waitress#main\n%s\n" % (
        "\n".join(app_lines), "\n".join(server_lines))
    with open(path, "w") as f:
        f.write(ini)
    return path


@pytest.fixture
def paste_server(pastedeploy, tmp_path):
    started = []

    def start(server_lines, app_lines=(), listening=()):
        ini = write_ini(os.path.join(str(tmp_path), "app.ini"), server_lines, app_lines)
        code = SCRIPT.format(tests=TESTS_DIR, ini=ini)
        server = CommandServer([sys.executable, "-c", code], str(tmp_path), cwd=str(tmp_path)).start()
        started.append(server)
        if listening:
            server.wait_listening(listening)
        return server

    yield start
    for server in started:
        server.stop()


def test_ini_serves_with_string_options(paste_server):
    port = free_port()
    server = paste_server(
        [
            "host = 127.0.0.1",
            "port = %d" % port,
            "threads = 2",
            "ident = paste-ident",
            "url_prefix = /pasted/",
            "url_scheme = https",
            "trusted_proxy = 127.0.0.1",
            "trusted_proxy_headers = x-forwarded-for x-forwarded-host",
            "log_untrusted_proxy_headers = true",
            "clear_untrusted_proxy_headers = yes",
            "connection_limit = 20",
            "channel_timeout = 60",
            "expose_tracebacks = false",
            "asyncore_use_poll = true",
            "max_request_body_size = 1048576",
        ],
        ["greeting = hello from ini"],
        listening=[("127.0.0.1", port)],
    )
    addr = ("127.0.0.1", port)
    status, hdrs, body = http_get(addr, "/pasted/path?q=1", [("X-Forwarded-For", "192.0.2.33"),
                                                            ("X-Forwarded-Host", "shop.example:8443"),
                                                            ("X-Forwarded-Port", "1")])
    assert status == 200, body
    data = json.loads(body)
    env = data["environ"]
    assert hdrs["server"] == "paste-ident"
    assert (env["SCRIPT_NAME"], env["PATH_INFO"], env["QUERY_STRING"]) == ("/pasted", "/path", "q=1")
    assert env["wsgi.url_scheme"] == "https"
    # trusted_proxy_headers given as one space-separated string became a set of two.
    assert env["REMOTE_ADDR"] == "192.0.2.33"
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("shop.example", "8443")
    assert "HTTP_X_FORWARDED_PORT" not in env
    # The app factory got the ini's settings.
    assert data["config"]["local"] == {"greeting": "hello from ini"}
    assert data["config"]["global"]["__file__"].endswith("app.ini")
    assert data["pid"] == server.proc.pid

    err = server.wait_for_stderr("Removed untrusted headers")
    # (No "Serving on" line: as in Waitress, serve() logs it at INFO and basicConfig()
    # leaves the root logger at WARNING.)
    assert "Removed untrusted headers (X-Forwarded-Port)" in err, server.output()

    # threads = 2 (a string) is two workers: of three slow requests at once, exactly one waits.
    results = []

    def slow():
        results.append(http_get(addr, "/pasted/slow?sleep_ms=400", timeout=10)[0])

    start = time.monotonic()
    threads = [threading.Thread(target=slow) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    elapsed = time.monotonic() - start
    assert results == [200, 200, 200]
    assert elapsed >= 0.75, "three 400 ms requests on two threads took only %.2fs" % elapsed
    assert elapsed < 2.0, "three 400 ms requests on two threads took %.2fs" % elapsed

    assert server.stop() == 0, server.output()
    assert not can_connect(addr)


def test_ini_listen_option_with_two_addresses(paste_server):
    ports = [free_port(), free_port()]
    while ports[0] == ports[1]:
        ports[1] = free_port()
    paste_server(["listen = 127.0.0.1:%d 127.0.0.1:%d" % tuple(ports), "threads = 1"],
                 listening=[("127.0.0.1", p) for p in ports])
    for p in ports:
        status, _, body = http_get(("127.0.0.1", p), "/x")
        assert status == 200
        assert json.loads(body)["environ"]["SERVER_PORT"] == str(p)


def test_ini_unix_socket(paste_server, tmp_path):
    path = os.path.join(str(tmp_path), "p.sock")
    paste_server(["unix_socket = %s" % path, "unix_socket_perms = 640"], listening=[path])
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o640)
    status, _, body = http_get(path, "/u")
    assert status == 200
    assert json.loads(body)["environ"]["REMOTE_ADDR"] == "localhost"


@pytest.mark.parametrize(
    "line, message",
    [
        ("threads = two", "invalid literal for int()"),
        ("unknown_option = 1", "Unknown adjustment 'unknown_option'"),
        ("trusted_proxy_headers = x-forwarded-nothing", "Received unknown trusted_proxy_headers value"),
    ],
)
def test_ini_bad_option_fails_to_start(paste_server, line, message):
    port = free_port()
    server = paste_server(["host = 127.0.0.1", "port = %d" % port, line,
                           "trusted_proxy = 127.0.0.1" if "trusted" in line else ""])
    code = server.run_to_end(timeout=20)
    assert code not in (0, None), server.output()
    assert message in server.stderr(), server.output()
    assert not can_connect(("127.0.0.1", port))


def test_ini_access_log(paste_server, tmp_path):
    # The ini's own interpolation would read "%(...)s", so a format string there is written
    # with "%%"; the named formats need nothing.
    port = free_port()
    path = os.path.join(str(tmp_path), "access.log")
    paste_server(
        [
            "host = 127.0.0.1",
            "port = %d" % port,
            "access_log = %s" % path,
            "access_log_format = %%(m)s %%(U)s %%(s)s",
        ],
        listening=[("127.0.0.1", port)],
    )
    assert http_get(("127.0.0.1", port), "/from-ini")[0] == 200
    deadline = time.monotonic() + 10
    lines = []
    while not lines and time.monotonic() < deadline:
        if os.path.exists(path):
            with open(path) as f:
                lines = f.read().splitlines()
        time.sleep(0.05)
    assert lines == ["GET /from-ini 200"]


def test_ini_tls_options(paste_server, tmp_path):
    trustme = pytest.importorskip("trustme")
    import requests

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    chain, key, ca_file = (os.path.join(str(tmp_path), n) for n in ("chain.pem", "key.pem", "ca.pem"))
    cert.cert_chain_pems[0].write_to_path(chain)
    cert.private_key_pem.write_to_path(key)
    ca.cert_pem.write_to_path(ca_file)
    port = free_port()
    paste_server(["listen = 127.0.0.1:%d" % port, "ssl_certfile = " + chain, "ssl_keyfile = " + key,
                  "ssl_min_version = TLSv1.3", "ssl_verify = none"],
                 listening=[("127.0.0.1", port)])
    response = requests.get("https://127.0.0.1:%d/x" % port, verify=ca_file, timeout=10)
    environ = response.json()["environ"]
    assert (environ["wsgi.url_scheme"], environ["HTTPS"], environ["SSL_PROTOCOL"]) == ("https", "on", "TLSv1.3")
