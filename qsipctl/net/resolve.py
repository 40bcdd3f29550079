"""Locating a SIP server (RFC 3263 §4) with dnspython.

An IP literal is used as is (and dnspython is never imported: the common
probe path stays fast).  A name with an explicit port is looked up as
A/AAAA only (§4.2).  A name without a port goes through SRV for the chosen
transport (``_sip._udp``, ``_sip._tcp``, ``_sips._tcp``); when no transport
is chosen, NAPTR first picks one (§4.1).  Without SRV records, A/AAAA on the
transport's default port.  The name server can be given explicitly, which is
how tests point the resolver at a dnsmasq on loopback.
"""

from __future__ import annotations

from typing import Any

from qsipctl.addr import AddressError, is_ip, split_host_port
from qsipctl.net.errors import DnsError
from qsipctl.net.transport import DEFAULT_PORTS, ServerAddress

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
) -> list[ServerAddress]:
    """Every address to try, in order; raise :class:`DnsError` when there is none."""
    chosen = transport or ("tls" if secure else None)
    if is_ip(host):
        t = chosen or "udp"
        return [ServerAddress(t, host, port or DEFAULT_PORTS[t])]
    resolver = _resolver(nameserver, timeout)
    if port is not None:
        t = chosen or "udp"
        return [ServerAddress(t, ip, port) for ip in await _addresses(resolver, host)]
    if chosen is None:
        found = await _naptr(resolver, host, secure)
        if found:
            return found
        chosen = "tls" if secure else "udp"
    found = await _srv_records(resolver, f"{_SRV_PREFIX[chosen]}.{host}", chosen)
    if found:
        return found
    return [
        ServerAddress(chosen, ip, DEFAULT_PORTS[chosen]) for ip in await _addresses(resolver, host)
    ]


def _resolver(nameserver: str | None, timeout: float) -> Any:
    import dns.asyncresolver

    if nameserver is None:
        r = dns.asyncresolver.Resolver()
    else:
        r = dns.asyncresolver.Resolver(configure=False)
        addr, port = split_nameserver(nameserver)
        r.nameservers = [addr]
        r.port = port
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


async def _naptr(resolver: Any, host: str, secure: bool) -> list[ServerAddress]:
    out: list[ServerAddress] = []
    for rec in await _query(resolver, host, "NAPTR"):
        transport = _NAPTR_SERVICES.get(rec.service.decode().upper())
        if transport is None or (secure and transport != "tls"):
            continue
        out += await _srv_records(resolver, str(rec.replacement).rstrip("."), transport)
    return out


async def _srv_records(resolver: Any, name: str, transport: str) -> list[ServerAddress]:
    out: list[ServerAddress] = []
    for rec in await _query(resolver, name, "SRV"):
        target = str(rec.target).rstrip(".")
        if target in ("", "."):
            continue
        ips = [target] if is_ip(target) else await _addresses(resolver, target)
        out += [ServerAddress(transport, ip, int(rec.port)) for ip in ips]
    return out
