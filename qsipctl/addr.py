"""Addresses, once: IP literal or name, IPv6 brackets, ``host:port`` text.

Every layer (site values, SIP headers, transports, probes, rollout) writes and
reads addresses; before this module each had its own bracketing and splitting,
and three libraries answered "is this an IP?".  This is the one place, built
on the declared ``netaddr`` dependency.  It is a leaf: it imports nothing of
qsipctl, so any layer may use it.
"""

from __future__ import annotations

from functools import lru_cache

import netaddr


class AddressError(ValueError):
    """Text that is not the address it claims to be (the message says why)."""


@lru_cache(maxsize=4096)
def ip_version(host: str) -> int | None:
    """4 or 6 for an IP literal written without brackets, None for anything else.

    Remembered per spelling: a run over a 1,000-phone site asks about the same
    few addresses (registrar, our own) for every message, and netaddr's
    validation is pure Python.
    """
    if netaddr.valid_ipv4(host, flags=netaddr.INET_PTON):
        return 4
    if netaddr.valid_ipv6(host):
        return 6
    return None


def is_ip(host: str) -> bool:
    """An IPv4 or IPv6 literal (no brackets, no zone id)."""
    return ip_version(host) is not None


def bracket(host: str) -> str:
    """``::1`` -> ``[::1]``: how an IPv6 address stands in a URI or before ``:port``."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def unbracket(host: str) -> str:
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def host_port(host: str, port: int | None) -> str:
    """``198.18.0.1:5060``, ``[2001:db8::1]:5060``; just the host when there is no port."""
    return bracket(host) if port is None else f"{bracket(host)}:{port}"


def split_host_port(text: str) -> tuple[str, int | None]:
    """``host``, ``host:port``, ``[v6]``, ``[v6]:port`` or a bare IPv6 address.

    A bare IPv6 address has no port (``2001:db8::1:5060`` is an address, as
    RFC 3986 reads it); raises :class:`AddressError` for a bad port or bracket.
    """
    text = text.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep:
            raise AddressError(f"{text!r}: missing ']' after the IPv6 address")
        if rest and not rest.startswith(":"):
            raise AddressError(f"{text!r}: expected ':port' after ']'")
        return host, _port(text, rest[1:]) if rest else None
    if text.count(":") > 1:
        return text, None
    host, sep, port = text.partition(":")
    return host, _port(text, port) if sep else None


def _port(text: str, port: str) -> int:
    if not (port.isascii() and port.isdigit()) or not 1 <= int(port) <= 65535:
        raise AddressError(f"{text!r}: port {port!r} is not a number from 1 to 65535")
    return int(port)


def _address(host: str) -> netaddr.IPAddress | None:
    """The IP literal ``host`` (brackets allowed) as netaddr reads it; None for a name."""
    version = ip_version(unbracket(host))
    return None if version is None else netaddr.IPAddress(unbracket(host), version)


def any_address(host: str) -> str:
    """The wildcard bind address of ``host``'s family: ``::`` for IPv6, else ``0.0.0.0``."""
    return "::" if ip_version(unbracket(host)) == 6 else "0.0.0.0"


@lru_cache(maxsize=4096)
def normalize_ip(host: str) -> str:
    """The canonical text of an IP literal (``2001:DB8:0::1`` -> ``2001:db8::1``)."""
    ip = _address(host)
    if ip is None:
        raise AddressError(f"{host!r} is not an IP address")
    return str(ip)


def same_ip(a: str, b: str) -> bool:
    """Two spellings of one address (brackets, case, zero compression) compare equal."""
    try:
        return normalize_ip(a) == normalize_ip(b)
    except AddressError:
        return unbracket(a).lower() == unbracket(b).lower()


def packed(host: str) -> bytes:
    """The 4 or 16 octets of an IP literal (pcap headers, STUN attributes)."""
    return netaddr.IPAddress(normalize_ip(host)).packed


def is_loopback(host: str) -> bool:
    """127.0.0.0/8 or ::1: reachable from this machine only."""
    ip = _address(host)
    return ip is not None and ip.is_loopback()


# Where a device behind a NAT lives.  RFC 2544's 198.18.0.0/15 is deliberately
# not here: it is the lab's stand-in for the internet (198.19.x is "public" in
# every test topology), and no real site numbers its LAN from it.
_PRIVATE = netaddr.IPSet(
    [
        "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",  # RFC 1918
        "100.64.0.0/10",  # RFC 6598 carrier-grade NAT
        "127.0.0.0/8", "169.254.0.0/16", "::1/128", "fe80::/10", "fc00::/7",
    ]
)  # fmt: skip


def is_private(host: str) -> bool:
    """An address a NAT hides: RFC 1918/6598, loopback, link-local, ULA.

    What a NAT check needs to tell "the PBX sees our private address" from a
    public one; names are not private (they are not addresses).
    """
    ip = _address(host)
    return ip is not None and ip in _PRIVATE
