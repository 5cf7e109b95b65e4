"""Adjustments: every tunable option of the server, coerced and validated.

Values usually arrive as strings (from a PasteDeploy ini file or the command
line), so each option has a converter.  The native engine reads the coerced
attributes of an ``Adjustments`` instance once, when it starts.
"""
import getopt
import os
import socket
import warnings
from typing import Any, Callable, Dict, Iterable, List, Optional, Set, Tuple, Union

from .compat import HAS_IPV6

TRUTHY = frozenset(("t", "true", "y", "yes", "on", "1"))

#: The proxy headers ``trusted_proxy_headers`` may name.
KNOWN_PROXY_HEADERS = frozenset(
    (
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-forwarded-port",
        "x-forwarded-by",
        "forwarded",
    )
)

#: One resolved listen address: ``(family, socktype, proto, sockaddr)``
#: (a Unix socket has None for proto and sockaddr).
SocketInfo = Tuple[int, int, Optional[int], Any]


def asbool(s: Any) -> bool:
    """Read a boolean option.

    ``None`` is False and booleans pass through; anything else is True only
    if, stripped and lower-cased, it is one of t, true, y, yes, on or 1.
    """
    if s is None:
        return False
    if isinstance(s, bool):
        return s
    return str(s).strip().lower() in TRUTHY


def asoctal(s: str) -> int:
    """Read permission bits written in octal, such as ``"600"``."""
    return int(s, 8)


def aslist_cronly(value: Union[str, Iterable[str]]) -> List[str]:
    """Split a string into its non-blank lines, stripped; pass lists through."""
    if isinstance(value, str):
        return [line.strip() for line in value.splitlines() if line.strip()]
    return list(value)


def aslist(value: Union[str, Iterable[str]]) -> List[str]:
    """Split on lines, then on whitespace within each line."""
    return [word for line in aslist_cronly(value) for word in line.split()]


def asset(value: Union[str, Iterable[str]]) -> Set[str]:
    return set(aslist(value))


def slash_fixed_str(s: str) -> str:
    """Normalise a URL prefix: one leading slash, no trailing slash, or ''."""
    s = s.strip()
    if not s:
        return s
    return "/" + s.strip("/")


def str_iftruthy(s: Any) -> Optional[str]:
    """``str(s)`` for a truthy value, else None (an empty value unsets)."""
    return str(s) if s else None


def as_socket_list(sockets: Iterable[Any]) -> List[socket.socket]:
    """Keep only the socket objects of ``sockets``."""
    return [sock for sock in sockets if isinstance(sock, socket.socket)]


def to_int(value: Any) -> int:
    """``int()``; named so option tables read as converters."""
    return int(value)


class TLSSetupError(ValueError):
    """A TLS option's file cannot be used; the message is one line that
    names the option and the file (``waitress-serve`` prints it, exits 1)."""


class _str_marker(str):
    """The class default of ``host``: tells "left alone" from "set to 0.0.0.0"."""


class _int_marker(int):
    """The class default of ``port``: tells "left alone" from "set to 8080"."""


class Adjustments:
    """The server's tunable parameters.

    Class attributes hold the defaults; keyword arguments to the constructor
    override them on the instance after conversion.  After construction
    ``listen`` holds resolved ``(family, socktype, proto, sockaddr)`` tuples.
    """

    #: (option name, converter) for every option the constructor accepts.
    _params: Tuple[Tuple[str, Callable[[Any], Any]], ...] = (
        ("host", str),
        ("port", to_int),
        ("ipv4", asbool),
        ("ipv6", asbool),
        ("listen", aslist),
        ("threads", to_int),
        ("trusted_proxy", str_iftruthy),
        ("trusted_proxy_count", to_int),
        ("trusted_proxy_headers", asset),
        ("log_untrusted_proxy_headers", asbool),
        ("clear_untrusted_proxy_headers", asbool),
        ("url_scheme", str),
        ("url_prefix", slash_fixed_str),
        ("backlog", to_int),
        ("recv_bytes", to_int),
        ("send_bytes", to_int),
        ("outbuf_overflow", to_int),
        ("outbuf_high_watermark", to_int),
        ("inbuf_overflow", to_int),
        ("connection_limit", to_int),
        ("cleanup_interval", to_int),
        ("channel_timeout", to_int),
        ("request_head_timeout", to_int),
        ("log_socket_errors", asbool),
        ("max_request_header_size", to_int),
        ("max_request_body_size", to_int),
        ("expose_tracebacks", asbool),
        ("ident", str_iftruthy),
        ("asyncore_loop_timeout", to_int),
        ("asyncore_use_poll", asbool),
        ("unix_socket", str),
        ("unix_socket_perms", asoctal),
        ("sockets", as_socket_list),
        ("channel_request_lookahead", to_int),
        ("server_name", str),
    )

    # Worker processes under a supervisor (supervisor.py, docs/deployment.md);
    # none of these change anything while workers is 1 and max_requests is 0.
    _params += (
        ("workers", to_int),
        ("preload", asbool),
        ("max_requests", to_int),
        ("max_requests_jitter", to_int),
        ("worker_timeout", to_int),
        ("max_worker_rss", to_int),
    )
    #: Worker processes serving the same sockets; 1 is a single process.
    workers: int = 1
    #: Import the application in the supervisor before forking the workers
    #: (``waitress-serve`` only: ``serve(app)`` is given an imported app).
    preload: bool = False
    #: Requests after which a worker is replaced (0: never), plus a random
    #: 0..max_requests_jitter more per worker so they don't all go at once.
    max_requests: int = 0
    max_requests_jitter: int = 0
    #: Seconds without a heartbeat after which a worker is killed (0: never).
    worker_timeout: int = 30
    #: MiB of resident memory past which a worker is replaced (0: never).
    max_worker_rss: int = 0

    # The engine's access log (docs/access-log.md); off unless access_log is set.
    _params += (
        ("access_log", str_iftruthy),
        ("access_log_format", str),
    )
    #: Where lines go: a file path, "-" for standard output, or
    #: "logger:NAME" for a Python logger (slower: the GIL per batch of lines).
    access_log: Optional[str] = None
    #: "combined" (Apache's, as Paste's TransLogger writes it), "common",
    #: "json", or a format string of gunicorn's atoms.
    access_log_format: str = "combined"

    # Where the application runs (docs/deployment.md, "Inline dispatch"):
    # "threads" is Waitress's pool of `threads` workers; "inline" runs it on
    # the event loop thread (no hand-off between threads), for apps that never
    # block, since every connection waits while the app runs.
    _params += (("dispatch", str),)
    dispatch: str = "threads"
    DISPATCH_MODES = ("threads", "inline")

    # How the kernel schedules the event loop thread (docs/deployment.md,
    # "The event loop's scheduling"): "batch" (SCHED_BATCH on Linux: its
    # wake-ups do not preempt a running worker) or "normal".
    _params += (("loop_scheduling", str),)
    loop_scheduling: str = "batch"
    LOOP_SCHEDULING = ("batch", "normal")

    # Prometheus metrics served by the engine (docs/metrics.md); off unless set.
    _params += (("metrics_listen", str_iftruthy),)
    #: "host:port" of a separate listener answering GET /metrics.
    metrics_listen: Optional[str] = None
    #: metrics_listen resolved: ``(family, socktype, proto, sockaddr)``.
    metrics_sockinfo: Optional[SocketInfo] = None
    # HTTPS on every TCP listener (docs/tls.md); off unless ssl_certfile is
    # set.  Named as uvicorn names them (gunicorn's without the prefix).
    _params += (
        ("ssl_certfile", str_iftruthy),
        ("ssl_keyfile", str_iftruthy),
        ("ssl_keyfile_password", str_iftruthy),
        ("ssl_ca_certs", str_iftruthy),
        ("ssl_verify", str),
        ("ssl_min_version", str),
        ("ssl_ciphers", str_iftruthy),
    )
    #: PEM file: the server's certificate, then its chain's intermediates
    #: (and the key too, when ssl_keyfile is not given).
    ssl_certfile: Optional[str] = None
    #: PEM private key; encrypted keys need ssl_keyfile_password.
    ssl_keyfile: Optional[str] = None
    ssl_keyfile_password: Optional[str] = None
    #: PEM file of the authorities client certificates must chain to.
    ssl_ca_certs: Optional[str] = None
    #: Client certificates: "none", "optional" (verified if presented) or
    #: "required" (the handshake fails without one); the last two need
    #: ssl_ca_certs.
    ssl_verify: str = "none"
    #: "TLSv1.2" or "TLSv1.3"; older versions are always refused.
    ssl_min_version: str = "TLSv1.2"
    #: TLS 1.2 cipher suites, OpenSSL names joined by ":" (docs/tls.md).
    ssl_ciphers: Optional[str] = None

    _param_map: Dict[str, Callable[[Any], Any]] = dict(_params)

    # Where to listen.  ``listen`` wins unless host or port is given.
    host: str = _str_marker("0.0.0.0")
    port: int = _int_marker(8080)
    listen: List[Any] = [f"{host}:{port}"]
    ipv4: bool = True
    ipv6: bool = True
    unix_socket: Optional[str] = None
    unix_socket_perms: int = 0o600
    # Already-bound sockets to serve on (socket activation); replaces listen.
    sockets: List[socket.socket] = []

    # Worker threads that run the application.
    threads: int = 4

    # Proxy headers: the peer trusted to send them ("*" for any), how many
    # proxies are chained in front of us, and which headers to believe.
    trusted_proxy: Optional[str] = None
    trusted_proxy_count: Optional[int] = None
    trusted_proxy_headers: Set[str] = set()
    log_untrusted_proxy_headers: bool = False
    clear_untrusted_proxy_headers: bool = True

    # What the application sees.
    url_scheme: str = "http"
    url_prefix: str = ""
    ident: Optional[str] = "waitress"
    # SERVER_NAME, used only when the request names no host.
    server_name: str = "waitress.invalid"

    # Sockets and buffers.
    backlog: int = 1024
    recv_bytes: int = 8192
    send_bytes: int = 1  # deprecated, kept so old configurations still load
    outbuf_overflow: int = 1048576  # pending output past this goes to a tempfile
    outbuf_high_watermark: int = 16777216  # the app's iterator waits past this
    inbuf_overflow: int = 524288  # request bodies past this go to a tempfile
    # Options set on every accepted connection, as (level, optname, value).
    socket_options: List[Tuple[int, int, int]] = [
        (socket.SOL_TCP, socket.TCP_NODELAY, 1),
    ]

    # Connections.
    connection_limit: int = 100  # stop accepting while this many are open
    cleanup_interval: int = 30  # seconds between sweeps for idle connections
    channel_timeout: int = 120  # seconds a connection may stay idle
    # Seconds a client may take to send a complete request head, however
    # steadily it trickles (not in Waitress; 0 for no bound).
    request_head_timeout: int = 60
    # Requests read ahead on a busy connection (lets the server notice a
    # client that hung up while its request is running).
    channel_request_lookahead: int = 0

    # Limits.
    max_request_header_size: int = 262144
    max_request_body_size: int = 1073741824

    # Logging and errors.
    log_socket_errors: bool = True
    expose_tracebacks: bool = False

    # Waitress's asyncore loop knobs; accepted for compatibility, the native
    # event loop has no use for them.
    asyncore_loop_timeout: int = 1
    asyncore_use_poll: bool = False

    def __init__(self, **kw: Any) -> None:
        self._check_exclusive(kw)

        if "send_bytes" in kw:
            warnings.warn(
                "send_bytes is deprecated and will be removed in a future release",
                DeprecationWarning,
            )

        for name, value in kw.items():
            if name not in self._param_map:
                raise ValueError("Unknown adjustment %r" % name)
            setattr(self, name, self._param_map[name](value))

        # An explicit host or port (even one equal to the default) replaces
        # the listen list; the marker classes tell the two cases apart.
        if not isinstance(self.host, _str_marker) or not isinstance(
            self.port, _int_marker
        ):
            self.listen = [f"{self.host}:{self.port}"]

        self.listen = self._resolve_listen()
        self._check_proxy_options()
        self.check_sockets(self.sockets)
        self._check_worker_options()
        self._check_dispatch()
        self._check_loop_scheduling()
        self._check_access_log_format()
        self.metrics_sockinfo = self._resolve_metrics_listen()
        self._check_tls_options()

    #: The values of ssl_verify and ssl_min_version (1.2 and 1.3 also read).
    SSL_VERIFY_MODES = ("none", "optional", "required")
    SSL_VERSIONS = {"tlsv1.2": "TLSv1.2", "1.2": "TLSv1.2", "tlsv1.3": "TLSv1.3", "1.3": "TLSv1.3"}

    def _check_tls_options(self) -> None:
        verify = self.ssl_verify.strip().lower()
        if verify not in self.SSL_VERIFY_MODES:
            raise ValueError(f"ssl_verify must be one of none, optional, required, not {self.ssl_verify!r}")
        self.ssl_verify = verify
        version = self.SSL_VERSIONS.get(self.ssl_min_version.strip().lower())
        if version is None:
            raise ValueError(f"ssl_min_version must be TLSv1.2 or TLSv1.3, not {self.ssl_min_version!r}")
        self.ssl_min_version = version
        if self.ssl_certfile is None:
            for name in ("ssl_keyfile", "ssl_keyfile_password", "ssl_ca_certs", "ssl_ciphers"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name} has no meaning without ssl_certfile")
            if verify != "none":
                raise ValueError("ssl_verify has no meaning without ssl_certfile")
            return
        if verify != "none" and self.ssl_ca_certs is None:
            raise ValueError(f"ssl_verify={verify} needs ssl_ca_certs")
        # The files are read and checked by the engine's TLS layer (which
        # says which file is wrong); without the compiled engine, when
        # serving starts.
        try:
            from . import _native
        except ImportError:
            return
        try:
            _native.check_tls(self)
        except ValueError as exc:
            raise TLSSetupError(str(exc)) from None

    @property
    def tls(self) -> bool:
        """True when TCP listeners speak HTTPS (ssl_certfile is set)."""
        return self.ssl_certfile is not None

    def _check_dispatch(self) -> None:
        mode = self.dispatch.strip().lower()
        if mode not in self.DISPATCH_MODES:
            raise ValueError(f"dispatch must be threads or inline, not {self.dispatch!r}")
        self.dispatch = mode

    def _check_loop_scheduling(self) -> None:
        policy = self.loop_scheduling.strip().lower()
        if policy not in self.LOOP_SCHEDULING:
            raise ValueError(f"loop_scheduling must be batch or normal, not {self.loop_scheduling!r}")
        self.loop_scheduling = policy

    def _check_worker_options(self) -> None:
        for name, least in (
            ("workers", 1),
            ("max_requests", 0),
            ("max_requests_jitter", 0),
            ("worker_timeout", 0),
            ("max_worker_rss", 0),
        ):
            if getattr(self, name) < least:
                raise ValueError(f"{name} must be at least {least}, not {getattr(self, name)}")
        if self.supervised and not hasattr(os, "fork"):
            raise ValueError(
                "workers > 1, max_requests and max_worker_rss need os.fork, which this platform "
                "does not have; run one process per port behind a proxy instead"
            )

    def _check_access_log_format(self) -> None:
        # The format is parsed by the engine; without the compiled engine
        # (an install still building) it is checked when serving starts.
        # Only with a log on: creating a server imports no engine otherwise.
        if not self.access_log:
            return
        try:
            from . import _native
        except ImportError:
            return
        _native.check_access_log_format(self.access_log_format)

    def _resolve_metrics_listen(self) -> Optional[SocketInfo]:
        """The address to bind for ``metrics_listen``: one ``host:port``
        (IPv6 in brackets), the port required."""
        entry = self.metrics_listen
        if not entry:
            return None
        host, sep, port = entry.strip().rpartition(":")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(
                f"metrics_listen must be host:port (for example 127.0.0.1:9100), not {entry!r}"
            )
        try:
            infos = socket.getaddrinfo(
                None if host in ("", "*") else host,
                int(port),
                self._enabled_family(),
                socket.SOCK_STREAM,
                socket.IPPROTO_TCP,
                socket.AI_PASSIVE,
            )
        except OSError as exc:
            raise ValueError(f"metrics_listen {entry!r}: cannot resolve {host!r} ({exc})")
        family, socktype, proto, _, sockaddr = infos[0]
        return (family, socktype, proto, sockaddr)

    @property
    def supervised(self) -> bool:
        """True when worker processes under a supervisor serve (supervisor.py)."""
        return self.workers > 1 or self.max_requests > 0 or self.max_worker_rss > 0

    @staticmethod
    def _check_exclusive(kw: Dict[str, Any]) -> None:
        """Reject option combinations that say where to listen twice."""
        if "listen" in kw and ("host" in kw or "port" in kw):
            raise ValueError("host or port may not be set if listen is set.")
        if "listen" in kw and "sockets" in kw:
            raise ValueError("socket may not be set if listen is set.")
        if "sockets" in kw and ("host" in kw or "port" in kw):
            raise ValueError("host or port may not be set if sockets is set.")
        if "sockets" in kw and "unix_socket" in kw:
            raise ValueError("unix_socket may not be set if sockets is set")
        if "unix_socket" in kw and ("host" in kw or "port" in kw):
            raise ValueError("unix_socket may not be set if host or port is set")
        if "unix_socket" in kw and "listen" in kw:
            raise ValueError("unix_socket may not be set if listen is set")

    def _enabled_family(self) -> int:
        if not self.ipv4 and not HAS_IPV6:
            raise ValueError(
                "IPv4 is disabled and IPv6 is not available: "
                "there is nothing to listen on."
            )
        if self.ipv4 and not self.ipv6:
            return socket.AF_INET
        if self.ipv6 and not self.ipv4:
            return socket.AF_INET6
        return socket.AF_UNSPEC

    def _resolve_listen(self) -> List[SocketInfo]:
        """Turn ``host:port`` strings into the socket addresses to bind.

        A host of ``*`` means every local address of the enabled families; an
        IPv6 host is written in brackets; a missing port means ``self.port``.
        """
        family = self._enabled_family()
        resolved: List[SocketInfo] = []
        seen = set()
        for entry in self.listen:
            host, sep, port = entry.rpartition(":")
            if not sep or "]" in port:
                # No port given ("127.0.0.1", "[::1]"): the colons we found,
                # if any, belong to an IPv6 address.
                host, port = entry, str(self.port)
            if host.startswith("[") and host.endswith("]"):
                host = host[1:-1]
            try:
                infos = socket.getaddrinfo(
                    None if host == "*" else host,
                    port,
                    family,
                    socket.SOCK_STREAM,
                    socket.IPPROTO_TCP,
                    socket.AI_PASSIVE,
                )
            except Exception:
                raise ValueError("Invalid host/port specified.")
            for fam, socktype, proto, _, sockaddr in infos:
                # getaddrinfo may repeat an address, sometimes differing only
                # in the IPv6 zone index; binding it twice would fail.  Port 0
                # asks for a fresh port each time, so it never repeats.
                key = (str(sockaddr[0]).split("%", 1)[0], sockaddr[1])
                if sockaddr[1] == 0 or key not in seen:
                    resolved.append((fam, socktype, proto, sockaddr))
                    seen.add(key)
        return resolved

    def _check_proxy_options(self) -> None:
        if self.trusted_proxy_count is not None and self.trusted_proxy is None:
            raise ValueError(
                "trusted_proxy_count has no meaning without setting trusted_proxy"
            )
        if self.trusted_proxy_count is None:
            self.trusted_proxy_count = 1

        if self.trusted_proxy_headers:
            if self.trusted_proxy is None:
                raise ValueError(
                    "trusted_proxy_headers has no meaning without setting "
                    "trusted_proxy"
                )
            headers = {header.lower() for header in self.trusted_proxy_headers}
            unknown = headers - KNOWN_PROXY_HEADERS
            if unknown:
                raise ValueError(
                    "Received unknown trusted_proxy_headers value (%s) expected "
                    "one of %s"
                    % (", ".join(sorted(unknown)), ", ".join(sorted(KNOWN_PROXY_HEADERS)))
                )
            if "forwarded" in headers and len(headers) > 1:
                raise ValueError(
                    "The Forwarded proxy header and the "
                    "X-Forwarded-{By,Host,Proto,Port,For} headers are mutually "
                    "exclusive. Can't trust both!"
                )
            self.trusted_proxy_headers = headers
        elif self.trusted_proxy is not None:
            # The message starts as Waitress's does, so that warning filters
            # written for Waitress (which match its start) still apply.
            warnings.warn(
                "No proxy headers were marked as trusted, but trusted_proxy was "
                "set. Implicitly trusting X-Forwarded-Proto for backwards "
                "compatibility; set trusted_proxy_headers, as this fallback will "
                "go away in a future version of waitress.",
                DeprecationWarning,
            )
            self.trusted_proxy_headers = {"x-forwarded-proto"}

    @classmethod
    def parse_args(cls, argv: List[str]) -> Tuple[Dict[str, Any], List[str]]:
        """Read command line options into keyword arguments for ``__init__``.

        Values stay strings (the constructor converts them).  Boolean options
        are flags with a ``--no-`` form; ``--listen`` may repeat and its
        values are joined with spaces.  The result always has the runner's
        own ``help`` and ``call`` keys; ``app`` appears when ``--app`` is used.
        """
        long_opts = ["help", "call", "app="]
        for name, convert in cls._params:
            flag = name.replace("_", "-")
            if convert is asbool:
                long_opts += [flag, "no-" + flag]
            else:
                long_opts.append(flag + "=")

        kw: Dict[str, Any] = {"help": False, "call": False}
        opts, args = getopt.getopt(argv, "", long_opts)
        for opt, value in opts:
            name = opt[2:].replace("-", "_")
            if name in ("help", "call"):
                kw[name] = True
            elif name == "listen":
                kw["listen"] = "{} {}".format(kw.get("listen", ""), value)
            elif name.startswith("no_"):
                kw[name[3:]] = "false"
            elif cls._param_map.get(name) is asbool:
                kw[name] = "true"
            else:
                kw[name] = value
        return kw, args

    @classmethod
    def check_sockets(cls, sockets: Iterable[socket.socket]) -> None:
        """Accept only stream sockets, all Internet or all Unix."""
        families = set()
        for sock in sockets:
            if sock.type != socket.SOCK_STREAM:
                families.add("unsupported")
            elif sock.family in (socket.AF_INET, socket.AF_INET6):
                families.add("inet")
            elif sock.family == getattr(socket, "AF_UNIX", None):
                families.add("unix")
            else:
                families.add("unsupported")
        if {"inet", "unix"} <= families:
            raise ValueError("Internet and UNIX sockets may not be mixed.")
        if "unsupported" in families:
            raise ValueError("Only Internet or UNIX stream sockets may be used.")
