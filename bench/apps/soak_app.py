"""The app bench/soak.py drives: hello, an upload echo and a long stream."""

BLOCK = bytes(range(256)) * 256  # 64 KiB


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/echo":
        body = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    if path == "/stream":
        blocks = int(environ.get("QUERY_STRING", "") or "1024")
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return (BLOCK for _ in range(blocks))
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [b"Hello, world!"]
