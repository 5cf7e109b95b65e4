"""The default test app (``apps.wsgi_app``) behind a recorder of every request it is given.

Hostile-input tests need to know not only what the client got back but what reached the
application: a smuggled request that the server answered nothing for could still have been
run. Every call is logged (method and REQUEST_URI) before it is passed on; ``/hits`` returns
the log as JSON. ``/info`` (and any OPTIONS request, whose target may be ``*``) answers with
the request-line parts of the environ and every ``HTTP_*`` key, so a test can see exactly which
header fields reached the app.
"""

import json
import threading

from apps import wsgi_app

_lock = threading.Lock()
_hits = []


def _json(start_response, obj):
    body = json.dumps(obj, sort_keys=True).encode("utf-8")
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def info(environ, start_response):
    body = environ["wsgi.input"].read()
    return _json(
        start_response,
        {
            "REQUEST_METHOD": environ["REQUEST_METHOD"],
            "PATH_INFO": environ["PATH_INFO"],
            "QUERY_STRING": environ.get("QUERY_STRING"),
            "REQUEST_URI": environ.get("REQUEST_URI"),
            "SERVER_PROTOCOL": environ.get("SERVER_PROTOCOL"),
            "CONTENT_LENGTH": environ.get("CONTENT_LENGTH"),
            "headers": {k: v for k, v in environ.items() if k.startswith("HTTP_")},
            "body": body.decode("latin-1"),
        },
    )


def app(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/hits":
        with _lock:
            hits = list(_hits)
        return _json(start_response, hits)
    with _lock:
        _hits.append("%s %s" % (environ["REQUEST_METHOD"], environ.get("REQUEST_URI", path)))
    if path.startswith("/info") or environ["REQUEST_METHOD"] == "OPTIONS":
        return info(environ, start_response)
    return wsgi_app.app(environ, start_response)
