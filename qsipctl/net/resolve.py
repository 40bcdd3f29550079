"""Locating a SIP server (RFC 3263 §4) with dnspython.

``host`` is a name: an IP literal is used as it is by the caller
(:func:`qsipctl.probes.base.locate`), without importing this module, so the
common probe path never loads dnspython.  A name with an explicit port is
looked up as A/AAAA only (§4.2).  A name without a port goes through SRV for
the chosen transport (``_sip._udp``, ``_sip._tcp``, ``_sips._tcp``); when no
transport is chosen, NAPTR first picks one (§4.1; for a SIPS URI only its
SIPS+D2T services, else ``_sips._tcp``).  Without SRV records, A/AAAA on
the transport's default port.  The name server can be given explicitly,
which is how tests point the resolver at a dnsmasq on loopback.
"""

from __future__ import annotations

from typing import Any

from qsipctl.addr import AddressError, is_ip, split_host_port
from qsipctl.net.errors import DnsError
from qsipctl.net.transport import DEFAULT_PORTS
from qsipctl.sip.endpoint import Peer

_NAPTR_SERVICES = {"SIP+D2U": "udp", "SIP+D2T": "tcp", "SIPS+D2T": "tls"}
_SRV_PREFIX = {"udp": "_sip._udp", "tcp": "_sip._tcp", "tls": "_sips._tcp"}


async def resolve(
    host: str,
    port: int | None,
    transport: str | None,
    *,
    secure: bool = False,
    nameserver: str | None = None,
    timeout: float = 5.0,
) -> list[Peer]:
    """Every address to try, in order; raise :class:`DnsError` when there is none."""
    chosen = transport or ("tls" if secure else None)
    resolver = _resolver(nameserver, timeout)
    if port is not None:
        return [Peer(chosen or "udp", ip, port) for ip in await _addresses(resolver, host)]
    if transport is None and (found := await _naptr(resolver, host, secure)):
        return found
    chosen = chosen or "udp"
    if found := await _srv_records(resolver, f"{_SRV_PREFIX[chosen]}.{host}", chosen):
        return found
    return [Peer(chosen, ip, DEFAULT_PORTS[chosen]) for ip in await _addresses(resolver, host)]


def _resolver(nameserver: str | None, timeout: float) -> Any:
    import dns.asyncresolver

    r = dns.asyncresolver.Resolver(configure=nameserver is None)  # None: the system's
    if nameserver is not None:
        addr, port = split_nameserver(nameserver)
        r.nameservers, r.port = [addr], port
    r.lifetime = timeout
    return r


def split_nameserver(text: str) -> tuple[str, int]:
    """``IP``, ``IP:PORT``, ``IPv6`` or ``[IPv6]:PORT`` -> (address, port 53 by default).

    Raises ValueError with words for the user: the CLI checks ``--dns-server``
    with it before any probe runs, so a typo is bad input, not a crash.
    """
    try:
        addr, port = split_host_port(text)
    except AddressError as exc:
        raise ValueError(f"name server {exc}") from None
    if not is_ip(addr):
        raise ValueError(f"name server {text!r}: {addr!r} is not an IP address")
    return addr, port or 53


async def _query(resolver: Any, name: str, rdtype: str) -> list[Any]:
    """The records, SRV and NAPTR in the order to try them: RFC 2782 (lowest priority
    first, weighted random within one) and RFC 3403 (order, then preference)."""
    import dns.exception
    import dns.resolver

    try:
        answer = await resolver.resolve(name, rdtype)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except dns.resolver.NoNameservers as exc:
        raise DnsError(f"no name server answered for {name} ({rdtype}): {exc}") from None
    except dns.exception.Timeout:
        raise DnsError(f"DNS timed out looking up {name} ({rdtype})") from None
    except dns.exception.DNSException as exc:
        raise DnsError(f"DNS lookup of {name} ({rdtype}) failed: {exc}") from None
    return answer.rrset.processing_order() if rdtype in ("SRV", "NAPTR") else list(answer)


async def _addresses(resolver: Any, host: str) -> list[str]:
    """A then AAAA; one family failing is fine as long as the other answers."""
    ips: list[str] = []
    problem: DnsError | None = None
    for rdtype in ("A", "AAAA"):
        try:
            ips += [r.address for r in await _query(resolver, host, rdtype)]
        except DnsError as exc:
            problem = problem or exc
    if ips:
        return ips
    raise problem or DnsError(f"{host} has no A or AAAA record", f"{host} has no address")


async def _naptr(resolver: Any, host: str, secure: bool) -> list[Peer]:
    """§4.1: the services NAPTR offers, in its order; a SIPS URI keeps only SIPS+D2T."""
    out: list[Peer] = []
    for rec in await _query(resolver, host, "NAPTR"):
        transport = _NAPTR_SERVICES.get(rec.service.decode().upper())
        if transport is not None and (transport == "tls" or not secure):
            out += await _srv_records(resolver, str(rec.replacement).rstrip("."), transport)
    return out


async def _srv_records(resolver: Any, name: str, transport: str) -> list[Peer]:
    out: list[Peer] = []
    for rec in await _query(resolver, name, "SRV"):
        target = str(rec.target).rstrip(".")
        if target:  # "." (now empty) says the service is not offered (RFC 2782)
            ips = [target] if is_ip(target) else await _addresses(resolver, target)
            out += [Peer(transport, ip, int(rec.port)) for ip in ips]
    return out
