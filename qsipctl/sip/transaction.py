"""SIP transactions (RFC 3261 §17) as sans-IO state machines.

Why sans-IO: retransmission timers are what make SIP over UDP reliable, and
the interesting cases (Timer B after 32 s, Timer H, retransmission doubling up
to T2) must be testable without waiting.  So, aioquic style, a transaction
never sleeps and never touches a socket: the owner feeds it messages and the
current time, asks :meth:`next_timer` when to call :meth:`handle_timer`, sends
whatever :meth:`datagrams_to_send` returns and reads :meth:`events`.

Reliable transports (TCP/TLS) get no retransmissions and zero-length
"wait" timers (D, I, J, K), as §17 prescribes; the transaction still absorbs
duplicates while it lives.

INVITE transactions follow RFC 6026, which updates §17: after a 2xx both
sides linger in an "accepted" state (Timers L and M, 64*T1) instead of
terminating at once, so a retransmitted INVITE is not mistaken for a new call
and a retransmitted 2xx still reaches the TU.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from qsipctl.sip.headers import Headers
from qsipctl.sip.message import Request, Response

MAGIC_COOKIE = "z9hG4bK"


@dataclass(frozen=True, slots=True)
class Timers:
    """The RFC 3261 timer base values (§17.1.1.1, Table 4); injectable because
    lab networks differ."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0

    @property
    def timeout(self) -> float:
        """64*T1: Timers B, F, H and J."""
        return 64 * self.t1


DEFAULT = Timers()


def new_branch(rand: Callable[[int], bytes] | None = None) -> str:
    """A Via branch that is unique in space and time (RFC 3261 §8.1.1.7)."""
    raw = (rand or os.urandom)(10)
    return MAGIC_COOKIE + raw.hex()


# ---------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """A response the TU must see (retransmissions are absorbed)."""

    response: Response


@dataclass(frozen=True, slots=True)
class AckReceived:
    """The ACK for our final response to an INVITE arrived."""

    request: Request


@dataclass(frozen=True, slots=True)
class TimedOut:
    """Timer B, F or H fired: the peer never answered (or never ACKed)."""

    timer: str = ""


@dataclass(frozen=True, slots=True)
class TransportFailed:
    """The transport reported an error sending for this transaction."""


TransactionEvent = ResponseReceived | AckReceived | TimedOut | TransportFailed


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
    """Timers, output queue and event queue shared by all four machines."""

    def __init__(self, reliable: bool, timers: Timers) -> None:
        self.reliable = reliable
        self.timers = timers
        self.state = "init"
        self._deadlines: dict[str, float] = {}
        self._intervals: dict[str, float] = {}
        self._out: list[bytes] = []
        self._events: list[TransactionEvent] = []

    # -- the owner's side
    def next_timer(self) -> float | None:
        """Absolute time at which :meth:`handle_timer` should be called."""
        return min(self._deadlines.values(), default=None)

    def handle_timer(self, now: float) -> None:
        """Fire every timer due at ``now`` (earliest first)."""
        while self.state != "terminated":
            due = [(t, name) for name, t in self._deadlines.items() if t <= now]
            if not due:
                return
            _, name = min(due)
            del self._deadlines[name]
            self._fire(name, now)

    def datagrams_to_send(self) -> list[bytes]:
        out, self._out = self._out, []
        return out

    def events(self) -> list[TransactionEvent]:
        out, self._events = self._events, []
        return out

    def transport_error(self, now: float) -> None:
        """RFC 3261 §17.1.4/§17.2.4: a send failure ends the transaction."""
        if self.state != "terminated":
            self._events.append(TransportFailed())
            self._terminate()

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

    def _backoff(self, name: str, now: float, cap: float | None) -> None:
        """Restart a retransmit timer with double its last interval, capped at T2."""
        interval = self._intervals[name] * 2
        self._start_timer(name, now, min(interval, cap) if cap is not None else interval)

    def _wait(self, name: str, now: float, unreliable_interval: float) -> None:
        """Timers D/I/J/K: linger for retransmissions, or not at all over TCP/TLS."""
        if self.reliable:
            self._terminate()
        else:
            self._start_timer(name, now, unreliable_interval)

    def _terminate(self) -> None:
        self.state = "terminated"  # the owner sees :attr:`terminated` and forgets it
        self._deadlines.clear()


# ---------------------------------------------------------------- client


class ClientTransaction(_Transaction):
    """INVITE (§17.1.1) and non-INVITE (§17.1.2) client transactions."""

    def __init__(
        self, request: Request, reliable: bool, now: float, timers: Timers = DEFAULT
    ) -> None:
        super().__init__(reliable, timers)
        self.request = request
        self.invite = request.method == "INVITE"
        self.key = client_key(request)
        self.ack: Request | None = None
        self._now = now
        self.request_bytes = request.to_bytes()
        self._ack_bytes: bytes | None = None

    def start(self) -> None:
        """Send the request and arm the retransmit and timeout timers."""
        now, t = self._now, self.timers
        self._out.append(self.request_bytes)
        self.state = "calling" if self.invite else "trying"
        retransmit = "A" if self.invite else "E"
        if not self.reliable:
            self._start_timer(retransmit, now, t.t1)
        self._start_timer("B" if self.invite else "F", now, t.timeout)

    def receive(self, response: Response, now: float) -> None:
        """Feed a response that matched :attr:`key`."""
        if self.state in ("init", "terminated"):
            return
        if self.invite:
            self._receive_invite(response, now)
        else:
            self._receive_non_invite(response, now)

    def _receive_invite(self, response: Response, now: float) -> None:
        status = response.status
        if self.state == "accepted":
            if 200 <= status < 300:
                self._events.append(ResponseReceived(response))
            return
        if self.state == "completed":
            if status >= 300 and self._ack_bytes is not None:
                self._out.append(self._ack_bytes)  # our ACK was lost: send it again
            return
        self._stop_timer("A")
        if status < 200:
            self._stop_timer("B")
            self.state = "proceeding"
            self._events.append(ResponseReceived(response))
        elif status < 300:
            # RFC 6026 §8.4: linger in "accepted" so 2xx retransmissions (and
            # forked 2xx) still reach the TU, which ACKs each one itself.
            self._stop_timer("B")
            self.state = "accepted"
            self._events.append(ResponseReceived(response))
            self._start_timer("M", now, self.timers.timeout)
        else:
            self._stop_timer("B")
            self.state = "completed"
            self.ack = make_ack(self.request, response)
            self._ack_bytes = self.ack.to_bytes()
            self._out.append(self._ack_bytes)
            self._events.append(ResponseReceived(response))
            self._wait("D", now, 32.0)

    def _receive_non_invite(self, response: Response, now: float) -> None:
        if self.state == "completed":
            return
        self._events.append(ResponseReceived(response))
        if response.status < 200:
            self.state = "proceeding"
            return
        self._stop_timer("E", "F")
        self.state = "completed"
        self._wait("K", now, self.timers.t4)

    def _fire(self, name: str, now: float) -> None:
        t = self.timers
        if name == "A":
            self._out.append(self.request_bytes)
            self._backoff("A", now, None)
        elif name == "E":
            self._out.append(self.request_bytes)
            if self.state == "proceeding":
                self._start_timer("E", now, t.t2)
            else:
                self._backoff("E", now, t.t2)
        elif name in ("B", "F"):
            self._events.append(TimedOut(name))
            self._terminate()
        elif name in ("D", "K", "M"):
            self._terminate()


def make_ack(request: Request, response: Response) -> Request:
    """The ACK for a non-2xx final response (RFC 3261 §17.1.1.3): To from the
    response, so it carries the tag the server chose."""
    return same_transaction(request, "ACK", response.headers.get("To"))


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
    """

    def __init__(
        self, request: Request, reliable: bool, now: float, timers: Timers = DEFAULT
    ) -> None:
        super().__init__(reliable, timers)
        self.request = request
        self.invite = request.method == "INVITE"
        self.key = server_key(request)
        self.state = "proceeding" if self.invite else "trying"
        self._last: bytes | None = None
        self.last_response: Response | None = None
        self._now = now

    def start(self) -> None:
        """An INVITE gets 100 Trying at once, so the client stops retransmitting."""
        if self.invite:
            self.send_response(make_response(self.request, 100, "Trying"), self._now)

    def receive(self, request: Request, now: float) -> None:
        """A retransmission of our request, or the ACK for our INVITE answer."""
        if request.method == "ACK":
            self._receive_ack(request, now)
        elif self.state == "accepted":
            return  # RFC 6026 §8.7: the TU's 2xx retransmissions cover it
        elif self.state in ("proceeding", "completed") and self._last is not None:
            self._out.append(self._last)

    def _receive_ack(self, request: Request, now: float) -> None:
        if self.state == "accepted":
            self._stop_timer("G")  # our 2xx arrived: stop repeating it
            self._events.append(AckReceived(request))  # the ACK for a 2xx: TU's business
            return
        if not self.invite or self.state != "completed":
            return
        self._stop_timer("G", "H")
        self.state = "confirmed"
        self._events.append(AckReceived(request))
        self._wait("I", now, self.timers.t4)

    def send_response(self, response: Response, now: float) -> None:
        """Send a response from the TU and move the state machine on."""
        status = response.status
        if self.state == "accepted" and 200 <= status < 300:
            self._out.append(response.to_bytes())  # the TU retransmits its 2xx (§13.3.1.4)
            return
        if self.state not in ("trying", "proceeding"):
            return  # §17.2: the TU may not answer twice with a final response
        self._last = response.to_bytes()
        self.last_response = response
        self._out.append(self._last)
        if status < 200:
            self.state = "proceeding"
        elif self.invite and status < 300:
            # RFC 6026 §7.1: "accepted" absorbs INVITE retransmissions until Timer L.
            # The 2xx is repeated (T1 doubling to T2) until the ACK comes: RFC 3261
            # §13.3.1.4 gives that to the UAS core; here it costs one timer.
            self.state = "accepted"
            self._start_timer("L", now, self.timers.timeout)
            if not self.reliable:
                self._start_timer("G", now, self.timers.t1)
        else:
            self._complete(now)

    def _complete(self, now: float) -> None:
        t = self.timers
        self.state = "completed"
        if not self.invite:
            self._wait("J", now, t.timeout)
            return
        if not self.reliable:
            self._start_timer("G", now, t.t1)
        self._start_timer("H", now, t.timeout)

    def _fire(self, name: str, now: float) -> None:
        if name == "G" and self._last is not None:
            self._out.append(self._last)
            self._backoff("G", now, self.timers.t2)
        elif name == "H":
            self._events.append(TimedOut("H"))
            self._terminate()
        elif name in ("I", "J", "L"):
            self._terminate()


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
    headers = Headers()
    for value in request.headers.get_all("Via"):
        headers.add("Via", value)
    headers.add("From", request.headers.get_lines("From")[0])
    to = request.headers.get_lines("To")[0]
    if to_tag and not had_tag:
        to = f"{to};tag={to_tag}"
    headers.add("To", to)
    headers.add("Call-ID", request.call_id)
    headers.add("CSeq", request.headers.get_lines("CSeq")[0])
    return Response(status, reason, headers)
