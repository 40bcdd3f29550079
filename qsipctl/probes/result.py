"""What a probe found, as data: one :class:`ProbeResult` per account or server.

The verdict is two things: a stable ``verdict`` code for scripts (documented
in docs/diagnostics.md, never renamed) and ``message``, the plain words an
engineer who is not a SIP person can act on.  Rendering (table, JSON, ladder)
happens elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# verdict code -> the words shown to people (details are appended after a colon)
VERDICTS: dict[str, str] = {
    "ok": "ok",
    "wrong-password": "wrong password: the server asked again after our credentials",
    "forbidden": "403 Forbidden: the server refuses this account or auth user",
    "unknown-user": "404: the server does not know this user",
    "timeout": "no answer: wrong transport or port, or a firewall",
    "refused": "connection refused: nothing listens there (wrong port or transport?)",
    "tls-certificate": "TLS certificate not trusted",
    "tls-hostname": "TLS certificate is for another name",
    "dns": "DNS failure: the PBX name does not resolve",
    "server-error": "the PBX reported an error of its own (5xx)",
    "rejected": "the server rejected the request",
    "auth-unsupported": "the server asks for an authentication qsipctl cannot answer",
    "no-password": "the server wants a password and none is configured",
    "closed": "the server closed the connection without answering",
    "transport": "network error",
}


@dataclass
class ProbeResult:
    """The outcome of one probe; every field is always present in JSON."""

    probe: str  # "register" | "options"
    target: str  # the AOR (register) or URI (options) probed
    transport: str
    ok: bool = False
    verdict: str = "transport"
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

    def fail(self, verdict: str, detail: str = "") -> ProbeResult:
        self.ok = False
        self.verdict = verdict
        words = VERDICTS[verdict]
        self.message = f"{words}: {detail}" if detail else words
        return self

    def succeed(self, message: str) -> ProbeResult:
        self.ok = True
        self.verdict = "ok"
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
        return "forbidden"
    if status == 404:
        return "unknown-user"
    if status == 408:
        return "timeout"
    if 500 <= status < 600:
        return "server-error"
    return "rejected"
