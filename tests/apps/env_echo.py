"""An application that answers every request with the environ it was given, as JSON.

Used behind proxies (the proxy-header tests, nginx) and under ``url_prefix``, where the path
the app sees may be empty or anything at all, so it does not route on PATH_INFO. Values that
are str, int, bool or None are reported as they are; other values as their type name.
``?sleep_ms=N`` makes it wait first (so requests overlap).

``factory`` is an app factory for ``--call`` and PasteDeploy (``paste.app_factory``): it
returns the same app, reporting its configuration under ``"config"``.
"""

import json
import os
import time
from urllib.parse import parse_qs


def _plain(value):
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if isinstance(value, tuple):
        return list(value)
    return "<%s>" % type(value).__name__


def make_app(config=None):
    def app(environ, start_response):
        query = parse_qs(environ.get("QUERY_STRING", ""))
        if "sleep_ms" in query:
            time.sleep(int(query["sleep_ms"][-1]) / 1000.0)
        body = environ["wsgi.input"].read()
        data = {
            "environ": {k: _plain(v) for k, v in environ.items()},
            "body": body.decode("latin-1"),
            "pid": os.getpid(),
        }
        if config is not None:
            data["config"] = config
        out = json.dumps(data, sort_keys=True).encode("utf-8")
        start_response(
            "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(out)))]
        )
        return [out]

    return app


app = make_app()


def factory(global_config=None, **local_config):
    """App factory: ``--call apps.env_echo:factory`` or ``paste.app_factory``."""
    return make_app({"global": dict(global_config or {}), "local": local_config})
