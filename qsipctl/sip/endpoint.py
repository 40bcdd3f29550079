"""One sans-IO SIP endpoint: every transaction of one local port, aioquic style.

Why one object: a call needs INVITE and CANCEL in flight at once, a BYE or
re-INVITE may arrive in the middle of our own request, and an INVITE's 2xx
keeps coming back until it is ACKed.  One object that owns every client and
server transaction (RFC 3261 §17), matches what arrives to them, and answers
what nobody owns makes all that one state machine, tested on a fake clock.

The owner (``qsipctl.net.driver`` for real sockets, tests for a fake clock):

* feeds what arrived: :meth:`Endpoint.receive_datagram` (one UDP datagram) or
  :meth:`Endpoint.receive_message` (one message a stream framer cut out),
  with the source :class:`Peer` and the time;
* sends whatever :meth:`Endpoint.datagrams_to_send` returns (bytes + peer);
* calls :meth:`Endpoint.handle_timer` at :meth:`Endpoint.next_timer`;
* reads :meth:`Endpoint.events`.

Requests the TU takes (``accept``, or any request inside a known dialog)
become :class:`RequestReceived` events answered with :meth:`Endpoint.respond`;
the rest is answered here: 481 for a dialog or transaction we do not know
(§12.2.2, §9.2), 405 for a method we know but do not take, 501 for one we
do not know (§8.2.1).  Responses go back to the address the request came
from (symmetric, RFC 3581), which is what works through NAT.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from qsipctl.sip.errors import SipError
from qsipctl.sip.message import Message, Request, Response, parse_message
from qsipctl.sip.transaction import (
    ClientTransaction,
    Peer,
    ServerTransaction,
    Transmit,
    client_key,
    make_response,
    same_transaction,
    server_key,
)

# RFC 3261 and the extensions a UA meets: known here means 405, not 501
KNOWN_METHODS = frozenset(
    {"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK", "SUBSCRIBE", "NOTIFY",
     "PUBLISH", "INFO", "REFER", "MESSAGE", "UPDATE"}
)  # fmt: skip

# a To tag on these does not name a dialog we should know (RFC 3261 §10, §11)
_DIALOGLESS = frozenset({"REGISTER", "OPTIONS"})


# ---------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """A response to one of our requests; ``tx`` is None for a 2xx to an INVITE
    whose transaction is gone (the dialog layer still ACKs it, RFC 6026)."""

    tx: ClientTransaction | None
    response: Response
    source: Peer


@dataclass(frozen=True, slots=True)
class TransactionFailed:
    """No final answer to our request; ``tx.failure`` says why: "timeout" (Timer B or F)
    or "transport" (it could not be carried: ICMP unreachable, lost connection)."""

    tx: ClientTransaction


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A request for the TU; answer it with :meth:`Endpoint.respond` (not an ACK).

    ``dialog`` is the dialog key (Call-ID, local tag, remote tag) when the
    request is inside a dialog the endpoint was told about.
    """

    request: Request
    source: Peer
    tx: ServerTransaction | None
    dialog: tuple[str, str, str] | None = None


@dataclass(frozen=True, slots=True)
class RequestCancelled:
    """A CANCEL matched our pending INVITE server transaction: 487 was sent for it."""

    request: Request
    source: Peer


@dataclass(frozen=True, slots=True)
class Unparsable:
    """Bytes that are not a SIP message we can use (RFC 3261 §18.3: dropped)."""

    data: bytes
    source: Peer
    reason: str


Event = ResponseReceived | TransactionFailed | RequestReceived | RequestCancelled | Unparsable


def _ack_key(request: Request) -> tuple[str, int, str | None]:
    """What ties the ACK for a 2xx (a new branch, §17.1.1.3) to its INVITE."""
    return request.call_id, request.cseq[0], request.from_tag


class Endpoint:
    """All transactions of one local SIP port; no sockets, no clock of its own."""

    def __init__(self, accept: Iterable[str] = ()) -> None:
        self.accept = frozenset(m.upper() for m in accept)
        self._clients: dict[tuple[str, str], ClientTransaction] = {}
        self._servers: dict[tuple[object, ...], ServerTransaction] = {}
        # INVITEs we answered 2xx, by _ack_key: the ACK for a 2xx has a new branch
        self._accepted: dict[tuple[str, int, str | None], ServerTransaction] = {}
        self.dialogs: set[tuple[str, str, str]] = set()  # (Call-ID, local tag, remote tag)
        self._out: list[Transmit] = []
        self._events: list[Event] = []

    # ------------------------------------------------------------ the owner's side
    def datagrams_to_send(self) -> list[Transmit]:
        out, self._out = self._out, []
        return out

    def events(self) -> list[Event]:
        out, self._events = self._events, []
        return out

    def next_timer(self) -> float | None:
        when: float | None = None
        for tx in (*self._clients.values(), *self._servers.values()):
            if (t := tx.next_timer()) is not None and (when is None or t < when):
                when = t
        return when

    def handle_timer(self, now: float) -> None:
        for tx in self._transactions():
            tx.handle_timer(now)
            self._service(tx)

    def transport_error(self, peer: Peer, now: float) -> None:
        """The network refused traffic to ``peer``: end every transaction bound there."""
        for tx in self._transactions():
            if tx.peer == peer:
                tx.transport_error(now)
                self._service(tx)

    # ------------------------------------------------------------ sending
    def send_request(self, request: Request, peer: Peer, now: float) -> ClientTransaction:
        """Start a client transaction; its responses come back as events."""
        tx = ClientTransaction(request, peer, now)
        self._clients[tx.key] = tx
        self._service(tx)
        return tx

    def send_stateless(self, request: Request, peer: Peer) -> None:
        """Send outside any transaction: the ACK for a 2xx is the dialog's (§13.2.2.4)."""
        self._out.append(Transmit(request.to_bytes(), peer, request))

    def respond(self, tx: ServerTransaction, response: Response, now: float) -> None:
        """Answer a request from a :class:`RequestReceived` event."""
        if self._servers.get(tx.key) is not tx:
            return  # the transaction already ended (e.g. CANCELled): nothing to answer
        tx.send_response(response, now)
        if tx.state == "accepted":  # an INVITE's 2xx: its ACK comes with a new branch
            self._accepted[_ack_key(tx.request)] = tx
        self._service(tx)

    @property
    def allow(self) -> str:
        """The Allow header value: the methods handed to the TU, and those §17 handles.

        What a 405/501 lists, what an OPTIONS answer and our INVITE advertise:
        one list, so a peer is never told of a method we would refuse.
        """
        return ", ".join(sorted(self.accept | {"ACK", "BYE", "CANCEL"}))

    def response_for(self, tx: ServerTransaction, status: int, reason: str) -> Response:
        """A response to ``tx``'s request, with the same To tag on every answer."""
        return make_response(tx.request, status, reason, to_tag=tx.to_tag)

    def cancel(self, tx: ClientTransaction, now: float) -> ClientTransaction:
        """CANCEL a pending INVITE (§9.1): same branch, Call-ID, From, To, CSeq number.

        Call it once a provisional response came (§9.1 says not before); its
        answer comes as the CANCEL transaction's own ResponseReceived.
        """
        if self._clients.get(tx.key) is not tx:
            raise SipError("the INVITE transaction to cancel is over")
        return self.send_request(same_transaction(tx.request, "CANCEL"), tx.peer, now)

    # ------------------------------------------------------------ receiving
    def receive_datagram(self, data: bytes, source: Peer, now: float) -> None:
        """One UDP datagram (CRLF keep-alives are ignored)."""
        if not data.strip(b"\r\n"):
            return
        try:
            msg = parse_message(data)
        except SipError as exc:
            self._events.append(Unparsable(data, source, str(exc)))
            return
        self.receive_message(msg, source, now)

    def receive_message(self, msg: Message, source: Peer, now: float) -> None:
        """One parsed message (what a stream framer cut out, or a datagram)."""
        try:
            if isinstance(msg, Response):
                self._receive_response(msg, source, now)
            else:
                self._receive_request(msg, source, now)
        except SipError as exc:  # no usable Via/CSeq/Call-ID/tags: belongs to nobody
            self._events.append(Unparsable(msg.to_bytes(), source, str(exc)))

    def _receive_response(self, resp: Response, source: Peer, now: float) -> None:
        client = self._clients.get(client_key(resp))
        if client is not None:
            client.receive(resp, now)
            self._service(client, source)
        elif resp.cseq[1] == "INVITE" and 200 <= resp.status < 300:
            self._events.append(ResponseReceived(None, resp, source))  # RFC 6026 §8.4

    def _receive_request(self, req: Request, source: Peer, now: float) -> None:
        server = self._servers.get(server_key(req))
        if server is not None and not (req.method == "ACK" and server.state == "accepted"):
            server.receive(req, now)  # a retransmission, or the ACK for a non-2xx
            self._service(server)
            return
        if req.method == "ACK":
            self._receive_ack(req, source, now)
        elif req.method == "CANCEL":
            self._receive_cancel(req, source, now)
        else:
            self._new_request(req, source, now)

    def _receive_ack(self, ack: Request, source: Peer, now: float) -> None:
        """An ACK for a 2xx (new branch, §17.1.1.3): stop our 2xx, hand it to the dialog."""
        tx = self._accepted.pop(_ack_key(ack), None)
        if tx is not None:
            tx.receive(ack, now)
        dialog = self._dialog_of(ack)
        if dialog is not None:
            self._events.append(RequestReceived(ack, source, None, dialog))

    def _receive_cancel(self, cancel: Request, source: Peer, now: float) -> None:
        target = self._servers.get(server_key(cancel, "INVITE"))
        server = self._open_server(cancel, source, now)
        if target is None:
            self._answer(server, 481, "Call/Transaction Does Not Exist", now)
            return
        self._answer(server, 200, "OK", now)  # §9.2: it matched, whatever happens next
        if target.state == "proceeding":  # no final answer yet: the CANCEL takes effect
            self._answer(target, 487, "Request Terminated", now)
            self._events.append(RequestCancelled(target.request, target.peer))

    def _new_request(self, req: Request, source: Peer, now: float) -> None:
        server = self._open_server(req, source, now)
        if req.to_tag is not None and req.method not in _DIALOGLESS:
            dialog = self._dialog_of(req)
            if dialog is None:
                self._answer(server, 481, "Call/Transaction Does Not Exist", now)
            else:
                self._events.append(RequestReceived(req, source, server, dialog))
        elif req.method in self.accept:
            self._events.append(RequestReceived(req, source, server))
        elif req.method in KNOWN_METHODS:
            self._answer(server, 405, "Method Not Allowed", now, allow=True)
        else:
            self._answer(server, 501, "Not Implemented", now, allow=True)

    def _dialog_of(self, req: Request) -> tuple[str, str, str] | None:
        key = (req.call_id, req.to_tag or "", req.from_tag or "")
        return key if key in self.dialogs else None

    def _open_server(self, req: Request, source: Peer, now: float) -> ServerTransaction:
        tx = ServerTransaction(req, source, now, to_tag=os.urandom(4).hex())
        self._servers[tx.key] = tx
        self._service(tx)
        return tx

    def _answer(
        self, tx: ServerTransaction, status: int, reason: str, now: float, allow: bool = False
    ) -> None:
        response = self.response_for(tx, status, reason)
        if allow:
            response.headers.add("Allow", self.allow)
        tx.send_response(response, now)
        self._service(tx)

    # ------------------------------------------------------------ plumbing
    def _transactions(self) -> list[ClientTransaction | ServerTransaction]:
        return [*self._clients.values(), *self._servers.values()]  # a copy: they may end

    def _service(
        self, tx: ClientTransaction | ServerTransaction, source: Peer | None = None
    ) -> None:
        """Queue what ``tx`` sends, hand a client's responses up, forget ``tx`` once it ended."""
        self._out += tx.datagrams_to_send()
        if isinstance(tx, ServerTransaction):
            if tx.terminated:
                self._servers.pop(tx.key, None)
                if tx.invite:
                    self._accepted.pop(_ack_key(tx.request), None)
            return
        self._events += [ResponseReceived(tx, r, source or tx.peer) for r in tx.responses()]
        if tx.terminated:
            self._clients.pop(tx.key, None)
            if tx.failure is not None:
                self._events.append(TransactionFailed(tx))
