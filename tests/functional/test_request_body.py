"""Request bodies: Content-Length and chunked framing, 100-continue, spilling past
``inbuf_overflow``, and the ``wsgi.input`` file API.

The whole body is read before the app runs, and a chunked body reaches the app de-chunked with
a CONTENT_LENGTH and without HTTP_TRANSFER_ENCODING (Waitress's contract).
"""

import hashlib
import io
import os
import socket
import time
from urllib.parse import quote

import pytest

from apps.wsgi_app import run_input_ops
from functional.harness import Connection, assert_serves, build_request, chunked


def test_content_length_body_echoed(server):
    body = b"name=value&other=\x00\xff binary"
    resp = server.request("POST", "/echo", [("Content-Type", "application/x-www-form-urlencoded")], body)
    assert resp.status == 200
    assert resp.body == body
    assert resp.header("X-Content-Length") == str(len(body))


def test_zero_content_length(server):
    resp = server.request("POST", "/echo", [("Content-Length", "0")])
    assert resp.status == 200
    assert resp.body == b""
    assert resp.header("X-Content-Length") == "0"


def test_body_arriving_in_pieces(server):
    body = b"abcdefghij" * 100
    req = build_request("POST", "/echo", body=body)
    with server.connect() as conn:
        for i in range(0, len(req), 97):
            conn.send(req[i : i + 97])
        assert conn.read_response().body == body


@pytest.mark.parametrize(
    "sizes",
    [[1] * 30, [5, 10, 15], [1000]],
    ids=["one-byte-chunks", "mixed", "single"],
)
def test_chunked_request_body_is_dechunked(server, sizes):
    body = b"The quick brown fox jumps over"
    resp = server.request(
        "POST", "/echo", [("Transfer-Encoding", "chunked")], chunked(body, sizes)
    )
    assert resp.status == 200
    assert resp.body == body
    assert resp.header("X-Content-Length") == str(len(body))
    assert resp.header("X-Transfer-Encoding") == "-"


def test_chunked_request_with_extensions_trailer_and_uppercase_hex(server):
    wire = b"5;name=value\r\nhello\r\nA\r\n, world!!!\r\n0\r\nX-Trailer: yes\r\n\r\n"
    resp = server.request("POST", "/echo", [("Transfer-Encoding", "Chunked")], wire)
    assert resp.status == 200
    assert resp.body == b"hello, world!!!"
    assert resp.header("X-Content-Length") == "15"


def test_chunked_request_sent_byte_by_byte_then_next_request(server):
    body = bytes(range(256))
    req = build_request("POST", "/echo", [("Transfer-Encoding", "chunked")], chunked(body, [100, 100, 56]))
    req += build_request("GET", "/uri?after")
    with server.connect() as conn:
        for i in range(len(req)):
            conn.send(req[i : i + 1])
        assert conn.read_response().body == body
        assert conn.read_response().body == b"/uri?after"


def test_empty_chunked_body(server):
    resp = server.request("POST", "/echo", [("Transfer-Encoding", "chunked")], b"0\r\n\r\n")
    assert resp.status == 200
    assert resp.body == b""
    assert resp.header("X-Content-Length") == "0"


def test_expect_100_continue(server):
    body = b"body sent only after 100 Continue"
    head = build_request(
        "POST", "/echo", [("Expect", "100-continue"), ("Content-Length", str(len(body)))]
    )
    with server.connect() as conn:
        conn.send(head)
        interim = conn.read_head()
        assert interim.raw_head == b"HTTP/1.1 100 Continue\r\n\r\n"
        conn.send(body)
        resp = conn.read_response("POST")
        assert resp.status == 200
        assert resp.body == body
        # The connection stays usable.
        conn.send(build_request("GET", "/uri?next"))
        assert conn.read_response().body == b"/uri?next"


def test_expect_100_continue_sent_when_body_came_with_the_head(server):
    # Waitress sends the interim response whenever the request asked for it,
    # also when the client did not wait and the body is already here.
    body = b"sent without waiting"
    req = build_request(
        "POST", "/echo", [("Expect", "100-continue"), ("Content-Length", str(len(body)))], body
    )
    with server.connect() as conn:
        conn.send(req)
        interim = conn.read_head()
        assert interim.raw_head == b"HTTP/1.1 100 Continue\r\n\r\n"
        resp = conn.read_response("POST")
        assert resp.status == 200
        assert resp.body == body
        conn.send(build_request("GET", "/uri?after"))
        assert conn.read_response().body == b"/uri?after"


def test_expect_100_continue_chunked(server):
    body = b"chunked after continue"
    head = build_request("POST", "/echo", [("Expect", "100-continue"), ("Transfer-Encoding", "chunked")])
    with server.connect() as conn:
        conn.send(head)
        assert conn.read_head().status == 100
        conn.send(chunked(body, [4, 100]))
        resp = conn.read_response("POST")
        assert resp.body == body
        assert resp.header("X-Content-Length") == str(len(body))


def test_expect_100_continue_on_second_pipelined_request(server):
    # The interim response must come after the first request's response, never inside it.
    first = build_request("GET", "/sleep?ms=100")
    body = b"second body"
    second = build_request("POST", "/echo", [("Expect", "100-continue"), ("Content-Length", str(len(body)))])
    with server.connect() as conn:
        conn.send(first + second)
        assert conn.read_response().body == b"/sleep?ms=100"
        assert conn.read_head().status == 100
        conn.send(body)
        assert conn.read_response("POST").body == body


def test_no_100_continue_for_http10(server):
    body = b"0123456789"
    req = build_request(
        "POST", "/echo", [("Expect", "100-continue"), ("Content-Length", "10")], body, version="1.0"
    )
    with server.connect() as conn:
        conn.send(req)
        resp = conn.read_response("POST")
        # The first thing on the wire is the final response.
        assert resp.status == 200
        assert resp.version == "1.0"
        assert resp.body == body


@pytest.fixture
def small_inbuf_server(server_factory, transport):
    return server_factory.get(transport=transport, inbuf_overflow=1024)


def test_body_larger_than_inbuf_overflow(small_inbuf_server):
    body = os.urandom(1024 * 1024)
    resp = small_inbuf_server.request("POST", "/digest", body=body)
    assert resp.status == 200
    assert resp.json() == {
        "length": len(body),
        "sha256": hashlib.sha256(body).hexdigest(),
        "content_length": str(len(body)),
        "transfer_encoding": None,
    }
    assert_serves(small_inbuf_server)


def test_chunked_body_larger_than_inbuf_overflow(small_inbuf_server):
    body = os.urandom(1024 * 1024 + 17)
    wire = chunked(body, [65536 + 3] * 17)
    resp = small_inbuf_server.request("POST", "/digest", [("Transfer-Encoding", "chunked")], wire)
    assert resp.status == 200
    assert resp.json() == {
        "length": len(body),
        "sha256": hashlib.sha256(body).hexdigest(),
        "content_length": str(len(body)),
        "transfer_encoding": None,
    }


def test_large_body_with_default_settings(server):
    body = os.urandom(3 * 1024 * 1024)
    resp = server.request("POST", "/digest", body=body)
    assert resp.json()["sha256"] == hashlib.sha256(body).hexdigest()


def test_spilled_bodies_of_changing_sizes_read_back_exactly(small_inbuf_server):
    # Spill files are kept and reused between bodies: each body reads back (to EOF) as
    # itself, whether the body before it in that file was longer or shorter.
    # (A file goes back just after its response is sent: the pause lets the next body find it.
    # OverflowableBufferTests checks the reuse itself.)
    for size in [300_000, 5_000, 1_500, 300_000, 2_048, 70_000, 1_025]:
        body = os.urandom(size)
        for headers, wire in [([], body), ([("Transfer-Encoding", "chunked")], chunked(body, [4096] * (size // 4096 + 1)))]:
            time.sleep(0.05)
            resp = small_inbuf_server.request("POST", "/digest", headers, wire)
            assert resp.status == 200
            assert resp.json()["length"] == size
            assert resp.json()["sha256"] == hashlib.sha256(body).hexdigest()
    assert_serves(small_inbuf_server)


def test_a_body_sent_back_with_file_wrapper_is_not_overwritten_by_a_later_one(small_inbuf_server):
    # The response reads the spilled body's file after its task has ended (sendfile, here to a
    # client that reads slowly): that file must not be handed to the next body meanwhile.
    server = small_inbuf_server
    family = socket.AF_UNIX if server.transport == "unix" else socket.AF_INET
    slow = socket.socket(family, socket.SOCK_STREAM)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.settimeout(10)
    slow.connect(server.address)
    first = b"A" * 1_500_000
    with Connection(slow) as conn:
        conn.send(build_request("POST", "/wrap-input", body=first))
        time.sleep(0.3)  # its task ends; most of the body is still unsent
        later = b"B" * 1_500_000
        resp = server.request("POST", "/digest", body=later)
        assert resp.json()["sha256"] == hashlib.sha256(later).hexdigest()
        resp = conn.read_response("POST")
    assert resp.status == 200
    assert len(resp.body) == len(first)
    assert resp.body == first
    assert_serves(server)


@pytest.mark.parametrize("size", [100, 5000], ids=["memory", "spilled"])
def test_wsgi_input_is_closed_when_its_request_ends(small_inbuf_server, size):
    # As Waitress closes the body's buffer after each request: an app that keeps wsgi.input
    # finds it closed, and cannot reach a later request's body through it (a spilled body's
    # file is reused for later bodies).
    body = (b"0123456789" * 600)[:size]
    assert small_inbuf_server.request("POST", "/keep-input", body=body).body == body[:10]
    later = os.urandom(size)
    resp = small_inbuf_server.request("POST", "/digest", body=later)
    assert resp.json()["sha256"] == hashlib.sha256(later).hexdigest()
    assert small_inbuf_server.get("/kept-input").json() == {"closed": True, "read": "ValueError"}


# -- wsgi.input -------------------------------------------------------------------------------

INPUT_BODY = b"line one\nline two is longer\n\nshort\nlast line without newline"

INPUT_OPS = [
    "read",
    "read:-1",
    "read:0",
    "read:5,read:5,read",
    "read:1000,read:10,read",
    "readline,readline,readline,readline,readline,readline",
    "readline:3,readline:100,readline:0,readline",
    "readline:-1,read",
    "readlines",
    "readlines:1",
    "readlines:10",
    "readlines:-1",
    "read:3,readlines",
    "iter",
    "readline,iter",
    "read,read:5,readline,readlines,iter",
]


@pytest.fixture(params=["memory", "spilled"])
def input_server(request, server_factory, transport):
    # "spilled": inbuf_overflow below the body size, so the body sits in a temporary file.
    if request.param == "memory":
        return server_factory.get(transport=transport)
    return server_factory.get(transport=transport, inbuf_overflow=16)


@pytest.mark.parametrize("ops", INPUT_OPS)
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_wsgi_input_file_api(input_server, ops, framing):
    expected = run_input_ops(io.BytesIO(INPUT_BODY), ops)
    if framing == "chunked":
        resp = input_server.request(
            "POST", "/input?ops=" + quote(ops), [("Transfer-Encoding", "chunked")],
            chunked(INPUT_BODY, [7] * 20),
        )
    else:
        resp = input_server.request("POST", "/input?ops=" + quote(ops), body=INPUT_BODY)
    assert resp.status == 200, resp
    assert resp.json() == expected


def test_wsgi_input_empty_without_body(server):
    resp = server.get("/input?ops=" + quote("read,read:5,readline,readlines,iter"))
    assert resp.json() == ["", "", "", [], []]
