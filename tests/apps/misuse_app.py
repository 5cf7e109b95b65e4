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
    if path == "/arguments":
        # Wrong calls of start_response and write raise TypeError; keyword exc_info
        # is accepted, and replaces the status while nothing was written.
        outcome = []

        def attempt(name, call):
            try:
                call()
                outcome.append("%s: no error" % name)
            except TypeError as exc:
                outcome.append("%s: TypeError: %s" % (name, exc))

        attempt("one argument", lambda: start_response("200 OK"))
        attempt("four arguments", lambda: start_response("200 OK", [], None, None))
        attempt("unknown keyword", lambda: start_response("200 OK", [], bogus=1))
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        attempt("write()", lambda: write())
        attempt("write(a, b)", lambda: write(b"a", b"b"))
        attempt("write(data=)", lambda: write(data=b"a"))
        try:
            raise ValueError("replaced")
        except ValueError:
            import sys

            again = start_response("203 Replaced", [("Content-Type", "text/plain")], exc_info=sys.exc_info())
        outcome.append("same write: %s" % (again is write))
        body = "\n".join(outcome).encode()
        return [body]
    start_response("404 Not Found", [("Content-Length", "0")])
    return [b""]
