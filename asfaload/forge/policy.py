"""Which network addresses a user-supplied URL may reach (SSRF policy).

A URL typed by a user, or found in a forge's answer, must not make the server talk to itself,
to its private network or to a cloud metadata service. The check is done twice for every new
connection: on every address the host name resolves to *before* connecting, and on the peer
address of the connected socket *after* connecting, so DNS rebinding between the two lookups
cannot slip a private address through.
"""

from __future__ import annotations

import ipaddress
import socket

from ..errors import ForbiddenURLError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# NAT64 embeds an IPv4 address in the low 32 bits; treat it like that IPv4 address.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def forbidden_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` must not be reached from a user-supplied URL, or None if it is public."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            reason = forbidden_reason(inner)
            if reason is not None:
                return reason
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        # 169.254.169.254 (cloud metadata) lives here.
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_private:
        return "private"
    if ip.is_reserved:
        return "reserved"
    # is_global is False for shared address space (100.64/10, where e.g. Alibaba's metadata
    # service lives) and the other special-purpose blocks is_private does not name.
    if not ip.is_global:
        return "non-global"
    return None


def parse_ip(text: str) -> IPAddress | None:
    """An IP address from a host or socket address string (IPv6 zone id dropped), else None."""
    host = text.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def check_ip(ip: IPAddress, shown_host: str) -> None:
    reason = forbidden_reason(ip)
    if reason is not None:
        raise ForbiddenURLError(
            f"Refusing to fetch from {shown_host}: it resolves to a {reason} address ({ip})"
        )


def check_host(host: str, port: int) -> None:
    """Resolve ``host`` and refuse it if ANY of its addresses is not public."""
    literal = parse_ip(host)
    if literal is not None:
        check_ip(literal, host)
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        # Let the connection attempt report the resolution failure in its own words.
        return
    for info in infos:
        ip = parse_ip(str(info[4][0]))
        if ip is not None:
            check_ip(ip, host)


def check_peer(sock: socket.socket, shown_host: str) -> None:
    """Refuse a connected socket whose peer is not public (defeats DNS rebinding)."""
    try:
        peer = sock.getpeername()
    except OSError:
        return
    ip = parse_ip(str(peer[0]))
    if ip is not None:
        check_ip(ip, shown_host)
