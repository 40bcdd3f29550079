"""What every probe shares: the plugin registry, RFC 3263 failover, one conversation.

Why a registry: ``register``, ``options`` and the probes to come (call, NAT,
binding checks) are the same shape: a target in, a :class:`ProbeOutcome`
out.  A probe module registers itself with :func:`probe`; the runner looks
it up by name instead of growing an if/else.

Why one failover helper: RFC 3263 §4.3 (try the next server on no answer, a
broken transport or a 503) is the same for every probe, so
:func:`probe_servers` runs any probe's ``attempt`` per located server.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from importlib import import_module

from qsipctl import __version__
from qsipctl.addr import any_address, bracket, host_port, is_ip
from qsipctl.net.driver import SipDriver
from qsipctl.net.errors import NetError, NoAnswer
from qsipctl.net.trace import Trace
from qsipctl.net.transport import DEFAULT_PORTS
from qsipctl.probes.result import VERDICTS, ProbeResult
from qsipctl.probes.target import ProbeTarget
from qsipctl.sip.endpoint import Endpoint, Peer, ResponseReceived
from qsipctl.sip.errors import SipError
from qsipctl.sip.headers import Headers, Via
from qsipctl.sip.message import Request
from qsipctl.sip.transaction import new_branch

USER_AGENT = f"qsipctl/{__version__}"
# RFC 3263 4.3 failover tries at most this many servers, each with the full
# --timeout: a dead first server costs one timeout, never an unbounded wait
MAX_SERVERS = 4
# no answer or a broken path: RFC 3263 4.3 says try the next server
_MOVE_ON = {
    "timeout",
    "refused",
    "closed",
    "transport",
    "tls-certificate",
    "tls-hostname",
    "no-tls",
}


@dataclass(slots=True)
class ProbeOutcome:
    """A result and the wire evidence behind it (not part of the JSON result)."""

    result: ProbeResult
    traces: list[Trace] = field(default_factory=list)


@dataclass(slots=True)
class Conversation:
    """One probe's talk with one server: the driver, Call-ID, From tag, CSeq."""

    driver: SipDriver
    peer: Peer
    target: ProbeTarget
    call_id: str = field(default_factory=lambda: os.urandom(12).hex())
    from_tag: str = field(default_factory=lambda: os.urandom(6).hex())
    cseq: int = 0
    answered_from: set[Peer] = field(default_factory=set)  # answers from another address
    # our address towards the server, in Via and Contact (the socket is open already)
    local: tuple[str, int] = field(init=False)
    from_value: str = field(init=False)  # one From on every request (RFC 3261 §8.1.1.3)

    def __post_init__(self) -> None:
        self.local = self.driver.local_for(self.peer)
        target = self.target
        from_uri = (
            target.aor if target.user else f"{target.scheme}:qsipctl@{bracket(target.domain)}"
        )
        self.from_value = f"<{from_uri}>;tag={self.from_tag}"

    def build(
        self, method: str, uri: str, to_uri: str, extra: Sequence[tuple[str, str]] = ()
    ) -> Request:
        """A request with a fresh branch and the next CSeq, sent-by our real address."""
        self.cseq += 1
        h = Headers()
        host, port = self.local
        via = Via(self.peer.transport.upper(), host, port, {"branch": new_branch(), "rport": None})
        h.add("Via", str(via))
        h.remember("Via", via)
        h.add("Max-Forwards", "70")
        h.add("From", self.from_value)
        h.add("To", f"<{to_uri}>")
        h.add("Call-ID", self.call_id)
        h.add("CSeq", f"{self.cseq} {method}")
        h.remember("CSeq", (self.cseq, method))  # as for the Via: not parsed back
        for name, value in extra:
            h.add(name, value)
        h.add("User-Agent", USER_AGENT)
        return Request(method, uri, h)

    async def send(self, request: Request) -> ResponseReceived:
        """The final answer within the probe's --timeout (raises NetError)."""
        answer = await self.driver.request(request, self.peer, self.target.timeout)
        if answer.source != self.peer:
            self.answered_from.add(answer.source)
        return answer


Attempt = Callable[[Conversation, ProbeResult], Awaitable[None]]
Runner = Callable[..., Awaitable[ProbeOutcome]]
_REGISTRY: dict[str, str] = {
    "register": "qsipctl.probes.register:probe_register",
    "options": "qsipctl.probes.options:probe_options",
}


def register_probe(name: str, where: str) -> None:
    """Make ``module:function`` runnable as probe ``name`` (imported when first run)."""
    _REGISTRY[name] = where


def probe_names() -> list[str]:
    return sorted(_REGISTRY)


def get_probe(name: str) -> Runner:
    module, _, func = _REGISTRY[name].partition(":")
    runner: Runner = getattr(import_module(module), func)
    return runner


def new_result(probe: str, target: ProbeTarget) -> ProbeResult:
    return ProbeResult(
        probe=probe,
        target=target.aor,
        transport=target.transport or "auto",
        core=target.core,
        softphone=target.softphone,
    )


def fail_from_net(result: ProbeResult, exc: NetError) -> ProbeResult:
    """Map a transport failure to its plain-words verdict (the error's kind names it)."""
    if isinstance(exc, NoAnswer):
        return result.fail("timeout", f"nothing came back from {result.server}")
    verdict = exc.kind if exc.kind in VERDICTS else "transport"
    return result.fail(verdict, exc.detail)


async def locate(target: ProbeTarget) -> list[Peer]:
    """RFC 3263 for names; an IP literal needs no resolver (nor dnspython's import)."""
    if is_ip(target.host):
        transport = target.transport or ("tls" if target.scheme == "sips" else "udp")
        return [Peer(transport, target.host, target.port or DEFAULT_PORTS[transport])]
    from qsipctl.net.resolve import resolve

    found = await resolve(
        target.host,
        target.port,
        target.transport,
        secure=target.scheme == "sips",
        nameserver=target.nameserver,
        timeout=target.timeout,
    )
    return found[:MAX_SERVERS]


async def probe_servers(
    probe: str, target: ProbeTarget, attempt: Attempt, accept: Sequence[str] = ()
) -> ProbeOutcome:
    """Run ``attempt`` on each located server until one gives an answer to keep.

    RFC 3263 4.3 / RFC 3261 21.5.4: no answer (Timer F or --timeout), a
    transport error or a 503 moves on to the next server in SRV order, with a
    fresh transaction; the last server's verdict is the result, and ``tried``
    says what happened at each.
    """
    result = new_result(probe, target)
    outcome = ProbeOutcome(result)
    try:
        servers = await locate(target)
    except NetError as exc:
        fail_from_net(result, exc)
        return outcome
    tried: list[dict[str, str]] = []
    for server in servers:
        if tried:  # every server after the first starts from a fresh result
            result = new_result(probe, target)
        await _on_server(target, server, result, outcome.traces, attempt, accept)
        tried.append(_tried(server, result))
        if not move_on(result):
            break
    result.tried = tried
    if len(tried) > 1:
        gave_up = "; ".join(f"{t['server']} {t['verdict']}" for t in tried[:-1])
        result.warnings.insert(0, f"failed over (RFC 3263) from: {gave_up}")
    outcome.result = result
    return outcome


async def open_driver(driver: SipDriver, target: ProbeTarget, server: Peer) -> None:
    """Give ``driver`` its socket to ``server``: the UDP port, or a TCP/TLS connection."""
    if server.transport == "udp":
        await driver.open_udp(target.local_address or any_address(server.host))
        return
    tls = target.tls
    if tls.server_name is None and not is_ip(target.host):
        # RFC 5922: the certificate must name the domain we asked for, not the SRV target's IP
        tls = replace(tls, server_name=target.host)
    await driver.connect(server, tls=tls, timeout=target.timeout, local=target.local_address)


async def _on_server(
    target: ProbeTarget,
    server: Peer,
    result: ProbeResult,
    traces: list[Trace],
    attempt: Attempt,
    accept: Sequence[str],
) -> None:
    result.transport, result.server = server.transport, host_port(server.host, server.port)
    if server.transport == "tls" and not target.tls.verify:
        result.warnings.append("TLS certificate not verified (verify: false)")
    driver = SipDriver(Endpoint(accept=accept), evidence=target.evidence)
    try:
        await open_driver(driver, target, server)
        conv = Conversation(driver, server, target)
        result.local = host_port(*conv.local)
        await attempt(conv, result)
        for other in sorted(conv.answered_from, key=str):
            result.warnings.append(
                f"the answer came from {host_port(other.host, other.port)}, not {result.server}:"
                " a multi-homed PBX; a firewall that only allows the address you configured"
                " will drop it"
            )
    except NetError as exc:
        fail_from_net(result, exc)
    except SipError as exc:
        result.fail("transport", f"unusable answer from the server: {exc}")
    finally:
        traces.extend(driver.traces)
        await driver.close()


def move_on(result: ProbeResult) -> bool:
    """A 503, or no final answer at all; a 408 or 5xx other than 503 is the server's word."""
    if result.ok:
        return False
    if result.status is None:
        return result.verdict in _MOVE_ON
    return result.status == 503


def _tried(server: Peer, result: ProbeResult) -> dict[str, str]:
    return {
        "server": host_port(server.host, server.port),
        "transport": server.transport,
        "verdict": result.verdict,
        "message": result.message,
    }


def elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000.0, 2)
