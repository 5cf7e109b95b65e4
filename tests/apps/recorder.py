"""An in-process record of events that the test apps log, read back over HTTP.

Apps run in the server's worker threads; a test learns what happened inside the server (an
app_iter's ``close()`` was called, a generator stopped early) by fetching ``/events?id=KEY``
from the same server process afterwards.
"""

import threading

_lock = threading.Lock()
_events = {}


def record(key, event):
    with _lock:
        _events.setdefault(key, []).append(event)


def events(key):
    with _lock:
        return list(_events.get(key, ()))
