"""SIP transactions (RFC 3261 §17) as sans-IO state machines.

Why sans-IO: retransmission timers are what make SIP over UDP reliable, and
the interesting cases (Timer B after 32 s, Timer H, retransmission doubling up
to T2) must be testable without waiting.  So, aioquic style, a transaction
never sleeps and never touches a socket: the owner feeds it messages and the
current time, asks :meth:`next_timer` when to call :meth:`handle_timer`, sends
whatever :meth:`datagrams_to_send` returns, and hands a client transaction's
:meth:`~ClientTransaction.responses` to the TU (:attr:`failure` says why one
ended early).

Reliable transports (TCP/TLS) get no retransmissions and zero-length
"wait" timers (D, I, J, K), as §17 prescribes; the transaction still absorbs
duplicates while it lives.

INVITE transactions follow RFC 6026, which updates §17: after a 2xx both
sides linger in an "accepted" state (Timers L and M, 64*T1) instead of
terminating at once, so a retransmitted INVITE is not mistaken for a new call
and a retransmitted 2xx still reaches the TU.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from qsipctl.addr import host_port
from qsipctl.sip.headers import Headers
from qsipctl.sip.message import Message, Request, Response

MAGIC_COOKIE = "z9hG4bK"


# The RFC 3261 timer base values (§17.1.1.1, Table 4), in seconds
T1 = 0.5  # the round-trip estimate: the first retransmit interval
T2 = 4.0  # the longest retransmit interval (non-INVITE requests, INVITE final responses)
T4 = 5.0  # the longest a message stays in the network
TIMEOUT = 64 * T1  # Timers B, F, H and J


def new_branch() -> str:
    """A Via branch that is unique in space and time (RFC 3261 §8.1.1.7)."""
    return MAGIC_COOKIE + os.urandom(10).hex()


@dataclass(frozen=True, slots=True)
class Peer:
    """Where a message comes from or goes to: transport, IP address, port."""

    transport: str  # "udp" | "tcp" | "tls"
    host: str  # an IP address, without brackets
    port: int

    def __str__(self) -> str:
        return f"{self.transport} {host_port(self.host, self.port)}"


@dataclass(frozen=True, slots=True)
class Transmit:
    """Bytes to send to a peer; ``message`` names them for traces and ladders."""

    data: bytes
    peer: Peer
    message: Message


# ---------------------------------------------------------------- matching


def client_key(msg: Request | Response) -> tuple[str, str]:
    """RFC 3261 §17.1.3: top Via branch and CSeq method.

    Matching on the CSeq method keeps a CANCEL's response from landing in the
    INVITE transaction that shares its branch.
    """
    return msg.top_via.branch or "", msg.cseq[1]


def server_key(request: Request, method: str | None = None) -> tuple[object, ...]:
    """RFC 3261 §17.2.3: which server transaction a request belongs to.

    An ACK matches the INVITE it acknowledges, a CANCEL gets its own
    transaction.  RFC 2543 peers (no magic cookie) are matched on the dialog
    and CSeq identifiers instead; the To tag is left out because an ACK
    carries the tag our response added while the INVITE did not.
    ``method`` overrides the request's (a CANCEL looks up its INVITE).
    """
    via = request.top_via
    branch = via.branch or ""
    method = method or ("INVITE" if request.method == "ACK" else request.method)
    if branch.startswith(MAGIC_COOKIE):
        return branch, via.host.lower(), via.port, method
    return (
        "rfc2543",
        request.uri,
        request.from_tag,
        request.call_id,
        request.cseq[0],
        method,
        str(via),
    )


# ---------------------------------------------------------------- base


class _Transaction:
    """Timers and output queue shared by all four machines."""

    def __init__(self, request: Request, peer: Peer) -> None:
        self.request = request
        self.invite = request.method == "INVITE"
        self.peer = peer  # where the request goes (client) or came from (server)
        self.reliable = peer.transport != "udp"  # TCP/TLS: no retransmissions, no waits
        self.state = "init"
        self.failure: str | None = None  # "timeout" (Timer B, F or H) or "transport"
        self._deadlines: dict[str, float] = {}
        self._intervals: dict[str, float] = {}
        self._out: list[Transmit] = []

    # -- the owner's side
    def next_timer(self) -> float | None:
        """Absolute time at which :meth:`handle_timer` should be called."""
        return min(self._deadlines.values()) if self._deadlines else None

    def handle_timer(self, now: float) -> None:
        """Fire every timer due at ``now`` (earliest first)."""
        while self._deadlines:
            when, name = min((t, n) for n, t in self._deadlines.items())
            if when > now:
                return
            del self._deadlines[name]
            self._fire(name, now)

    def datagrams_to_send(self) -> list[Transmit]:
        out, self._out = self._out, []
        return out

    def transport_error(self, now: float) -> None:
        """RFC 3261 §17.1.4/§17.2.4: a send failure ends the transaction."""
        if not self.terminated:
            self._terminate("transport")

    @property
    def terminated(self) -> bool:
        return self.state == "terminated"

    # -- helpers for subclasses
    def _fire(self, name: str, now: float) -> None:
        raise NotImplementedError

    def _start_timer(self, name: str, now: float, interval: float) -> None:
        self._deadlines[name] = now + interval
        self._intervals[name] = interval

    def _stop_timer(self, *names: str) -> None:
        for name in names:
            self._deadlines.pop(name, None)

    def _backoff(self, name: str, now: float, cap: float) -> None:
        """Restart a retransmit timer with double its last interval, at most ``cap``."""
        self._start_timer(name, now, min(self._intervals[name] * 2, cap))

    def _wait(self, name: str, now: float, unreliable_interval: float) -> None:
        """Timers D/I/J/K: linger for retransmissions, or not at all over TCP/TLS."""
        if self.reliable:
            self._terminate()
        else:
            self._start_timer(name, now, unreliable_interval)

    def _terminate(self, failure: str | None = None) -> None:
        self.state = "terminated"  # the owner sees :attr:`terminated` and forgets it
        self.failure = failure
        self._deadlines.clear()


# ---------------------------------------------------------------- client


class ClientTransaction(_Transaction):
    """INVITE (§17.1.1) and non-INVITE (§17.1.2) client transactions.

    Created when the request is sent: the request is queued and the
    retransmit and timeout timers armed at once.
    """

    def __init__(self, request: Request, peer: Peer, now: float) -> None:
        super().__init__(request, peer)
        self.key = client_key(request)
        self._ack: Transmit | None = None
        self._responses: list[Response] = []
        self._sent = Transmit(request.to_bytes(), peer, request)  # every copy is these bytes
        self._out.append(self._sent)
        self.state = "calling" if self.invite else "trying"
        if not self.reliable:
            self._start_timer("A" if self.invite else "E", now, T1)
        self._start_timer("B" if self.invite else "F", now, TIMEOUT)

    def responses(self) -> list[Response]:
        """The responses the TU must see since the last call (retransmissions are absorbed)."""
        out, self._responses = self._responses, []
        return out

    def receive(self, response: Response, now: float) -> None:
        """Feed a response that matched :attr:`key`."""
        if self.terminated:
            return
        if self.invite:
            self._receive_invite(response, now)
        else:
            self._receive_non_invite(response, now)

    def _receive_invite(self, response: Response, now: float) -> None:
        status = response.status
        if self.state == "accepted":
            if 200 <= status < 300:
                self._responses.append(response)
            return
        if self.state == "completed":
            if status >= 300 and self._ack is not None:
                self._out.append(self._ack)  # our ACK was lost: send it again
            return
        self._stop_timer("A", "B")
        self._responses.append(response)
        if status < 200:
            self.state = "proceeding"
        elif status < 300:
            # RFC 6026 §8.4: linger in "accepted" so 2xx retransmissions (and
            # forked 2xx) still reach the TU, which ACKs each one itself.
            self.state = "accepted"
            self._start_timer("M", now, TIMEOUT)
        else:
            # §17.1.1.3: the ACK for a non-2xx takes To from the response (its tag)
            self.state = "completed"
            ack = same_transaction(self.request, "ACK", response.headers.get("To"))
            self._ack = Transmit(ack.to_bytes(), self.peer, ack)
            self._out.append(self._ack)
            self._wait("D", now, 32.0)

    def _receive_non_invite(self, response: Response, now: float) -> None:
        if self.state == "completed":
            return
        self._responses.append(response)
        if response.status < 200:
            self.state = "proceeding"
            self._intervals["E"] = T2  # §17.1.2.2: from now on E fires every T2
            return
        self._stop_timer("E", "F")
        self.state = "completed"
        self._wait("K", now, T4)

    def _fire(self, name: str, now: float) -> None:
        if name in ("A", "E"):  # retransmit: A doubles, E doubles up to T2
            self._out.append(self._sent)
            self._backoff(name, now, math.inf if name == "A" else T2)
        else:  # B or F: no final answer; D, K or M: the wait for retransmissions is over
            self._terminate("timeout" if name in ("B", "F") else None)


def same_transaction(request: Request, method: str, to: str | None = None) -> Request:
    """ACK or CANCEL for an INVITE (RFC 3261 §17.1.1.3, §9.1).

    Both reuse the INVITE's top Via (same branch, so they reach the same
    server transaction), Route set, From, To, Call-ID and CSeq number;
    only the method differs, and an ACK takes To from the response.
    """
    headers = Headers()
    headers.add("Via", request.headers.get_all("Via")[0])
    for value in request.headers.get_all("Route"):
        headers.add("Route", value)
    headers.add("Max-Forwards", "70")
    headers.add("From", request.headers.get("From") or "")
    headers.add("To", to or request.headers.get("To") or "")
    headers.add("Call-ID", request.call_id)
    headers.add("CSeq", f"{request.cseq[0]} {method}")
    return Request(method, request.uri, headers)


# ---------------------------------------------------------------- server


class ServerTransaction(_Transaction):
    """INVITE (§17.2.1) and non-INVITE (§17.2.2) server transactions.

    The owner creates one per new request (see :func:`server_key`), passes
    retransmissions and ACKs to :meth:`receive`, and answers through
    :meth:`send_response` so the transaction can repeat the last response.
    An INVITE gets 100 Trying at once, so the client stops retransmitting.
    """

    def __init__(self, request: Request, peer: Peer, now: float, to_tag: str = "") -> None:
        super().__init__(request, peer)
        self.key = server_key(request)
        self.to_tag = to_tag  # the endpoint's: the same To tag on every answer
        self.state = "proceeding" if self.invite else "trying"
        self._last: Transmit | None = None  # our last answer, repeated as needed
        if self.invite:
            self.send_response(make_response(request, 100, "Trying"), now)

    def receive(self, request: Request, now: float) -> None:
        """A retransmission of our request, or the ACK for our INVITE answer.

        In "accepted" a retransmitted INVITE is absorbed: the TU's 2xx
        retransmissions cover it (RFC 6026 §8.7).
        """
        if request.method != "ACK":
            if self.state in ("proceeding", "completed") and self._last is not None:
                self._out.append(self._last)  # our last answer was lost: repeat it
        elif self.state == "accepted":
            self._stop_timer("G")  # our 2xx arrived: stop repeating it (the ACK is the TU's)
        elif self.invite and self.state == "completed":
            self._stop_timer("G", "H")
            self.state = "confirmed"
            self._wait("I", now, T4)

    def send_response(self, response: Response, now: float) -> None:
        """Send a response from the TU and move the state machine on."""
        status = response.status
        if self.state == "accepted" and 200 <= status < 300:
            # the TU retransmits its 2xx (§13.3.1.4)
            self._out.append(Transmit(response.to_bytes(), self.peer, response))
            return
        if self.state not in ("trying", "proceeding"):
            return  # §17.2: the TU may not answer twice with a final response
        self._last = Transmit(response.to_bytes(), self.peer, response)
        self._out.append(self._last)
        if status < 200:
            self.state = "proceeding"
        elif self.invite and status < 300:
            # RFC 6026 §7.1: "accepted" absorbs INVITE retransmissions until Timer L.
            # The 2xx is repeated (T1 doubling to T2) until the ACK comes: RFC 3261
            # §13.3.1.4 gives that to the UAS core; here it costs one timer.
            self.state = "accepted"
            self._start_timer("L", now, TIMEOUT)
            if not self.reliable:
                self._start_timer("G", now, T1)
        else:
            self._complete(now)

    def _complete(self, now: float) -> None:
        self.state = "completed"
        if not self.invite:
            self._wait("J", now, TIMEOUT)
            return
        if not self.reliable:
            self._start_timer("G", now, T1)
        self._start_timer("H", now, TIMEOUT)

    def _fire(self, name: str, now: float) -> None:
        if name != "G":  # H: no ACK came; I, J or L: the wait for retransmissions is over
            self._terminate("timeout" if name == "H" else None)
        elif self._last is not None:  # repeat our final answer, doubling up to T2, until the ACK
            self._out.append(self._last)
            self._backoff("G", now, T2)


def make_response(
    request: Request, status: int, reason: str, to_tag: str | None = None
) -> Response:
    """A response that mirrors the request's routing headers (RFC 3261 §8.2.6.2).

    ``to_tag`` is added when the request had none, as every final answer
    outside 100 must carry one.  A request lacking Via, From, To, Call-ID or
    CSeq cannot be answered at all: :class:`SipParseError` says which.
    """
    _ = request.top_via, request.cseq, request.from_tag  # raise if missing or malformed
    had_tag = request.to_tag is not None
    headers = Headers(("Via", value) for value in request.headers.get_all("Via"))
    headers.add("From", request.headers.get_lines("From")[0])
    to = request.headers.get_lines("To")[0]
    if to_tag and not had_tag:
        to = f"{to};tag={to_tag}"
    headers.add("To", to)
    headers.add("Call-ID", request.call_id)
    headers.add("CSeq", request.headers.get_lines("CSeq")[0])
    return Response(status, reason, headers)
