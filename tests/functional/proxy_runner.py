"""Run ``waitress.proxy_headers.proxy_headers_middleware`` over a table of environs.

Used two ways with the same code, so both sides of a comparison do exactly the same thing:

* imported (``run_cases``) in the pytest process, which runs the package under test;
* as a script, ``PYTHON proxy_runner.py < cases.json > results.json``, with another
  interpreter (real Waitress 3.0.2 in a reference venv).

It imports nothing from the test tree, so any interpreter with a ``waitress`` can run it.

A case is ``{"environ": {str: str}, "options": {...}}``; options are the middleware's keyword
arguments (``trusted_proxy_headers`` as a list). A result is ``{"status", "body", "environ",
"warnings", "error"}``: the status line and body the middleware produced (``"app"`` when it
called the application), the environ the application saw (string values only), the messages
logged (formatted), and ``"ExcType: message"`` if the middleware raised.
"""

import io
import json
import logging
import sys


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def run_case(case):
    from waitress.proxy_headers import proxy_headers_middleware

    opts = dict(case.get("options", {}))
    if opts.get("trusted_proxy_headers") is not None:
        opts["trusted_proxy_headers"] = set(opts["trusted_proxy_headers"])

    logger = logging.Logger("proxy-runner")
    capture = _Capture()
    logger.addHandler(capture)
    logger.propagate = False

    seen = {}

    def app(environ, start_response):
        seen.update(environ)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"app"]

    status = []

    def start_response(s, headers, exc_info=None):
        status.append(s)

    environ = dict(case["environ"])
    environ.setdefault("wsgi.input", io.BytesIO(b""))
    wrapped = proxy_headers_middleware(app, logger=logger, **opts)
    result = {"status": None, "body": None, "environ": None, "warnings": [], "error": None}
    try:
        body = b"".join(wrapped(environ, start_response))
        result["status"] = status[0] if status else None
        result["body"] = body.decode("latin-1")
    except Exception as exc:  # noqa: BLE001 - reported to the caller
        result["error"] = "%s: %s" % (type(exc).__name__, exc)
    if seen:
        result["environ"] = {k: v for k, v in seen.items() if isinstance(v, str)}
    result["warnings"] = capture.messages
    return result


def run_cases(cases):
    return [run_case(case) for case in cases]


if __name__ == "__main__":
    json.dump(run_cases(json.load(sys.stdin)), sys.stdout)
