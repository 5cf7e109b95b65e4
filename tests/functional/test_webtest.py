"""Tools that drive Waitress's server classes from Python, in the test process.

WebTest's ``webtest.http.StopableWSGIServer`` (used by Pyramid and WebOb test suites)
subclasses ``TcpWSGIServer``: ``run()`` calls ``self.asyncore.loop(timeout, map=self._map)``
in a thread, and ``shutdown()`` calls ``handle_close()`` on everything in ``self._map`` until it
is empty, then ``maintenance(0)`` and ``task_dispatcher.shutdown()``.  Anki's media server
(``aqt.mediasrv``) stops a ``create_server`` server run in a thread the same way.  Both are
exercised here with the real WebTest from PyPI.
"""

import socket
import threading
import time

import pytest
import requests

webtest_http = pytest.importorskip("webtest.http")

from waitress.server import create_server  # noqa: E402

pytestmark = pytest.mark.timeout(60)


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/sleep":
        time.sleep(0.5)
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    text = b"%s %s %s" % (environ["REQUEST_METHOD"].encode(), path.encode(), body)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(text)))])
    return [text]


def refused(host, port):
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_stopable_wsgi_server_serves_and_shuts_down():
    server = webtest_http.StopableWSGIServer.create(app)
    try:
        assert server.wait() is True
        with requests.Session() as session:
            # Several requests on one keep-alive connection, a body, WebTest's own route.
            for i in range(3):
                resp = session.get(server.application_url + "item/%d" % i, timeout=5)
                assert resp.status_code == 200
                assert resp.text == "GET /item/%d " % i
            resp = session.post(server.application_url + "form", data=b"a=1", timeout=5)
            assert resp.text == "POST /form a=1"
            resp = session.get(server.application_url + "__application__", timeout=5)
            assert resp.text == "server started"
    finally:
        assert server.shutdown() is True
    assert server._map == {}
    server.runner.join(10)
    assert not server.runner.is_alive()
    assert refused(server.adj.host, server.adj.port)


def test_a_second_server_in_the_same_process():
    # Test suites start one live server per test class or module.
    for _ in range(2):
        server = webtest_http.StopableWSGIServer.create(app)
        try:
            assert server.wait() is True
            assert requests.get(server.application_url + "again", timeout=5).text == "GET /again "
        finally:
            server.shutdown()
        server.runner.join(10)
        assert not server.runner.is_alive()


def test_map_teardown_lets_a_request_in_flight_finish():
    # The pattern Anki's media server uses: run() in a thread, then handle_close()
    # on each socket-map entry and task_dispatcher.shutdown().
    server = create_server(app, host="127.0.0.1", port=0)
    host, port = server.effective_host, server.effective_port
    runner = threading.Thread(target=server.run, daemon=True)
    runner.start()
    url = "http://%s:%s" % (host, port)
    deadline = time.monotonic() + 10
    while True:
        try:
            requests.get(url + "/ready", timeout=2)
            break
        except requests.ConnectionError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    results = []
    slow = threading.Thread(target=lambda: results.append(requests.get(url + "/sleep", timeout=10)))
    slow.start()
    time.sleep(0.2)  # the slow request is in the app now
    for entry in list(server._map.values()):
        entry.handle_close()
    assert server._map == {}
    assert server.task_dispatcher.shutdown() is True
    slow.join(10)
    assert [r.status_code for r in results] == [200]
    assert results[0].text == "GET /sleep "
    runner.join(10)
    assert not runner.is_alive()
    assert refused(host, port)
    assert server.socket is None


def test_loop_with_a_count_is_refused_clearly():
    server = create_server(app, host="127.0.0.1", port=0)
    try:
        with pytest.raises(ValueError, match="count"):
            server.asyncore.loop(0.5, map=server._map, count=1)
    finally:
        server.close()
    assert server.socket is None
