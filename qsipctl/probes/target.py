"""Who to probe and how: one :class:`ProbeTarget` per softphone account or ad-hoc URI.

Targets come from two places that must behave the same: a softphone of a
loaded site (its profile's transport, proxy, TLS settings) and the command
line of ``qsipctl probe`` (``sip:1001@10.0.0.5:5060`` plus options).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from qsipctl.addr import bracket
from qsipctl.errors import UsageError
from qsipctl.net.transport import TRANSPORTS, TlsSettings
from qsipctl.site.secrets import Secret

if TYPE_CHECKING:
    from qsipctl.site.model import Core, Softphone


@dataclass(frozen=True, slots=True)
class ProbeTarget:
    """One account (or server) to probe; immutable, ``replace()`` makes variants.

    The password is left out of ``==``, the hash and the repr.
    """

    user: str | None  # AOR user; None for OPTIONS to a server
    domain: str  # SIP domain: Request-URI, To/From host, digest realm usually
    host: str  # where to send: IP literal or DNS name
    port: int | None  # None: RFC 3263 (SRV) or the transport default
    transport: str | None  # None: RFC 3263 chooses
    scheme: str = "sip"
    auth_user: str | None = None
    password: Secret | None = field(default=None, compare=False, repr=False)
    tls: TlsSettings = field(default_factory=TlsSettings)
    expires: int = 3600
    timeout: float = 5.0
    local_address: str | None = None
    nameserver: str | None = None
    core: str | None = None
    softphone: str | None = None
    registrar_uri: str | None = None  # Request-URI when it is not derived from domain/host
    evidence: bool = True  # keep the wire trace (--pcap, --ladder need it)

    def replace(self, **changes: Any) -> ProbeTarget:
        return replace(self, **changes)

    @property
    def aor(self) -> str:
        host = bracket(self.domain)
        return f"{self.scheme}:{self.user}@{host}" if self.user else f"{self.scheme}:{host}"

    @property
    def request_uri(self) -> str:
        """For REGISTER the domain (RFC 3261 §10.2), with the port when we were given one."""
        if self.registrar_uri:
            return self.registrar_uri
        host = bracket(self.domain)
        same = self.domain == self.host and self.port is not None
        return f"{self.scheme}:{host}:{self.port}" if same else f"{self.scheme}:{host}"


def parse_target_uri(text: str) -> tuple[str, str | None, str, int | None, str | None]:
    """``sip:1001@host:port;transport=tcp`` -> (scheme, user, host, port, transport).

    The ``transport`` URI parameter chooses the transport as RFC 3263 §4.1
    says; bad input is a UsageError.
    """
    from qsipctl.sip.errors import SipError
    from qsipctl.sip.uri import parse_uri

    candidate = text if text.lower().startswith(("sip:", "sips:")) else f"sip:{text}"
    try:
        uri = parse_uri(candidate)
    except SipError as exc:
        raise UsageError(f"bad target {text!r}: {exc}") from None
    uri_transport = (uri.param("transport") or "").lower() or None
    return uri.scheme.lower(), uri.user, uri.host.strip("[]"), uri.port, uri_transport


def adhoc_target(
    text: str,
    *,
    transport: str | None,
    password: Secret | None,
    auth_user: str | None = None,
    domain: str | None = None,
    tls: TlsSettings | None = None,
    expires: int = 3600,
    timeout: float = 5.0,
    local_address: str | None = None,
    nameserver: str | None = None,
    need_user: bool = True,
) -> ProbeTarget:
    scheme, user, host, port, uri_transport = parse_target_uri(text)
    if need_user and not user:
        raise UsageError(f"target {text!r} has no user part (e.g. sip:1001@{host})")
    if scheme == "sips" and uri_transport == "tcp":
        uri_transport = "tls"  # RFC 3261 §26.2.2: sips: over "tcp" is TLS over TCP
    if uri_transport is not None:
        if transport is not None and transport != uri_transport:
            raise UsageError(f"target {text!r} says transport={uri_transport}, not {transport}")
        transport = uri_transport
    if transport is not None and transport not in TRANSPORTS:
        raise UsageError(f"unknown transport {transport!r} (use udp, tcp or tls)")
    if scheme == "sips" and transport not in (None, "tls"):
        raise UsageError(f"a sips: target needs TLS, not {transport}")
    return ProbeTarget(
        user=user,
        domain=domain or host,
        host=host,
        port=port,
        transport="tls" if scheme == "sips" and transport is None else transport,
        scheme=scheme,
        auth_user=auth_user,
        password=password,
        tls=tls or TlsSettings(),
        expires=expires,
        timeout=timeout,
        local_address=local_address,
        nameserver=nameserver,
    )


def softphone_target(
    core: Core,
    phone: Softphone,
    *,
    timeout: float = 5.0,
    local_address: str | None = None,
    nameserver: str | None = None,
) -> ProbeTarget:
    """The REGISTER a core's softphone would send, sent from this machine instead.

    Like the core, we send to its proxy (the outbound proxy when set, else the
    registrar) and name the registrar's domain in the Request-URI.
    """
    registrar = phone.expectations.registrar or phone.proxy
    domain = phone.domain or registrar.host
    host = bracket(domain)
    port = f":{registrar.port}" if domain == registrar.host and registrar.port else ""
    tls = TlsSettings(phone.tls.ca_file, phone.tls.verify, phone.tls.server_name)
    return ProbeTarget(
        user=phone.username,
        domain=domain,
        host=phone.proxy.host,
        port=phone.proxy.port,
        transport=phone.transport,
        scheme="sip",
        auth_user=phone.auth_id or phone.username,
        password=phone.password,
        tls=tls,
        expires=phone.registration_timeout,
        timeout=timeout,
        local_address=local_address,
        nameserver=nameserver,
        core=core.name,
        softphone=phone.name,
        registrar_uri=f"sip:{host}{port}",
    )
