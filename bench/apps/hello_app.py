"""Hello-world WSGI app served by every contender in the benchmarks."""

BODY = b"Hello, World!"
CONTENT_LENGTH = str(len(BODY))


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", CONTENT_LENGTH)])
    return [BODY]
