"""A real Flask app served end to end and exercised with ``requests``."""

import pytest
import requests

FLASK_APP = "apps.flask_app:app"


@pytest.fixture
def base(server_factory):
    s = server_factory.get(FLASK_APP, "tcp")
    return "http://127.0.0.1:%d" % s.port


@pytest.fixture
def session():
    with requests.Session() as sess:
        yield sess


def test_get_with_query(base, session):
    r = session.get(base + "/greet", params={"name": "Zoë & co"}, timeout=10)
    assert r.status_code == 200
    assert r.text == "Hello, Zoë & co!"
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert r.headers["Server"] == "waitress"
    assert r.headers["Content-Length"] == str(len(r.content))


def test_keep_alive_session_reuses_connection(base, session):
    for i in range(5):
        r = session.get(base + "/greet", params={"name": str(i)}, timeout=10)
        assert r.text == "Hello, %d!" % i


def test_post_form(base, session):
    r = session.post(base + "/form", data={"a": "1", "b": ["x", "y"]}, timeout=10)
    assert r.status_code == 200
    assert r.json() == {"fields": {"a": ["1"], "b": ["x", "y"]}, "files": {}}


def test_post_multipart_file(base, session):
    r = session.post(
        base + "/form",
        data={"field": "v"},
        files={"upload": ("f.txt", b"file content\x00\xff")},
        timeout=10,
    )
    assert r.json() == {"fields": {"field": ["v"]}, "files": {"upload": "file content\x00\xff"}}


def test_post_json(base, session):
    payload = {"numbers": [1, 2, 3], "nested": {"ok": True}, "text": "ünïcode"}
    r = session.post(base + "/json", json=payload, timeout=10)
    assert r.status_code == 201
    assert r.json() == {"received": payload, "type": "dict"}


def test_large_json_body(base, session):
    payload = {"data": "x" * (2 * 1024 * 1024)}
    r = session.post(base + "/json", json=payload, timeout=30)
    assert r.status_code == 201
    assert r.json()["received"] == payload


def test_streamed_response(base, session):
    with session.get(base + "/stream", params={"n": 50}, stream=True, timeout=10) as r:
        assert r.status_code == 200
        assert r.headers.get("Transfer-Encoding") == "chunked"
        lines = list(r.iter_lines())
    assert lines == [("line %d" % i).encode() for i in range(50)]


def test_404(base, session):
    r = session.get(base + "/missing", timeout=10)
    assert r.status_code == 404
    r = session.get(base + "/no-such-route", timeout=10)
    assert r.status_code == 404


def test_exception_in_view(server_factory, base, session):
    s = server_factory.get(FLASK_APP, "tcp")
    mark = s.log_mark()
    r = session.get(base + "/boom", timeout=10)
    # Flask turns the exception into its own 500 page and logs it.
    assert r.status_code == 500
    assert "Internal Server Error" in r.text
    log = s.wait_for_log("RuntimeError: flask boom", mark)
    assert "RuntimeError: flask boom" in log
    assert session.get(base + "/", timeout=10).text == "index"


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_methods(base, session, method):
    r = session.request(method, base + "/methods", timeout=10)
    assert r.text == method


def test_head_request(base, session):
    r = session.head(base + "/greet", params={"name": "h"}, timeout=10)
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["Content-Length"] == str(len("Hello, h!"))
    # The session's connection is still good afterwards.
    assert session.get(base + "/", timeout=10).text == "index"


def test_server_still_serves_plain_clients(server_factory):
    s = server_factory.get(FLASK_APP, "tcp")
    r = s.get("/")
    assert r.status == 200
    assert r.body == b"index"
