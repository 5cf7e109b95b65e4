"""The ``waitress-serve`` command: serve a WSGI application named on the
command line, taking the same options as ``waitress.serve``.
"""
import getopt
import logging
import os
import pkgutil
import sys
from typing import Any, Callable, List, Optional, TextIO

from . import __version__, serve
from .adjustments import Adjustments, TLSSetupError
from .utilities import logger

HELP = """\
Usage:

    {0} [OPTS] MODULE:OBJECT

Standard options:

    --help
        Print this help and exit.

    --version
        Print the version (that of the Waitress release whose behaviour
        this server follows, with a "+swift.N" local label) and exit.

    --call
        Treat MODULE:OBJECT as a factory: call it and serve the WSGI
        application it returns.

    --app=MODULE:OBJECT
        Name the application with an option instead of an argument.

    --host=ADDR
        Host name or IP address to listen on. The default, '0.0.0.0',
        means every IPv4 address of this machine.

        Note: Cannot be combined with --listen

    --port=PORT
        TCP port to listen on, default '8080'

        Note: Cannot be combined with --listen

    --listen=ip:port
        An address and port to listen on.

        Example:

            --listen=127.0.0.1:8080
            --listen=[::1]:8080
            --listen=*:8080

        Repeat the option to listen on several sockets. The host '*'
        stands for every local address of the enabled IP versions
        (see --ipv4 and --ipv6).

    --[no-]ipv4
        Enable or disable IPv4.

        Example:

            --no-ipv4

        Without IPv4, names and wildcards in --listen resolve to IPv6
        addresses only.

    --[no-]ipv6
        Enable or disable IPv6.

        Example:

            --no-ipv6

        Without IPv6, names and wildcards in --listen resolve to IPv4
        addresses only.

    --unix-socket=PATH
        Listen on a Unix domain socket at PATH instead of on TCP.

        Not available on Windows.

    --unix-socket-perms=PERMS
        Permissions of the Unix domain socket, in octal; default
        '600'.

    --url-scheme=STR
        The wsgi.url_scheme the application sees, default 'http'.

    --url-prefix=STR
        The WSGI ``SCRIPT_NAME`` of every request. When this is not
        empty, ``SCRIPT_NAME`` is this value without trailing slashes, and
        the prefix is removed from the front of any ``PATH_INFO`` that
        starts with it. Default is the empty string.

    --ident=STR
        The value of the 'Server' response header. Default is
        'waitress'.

Tuning options:

    --threads=INT
        Worker threads that run the application, default 4.

    --dispatch=threads|inline
        Where the application runs: 'threads' (the default) on the
        worker threads; 'inline' on the event loop thread itself, with
        no hand-off between threads: faster for an app that never
        blocks, but every connection waits while the app runs, and
        --threads is not used.

    --loop-scheduling=batch|normal
        How Linux schedules the event loop thread: 'batch' (the default,
        SCHED_BATCH) lets a worker that ends a response go on until it
        waits, instead of being preempted by the loop at once; 'normal'
        is the kernel's default policy.

    --backlog=INT
        Length of the queue of connections not yet accepted, passed to
        listen(). Default is 1024.

    --recv-bytes=INT
        Bytes to read from a socket at a time. Default is 8192.

    --send-bytes=INT
        Deprecated and ignored; accepted so old configurations still
        work. Default is 1.

    --outbuf-overflow=INT
        Response data waiting to be sent is moved to a temporary file
        when it grows past this many bytes. Default is 1048576 (1MB).

    --outbuf-high-watermark=INT
        The application's response iterator is paused while more than
        this many bytes wait to be sent, and resumed once the socket has
        taken enough of them. Default is 16777216 (16MB).

    --inbuf-overflow=INT
        A request body is moved to a temporary file when it grows past
        this many bytes. Default is 524288 (512KB).

    --connection-limit=INT
        Stop accepting new connections while this many are open.
        Default is 100.

    --cleanup-interval=INT
        Least number of seconds between two sweeps for idle
        connections. Default is 30. See '--channel-timeout'.

    --channel-timeout=INT
        Seconds after which an idle connection is closed. Default is
        120. A connection is idle while no data arrives from the client
        and none is sent to it.

    --request-head-timeout=INT
        Seconds a client may take to send a complete request head, even
        if it keeps sending; then it gets 408 and the connection closes.
        Checked at each cleanup sweep. Default is 60; 0 means no bound.

    --[no-]log-socket-errors
        Whether to log the errors caused by clients that disconnect
        early. On by default.

    --max-request-header-size=INT
        Largest total size of a request's headers, in bytes. Default is
        262144 (256KB).

    --max-request-body-size=INT
        Largest size of a request body, in bytes. Default is 1073741824
        (1GB).

    --[no-]expose-tracebacks
        Whether to send the traceback of an unhandled application
        exception to the client. Off by default.

    --access-log=PATH
        Log every request, one line each, to this file ('-' for standard
        output, 'logger:NAME' for the Python logger NAME). Written by the
        server without the GIL; SIGUSR1 reopens the file (logrotate).
        Off by default.

    --access-log-format=STR
        The line format: 'combined' (the default, Apache's combined
        format), 'common', 'json', or a string of gunicorn-style atoms
        such as '%(h)s "%(r)s" %(s)s %(D)s'.

    --metrics-listen=HOST:PORT
        Serve Prometheus metrics (GET /metrics) on a separate listener,
        such as 127.0.0.1:9100. With worker processes, any worker answers
        for all of them. Off by default.

    --asyncore-loop-timeout=INT
        Accepted for compatibility with Waitress, whose event loop used
        it as its poll timeout in seconds. Default is 1.

    --asyncore-use-poll
        Accepted for compatibility with Waitress, whose event loop used
        it to choose poll() over select(). Default is False.

    --channel-request-lookahead=INT
        How many further requests a connection may read and queue while
        one of its requests is running, so that a client that hangs up
        is noticed. Default is 0.

HTTPS options (docs/tls.md; TLS 1.2 and 1.3 on every TCP listener, Unix
sockets stay plain):

    --ssl-certfile=PATH
        PEM file with the server's certificate, then the intermediate
        certificates of its chain. Setting it turns HTTPS on.

    --ssl-keyfile=PATH
        PEM file with the private key (default: read from --ssl-certfile).

    --ssl-keyfile-password=STR
        Password of an encrypted private key.

    --ssl-ca-certs=PATH
        PEM file of the authorities that client certificates must chain to.

    --ssl-verify=MODE
        Client certificates: 'none' (the default), 'optional' (verified
        when one is sent) or 'required'. The last two need --ssl-ca-certs.

    --ssl-min-version=VERSION
        'TLSv1.2' (the default) or 'TLSv1.3'. TLS 1.0 and 1.1 are refused.

    --ssl-ciphers=LIST
        TLS 1.2 cipher suites, an OpenSSL cipher string such as
        'ECDHE+AESGCM:!aNULL' or a list of suite names joined by ':'.
        TLS 1.3's suites are not configurable.

    SIGHUP (one process) reads the certificate and key files again: new
    connections use them, a bad file is logged and the old one kept.

Worker process options (not on Windows):

    --workers=INT
        Worker processes serving the same sockets, each with --threads
        threads, under a supervisor process that restarts them. Default
        is 1: a single process, no supervisor. SIGTERM or SIGINT drains
        every worker; SIGHUP starts new workers and drains the old ones;
        SIGTTIN and SIGTTOU add and remove a worker.

    --[no-]preload
        Import the application once in the supervisor before starting
        the workers, instead of in each worker. Off by default, so that
        a SIGHUP serves changed code.

    --max-requests=INT
        Replace a worker after it has served this many requests (it
        finishes them first). Default is 0: never.

    --max-requests-jitter=INT
        Add a random 0 to this many requests to each worker's
        --max-requests, so that workers are not all replaced at once.
        Default is 0.

    --worker-timeout=INT
        Kill and replace a worker whose event loop or application has
        not answered its heartbeat for this many seconds (for example an
        application holding the GIL in a C call). Default is 30; 0
        turns it off.

    --max-worker-rss=INT
        Replace a worker whose resident memory grew past this many MiB
        (it finishes its requests first; Linux). Default is 0: never.

"""


def show_help(stream: TextIO, name: str, error: Optional[str] = None) -> None:
    if error is not None:
        print(f"Error: {error}\n", file=stream)
    print(HELP.format(name), file=stream)


def show_exception(stream: TextIO) -> None:
    """Describe the exception being handled, raised while importing the app."""
    exc_value = sys.exc_info()[1]
    print(
        f"There was an exception ({type(exc_value).__name__}) importing your module.\n",
        file=stream,
    )
    args = getattr(exc_value, "args", None)
    if not args:
        print("It had no arguments.", file=stream)
        return
    print("It had these arguments: ", file=stream)
    for number, arg in enumerate(args, 1):
        print(f"{number}. {arg}\n", file=stream)


def run(argv: List[str] = sys.argv, _serve: Callable[..., Any] = serve) -> int:
    """Run the command line ``argv``; return the exit status."""
    name = os.path.basename(argv[0])

    # Not one of Waitress's options (it has none), so it stays out of
    # Adjustments.parse_args; it wins wherever it appears before "--".
    options = argv[1:]
    if "--" in options:
        options = options[: options.index("--")]
    if "--version" in options:
        print(f"{name} {__version__}")
        return 0

    try:
        kw, args = Adjustments.parse_args(argv[1:])
    except getopt.GetoptError as exc:
        show_help(sys.stderr, name, str(exc))
        return 1

    if kw.pop("help"):
        show_help(sys.stdout, name)
        return 0

    call = kw.pop("call")
    if "app" in kw:
        args.append(kw.pop("app"))
    if len(args) != 1:
        show_help(sys.stderr, name, "Specify one application only")
        return 1

    # Without a level the waitress logger inherits WARNING from the root
    # logger and "Serving on ..." would never show.  A level the program set
    # is kept.
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)

    # Let "waitress-serve myapp:app" find myapp in the current directory.
    sys.path.append(os.getcwd())

    if _imports_in_workers(kw):
        # Each worker imports the app after fork (supervisor.py).
        from .supervisor import AppImport

        app: Any = AppImport(args[0], call)
    else:
        try:
            app = pkgutil.resolve_name(args[0])
        except (ValueError, ImportError, AttributeError) as exc:
            show_help(sys.stderr, name, str(exc))
            show_exception(sys.stderr)
            return 1
        if call:
            app = app()

    from .supervisor import WorkersFailed

    try:
        _serve(app, **kw)
    except WorkersFailed:
        # The supervisor has logged why.
        return 1
    except TLSSetupError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return 1
    return 0


def _imports_in_workers(kw: Any) -> bool:
    """Whether worker processes, not this one, import the application."""
    try:
        adj = Adjustments(**{k: v for k, v in kw.items() if k in _WORKER_KEYS})
    except ValueError:
        return False  # serve() reports the bad value
    return adj.supervised and not adj.preload


_WORKER_KEYS = ("workers", "preload", "max_requests", "max_worker_rss")
