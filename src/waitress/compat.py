"""Platform facts the rest of the package consults."""
import platform
import socket
import sys
import warnings

#: True on Windows.
WIN: bool = platform.system() == "Windows"

MAXINT: int = sys.maxsize

#: False when the interpreter cannot create IPv6 sockets, or cannot restrict
#: them to IPv6 (we need IPV6_V6ONLY so that "::" and "0.0.0.0" can both be
#: bound on the same port).
HAS_IPV6: bool = socket.has_ipv6

if hasattr(socket, "IPPROTO_IPV6") and hasattr(socket, "IPV6_V6ONLY"):
    IPPROTO_IPV6: int = socket.IPPROTO_IPV6
    IPV6_V6ONLY: int = socket.IPV6_V6ONLY
elif WIN:
    # Some Windows builds of Python lack the names; the values are fixed.
    IPPROTO_IPV6 = 41
    IPV6_V6ONLY = 27
else:
    IPPROTO_IPV6 = IPV6_V6ONLY = -1
    warnings.warn(
        "This OS does not provide the IPv6 socket options waitress needs "
        "(IPPROTO_IPV6, IPV6_V6ONLY); IPv6 support is disabled.",
        RuntimeWarning,
    )
    HAS_IPV6 = False
