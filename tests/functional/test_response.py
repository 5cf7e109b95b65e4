"""Response framing and headers.

Content-Length comes from the app, or is computed when the app_iter is a one-item sequence;
otherwise HTTP/1.1 responses are chunked and HTTP/1.0 responses are delimited by closing the
connection. HEAD, 204 and 304 responses carry no body. Every response has Date and Server.
"""

import email.utils
import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from functional.harness import assert_serves, build_request

DATE_RE = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT$")


def assert_connection_semantics(conn, resp):
    """The Connection header tells the truth: either the server closes, or it serves on."""
    if resp.wants_close:
        conn.assert_closed()
    else:
        conn.send(build_request("GET", "/uri?after"))
        assert conn.read_response().body == b"/uri?after"


def test_content_length_computed_for_one_item_list(server):
    resp = server.get("/hello")
    assert resp.header("Content-Length") == "13"
    assert resp.header("Transfer-Encoding") is None
    assert not resp.chunked
    assert resp.body == b"Hello, world!"


def test_two_item_list_is_chunked_on_http11(server):
    with server.connect() as conn:
        conn.send(build_request("GET", "/list2"))
        resp = conn.read_response()
        assert resp.header("Content-Length") is None
        assert resp.chunked
        assert resp.chunk_sizes == [6, 5]
        assert resp.body == b"part1-part2"
        assert_connection_semantics(conn, resp)


def test_generator_response_is_chunked_on_http11(server):
    with server.connect() as conn:
        conn.send(build_request("GET", "/chunks?n=4&size=5"))
        resp = conn.read_response()
        assert resp.status == 200
        assert resp.header("Transfer-Encoding") == "chunked"
        assert resp.header("Content-Length") is None
        # One chunk on the wire per non-empty item the app yields.
        assert resp.chunk_sizes == [8, 8, 8, 8]
        assert resp.body == b"0:xxxxx;1:xxxxx;2:xxxxx;3:xxxxx;"
        assert_connection_semantics(conn, resp)
    assert_serves(server)


def test_generator_response_with_leading_empty_item(server):
    with server.connect() as conn:
        conn.send(build_request("GET", "/chunks?n=2&size=1&empty_first=1"))
        resp = conn.read_response()
        assert resp.status == 200
        assert resp.chunked
        assert resp.body == b"0:x;1:x;"
        assert 0 not in resp.chunk_sizes


def test_large_chunked_response(server):
    with server.connect() as conn:
        conn.send(build_request("GET", "/chunks?n=50&size=100000"))
        resp = conn.read_response()
        assert resp.body == b"".join(b"%d:" % i + b"x" * 100000 + b";" for i in range(50))


def test_generator_response_is_close_delimited_on_http10(server):
    with server.connect() as conn:
        conn.send(build_request("GET", "/chunks?n=3&size=2", version="1.0"))
        resp = conn.read_response()
        assert resp.version == "1.0"
        assert resp.header("Transfer-Encoding") is None
        assert resp.header("Content-Length") is None
        assert resp.close_delimited
        assert resp.body == b"0:xx;1:xx;2:xx;"
    assert_serves(server)


def test_write_callable_with_content_length(server):
    with server.connect() as conn:
        conn.send(build_request("GET", "/write?cl=1"))
        resp = conn.read_response()
        assert resp.header("Content-Length") == "18"
        assert resp.body == b"first-second-third"
        assert_connection_semantics(conn, resp)


def test_write_callable_without_content_length(server):
    with server.connect() as conn:
        conn.send(build_request("GET", "/write"))
        resp = conn.read_response()
        assert resp.chunked
        assert resp.body == b"first-second-third"
        assert_connection_semantics(conn, resp)


def test_write_callable_http10(server):
    with server.connect() as conn:
        conn.send(build_request("GET", "/write", version="1.0"))
        resp = conn.read_response()
        assert resp.body == b"first-second-third"


def test_head_has_no_body_and_same_headers_as_get(server):
    with server.connect() as conn:
        conn.send(build_request("GET", "/head"))
        get = conn.read_response()
        conn.send(build_request("HEAD", "/head") + build_request("GET", "/uri?after-head"))
        head = conn.read_response("HEAD")
        after = conn.read_response()
    assert get.body == b"body that GET returns and HEAD must not"
    assert head.status == 200

    def comparable(resp):
        return [(n, v) for n, v in resp.headers if n != "Date"]

    assert comparable(head) == comparable(get)
    assert head.header("Content-Length") == str(len(get.body))
    # Had the HEAD response carried a body, it would have been read as the next status line.
    assert after.status == 200
    assert after.body == b"/uri?after-head"


@pytest.mark.parametrize("code", ["204", "304"])
def test_no_body_statuses(server, code):
    mark = server.log_mark()
    with server.connect() as conn:
        conn.send(build_request("GET", "/status/" + code))
        resp = conn.read_response()
        assert resp.status == int(code)
        assert resp.header("X-Status-Test") == code
        assert resp.header("Transfer-Encoding") is None
        assert resp.header("Content-Length") in (None, "0")
        # The app's body must not appear, neither here nor as garbage before the next response.
        assert_connection_semantics(conn, resp)
    log = server.wait_for_log("application-written content was ignored", mark)
    assert (
        "application-written content was ignored due to HTTP response that may not "
        "contain a message-body" in log
    )
    assert_serves(server)


def test_date_and_server_headers(server):
    resp = server.get("/hello")
    assert resp.header("Server") == "waitress"
    date = resp.header("Date")
    assert DATE_RE.match(date), date
    assert email.utils.parsedate_to_datetime(date).tzname() == "UTC"
    assert resp.header("Via") is None


def test_app_supplied_server_and_date_are_kept(server):
    resp = server.get("/headers?server=1&date=1")
    assert resp.header("Server") == "app-server/1.0"
    assert resp.header("Date") == "Tue, 01 Jan 2019 00:00:00 GMT"
    assert resp.header("Via") == "waitress"


def test_header_names_are_capitalized_and_repeats_kept(server):
    resp = server.get("/headers")
    names = resp.header_names()
    assert "Content-Type" in names
    assert "X-Lower-Case-Name" in names
    assert resp.header("X-Lower-Case-Name") == "v1"
    assert resp.header_values("Set-Cookie") == ["a=1", "b=2"]


def test_ident_option_changes_server_header(server_factory, transport):
    s = server_factory.get(transport=transport, ident="custom-ident")
    resp = s.get("/environ/x")
    assert resp.header("Server") == "custom-ident"
    assert resp.json()["environ"]["SERVER_SOFTWARE"] == ["str", "custom-ident"]


def test_too_many_bytes_for_content_length_are_cut(server):
    # The excess must never reach the wire: it would be read as the next response.
    mark = server.log_mark()
    with server.connect() as conn:
        conn.send(build_request("GET", "/content-length?declared=10&actual=20") + build_request("GET", "/uri?next"))
        resp = conn.read_response()
        assert resp.body == b"0123456789"
        nxt = conn.read_response()
        assert nxt.status == 200
        assert nxt.body == b"/uri?next"
    log = server.wait_for_log("exceeded the number of bytes specified by Content-Length", mark)
    assert "application-written content exceeded the number of bytes specified by Content-Length header (10)" in log


def test_too_few_bytes_for_content_length_close_the_connection(server):
    mark = server.log_mark()
    with server.connect() as conn:
        conn.send(build_request("GET", "/content-length?declared=30&actual=20"))
        resp = conn.read_head()
        assert resp.header("Content-Length") == "30"
        # The short body, then the close: the client can tell the response was cut.
        assert conn.read_until_close() == b"01234567890123456789"
    log = server.wait_for_log("application returned too few bytes", mark)
    assert "application returned too few bytes (20) for specified Content-Length (30) via app_iter" in log
    assert_serves(server)


def test_not_found_from_app(server):
    resp = server.get("/no/such/endpoint")
    assert resp.status == 404
    assert resp.reason == "Not Found"
    assert resp.body == b"not found"


# -- large items, sent without a copy --------------------------------------------------------

SHARED_BIG = bytes(range(256)) * 1000 + b"end"  # as apps/wsgi_app.py


def _settled_refs(server, timeout=5.0):
    """The app's reference count of its shared item once it stops changing (references the
    server holds for sent items go within its 100 ms round)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        refs = server.get("/shared-big?refs=1").json()["refs"]
        if refs == last or time.monotonic() > deadline:
            return refs
        last = refs
        time.sleep(0.25)


@pytest.mark.parametrize(
    "framing, expected",
    [
        ("length", SHARED_BIG),
        ("short", SHARED_BIG[:-1000]),
        ("chunked", SHARED_BIG * 2),
        ("generator", b"head:" + SHARED_BIG + b":tail"),
    ],
)
def test_one_large_item_shared_by_concurrent_responses(server, framing, expected):
    # Items of 32 KiB and more reach the socket from the app's own bytes object, held until
    # written: the same object answering many connections at once arrives intact on each,
    # and every reference the server took is given back.
    before = _settled_refs(server)
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: server.get("/shared-big?framing=" + framing), range(40)))
    for resp in responses:
        assert resp.status == 200
        assert resp.body == expected
    assert _settled_refs(server) == before


def test_a_large_item_is_held_not_copied_until_written(server):
    # While a client reads nothing, the responses' large items wait in the server as references
    # to the app's object (a copy would leave its count alone); once read, all are given back.
    before = _settled_refs(server)
    requests = 40  # 40 x 256 KB: more than the sockets buffer
    with server.connect() as conn:
        conn.send(build_request("GET", "/shared-big") * requests)
        deadline = time.monotonic() + 5
        held = before
        while held == before and time.monotonic() < deadline:
            time.sleep(0.1)
            held = server.get("/shared-big?refs=1").json()["refs"]
        assert held > before
        for _ in range(requests):
            assert conn.read_response().body == SHARED_BIG
    assert _settled_refs(server) == before
