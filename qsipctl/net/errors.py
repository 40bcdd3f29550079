"""Why a transport could not carry our SIP traffic, in words an engineer can act on.

Each failure the probes turn into a verdict has its own class, so the probe
layer maps types to verdicts instead of parsing OS error strings.
"""

from __future__ import annotations

from qsipctl.errors import QsipctlError


class NetError(QsipctlError):
    """A transport or name-resolution failure (exit code 1: the probe failed)."""

    kind = "transport"

    def __init__(self, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.detail = detail if detail is not None else message


class ConnectRefused(NetError):
    """Nothing listens there: TCP RST, or ICMP port unreachable for UDP."""

    kind = "refused"


class ConnectTimeout(NetError):
    """The connection (TCP handshake or TLS) did not complete in time."""

    kind = "timeout"


class TlsCertificateError(NetError):
    """The server's certificate is not trusted (unknown CA, expired, self-signed)."""

    kind = "tls-certificate"


class TlsHostnameError(NetError):
    """The certificate is trusted but names another host."""

    kind = "tls-hostname"


class DnsError(NetError):
    """The PBX's name does not resolve (no NAPTR/SRV/A/AAAA answer)."""

    kind = "dns"


class ConnectionLost(NetError):
    """The server closed a TCP/TLS connection before answering."""

    kind = "closed"


class NoTls(NetError):
    """TCP connected, but the TLS handshake got plain text, a reset or silence."""

    kind = "no-tls"


class NoAnswer(NetError):
    """Nothing came back in time (the probe's --timeout, or Timer B/F)."""

    kind = "timeout"
