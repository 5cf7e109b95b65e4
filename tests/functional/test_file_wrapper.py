"""``wsgi.file_wrapper``: a real file (the server may use sendfile), a seekable in-memory
object, and a read-only stream with neither fileno nor seek. The file's current position is
where the body starts; an app Content-Length smaller than the file limits the body; the
wrapped object's ``close()`` is called once the response is done.
"""

import uuid

import pytest

from functional.harness import assert_serves, build_request


def pattern(size):
    return bytes(i % 251 for i in range(size))


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("files") / "data.bin"
    data = pattern(300 * 1024 + 7)
    path.write_bytes(data)
    return str(path), data


def test_real_file(server, data_file):
    path, data = data_file
    key = uuid.uuid4().hex
    with server.connect() as conn:
        conn.send(build_request("GET", "/file?path=%s&id=%s" % (path, key)))
        resp = conn.read_response()
        assert resp.status == 200
        assert resp.header("Content-Length") == str(len(data))
        assert resp.body == data
        # Keep-alive survives a file response.
        conn.send(build_request("GET", "/uri?after-file"))
        assert conn.read_response().body == b"/uri?after-file"
    events = server.wait_for_events(key, lambda ev: "file closed" in ev)
    assert events == ["file closed"]


def test_real_file_from_current_position(server, data_file):
    path, data = data_file
    resp = server.get("/file?path=%s&offset=1000" % path)
    assert resp.header("Content-Length") == str(len(data) - 1000)
    assert resp.body == data[1000:]


def test_real_file_limited_by_app_content_length(server, data_file):
    path, data = data_file
    with server.connect() as conn:
        conn.send(build_request("GET", "/file?path=%s&offset=10&cl=500" % path))
        resp = conn.read_response()
        assert resp.header("Content-Length") == "500"
        assert resp.body == data[10:510]
        conn.send(build_request("GET", "/uri?after"))
        assert conn.read_response().body == b"/uri?after"


def test_real_file_http10(server, data_file):
    path, data = data_file
    resp = server.get("/file?path=%s" % path, version="1.0")
    assert resp.body == data


def test_empty_real_file(server, tmp_path):
    path = tmp_path / "empty.bin"
    path.write_bytes(b"")
    with server.connect() as conn:
        conn.send(build_request("GET", "/file?path=%s" % path))
        resp = conn.read_response()
        assert resp.status == 200
        assert resp.body == b""
    assert_serves(server)


def test_bytesio_without_real_fileno(server):
    size = 100 * 1024 + 3
    with server.connect() as conn:
        conn.send(build_request("GET", "/bytesio?size=%d" % size))
        resp = conn.read_response()
        assert resp.header("Content-Length") == str(size)
        assert resp.body == pattern(size)
        conn.send(build_request("GET", "/uri?after"))
        assert conn.read_response().body == b"/uri?after"


@pytest.mark.parametrize("version", ["1.1", "1.0"])
def test_read_only_stream_without_fileno_or_seek(server, version):
    size = 50 * 1024 + 11
    key = uuid.uuid4().hex
    with server.connect() as conn:
        conn.send(build_request("GET", "/filelike?size=%d&block=4096&id=%s" % (size, key), version=version))
        resp = conn.read_response()
        assert resp.status == 200
        assert resp.body == pattern(size)
        if version == "1.1":
            assert resp.chunked
    events = server.wait_for_events(key, lambda ev: "stream closed" in ev)
    assert events == ["stream closed"]


@pytest.mark.parametrize("kind", ["rawio", "pipe"])
@pytest.mark.parametrize("with_cl", [True, False], ids=["content-length", "no-content-length"])
def test_file_with_seek_and_tell_that_is_not_seekable(server, kind, with_cl):
    # An io.RawIOBase subclass or a pipe has seek/tell, but seekable() says False:
    # it is streamed in block_size pieces (Waitress asks seekable() too), never a 500.
    size = 40 * 1024 + 5
    target = "/unseekable?kind=%s&size=%d&block=1000" % (kind, size)
    if with_cl:
        target += "&cl=%d" % size
    with server.connect() as conn:
        for _ in range(2):
            conn.send(build_request("GET", target))
            resp = conn.read_response()
            assert resp.status == 200, resp
            assert resp.body == pattern(size)
            if with_cl:
                assert resp.header("Content-Length") == str(size)
            else:
                assert resp.chunked
    assert_serves(server)
