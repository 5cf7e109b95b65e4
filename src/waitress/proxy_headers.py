"""Proxy headers (X-Forwarded-*, RFC 7239 Forwarded) behind a trusted proxy.

The rules are implemented once, in the Swift core (the server applies them on
its request path when ``trusted_proxy`` or ``clear_untrusted_proxy_headers``
is set); this module keeps Waitress's public names and lets a WSGI stack
apply the same rules as middleware.
"""
from collections import namedtuple
from typing import Any, Callable, Dict, Iterable, Optional, Set

from .utilities import BadRequest, logger

#: The proxy headers, in their WSGI form (without the HTTP_ prefix).
PROXY_HEADERS = frozenset(
    {
        "X_FORWARDED_FOR",
        "X_FORWARDED_HOST",
        "X_FORWARDED_PROTO",
        "X_FORWARDED_PORT",
        "X_FORWARDED_BY",
        "FORWARDED",
    }
)

Forwarded = namedtuple("Forwarded", ["by", "for_", "host", "proto"])

# trusted_proxy_headers names -> the WSGI names they make trusted
_TRUSTED_NAMES = {
    "x-forwarded-for": "X_FORWARDED_FOR",
    "x-forwarded-host": "X_FORWARDED_HOST",
    "x-forwarded-proto": "X_FORWARDED_PROTO",
    "x-forwarded-port": "X_FORWARDED_PORT",
    "x-forwarded-by": "X_FORWARDED_BY",
    "forwarded": "FORWARDED",
}


class MalformedProxyHeader(Exception):
    """A trusted proxy header whose value can't be used."""

    def __init__(self, header: str, reason: str, value: str) -> None:
        self.header = header
        self.reason = reason
        self.value = value
        super().__init__(header, reason, value)


def _apply(environ, trusted_proxy, trusted_proxy_count, trusted_proxy_headers, clear, log):
    from . import _native

    return _native.apply_proxy_headers(
        environ,
        trusted_proxy,
        int(trusted_proxy_count),
        set(trusted_proxy_headers or ()),
        bool(clear),
        bool(log),
    )


def proxy_headers_middleware(
    app: Callable[..., Any],
    trusted_proxy: Optional[str] = None,
    trusted_proxy_count: int = 1,
    trusted_proxy_headers: Optional[Iterable[str]] = None,
    clear_untrusted: bool = True,
    log_untrusted: bool = False,
    logger: Any = logger,
) -> Callable[..., Any]:
    """Wrap ``app`` so that the proxy headers are applied to each environ."""
    headers = set(trusted_proxy_headers or ())

    def translate_proxy_headers(environ, start_response):
        malformed, warnings = _apply(
            environ, trusted_proxy, trusted_proxy_count, headers, clear_untrusted, log_untrusted
        )
        for warning in warnings:
            logger.warning(warning)
        if malformed is not None:
            detail = malformed[3]
            return BadRequest(detail).wsgi_response(environ, start_response)
        return app(environ, start_response)

    return translate_proxy_headers


def parse_proxy_headers(
    environ: Dict[str, Any],
    trusted_proxy_count: int,
    trusted_proxy_headers: Optional[Iterable[str]],
    logger: Any = logger,
) -> Set[str]:
    """Apply the trusted headers to ``environ``; return the untrusted names.

    Raises :class:`MalformedProxyHeader` for a value that can't be used.
    """
    trusted = set(trusted_proxy_headers or ())
    malformed, warnings = _apply(environ, "*", trusted_proxy_count, trusted, False, False)
    for warning in warnings:
        if not warning.startswith("Malformed proxy header"):
            logger.warning(warning)
    if malformed is not None:
        raise MalformedProxyHeader(malformed[0], malformed[1], malformed[2])
    return set(PROXY_HEADERS) - {_TRUSTED_NAMES[name] for name in trusted if name in _TRUSTED_NAMES}


def strip_brackets(addr: str) -> str:
    """``[::1]`` -> ``::1``; anything else unchanged."""
    if addr[0] == "[" and addr[-1] == "]":
        return addr[1:-1]
    return addr


def clear_untrusted_headers(
    environ: Dict[str, Any],
    untrusted_headers: Iterable[str],
    log_warning: bool = False,
    logger: Any = logger,
) -> None:
    """Remove the given proxy headers (WSGI names) from ``environ``."""
    removed = [name for name in untrusted_headers if environ.pop("HTTP_" + name, False) is not False]
    if log_warning and removed:
        shown = ", ".join("-".join(part.capitalize() for part in name.split("_")) for name in removed)
        logger.warning(
            "Removed untrusted headers (%s). Waitress recommends these be removed upstream.", shown
        )
