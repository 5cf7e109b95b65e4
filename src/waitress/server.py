"""Listening sockets and the servers that run the native engine over them.

Sockets are created, bound and put into the listening state here, in Python,
exactly where Waitress does it, so ``getsockname()``, ``effective_host``,
``effective_port`` and ``print_listen`` behave as in Waitress.  ``run()``
hands the file descriptors to ``waitress._native.Engine``, which does all
network I/O and runs the application on its worker threads.

Nothing here starts a thread or an event loop before ``run()``: test
harnesses and process managers fork after ``create_server`` and the child
must still be able to serve.
"""
import contextlib
import logging
import os
import signal
import socket
import threading
from typing import Any, Callable, ContextManager, Dict, Iterator, List, Optional, Tuple, Union

from .adjustments import Adjustments, SocketInfo
from .compat import IPPROTO_IPV6, IPV6_V6ONLY
from .utilities import cleanup_unix_socket, logger, queue_logger

#: What the engine gets for one listening socket:
#: ``(fd, is_unix, server_name, server_port)``.
Listener = Tuple[int, bool, str, str]

_SEVERITY = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def _log_info(message: str, type: str = "info") -> None:
    logger.log(_SEVERITY.get(type, logging.INFO), message)


def create_server(
    application: Any,
    map: Optional[Dict[int, Any]] = None,
    _start: bool = True,
    _sock: Optional[socket.socket] = None,
    _dispatcher: Any = None,
    **kw: Any,
) -> Union["BaseWSGIServer", "MultiSocketServer"]:
    """Create the server(s) for ``application`` with the given adjustments.

    Returns one server when there is one listening socket, otherwise a
    ``MultiSocketServer`` over all of them.  Call ``run()`` on the result::

        server = create_server(app, listen="127.0.0.1:8080")
        server.run()

    ``_start``, ``_sock`` and ``_dispatcher`` are Waitress's test hooks:
    ``_start=False`` binds without listening, ``_sock`` supplies the socket
    object, and ``_dispatcher`` is accepted and ignored (the worker pool lives
    in the native engine).
    """
    if application is None:
        raise ValueError(
            'The "app" passed to ``create_server`` was ``None``: the '
            "application factory probably forgot to return the WSGI app."
        )
    adj = Adjustments(**kw)
    if map is None:
        map = {}

    if adj.unix_socket and hasattr(socket, "AF_UNIX"):
        server = UnixWSGIServer(application, map, _start, _sock, adj=adj)
        _attach_metrics([server], adj)
        return server

    servers: List[BaseWSGIServer] = []
    if not adj.sockets:
        try:
            for sockinfo in adj.listen:
                servers.append(
                    TcpWSGIServer(
                        application, map, _start, _sock, adj=adj, sockinfo=sockinfo
                    )
                )
        except BaseException:
            # Don't leave the sockets bound so far open behind a failed call.
            for server in servers:
                server.close()
            raise
    for sock in adj.sockets:
        server_class = (
            UnixWSGIServer
            if sock.family == getattr(socket, "AF_UNIX", None)
            else TcpWSGIServer
        )
        sockinfo = (sock.family, sock.type, sock.proto, sock.getsockname())
        servers.append(
            server_class(
                application,
                map,
                _start,
                sock,
                adj=adj,
                sockinfo=sockinfo,
                bind_socket=False,
            )
        )

    if not servers:
        raise ValueError("There is no address to listen on.")
    _attach_metrics(servers, adj)
    if len(servers) == 1:
        return servers[0]
    effective_listen = [(s.effective_host, s.effective_port) for s in servers]
    multi = MultiSocketServer(map, adj, effective_listen, None, servers[-1].log_info)
    multi._metrics_socket = servers[0]._metrics_socket
    return multi


def _attach_metrics(servers: List["BaseWSGIServer"], adj: Adjustments) -> None:
    """Binds the ``metrics_listen`` socket (one for all listeners) and gives
    it to the servers; the engine serves it.  On failure the servers close."""
    info = adj.metrics_sockinfo
    if info is None:
        return
    family, socktype, proto, sockaddr = info
    sock = socket.socket(family, socktype, proto)
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(IPPROTO_IPV6, IPV6_V6ONLY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(sockaddr)
        sock.listen(64)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        for server in servers:
            server.close()
        raise OSError(
            exc.errno, f"cannot listen on metrics_listen {adj.metrics_listen}: {exc.strerror}"
        ) from None
    for server in servers:
        server._metrics_socket = sock


class _MetricsAddress:
    """``metrics_address``: (host, port) the metrics listener is bound to."""

    def __get__(self, server: Any, owner: Any = None) -> Optional[Tuple[str, int]]:
        sock = getattr(server, "_metrics_socket", None)
        if sock is None or sock.fileno() < 0:
            return None
        name = sock.getsockname()
        return (str(name[0]), int(name[1]))


class _Serving:
    """The native engine serving a socket map, stoppable from any thread.

    The engine uses the listening descriptors until its ``run()`` returns.
    Closing them earlier could let the event loop act on a recycled
    descriptor number, so ``close()`` while serving only stops the engine,
    and the thread inside ``run()`` closes the sockets once it has returned.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._engine: Any = None
        self._closed = False
        self._thread: Optional[threading.Thread] = None
        #: Set when no run() is in progress (or it has returned).
        self._idle = threading.Event()
        self._idle.set()
        #: Called with the engine before it runs (a supervised worker sets
        #: its heartbeat and request counting here: supervisor.py).
        self.configure_engine: Optional[Callable[[Any], None]] = None
        #: Under a supervisor: the metrics memory shared by the workers and
        #: this worker's slot in it (None: metrics private to this process).
        self.metrics_memory: Optional[Tuple[Any, int]] = None

    def run(
        self,
        application: Any,
        servers: List["BaseWSGIServer"],
        adj: Any,
        close_sockets: Callable[[], None],
    ) -> None:
        """Serve until stopped; KeyboardInterrupt and SystemExit propagate."""
        # Imported here, so that the rest of the API works without the
        # compiled engine (building it is the slow part of an install).
        from . import _native

        with self._lock:
            if self._closed or not servers:
                return
            engine = _native.Engine(
                application,
                [server._listener() for server in servers],
                adj,
                logger,
                queue_logger,
            )
            metrics_socket = getattr(servers[0], "_metrics_socket", None)
            if metrics_socket is not None and metrics_socket.fileno() >= 0:
                memory, slot = self.metrics_memory or (None, 0)
                engine.metrics(metrics_socket.fileno(), memory, slot)
            if self.configure_engine is not None:
                self.configure_engine(engine)
            self._engine = engine
            self._thread = threading.current_thread()
            self._idle.clear()
        try:
            with _sigterm_raises_system_exit(), _sigusr1_reopens_access_log(
                engine, adj
            ), _sighup_reloads_certificates(self, adj):
                engine.run()
        finally:
            with self._lock:
                self._engine = None
                self._thread = None
                closed = self._closed
            if closed:
                close_sockets()
            self._idle.set()

    def reload_certificates(self) -> bool:
        """Read the TLS certificate and key files again (docs/tls.md): new
        connections use them, established ones keep theirs.  A file that
        cannot be used is logged and the previous certificate kept; returns
        whether the new files are in use.  Safe from any thread."""
        with self._lock:
            engine = self._engine
        if engine is None:
            raise RuntimeError("reload_certificates: the server is not serving")
        failure = engine.reload_certificates()
        if failure is not None:
            logger.error("Reloading TLS certificates failed: %s", failure)
            return False
        logger.info("Reloaded TLS certificates")
        return True

    def close(self) -> bool:
        """Stop a running engine; True if the caller should close the sockets."""
        with self._lock:
            self._closed = True
            engine = self._engine
        if engine is None:
            return True
        engine.stop()
        return False

    def wait_stopped(self, timeout: Optional[float]) -> bool:
        """From another thread than the serving one: wait until run() has
        returned (and closed the sockets, if closing).  True once it has."""
        if self._thread is threading.current_thread():
            return False
        return self._idle.wait(timeout)


class _AsyncoreLoop:
    """``server.asyncore``: what subclasses written for Waitress call to serve.

    In Waitress this is its ``wasyncore`` module and ``loop(timeout, map=m)``
    polls the socket map until it is empty.  Here ``loop`` runs the native
    engine over the listening servers of the map until ``close()`` (or
    ``handle_close()``) stops it, from any thread.  WebTest's
    ``StopableWSGIServer.run`` is such a caller.
    """

    def __init__(self, server: "BaseWSGIServer") -> None:
        self._server = server

    def loop(
        self,
        timeout: float = 30.0,
        use_poll: bool = False,
        map: Optional[Dict[int, Any]] = None,
        count: Optional[int] = None,
    ) -> None:
        if count is not None:
            raise ValueError(
                "loop(count=...) is not supported: the native engine serves "
                "until the server is closed"
            )
        server = self._server
        if map is None:
            map = server._map
        server._serving.run(
            server.application, _listening_servers(map), server.adj, server._close_socket
        )


class _TaskDispatcher:
    """``server.task_dispatcher``: the worker pool as Waitress exposes it.

    The ``threads`` workers live in the native engine and stop with it, so
    ``shutdown()`` stops the engine that serves this server (finishing the
    requests in flight) and waits for it, as Waitress's dispatcher waits for
    its threads.
    """

    def __init__(self, server: "BaseWSGIServer") -> None:
        self._server = server
        self.threads = server.adj.threads

    def shutdown(self, cancel_pending: bool = True, timeout: float = 5) -> bool:
        serving = self._server._serving
        serving.close()
        if not serving.wait_stopped(timeout):
            self._server.logger.warning("%d thread(s) still running", self.threads)
        return cancel_pending


#: How long ``handle_close()`` waits for a draining engine before it leaves
#: the socket for the serving thread to close.
_HANDLE_CLOSE_WAIT = 35.0


def _raise_system_exit(signum: int, frame: Any) -> None:
    raise SystemExit(0)


@contextlib.contextmanager
def _sigterm_raises_system_exit() -> Iterator[None]:
    """Make SIGTERM a graceful stop while the main thread serves.

    Process managers stop services with SIGTERM, whose default action kills
    the process with requests in flight.  Raising SystemExit instead lets the
    engine drain first.  A handler the program installed itself, or an
    ignored SIGTERM, is left alone.
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return
    signal.signal(signal.SIGTERM, _raise_system_exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _sigusr1_reopens_access_log(engine: Any, adj: Any) -> ContextManager[None]:
    """Make SIGUSR1 reopen the access log file while the main thread serves
    (logrotate renames the file, then signals)."""
    wanted = access_log_is_file(getattr(adj, "access_log", None))
    return _signal_calls("SIGUSR1", wanted, lambda: engine.reopen_access_log())


def _sighup_reloads_certificates(serving: "_Serving", adj: Any) -> ContextManager[None]:
    """With TLS on, make SIGHUP read the certificate and key files again
    while the main thread serves one process (under the supervisor SIGHUP
    starts new workers, which read them anyway)."""
    return _signal_calls("SIGHUP", getattr(adj, "tls", False), lambda: serving.reload_certificates())


@contextlib.contextmanager
def _signal_calls(name: str, wanted: bool, action: Callable[[], Any]) -> Iterator[None]:
    """While serving, signal ``name`` calls ``action`` (when ``wanted``, the
    platform has the signal and the main thread serves).  As for SIGTERM, a
    handler the program installed, or an ignored signal, is left alone."""
    number = getattr(signal, name, None)
    if (
        number is None
        or not wanted
        or threading.current_thread() is not threading.main_thread()
        or signal.getsignal(number) is not signal.SIG_DFL
    ):
        yield
        return
    signal.signal(number, lambda signum, frame: action())
    try:
        yield
    finally:
        signal.signal(number, signal.SIG_DFL)


def access_log_is_file(value: Optional[str]) -> bool:
    """Whether an ``access_log`` value names a file (not stdout or a logger)."""
    return value is not None and value not in ("", "-") and not value.startswith("logger:")


def _listening_servers(map: Dict[int, Any]) -> List["BaseWSGIServer"]:
    return [
        server
        for server in map.values()
        if isinstance(server, BaseWSGIServer) and server.accepting
    ]


class MultiSocketServer:
    """Several listening servers sharing one socket map, served together.

    ``create_server`` returns one of these when there is more than one socket
    to listen on; one engine then serves them all.
    """

    def __init__(
        self,
        map: Optional[Dict[int, Any]] = None,
        adj: Optional[Adjustments] = None,
        effective_listen: Optional[List[Tuple[str, Any]]] = None,
        dispatcher: Any = None,  # Waitress's task dispatcher; unused here
        log_info: Optional[Callable[..., None]] = None,
    ) -> None:
        self.adj = adj
        self.map = map if map is not None else {}
        self.effective_listen = effective_listen or []
        self.log_info = log_info or _log_info
        self._serving = _Serving()

    _metrics_socket: Optional[socket.socket] = None
    metrics_address = _MetricsAddress()

    @property
    def application(self) -> Any:
        servers = [s for s in self.map.values() if isinstance(s, BaseWSGIServer)]
        return servers[0].application if servers else None

    def print_listen(self, format_str: str) -> None:
        """Log ``format_str.format(host, port)`` for each socket, IPv6 bracketed."""
        for host, port in self.effective_listen:
            if ":" in host:
                host = f"[{host}]"
            self.log_info(format_str.format(host, port))

    def run(self) -> None:
        """Serve until Ctrl-C, SIGTERM or ``close()``; then close the sockets."""
        if getattr(self.adj, "supervised", False):
            from .supervisor import supervise

            supervise(self.application, self.map, self.adj, self._close_servers)
            return
        try:
            self._serving.run(
                self.application,
                _listening_servers(self.map),
                self.adj,
                self._close_servers,
            )
        except (SystemExit, KeyboardInterrupt):
            self.close()

    def reload_certificates(self) -> bool:
        """Read the TLS certificate and key files again (SIGHUP does the
        same); see docs/tls.md.  Returns whether the new files are in use."""
        return self._serving.reload_certificates()

    def close(self) -> None:
        """Stop serving and close every listening socket (thread-safe)."""
        if self._serving.close():
            self._close_servers()

    def _close_servers(self) -> None:
        for server in list(self.map.values()):
            if isinstance(server, BaseWSGIServer):
                server.close()
        if self._metrics_socket is not None:
            self._metrics_socket.close()


class BaseWSGIServer:
    """One listening socket and the application served on it."""

    socketmod = socket
    logger = logger
    #: True once the socket is listening.
    accepting = False
    _is_unix = False
    #: The metrics_listen socket, shared by the servers of one create_server.
    _metrics_socket: Optional[socket.socket] = None
    metrics_address = _MetricsAddress()

    def __init__(
        self,
        application: Any,
        map: Optional[Dict[int, Any]] = None,
        _start: bool = True,
        _sock: Optional[socket.socket] = None,
        dispatcher: Any = None,  # Waitress's task dispatcher; unused here
        adj: Optional[Adjustments] = None,
        sockinfo: Optional[SocketInfo] = None,
        bind_socket: bool = True,
        **kw: Any,
    ) -> None:
        if adj is None:
            adj = Adjustments(**kw)
        if map is None:
            map = {}
        if sockinfo is None:
            sockinfo = adj.listen[0]

        self.sockinfo = sockinfo
        self.family = sockinfo[0]
        self.socktype = sockinfo[1]
        self.application = application
        self.adj = adj
        self.server_name = adj.server_name
        self._map = map
        self._serving = _Serving()
        self.asyncore = _AsyncoreLoop(self)
        # A dispatcher passed in is ignored: the worker pool is the engine's.
        self.task_dispatcher = _TaskDispatcher(self)

        created = _sock is None
        if _sock is None:
            _sock = socket.socket(self.family, self.socktype)
        self.socket: socket.socket = _sock
        try:
            if created and self.family == socket.AF_INET6:
                # Bind "::" to IPv6 only, so "0.0.0.0" on the same port works.
                _sock.setsockopt(IPPROTO_IPV6, IPV6_V6ONLY, 1)
            _sock.setblocking(False)
            self.set_reuse_addr()
            if bind_socket:
                self.bind_server_socket()
            self.effective_host, self.effective_port = self.getsockname()
            if _start:
                self.accept_connections()
        except BaseException:
            if created:
                _sock.close()
            raise
        self._fileno = _sock.fileno()
        map[self._fileno] = self

    def set_reuse_addr(self) -> None:
        # Rebinding right after a restart must not wait for TIME_WAIT to end.
        try:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        except OSError:
            pass

    def bind_server_socket(self) -> None:
        raise NotImplementedError

    def getsockname(self) -> Tuple[str, Any]:
        raise NotImplementedError

    def accept_connections(self) -> None:
        self.accepting = True
        self.socket.listen(self.adj.backlog)

    def log_info(self, message: str, type: str = "info") -> None:
        _log_info(message, type)

    def print_listen(self, format_str: str) -> None:
        """Log ``format_str.format(effective_host, effective_port)`` at INFO."""
        self.log_info(format_str.format(self.effective_host, self.effective_port))

    def run(self) -> None:
        """Serve every listening server of this socket map until stopped.

        Returns normally after Ctrl-C, SIGTERM or ``close()``, once requests
        in flight have finished.
        """
        if getattr(self.adj, "supervised", False):
            from .supervisor import supervise

            supervise(self.application, self._map, self.adj, self._close_socket)
            return
        try:
            self._serving.run(
                self.application,
                _listening_servers(self._map),
                self.adj,
                self._close_socket,
            )
        except (SystemExit, KeyboardInterrupt):
            pass

    def reload_certificates(self) -> bool:
        """Read the TLS certificate and key files again (SIGHUP does the
        same); see docs/tls.md.  Returns whether the new files are in use."""
        return self._serving.reload_certificates()

    def close(self) -> None:
        """Stop serving and close the listening socket (thread-safe).

        While the engine is running the socket is closed by ``run()`` as soon
        as the engine has let go of it.
        """
        if self._serving.close():
            self._close_socket()

    def handle_close(self) -> None:
        """Close as Waitress's dispatchers do when their map is torn down:
        the socket leaves the map, and once this returns it is closed (from
        another thread than the serving one, this waits for the engine to
        finish the requests in flight and let go of the socket)."""
        if self._serving.close():
            self._close_socket()
            return
        if not self._serving.wait_stopped(_HANDLE_CLOSE_WAIT):
            # Still draining: take it out of the map now, the serving thread
            # closes the socket when the engine lets go of it.
            if self._map.get(self._fileno) is self:
                del self._map[self._fileno]

    def maintenance(self, now: float) -> None:
        """Waitress closes channels idle past ``channel_timeout`` here.  The
        engine sweeps its connections itself every ``cleanup_interval``, so
        there is nothing left for Python to do; kept for subclasses and
        tools that call it (WebTest's ``StopableWSGIServer.shutdown``)."""

    def _close_socket(self) -> None:
        self.accepting = False
        if self._map.get(self._fileno) is self:
            del self._map[self._fileno]
        if self._metrics_socket is not None:
            self._metrics_socket.close()
        if self.socket is not None:
            self.socket.close()
            # None once closed, as in Waitress.
            self.socket = None  # type: ignore[assignment]

    def _listener(self) -> Listener:
        return (
            self.socket.fileno(),
            self._is_unix,
            self.server_name,
            str(self.effective_port),
        )


class TcpWSGIServer(BaseWSGIServer):
    """A server on a TCP socket."""

    def bind_server_socket(self) -> None:
        self.socket.bind(self.sockinfo[3])

    def getsockname(self) -> Tuple[str, str]:
        # Numeric host and port, as strings (Waitress's effective_port is a str).
        return self.socketmod.getnameinfo(
            self.socket.getsockname(),
            self.socketmod.NI_NUMERICHOST | self.socketmod.NI_NUMERICSERV,
        )


if hasattr(socket, "AF_UNIX"):

    class UnixWSGIServer(BaseWSGIServer):
        """A server on a Unix domain socket (``unix_socket`` or pre-bound)."""

        _is_unix = True

        def __init__(
            self,
            application: Any,
            map: Optional[Dict[int, Any]] = None,
            _start: bool = True,
            _sock: Optional[socket.socket] = None,
            dispatcher: Any = None,
            adj: Optional[Adjustments] = None,
            sockinfo: Optional[SocketInfo] = None,
            **kw: Any,
        ) -> None:
            if sockinfo is None:
                sockinfo = (socket.AF_UNIX, socket.SOCK_STREAM, None, None)
            super().__init__(
                application,
                map=map,
                _start=_start,
                _sock=_sock,
                dispatcher=dispatcher,
                adj=adj,
                sockinfo=sockinfo,
                **kw,
            )

        def bind_server_socket(self) -> None:
            path = self.adj.unix_socket
            if not path:
                raise ValueError("UnixWSGIServer needs the unix_socket adjustment")
            # A socket file left by a server that died would make bind fail.
            cleanup_unix_socket(path)
            self.socket.bind(path)
            if os.path.exists(path):
                os.chmod(path, self.adj.unix_socket_perms)

        def getsockname(self) -> Tuple[str, Any]:
            return ("unix", self.socket.getsockname())


#: Waitress's old name for the TCP server.
WSGIServer = TcpWSGIServer
