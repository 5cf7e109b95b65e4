"""A small WSGI application to try the server with::

    python -m waitress --listen=127.0.0.1:8080 waitress.demo:app

``/`` shows the request's WSGI environ, ``/stream`` sends its body in a few
chunks (streamed, since it has no Content-Length), and ``/echo`` sends back
the body of a POST.
"""
import html
import time
from typing import Any, Callable, Dict, Iterable, Iterator

Environ = Dict[str, Any]
StartResponse = Callable[..., Any]

_PAGE = """\
<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>waitress demo</title></head>
<body>
<h1>It works</h1>
<p>Try <a href="stream">/stream</a> for a streamed response, or POST a body
to /echo: <code>curl --data hello http://{host}{prefix}/echo</code></p>
<h2>This request's environ</h2>
<table>
{rows}
</table>
</body>
</html>
"""


def _environ_page(environ: Environ) -> bytes:
    rows = "\n".join(
        "<tr><th>{}</th><td>{}</td></tr>".format(
            html.escape(key), html.escape(repr(environ[key]))
        )
        for key in sorted(environ)
    )
    host = environ.get("HTTP_HOST") or "{SERVER_NAME}:{SERVER_PORT}".format(**environ)
    return _PAGE.format(
        host=html.escape(host),
        prefix=html.escape(environ.get("SCRIPT_NAME", "")),
        rows=rows,
    ).encode("utf-8")


def _stream() -> Iterator[bytes]:
    for i in range(1, 6):
        yield f"chunk {i} of 5\n".encode("ascii")
        time.sleep(0.2)  # so a client sees the chunks arrive one by one


def _echo(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    if environ["REQUEST_METHOD"] != "POST":
        start_response(
            "405 Method Not Allowed",
            [("Content-Type", "text/plain"), ("Allow", "POST")],
        )
        return [b"POST a body to /echo\n"]
    body = environ["wsgi.input"].read()
    content_type = environ.get("CONTENT_TYPE") or "application/octet-stream"
    start_response(
        "200 OK",
        [("Content-Type", content_type), ("Content-Length", str(len(body)))],
    )
    return [body]


def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """The demo WSGI application."""
    path = environ.get("PATH_INFO", "/")
    if path == "/":
        body = _environ_page(environ)
        start_response(
            "200 OK",
            [
                ("Content-Type", "text/html; charset=utf-8"),
                ("Content-Length", str(len(body))),
            ],
        )
        return [body]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
        return _stream()
    if path == "/echo":
        return _echo(environ, start_response)
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"Not Found\n"]
