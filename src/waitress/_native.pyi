"""Typed stub of the Swift core (``waitress._native``).

The native module is private; the public API lives in the pure-Python modules
of this package.  Nothing here starts a thread or an event loop until
``Engine.run()`` is called.
"""
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple, final

__version__: str

def apply_proxy_headers(
    environ: Dict[str, Any],
    trusted_proxy: Optional[str],
    trusted_proxy_count: int,
    trusted_proxy_headers: Set[str],
    clear_untrusted: bool,
    log_untrusted: bool,
) -> Tuple[Optional[Tuple[str, str, str, str]], List[str]]:
    """Apply the proxy-header rules to ``environ`` in place.

    Returns ``(malformed, warnings)``: ``malformed`` is None, or
    ``(header, reason, value, detail)`` for a trusted header that can't be
    used (answer 400 with ``detail``); ``warnings`` are the messages to log.
    """

def check_access_log_format(format: str, /) -> None:
    """Raise ValueError if ``format`` is not a valid ``access_log_format``."""

def metrics_slot_bytes() -> int:
    """Bytes of shared memory one worker's metrics take (``Engine.metrics``)."""
def check_tls(adj: Any, /) -> None:
    """Read every file the ``ssl_*`` adjustments of ``adj`` name and build
    the TLS context from them; raise ValueError with a one-line message
    naming the option and file that cannot be used."""

@final
class Engine:
    """One server instance: an event loop for all listeners plus a worker pool.

    ``listeners`` is a sequence of ``(fd, is_unix, server_name, server_port)``
    tuples: ``fd`` is a bound, listening socket (the engine adopts it but never
    closes it; the Python socket object keeps ownership), ``server_name`` and
    ``server_port`` are the strings the environ gets as SERVER_NAME and
    SERVER_PORT for connections accepted on it.

    ``adj`` is an object with the attributes of ``waitress.adjustments.Adjustments``
    (already coerced); the engine reads the options it needs once, at
    construction.  ``logger`` and ``queue_logger`` are ``logging.Logger``
    objects used for the ``waitress`` and ``waitress.queue`` messages.
    """

    def __new__(
        cls,
        application: Callable[..., Any],
        listeners: Sequence[Tuple[int, bool, str, str]],
        adj: Any,
        logger: Any,
        queue_logger: Any,
    ) -> "Engine": ...
    def run(self) -> None:
        """Serve until ``stop()`` is called or a signal handler raises.

        Releases the GIL while serving and checks for signals at least every
        100 ms.  If a signal handler raises (KeyboardInterrupt, SystemExit),
        the engine stops accepting, lets in-flight requests finish, closes the
        connections, joins its threads and then re-raises that exception.
        """
    def stop(self) -> None:
        """Ask a running engine to shut down gracefully; safe from any thread.

        ``run()`` then returns normally.  Calling it before ``run()`` makes a
        later ``run()`` return at once.
        """
    def served(self) -> int:
        """Requests handed to the application so far (an atomic counter; the
        supervisor's ``max_requests``)."""
    def heartbeat(self, fd: int, interval: float, /) -> None:
        """Before ``run()``: while serving, write a byte to ``fd`` every
        ``interval`` seconds from a timer on the event loop (no GIL needed),
        as long as ``run()``'s own thread has had the GIL within the last
        second or two intervals (supervisor.py's ``worker_timeout``)."""
    def balance(self, buffer: Any, slot: int, /) -> None:
        """Before ``run()``, under a supervisor: ``buffer`` is writable memory
        shared by the workers (a machine word per worker, -1 for one that does
        not accept); this engine publishes its open connections in word
        ``slot`` and, when it holds at least 2 more than another accepting
        worker, stops accepting for 2 ms (at most 25 times a second) so that
        the other takes what is queued."""
    def drain_grace(self, seconds: float, /) -> None:
        """Before ``run()``: how long a stop keeps idle keep-alive connections
        open (responses from then on say ``Connection: close``); 0, the
        default, closes them at once."""
    def metrics(self, fd: int, buffer: Any, slot: int, /) -> None:
        """Before ``run()``: serve ``GET /metrics`` on the listening socket
        ``fd``.  ``buffer`` is None in a lone process, or writable memory
        shared by a supervisor's workers (``metrics_slot_bytes()`` per worker
        number) in which this engine keeps its metrics in slot ``slot``."""
    def reopen_access_log(self) -> None:
        """Reopen the access log file by its path (after logrotate renamed
        it); safe from any thread, a no-op without a file log.  The writer
        thread opens the new file before its next write."""
    def reload_certificates(self) -> Optional[str]:
        """Read the TLS certificate and key files again: connections
        accepted from now on use them.  None on success, else why the files
        cannot be used (the previous certificate stays).  Safe from any
        thread; RuntimeError without ``ssl_certfile``."""
