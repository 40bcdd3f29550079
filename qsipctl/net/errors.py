"""Why a transport could not carry our SIP traffic, in words an engineer can act on.

Each failure the probes turn into a verdict names it in ``kind`` ("refused",
"timeout", "closed", "no-tls", "tls-certificate", "tls-hostname", "dns"), so
the probe layer maps kinds to verdicts instead of parsing OS error strings.
A name that does not resolve and a request nobody answered have classes of
their own (the resolver raises one, callers catch the other); the rest are
NetError with a kind.
"""

from __future__ import annotations

from qsipctl.errors import QsipctlError


class NetError(QsipctlError):
    """A transport or name-resolution failure (exit code 1: the probe failed)."""

    kind = "transport"

    def __init__(self, message: str, detail: str | None = None, kind: str | None = None) -> None:
        super().__init__(message)
        self.detail = detail if detail is not None else message
        self.kind = kind or self.kind  # the class's kind unless this failure names its own


class DnsError(NetError):
    """The PBX's name does not resolve (no NAPTR/SRV/A/AAAA answer)."""

    kind = "dns"


class NoAnswer(NetError):
    """Nothing came back in time (the probe's --timeout, or Timer B/F)."""

    kind = "timeout"
