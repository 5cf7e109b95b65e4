"""create_server's argument checks, server options visible from outside, and shutdown."""

import os
import stat
import threading

import pytest

from functional.harness import assert_serves, build_request


def hello_app(environ, start_response):  # pragma: no cover - never served
    start_response("200 OK", [])
    return [b""]


def test_unknown_create_server_keyword_raises():
    import waitress

    with pytest.raises(ValueError, match="Unknown adjustment 'no_such_option'"):
        waitress.create_server(hello_app, no_such_option=1)


def test_create_server_without_app_raises():
    import waitress

    with pytest.raises(ValueError, match='The "app" passed to ``create_server`` was ``None``'):
        waitress.create_server(None, host="127.0.0.1", port=0)


def test_conflicting_listen_options_raise():
    import waitress

    with pytest.raises(ValueError, match="unix_socket may not be set if host or port is set"):
        waitress.create_server(hello_app, unix_socket="/tmp/never.sock", port=0)


@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_sigterm_stops_server_cleanly(private_server, transport):
    s = private_server(transport=transport)
    assert_serves(s)
    idle = s.connect()  # an open keep-alive connection must not block shutdown
    try:
        idle.send(build_request("GET", "/hello"))
        assert idle.read_response().status == 200
        code = s.stop()
    finally:
        idle.close()
    assert code == 0, s.log_text()
    assert b"stopped" in s.stdout_rest


def test_unix_socket_perms(private_server):
    s = private_server(transport="unix", unix_socket_perms="660")
    mode = stat.S_IMODE(os.stat(s.unix_path).st_mode)
    assert mode == 0o660
    assert_serves(s)


def test_default_unix_socket_perms(server_factory):
    s = server_factory.get(transport="unix")
    assert stat.S_IMODE(os.stat(s.unix_path).st_mode) == 0o600


def test_single_thread_serves_concurrent_clients(server_factory, transport):
    # With one worker, slow requests queue up; every client still gets its own answer.
    s = server_factory.get(transport=transport, threads=1)
    results = {}

    def client(i):
        results[i] = s.get("/sleep?ms=50&c=%d" % i).body

    threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == {i: b"/sleep?ms=50&c=%d" % i for i in range(4)}
