"""Driving sans-IO client transactions over a real transport, for the probes.

The transaction decides what to (re)send and when it has given up; this
module only moves bytes and the clock.  The probe's own ``timeout`` caps the
whole wait, because Timer F's 32 s is far longer than an engineer wants to
wait for "no answer".
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence

from qsipctl import __version__
from qsipctl.net.errors import NetError
from qsipctl.net.transport import (
    DEFAULT_PORTS,
    ServerAddress,
    SipTransport,
    is_ip,
    open_transport,
)
from qsipctl.probes.target import ProbeTarget
from qsipctl.sip.headers import Headers
from qsipctl.sip.message import Request, Response
from qsipctl.sip.transaction import (
    ClientTransaction,
    ResponseReceived,
    TimedOut,
    TransportFailed,
    client_key,
    new_branch,
)

USER_AGENT = f"qsipctl/{__version__}"
# RFC 3263 4.3 failover tries at most this many servers, each with the full
# --timeout: a dead first server costs one timeout, never an unbounded wait
MAX_SERVERS = 4


class ProbeTimeout(NetError):
    kind = "timeout"


def _token_hex(nbytes: int) -> str:
    """``secrets.token_hex`` without importing ``secrets`` (and ``random``, ``hmac``)."""
    return os.urandom(nbytes).hex()


class Dialogish:
    """What stays the same across the requests of one probe (Call-ID, tags, CSeq)."""

    def __init__(self, call_id: str, from_tag: str, cseq: int = 0) -> None:
        self.call_id, self.from_tag, self.cseq = call_id, from_tag, cseq

    @classmethod
    def new(cls, rand: Callable[[int], str] = _token_hex) -> Dialogish:
        return cls(call_id=rand(12), from_tag=rand(6))


def host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def locate(target: ProbeTarget) -> list[ServerAddress]:
    """RFC 3263 for names; an IP literal needs no resolver (nor dnspython's import)."""
    if is_ip(target.host):
        transport = target.transport or ("tls" if target.scheme == "sips" else "udp")
        return [ServerAddress(transport, target.host, target.port or DEFAULT_PORTS[transport])]
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


async def open_to(target: ProbeTarget, server: ServerAddress) -> SipTransport:
    """A transport to one located server (TLS checks the name the user asked for)."""
    tls = target.tls
    if tls.server_name is None and not is_ip(target.host):
        # RFC 5922: the certificate must name the domain we asked for, not the SRV target's IP
        tls = tls.replace(server_name=target.host)
    return await open_transport(
        server.transport,
        server.host,
        server.port,
        local_address=target.local_address,
        tls=tls,
        timeout=target.timeout,
        label=target.aor,
    )


def build_request(
    tp: SipTransport,
    target: ProbeTarget,
    state: Dialogish,
    method: str,
    uri: str,
    to_uri: str,
    extra: Sequence[tuple[str, str]] = (),
) -> Request:
    """A request with a fresh branch and the next CSeq, sent-by our real address."""
    state.cseq += 1
    local_host, local_port = tp.local
    via = f"SIP/2.0/{tp.name.upper()} {host_port(local_host, local_port)}"
    h = Headers()
    h.add("Via", f"{via};branch={new_branch()};rport")
    h.add("Max-Forwards", "70")
    from_uri = target.aor if target.user else f"{target.scheme}:qsipctl@{_bracket(target.domain)}"
    h.add("From", f"<{from_uri}>;tag={state.from_tag}")
    h.add("To", f"<{to_uri}>")
    h.add("Call-ID", state.call_id)
    h.add("CSeq", f"{state.cseq} {method}")
    for name, value in extra:
        h.add(name, value)
    h.add("User-Agent", USER_AGENT)
    return Request(method, uri, h)


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _flush(tp: SipTransport, tx: ClientTransaction, first: list[bool]) -> None:
    for data in tx.datagrams_to_send():
        req = tx.request
        note = "" if first[0] else " (again)"
        tp.trace.message("out", f"{req.method} {req.uri}{note}", f"{req.cseq[0]} {req.method}")
        first[0] = False
        tp.send(data)


async def transact(
    tp: SipTransport,
    request: Request,
    deadline: float,
    clock: Callable[[], float] = time.monotonic,
) -> Response:
    """Send ``request`` and return its final response; raise on timeout or transport loss."""
    tx = ClientTransaction(request, reliable=tp.reliable, now=clock())
    tx.start()
    first = [True]
    _flush(tp, tx, first)
    key = tx.key
    while True:
        for event in tx.events():
            if isinstance(event, ResponseReceived) and event.response.status >= 200:
                return event.response
            if isinstance(event, TimedOut):
                raise _no_answer(tp, request)
            if isinstance(event, TransportFailed):
                raise NetError(f"could not send {request.method}")
        now = clock()
        if now >= deadline:
            raise _no_answer(tp, request)
        wake = tx.next_timer()
        until = deadline if wake is None else min(deadline, wake)
        msg = await tp.receive(max(0.0, until - now))
        if msg is None:
            tx.handle_timer(clock())
        elif isinstance(msg, Response) and _matches(msg, key):
            tx.receive(msg, clock())
        _flush(tp, tx, first)


def _no_answer(tp: SipTransport, request: Request) -> NetError:
    """A timeout, unless the server did answer, with datagrams that are not SIP."""
    if tp.discarded:
        return NetError(
            f"unparsable data from the server on {tp.name}"
            f" ({tp.discarded} datagram(s) dropped): {tp.discard_reason}"
        )
    return ProbeTimeout(f"no answer to {request.method}")


def _matches(msg: Response, key: tuple[str, str]) -> bool:
    try:
        return client_key(msg) == key
    except Exception:  # a response without a usable Via/CSeq belongs to nobody
        return False
