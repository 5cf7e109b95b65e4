"""Callables kept by an app after its request: they must fail cleanly, never
write into another response."""


def test_stale_write_and_start_response_raise(private_server):
    srv = private_server("apps.misuse_app:app", threads=1)
    with srv.connect() as conn:
        conn.send(b"GET /keep HTTP/1.1\r\nHost: x\r\n\r\n")
        first = conn.read_response()
        assert first.body == b"kept"
        # Same connection: the stale write() must not leak into this response.
        conn.send(b"GET /reuse HTTP/1.1\r\nHost: x\r\n\r\n")
        second = conn.read_response()
    assert second.status == 200
    assert b"stale" not in second.body
    assert second.body.decode().splitlines() == [
        "write: RuntimeError: write() called after the response ended",
        "start_response: RuntimeError: start_response called after the response ended",
    ]
    assert srv.get("/keep").body == b"kept"


def test_wrong_calls_of_start_response_and_write_raise_type_errors(private_server):
    srv = private_server("apps.misuse_app:app", threads=1)
    resp = srv.get("/arguments")
    assert resp.status == 203
    assert resp.body.decode().splitlines() == [
        "one argument: TypeError: start_response() takes 2 or 3 positional arguments but 1 were given",
        "four arguments: TypeError: start_response() takes 2 or 3 positional arguments but 4 were given",
        "unknown keyword: TypeError: start_response() got an unexpected keyword argument",
        "write(): TypeError: write() takes exactly one argument",
        "write(a, b): TypeError: write() takes exactly one argument",
        "write(data=): TypeError: write() takes exactly one argument",
        "same write: True",
    ]
    assert srv.get("/keep").body == b"kept"
