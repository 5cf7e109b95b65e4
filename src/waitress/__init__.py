"""A Waitress-compatible WSGI server whose request path runs in Swift.

``serve(app, **options)`` is all most programs need; the options are those of
:class:`waitress.adjustments.Adjustments`.
"""
import logging
from typing import Any, Dict, Iterable

from .server import create_server

__all__ = ["serve", "serve_paste", "profile"]

# The Waitress release whose behaviour this follows, with a PEP 440 local label
# for this implementation: "waitress==3.0.2" pins are still satisfied.
__version__ = "3.0.2+swift.1"


def serve(app: Any, **kw: Any) -> None:
    """Serve the WSGI application ``app`` until interrupted.

    Keyword arguments are adjustments (``host``, ``port``, ``listen``,
    ``threads``...).  Sets up basic logging unless logging is configured
    already, and logs the addresses it listens on.
    """
    # Hooks for tests and profiling, as in Waitress.
    _server = kw.pop("_server", create_server)
    _quiet = kw.pop("_quiet", False)
    _profile = kw.pop("_profile", False)
    if not _quiet:
        # Without a handler the "Serving on" line and errors would be lost;
        # basicConfig does nothing if the program configured logging already.
        logging.basicConfig()
    server = _server(app, **kw)
    if not _quiet:
        scheme = "https" if getattr(getattr(server, "adj", None), "tls", False) else "http"
        server.print_listen("Serving on " + scheme + "://{}:{}")
        metrics = getattr(server, "metrics_address", None)
        if metrics is not None:
            host, port = metrics
            host = f"[{host}]" if ":" in host else host
            logging.getLogger("waitress").info("Serving metrics on http://%s:%s/metrics", host, port)
    if _profile:
        profile("server.run()", globals(), locals(), (), False)
    else:
        server.run()


def serve_paste(app: Any, global_conf: Dict[str, Any], **kw: Any) -> int:
    """PasteDeploy server runner: ``use = egg:waitress#main`` in an ini file."""
    serve(app, **kw)
    return 0


def profile(
    cmd: str,
    globals: Dict[str, Any],
    locals: Dict[str, Any],
    sort_order: Iterable[str],
    callers: bool,
) -> None:
    """Run ``cmd`` under cProfile and print the statistics when it ends.

    Only the calling thread is profiled; the application runs on the engine's
    worker threads, so profile it inside the application instead.
    """
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.runctx(cmd, globals, locals)
    stats = pstats.Stats(profiler)
    stats.strip_dirs()
    stats.sort_stats(*(sort_order or ("cumulative", "calls", "time")))
    if callers:
        stats.print_callers(0.3)
    else:
        stats.print_stats(0.3)
