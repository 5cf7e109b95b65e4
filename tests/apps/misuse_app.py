"""An app that keeps start_response and write() after its request is over."""

kept = {}


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/keep":
        write = start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "4")])
        kept["write"] = write
        kept["start_response"] = start_response
        return [b"kept"]
    if path == "/reuse":
        outcome = []
        for name, call in (
            ("write", lambda: kept["write"](b"stale")),
            ("start_response", lambda: kept["start_response"]("200 OK", [])),
        ):
            try:
                call()
                outcome.append("%s: no error" % name)
            except RuntimeError as exc:
                outcome.append("%s: RuntimeError: %s" % (name, exc))
        body = "\n".join(outcome).encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    start_response("404 Not Found", [("Content-Length", "0")])
    return [b""]
