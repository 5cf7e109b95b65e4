"""Loggers, HTTP dates, Unix socket cleanup and the error responses.

The native engine renders its own error pages; the classes here are the
Python-side API Waitress exposes, and their bodies have the same shape as the
pages the engine sends.
"""
import calendar
import errno
import logging
import os
import re
import stat
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

logger = logging.getLogger("waitress")
queue_logger = logging.getLogger("waitress.queue")

_DAY_ABBREVIATIONS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTH_ABBREVIATIONS = (
    "Jan", "Feb", "Mar", "Apr", "May", "Jun",
    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
)  # fmt: skip
_DAY_NAMES = (
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
)  # fmt: skip
_MONTH_NUMBERS = {name.lower(): i for i, name in enumerate(_MONTH_ABBREVIATIONS, 1)}

_month = "(?P<month>" + "|".join(_MONTH_NUMBERS) + ")"
_time = "(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})"

# The two forms RFC 9110 section 5.6.7 lets a recipient meet (the asctime
# form is not understood, as in Waitress).  Matched against lower-cased text:
#   IMF-fixdate  "Sun, 06 Nov 1994 08:49:37 GMT"
#   RFC 850      "Sunday, 06-Nov-94 08:49:37 GMT"
_IMF_FIXDATE = re.compile(
    "(?P<weekday>%s), (?P<day>[0-9]{1,2}) %s (?P<year>[0-9]+) %s gmt"
    % ("|".join(d.lower() for d in _DAY_ABBREVIATIONS), _month, _time)
)
_RFC850_DATE = re.compile(
    "(?P<weekday>%s), (?P<day>[0-9]{1,2})-%s-(?P<year>[0-9]+) %s gmt"
    % ("|".join(_DAY_NAMES), _month, _time)
)

# Waitress's public names for the two patterns.  Their groups are numbered as
# Waitress numbers them: 1 weekday, 2 day, 3 month, 4 year, 5-7 h:m:s.
rfc822_reg = _IMF_FIXDATE
rfc850_reg = _RFC850_DATE

# RFC 9110 section 5.6.4: quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE
_QUOTED_STRING = re.compile(
    r'"(?:[\t !\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
)
_QUOTED_PAIR = re.compile(r"\\([\t \x21-\x7e\x80-\xff])")


def build_http_date(when: float) -> str:
    """Format a POSIX timestamp as an HTTP date (IMF-fixdate)."""
    t = time.gmtime(when)
    return "%s, %02d %s %4d %02d:%02d:%02d GMT" % (
        _DAY_ABBREVIATIONS[t.tm_wday],
        t.tm_mday,
        _MONTH_ABBREVIATIONS[t.tm_mon - 1],
        t.tm_year,
        t.tm_hour,
        t.tm_min,
        t.tm_sec,
    )


def _unpack_date(m: "re.Match[str]") -> Tuple[int, int, int, int, int, int, int, int, int]:
    year = m["year"]
    if len(year) == 2:
        # RFC 850 dates carry two-digit years; Waitress reads them as 19xx.
        year = "19" + year
    return (
        int(year),
        _MONTH_NUMBERS[m["month"]],
        int(m["day"]),
        int(m["hour"]),
        int(m["minute"]),
        int(m["second"]),
        0,
        0,
        0,
    )


def unpack_rfc822(m: "re.Match[str]") -> Tuple[int, int, int, int, int, int, int, int, int]:
    """The ``time.struct_time``-shaped tuple of an ``rfc822_reg`` match."""
    return _unpack_date(m)


def unpack_rfc850(m: "re.Match[str]") -> Tuple[int, int, int, int, int, int, int, int, int]:
    """The ``time.struct_time``-shaped tuple of an ``rfc850_reg`` match
    (a two-digit year is read as 19xx)."""
    return _unpack_date(m)


def parse_http_date(d: str) -> int:
    """Return the POSIX timestamp of an HTTP date, or 0 if it is not one."""
    d = d.lower()
    for pattern in (_RFC850_DATE, _IMF_FIXDATE):
        m = pattern.fullmatch(d)
        if m is not None:
            return calendar.timegm(_unpack_date(m))
    return 0


def find_double_newline(s: bytes) -> int:
    """Index just past the first CRLF CRLF in ``s`` (the end of a request
    head), or -1 when there is none.  A bare LF pair does not count."""
    index = s.find(b"\r\n\r\n")
    return -1 if index < 0 else index + 4


def undquote(value: str) -> str:
    """The content of an RFC 9110 quoted-string with its quoted-pairs undone;
    a value without quotes is returned as it is.

    Raises ValueError for a value that is quoted only at one end, or whose
    quoting is not a well-formed quoted-string (``'"\\"'``, ``'"a'``).
    """
    starts, ends = value.startswith('"'), value.endswith('"')
    if not starts and not ends:
        return value
    if starts and ends and _QUOTED_STRING.fullmatch(value):
        return _QUOTED_PAIR.sub(r"\1", value[1:-1])
    raise ValueError("Invalid quoting in value: %r" % (value,))


def _raised_in_server(exc: BaseException) -> BaseException:
    """``exc`` with a traceback: the engine calls this for an error it raised
    itself outside any Python frame (a body item that is not bytes, an app
    result that is not iterable), so that "Exception while serving" records
    carry a traceback, as Waitress's do."""
    try:
        raise exc
    except BaseException as raised:
        return raised


def cleanup_unix_socket(path: str) -> None:
    """Remove a stale Unix socket file at ``path`` before binding there.

    Only a socket is removed: a regular file or directory of that name is left
    alone, so the bind that follows fails loudly instead of deleting data.
    """
    try:
        st = os.stat(path)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise
        return
    if stat.S_ISSOCK(st.st_mode):
        try:
            os.remove(path)
        except OSError:
            # Another process removed it first; the path is free either way.
            pass


class Error:
    """An HTTP error the server answers with a short plain-text page."""

    code = 500
    reason = "Internal Server Error"

    def __init__(self, body: str) -> None:
        self.body = body

    def to_response(
        self, ident: Optional[str] = None
    ) -> Tuple[str, List[Tuple[str, str]], bytes]:
        """Return ``(status, headers, body)`` for this error.

        The body names the reason, the detail and the server (``ident``, or
        "server" when none is configured).
        """
        status = f"{self.code} {self.reason}"
        text = "{}\r\n\r\n{}\r\n\r\n(generated by {})".format(
            self.reason, self.body, ident or "server"
        )
        headers = [("Content-Type", "text/plain; charset=utf-8")]
        return status, headers, text.encode("utf-8")

    def wsgi_response(
        self, environ: Dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterator[bytes]:
        """Serve this error as a WSGI application would."""
        status, headers, body = self.to_response()
        start_response(status, headers)
        yield body


class BadRequest(Error):
    code = 400
    reason = "Bad Request"


class RequestHeaderFieldsTooLarge(BadRequest):
    code = 431
    reason = "Request Header Fields Too Large"


class RequestEntityTooLarge(BadRequest):
    code = 413
    reason = "Request Entity Too Large"


class InternalServerError(Error):
    code = 500
    reason = "Internal Server Error"


class ServerNotImplemented(Error):
    code = 501
    reason = "Not Implemented"
