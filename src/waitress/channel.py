"""Connection-level names that Waitress makes importable.

Connections themselves live in the Swift core; only the exception an
application may see remains here.
"""


class ClientDisconnected(Exception):
    """Raised by ``write()`` when the client went away mid-response."""
