"""WSGI app for bench/output.py: response-output workloads (see bench/README.md).

Every server serves this same module:

- ``/``             hello world (the harness's readiness check)
- ``/file``         16 MiB file via ``environ['wsgi.file_wrapper'](open(path, 'rb'), 65536)``
- ``/file-noseek``  the same file wrapped in an object with only read()/close()
                    (no fileno/seek/tell), so a server cannot use sendfile and
                    must read and write blocks; Content-Length set by the app
- ``/mem64k``       64 KiB from memory, a one-item list, Content-Length set
- ``/stream``       100 x 1 KiB from a generator, no Content-Length (chunked)
- ``/echo``         the request body (read fully from wsgi.input) sent back

The file is ``$BENCH_OUTPUT_FILE`` (default ``bench/.data/file16m.bin``);
bench/output.py creates it. A server without ``wsgi.file_wrapper`` (Granian)
gets PEP 3333's fallback wrapper (an iterable of 64 KiB reads); the response
header ``X-Bench-Wrapper`` says which one was used (``server``/``fallback``).
"""

import os

HELLO = b"Hello, World!"
FILE_PATH = os.environ.get("BENCH_OUTPUT_FILE") or os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".data", "file16m.bin")
BLOCK = 65536
MEM64K = bytes(range(256)) * 256          # 64 KiB
ITEM1K = b"0123456789abcdef" * 64          # 1 KiB
STREAM_ITEMS = 100


class FallbackFileWrapper:
    """PEP 3333's example wrapper, for servers without wsgi.file_wrapper."""

    def __init__(self, filelike, blksize=8192):
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self):
        return self

    def __next__(self):
        data = self.filelike.read(self.blksize)
        if data:
            return data
        raise StopIteration


class ReadOnly:
    """A file-like object with read() and close() only: no fileno, seek or tell."""

    __slots__ = ("_f",)

    def __init__(self, f):
        self._f = f

    def read(self, size=-1):
        return self._f.read(size)

    def close(self):
        self._f.close()


def _file_size():
    return os.stat(FILE_PATH).st_size


def _stream():
    for _ in range(STREAM_ITEMS):
        yield ITEM1K


def _send_file(environ, start_response, f):
    wrapper = environ.get("wsgi.file_wrapper")
    kind = "server" if wrapper is not None else "fallback"
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(_file_size())),
                              ("X-Bench-Wrapper", kind)])
    return (wrapper or FallbackFileWrapper)(f, BLOCK)


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/file":
        return _send_file(environ, start_response, open(FILE_PATH, "rb"))
    if path == "/file-noseek":
        return _send_file(environ, start_response, ReadOnly(open(FILE_PATH, "rb")))
    if path == "/mem64k":
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(len(MEM64K)))])
        return [MEM64K]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return _stream()
    if path == "/echo":
        stream = environ["wsgi.input"]
        try:
            length = int(environ.get("CONTENT_LENGTH") or -1)
        except ValueError:
            length = -1
        if length < 0:
            body = stream.read()
        else:
            parts = []
            left = length
            while left > 0:
                chunk = stream.read(left)
                if not chunk:
                    break
                parts.append(chunk)
                left -= len(chunk)
            body = b"".join(parts)
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    if path == "/":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(HELLO)))])
        return [HELLO]
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "9")])
    return [b"not found"]
