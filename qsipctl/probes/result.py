"""What a probe found, as data: one :class:`ProbeResult` per account or server.

The verdict is two things: a stable ``verdict`` code for scripts (documented
in docs/diagnostics.md, never renamed) and ``message``, the plain words an
engineer who is not a SIP person can act on.  Rendering (table, JSON, ladder)
happens elsewhere.
"""

from __future__ import annotations

from typing import Any

# verdict code -> the words shown to people (details are appended after a colon)
VERDICTS: dict[str, str] = {
    "ok": "ok",
    "wrong-password": (
        "wrong password, or the server does not know this user (it answers both the same)"
    ),
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
    # register probe, binding-safe modes (qsipctl.probes.register_flow)
    "in-use": "another device is bound to this account: binding test skipped",
    "query-refused": "the PBX refuses a binding query (REGISTER without Contact)",
}


class ProbeResult:
    """The outcome of one probe; every field is always present in JSON.

    A plain class, not a dataclass (generating a dataclass costs ~1 ms of
    every ``qsipctl probe``'s start-up, importing ``dataclasses`` another):
    ``__json__`` gives ``report.output.to_jsonable`` the fields in order.
    """

    # the JSON fields, in order (``==`` and ``repr`` compare/show them all)
    _fields = (
        "probe", "target", "transport", "ok", "verdict", "message", "core", "softphone",
        "server", "local", "status", "reason", "elapsed_ms", "algorithm", "expires", "seen_as",
        "nat", "server_agent", "unregistered", "allow", "supported", "warnings", "tried",
        "mode", "bindings", "displaced", "leftover",
    )  # fmt: skip
    __slots__ = _fields
    probe: str  # "register" | "options"
    target: str  # the AOR (register) or URI (options) probed
    transport: str
    ok: bool
    verdict: str
    message: str
    core: str | None
    softphone: str | None
    server: str | None  # the address we talked to, "ip:port"
    local: str | None  # our address for that conversation
    status: int | None
    reason: str | None
    elapsed_ms: float | None  # first request sent -> final answer to the last one
    algorithm: str | None  # digest algorithm used, None when not challenged
    expires: int | None  # registration lifetime the server granted
    seen_as: str | None  # how the server saw us (Via received/rport)
    nat: bool | None  # seen_as differs from our own address
    server_agent: str | None  # Server / User-Agent header of the answer
    unregistered: bool | None  # None: not attempted (--keep-registered, or failure)
    allow: list[str]
    supported: list[str]
    warnings: list[str]
    # every server tried, in order (RFC 3263 failover): server, transport, verdict, message
    tried: list[dict[str, str]]
    # register probe only (None for options), see qsipctl.probes.register_flow:
    mode: str | None  # "query" (default: changes nothing) | "bind" | "keep"
    bindings: list[dict[str, object]] | None  # the account's bindings before we bound anything
    displaced: list[dict[str, object]] | None  # bindings our REGISTER removed (bind/keep)
    leftover: dict[str, object] | None  # our binding when it may remain: contact, expires

    def __init__(
        self,
        probe: str,
        target: str,
        transport: str,
        ok: bool = False,
        verdict: str = "transport",
        message: str = "",
        core: str | None = None,
        softphone: str | None = None,
        server: str | None = None,
        local: str | None = None,
        status: int | None = None,
        reason: str | None = None,
        elapsed_ms: float | None = None,
        algorithm: str | None = None,
        expires: int | None = None,
        seen_as: str | None = None,
        nat: bool | None = None,
        server_agent: str | None = None,
        unregistered: bool | None = None,
        allow: list[str] | None = None,
        supported: list[str] | None = None,
        warnings: list[str] | None = None,
        tried: list[dict[str, str]] | None = None,
        mode: str | None = None,
        bindings: list[dict[str, object]] | None = None,
        displaced: list[dict[str, object]] | None = None,
        leftover: dict[str, object] | None = None,
    ) -> None:
        self.probe, self.target, self.transport = probe, target, transport
        self.ok, self.verdict, self.message = ok, verdict, message
        self.core, self.softphone, self.server, self.local = core, softphone, server, local
        self.status, self.reason, self.elapsed_ms = status, reason, elapsed_ms
        self.algorithm, self.expires, self.seen_as, self.nat = algorithm, expires, seen_as, nat
        self.server_agent, self.unregistered = server_agent, unregistered
        self.allow = [] if allow is None else allow
        self.supported = [] if supported is None else supported
        self.warnings = [] if warnings is None else warnings
        self.tried = [] if tried is None else tried
        self.mode, self.bindings = mode, bindings
        self.displaced, self.leftover = displaced, leftover

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, ProbeResult)
        return self._values() == other._values()

    def __repr__(self) -> str:
        shown = ", ".join(f"{n}={getattr(self, n)!r}" for n in self._fields)
        return f"ProbeResult({shown})"

    def __json__(self) -> dict[str, Any]:
        """The fields in order, for ``report.output.to_jsonable``."""
        return {name: getattr(self, name) for name in self._fields}

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
