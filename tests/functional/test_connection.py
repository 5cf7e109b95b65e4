"""Persistent connections and pipelining (RFC 9112 sections 9.3 and 9.3.2).

Waitress keeps HTTP/1.1 connections open unless the client says ``Connection: close``; an
HTTP/1.0 client gets a persistent connection only if it asks with ``Connection: keep-alive``
and the response has a Content-Length (otherwise the body is delimited by closing).
Pipelined requests are served one at a time and answered strictly in order.
"""

import os

from functional.harness import assert_serves, build_request, chunked


def test_http11_keeps_connection_open_by_default(server):
    with server.connect() as conn:
        for i in range(3):
            conn.send(build_request("GET", "/uri?n=%d" % i))
            resp = conn.read_response()
            assert resp.status == 200
            assert resp.version == "1.1"
            assert resp.body == b"/uri?n=%d" % i
            assert resp.header("Connection") is None


def test_http11_connection_close_is_honoured(server):
    with server.connect() as conn:
        conn.send(build_request("GET", "/hello", [("Connection", "close")]))
        resp = conn.read_response()
        assert resp.status == 200
        assert resp.body == b"Hello, world!"
        assert resp.header("Connection") == "close"
        conn.assert_closed()
    assert_serves(server)


def test_http10_closes_by_default(server):
    with server.connect() as conn:
        conn.send(build_request("GET", "/hello", version="1.0"))
        resp = conn.read_response()
        assert resp.version == "1.0"
        assert resp.status == 200
        assert resp.body == b"Hello, world!"
        assert resp.header("Connection") == "close"
        conn.assert_closed()


def test_http10_keep_alive_with_content_length(server):
    with server.connect() as conn:
        for i in range(3):
            conn.send(
                build_request("GET", "/uri?n=%d" % i, [("Connection", "keep-alive")], version="1.0")
            )
            resp = conn.read_response()
            assert resp.version == "1.0"
            assert resp.status == 200
            assert resp.header("Connection") == "Keep-Alive"
            assert resp.header("Content-Length") == str(len(resp.body))
            assert resp.body == b"/uri?n=%d" % i


def test_http10_keep_alive_without_content_length_closes(server):
    # A streamed body cannot be chunked for HTTP/1.0, so the close delimits it.
    with server.connect() as conn:
        conn.send(build_request("GET", "/chunks?n=2", [("Connection", "keep-alive")], version="1.0"))
        resp = conn.read_response()
        assert resp.status == 200
        assert resp.header("Connection") == "close"
        assert resp.close_delimited
        assert resp.body == b"0:xxxxxxxxxx;1:xxxxxxxxxx;"
    assert_serves(server)


def test_http10_response_version_for_http10_request(server):
    resp = server.get("/environ/x", version="1.0")
    assert resp.version == "1.0"
    assert resp.json()["environ"]["SERVER_PROTOCOL"] == ["str", "HTTP/1.0"]


def test_pipelined_requests_answered_in_order(server):
    # The first request is slow; later ones must still wait their turn.
    reqs = [
        build_request("GET", "/sleep?ms=200&n=0"),
        build_request("POST", "/echo?n=1", body=b"first body"),
        build_request("GET", "/uri?n=2"),
        build_request(
            "POST",
            "/echo?n=3",
            [("Transfer-Encoding", "chunked")],
            body=chunked(b"chunked pipelined body", [7, 7, 100]),
        ),
        build_request("GET", "/hello"),
    ]
    with server.connect() as conn:
        conn.send(b"".join(reqs))
        bodies = [conn.read_response().body for _ in reqs]
    assert bodies == [
        b"/sleep?ms=200&n=0",
        b"first body",
        b"/uri?n=2",
        b"chunked pipelined body",
        b"Hello, world!",
    ]


def test_pipelined_requests_sent_byte_by_byte(server):
    reqs = b"".join(build_request("GET", "/uri?n=%d" % i) for i in range(3))
    with server.connect() as conn:
        for i in range(len(reqs)):
            conn.send(reqs[i : i + 1])
        bodies = [conn.read_response().body for _ in range(3)]
    assert bodies == [b"/uri?n=0", b"/uri?n=1", b"/uri?n=2"]


def test_pipelined_large_bodies_stay_intact(server):
    big = bytes(range(256)) * 1024  # 256 KiB
    reqs = [
        build_request("POST", "/echo", body=big),
        build_request("POST", "/echo", body=big[::-1]),
        build_request("GET", "/uri?last"),
    ]
    with server.connect() as conn:
        sender = conn.send_in_background(b"".join(reqs))
        r1, r2, r3 = (conn.read_response() for _ in range(3))
        sender.join(5)
        assert not sender.errors
    assert r1.body == big
    assert r2.body == big[::-1]
    assert r3.body == b"/uri?last"


def test_pipelined_request_after_a_body_read_in_large_pieces(server):
    # A body this large is read 256 KiB at a time while that much remains;
    # the request pipelined right behind it must be neither lost nor taken
    # for body bytes.
    big = os.urandom(1024 * 1024 + 1000)
    reqs = [build_request("POST", "/echo", body=big), build_request("GET", "/uri?after")]
    with server.connect() as conn:
        sender = conn.send_in_background(b"".join(reqs))
        r1, r2 = (conn.read_response() for _ in range(2))
        sender.join(5)
        assert not sender.errors
    assert r1.body == big
    assert r2.body == b"/uri?after"


def test_pipeline_stops_after_connection_close(server):
    # Nothing after a request carrying Connection: close is served on that connection.
    reqs = build_request("GET", "/uri?n=0", [("Connection", "close")]) + build_request(
        "GET", "/uri?n=1"
    )
    with server.connect() as conn:
        conn.send(reqs)
        resp = conn.read_response()
        assert resp.body == b"/uri?n=0"
        conn.assert_closed()
    assert_serves(server)


def test_blank_lines_between_pipelined_requests_are_ignored(server):
    # RFC 9112 section 2.2: a server SHOULD ignore at least one empty line before a request.
    with server.connect() as conn:
        conn.send(build_request("GET", "/uri?n=0") + b"\r\n" + build_request("GET", "/uri?n=1"))
        assert conn.read_response().body == b"/uri?n=0"
        assert conn.read_response().body == b"/uri?n=1"


def test_client_half_close_after_request_still_gets_response(server):
    with server.connect() as conn:
        conn.send(build_request("GET", "/hello", [("Connection", "close")]))
        conn.shutdown_write()
        resp = conn.read_response()
        assert resp.body == b"Hello, world!"


def test_many_concurrent_connections(server):
    conns = [server.connect() for _ in range(20)]
    try:
        for i, c in enumerate(conns):
            c.send(build_request("GET", "/uri?c=%d" % i))
        for i, c in enumerate(conns):
            assert c.read_response().body == b"/uri?c=%d" % i
    finally:
        for c in conns:
            c.close()


def test_client_disconnect_mid_request_does_not_hurt_server(server):
    with server.connect() as conn:
        conn.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\npartial")
    with server.connect() as conn:
        conn.send(b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Half")
    assert_serves(server)
