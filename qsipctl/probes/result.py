"""What a probe found, as data: one :class:`ProbeResult` per account or server.

The verdict is two things: a stable ``verdict`` code for scripts (a
:class:`Verdict`, documented in docs/diagnostics.md, never renamed) and
``message``, the plain words an engineer who is not a SIP person can act on.
Rendering (table, JSON, ladder) happens in :mod:`qsipctl.report`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Verdict(StrEnum):
    OK = "ok"
    WRONG_PASSWORD = "wrong-password"
    FORBIDDEN = "forbidden"
    UNKNOWN_USER = "unknown-user"
    TIMEOUT = "timeout"
    SERVER_TIMEOUT = "server-timeout"
    REFUSED = "refused"
    NO_TLS = "no-tls"
    TLS_CERTIFICATE = "tls-certificate"
    TLS_HOSTNAME = "tls-hostname"
    DNS = "dns"
    SERVER_ERROR = "server-error"
    REJECTED = "rejected"
    AUTH_UNSUPPORTED = "auth-unsupported"
    NO_PASSWORD = "no-password"
    CLOSED = "closed"
    TRANSPORT = "transport"
    # register probe, binding-safe modes (qsipctl.probes.register_flow)
    IN_USE = "in-use"
    QUERY_REFUSED = "query-refused"
    # inbound early-offer check (qsipctl.probes.answer)
    NO_CALL = "no-call"
    DELAYED_OFFER = "delayed-offer"
    NO_COMMON_CODEC = "no-common-codec"


# verdict code -> the words shown to people (details are appended after a colon)
VERDICTS: dict[str, str] = {
    Verdict.OK: "ok",
    Verdict.WRONG_PASSWORD: (
        "wrong password, or the server does not know this user (it answers both the same)"
    ),
    Verdict.FORBIDDEN: "403 Forbidden: the server refuses this account or auth user",
    Verdict.UNKNOWN_USER: "404: the server does not know this user",
    Verdict.TIMEOUT: "no answer: wrong transport or port, or a firewall",
    Verdict.SERVER_TIMEOUT: "the PBX says a downstream hop did not answer (408)",
    Verdict.REFUSED: "connection refused: nothing listens there (wrong port or transport?)",
    Verdict.NO_TLS: "no TLS on this port",
    Verdict.TLS_CERTIFICATE: "TLS certificate not trusted",
    Verdict.TLS_HOSTNAME: "TLS certificate is for another name",
    Verdict.DNS: "DNS failure: the PBX name does not resolve",
    Verdict.SERVER_ERROR: "the PBX reported an error of its own (5xx)",
    Verdict.REJECTED: "the server rejected the request",
    Verdict.AUTH_UNSUPPORTED: "the server asks for an authentication qsipctl cannot answer",
    Verdict.NO_PASSWORD: "the server wants a password and none is configured",
    Verdict.CLOSED: "the server closed the connection without answering",
    Verdict.TRANSPORT: "network error",
    Verdict.IN_USE: "another device is bound to this account: binding test skipped",
    Verdict.QUERY_REFUSED: "the PBX refuses a binding query (REGISTER without Contact)",
    Verdict.NO_CALL: "no call came in while we were bound to the account",
    Verdict.DELAYED_OFFER: "the PBX sends INVITE without SDP (delayed offer)",
    Verdict.NO_COMMON_CODEC: "the INVITE offers no codec the core lists",
}


@dataclass(slots=True)
class ProbeResult:
    """The outcome of one probe; every field is always present in JSON, in this order.

    Mutable: a probe fills it in as the exchange goes.  The common fields
    come first; the rest are per-probe details (``None``/empty when a probe
    does not measure them), kept flat so the register/options JSON is what
    scripts already read.
    """

    probe: str  # "register" | "options" | any registered probe
    target: str  # the AOR (register) or URI (options) probed
    transport: str
    ok: bool = False
    verdict: str = Verdict.TRANSPORT
    message: str = ""
    core: str | None = None
    softphone: str | None = None
    server: str | None = None  # the address we talked to, "ip:port"
    local: str | None = None  # our address for that conversation
    status: int | None = None
    reason: str | None = None
    elapsed_ms: float | None = None  # first request sent -> final answer to the last one
    algorithm: str | None = None  # digest algorithm used, None when not challenged
    expires: int | None = None  # registration lifetime the server granted
    seen_as: str | None = None  # how the server saw us (Via received/rport)
    nat: bool | None = None  # seen_as differs from our own address
    server_agent: str | None = None  # Server / User-Agent header of the answer
    unregistered: bool | None = None  # None: not attempted (--keep-registered, or failure)
    allow: list[str] = field(default_factory=list)
    supported: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # every server tried, in order (RFC 3263 failover): server, transport, verdict, message
    tried: list[dict[str, str]] = field(default_factory=list)
    # register probe only (None for others), see qsipctl.probes.register_flow:
    mode: str | None = None  # "query" (default: changes nothing) | "bind" | "keep"
    bindings: list[dict[str, object]] | None = None  # the account's bindings before ours
    displaced: list[dict[str, object]] | None = None  # bindings our REGISTER removed
    leftover: dict[str, object] | None = None  # our binding when it may remain: contact, expires

    def fail(self, verdict: str, detail: str = "") -> ProbeResult:
        self.ok = False
        self.verdict = str(Verdict(verdict))
        words = VERDICTS[verdict]
        self.message = f"{words}: {detail}" if detail else words
        return self

    def succeed(self, message: str) -> ProbeResult:
        self.ok = True
        self.verdict = str(Verdict.OK)
        self.message = message
        return self


def status_line(status: int, reason: str, limit: int = 100) -> str:
    """``"503 Service Unavailable"`` for a message, with a peer's long reason cut short."""
    if len(reason) > limit:
        reason = reason[:limit] + "..."
    return f"{status} {reason}"


def verdict_for_status(status: int) -> str:
    """The verdict code for a final failure status (other than a repeated 401/407)."""
    if status == 403:
        return Verdict.FORBIDDEN
    if status == 404:
        return Verdict.UNKNOWN_USER
    if status == 408:
        return Verdict.SERVER_TIMEOUT
    if 500 <= status < 600:
        return Verdict.SERVER_ERROR
    return Verdict.REJECTED
