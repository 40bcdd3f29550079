"""The one asyncio driver of the sans-IO :class:`~qsipctl.sip.endpoint.Endpoint`.

Why a driver and not a transport per server: the endpoint holds every
transaction of one local port; this module only moves bytes between it and
the sockets (one unconnected UDP port, shared with STUN and RTP, plus TCP/TLS
connections), feeds it the loop's clock, arms the one timer it asks for, and
turns its events into awaitable answers and incoming-request callbacks.

Usage (what the probes do)::

    driver = SipDriver()
    await driver.open_udp("0.0.0.0")              # or connect() for tcp/tls
    answer = await driver.request(request, peer, timeout=5.0)
    answer.response, answer.source                 # the source may differ from peer
    driver.udp.stun.sendto(...), await driver.udp.rtp.recv()
    await driver.close()
"""

from __future__ import annotations

import asyncio
import errno
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

from qsipctl.addr import any_address, host_port, ip_version
from qsipctl.net.errors import NetError, NoAnswer
from qsipctl.net.trace import Trace
from qsipctl.net.transport import StreamConnection, TlsSettings, UdpSocket, open_stream
from qsipctl.sip.endpoint import (
    Endpoint,
    Peer,
    RequestCancelled,
    RequestReceived,
    ResponseReceived,
    TransactionFailed,
    Transmit,
    Unparsable,
)
from qsipctl.sip.errors import SipError
from qsipctl.sip.message import Message, Request, Response
from qsipctl.sip.transaction import ClientTransaction, ServerTransaction
from qsipctl.stun.transport import Addr, source_ip_towards


@functools.cache  # routes do not change during one run: a thousand probes to one PBX ask once
def _route_source(host: str, port: int) -> str:
    """The source address the kernel picks towards ``host`` (loopback if there is no route)."""
    try:
        return source_ip_towards(host, port)
    except OSError:
        return "::1" if ip_version(host) == 6 else "127.0.0.1"


OnResponse = Callable[[ResponseReceived], None]


@dataclass(slots=True)
class _Waiter:
    peer: Peer
    final: asyncio.Future[ResponseReceived]  # the final response, and where it came from
    on_response: OnResponse | None = None
    deadline: float = math.inf  # the caller's patience (see final): the driver's timer checks it


def summary(msg: Message) -> str:
    """The start line, as a ladder names a message."""
    return f"{msg.method} {msg.uri}" if isinstance(msg, Request) else f"{msg.status} {msg.reason}"


class SipDriver:
    """Sockets, clock and timer for one endpoint; evidence kept as traces per peer."""

    def __init__(
        self,
        endpoint: Endpoint | None = None,
        *,
        on_request: Callable[[RequestReceived | RequestCancelled], None] | None = None,
        evidence: bool = True,
    ) -> None:
        self.endpoint = endpoint or Endpoint()
        self.incoming: asyncio.Queue[RequestReceived | RequestCancelled] = asyncio.Queue()
        self.on_request = on_request or self.incoming.put_nowait  # else queued for incoming
        # every message as sent and received (``traces``), for --pcap and --ladder; a
        # thousand-phone run without them need not summarise and keep 8,000 of them
        self.evidence = evidence
        self.udp: UdpSocket | None = None
        self.traces: list[Trace] = []
        self.unparsable: list[Unparsable] = []
        self._trace_of: dict[Peer, Trace] = {}
        self._conns: dict[Peer, StreamConnection] = {}
        self._servers: list[asyncio.Server] = []
        self._waiters: dict[ClientTransaction, _Waiter] = {}
        self._errors: dict[Peer, NetError] = {}
        self._sent: dict[int, bytes] = {}  # id -> bytes sent once: the rest are "(again)"
        self._stream_local: dict[Peer, Addr] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()

    # ------------------------------------------------------------ sockets
    async def open_udp(self, host: str = "0.0.0.0", port: int = 0) -> UdpSocket:
        """Bind the one UDP port (SIP, STUN and RTP share it)."""
        self.udp = UdpSocket(host, port, self._udp_sip, self._udp_error)
        return self.udp

    async def listen_tcp(self, host: str, port: int = 0) -> int:
        """Accept TCP connections (the lab registrar); returns the bound port."""
        server = await self._loop.create_server(self._new_conn, host, port)
        self._servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    async def connect(
        self, peer: Peer, *, tls: TlsSettings, timeout: float, local: str | None
    ) -> None:
        """A TCP/TLS connection (UDP needs none) from ``local`` (None: any); raises NetError."""
        if peer.transport == "udp" or peer in self._conns:
            return
        conn = self._new_conn()
        trace = self._trace(peer)  # the attempt is evidence even when it fails
        trace.local = (local or any_address(peer.host), 0)
        try:
            await open_stream(peer, conn, local=local, tls=tls, timeout=timeout)
        except NetError as exc:
            trace.message("in", f"(no connection: {exc})")
            raise
        trace.local = self._stream_local[peer] = conn.local
        self._conns[peer] = conn

    def local_for(self, peer: Peer) -> Addr:
        """Our address as ``peer`` sees it unless a NAT rewrites it (for Via and Contact)."""
        if peer.transport != "udp":
            return self._stream_local.get(peer, ("", 0))  # kept after the connection closes
        if self.udp is None:
            return ("", 0)  # no socket yet (open_udp first)
        host, port = self.udp.local
        if host in ("0.0.0.0", "::"):  # bound to any address: the route decides
            host = _route_source(peer.host, peer.port)
        return host, port

    # ------------------------------------------------------------ requests
    def start(
        self, request: Request, peer: Peer, on_response: OnResponse | None = None
    ) -> ClientTransaction:
        """Send ``request`` in a new client transaction; await :meth:`final` for its answer.

        ``on_response`` sees every response of it as it comes: each 1xx, and
        for an INVITE each 2xx (retransmissions and forks: the dialog layer
        ACKs every one, RFC 6026).  2xx that arrive once nobody waits on the
        transaction are only traced.
        """
        tx = self.endpoint.send_request(request, peer, self._loop.time())
        self._waiters[tx] = _Waiter(peer, self._loop.create_future(), on_response=on_response)
        self._pump()
        return tx

    async def final(self, tx: ClientTransaction, timeout: float) -> ResponseReceived:
        """The final answer to ``tx``; NetError if unsendable, NoAnswer after ``timeout``
        (a probe's --timeout may end before Timer B/F): a deadline for :meth:`_on_timer`."""
        waiter = self._waiters[tx]
        waiter.deadline = self._loop.time() + timeout
        if self._timer is None or self._timer.when() > waiter.deadline:
            self._arm()
        try:
            return await waiter.final
        finally:
            waiter.deadline = math.inf  # nobody waits any longer
            if waiter.on_response is None or tx.terminated:
                self._waiters.pop(tx, None)
            # else an INVITE's: its 2xx retransmissions keep coming while the
            # transaction is "accepted" (RFC 6026, Timer M) when our ACK was lost,
            # and the dialog layer must ACK each one (RFC 3261 §13.2.2.4);
            # _on_timer forgets the waiter once the transaction has ended

    async def request(self, request: Request, peer: Peer, timeout: float) -> ResponseReceived:
        return await self.final(self.start(request, peer), timeout)

    def cancel(self, tx: ClientTransaction) -> None:
        """CANCEL a pending INVITE: its 487 is what counts; the CANCEL's own answer is traced."""
        self.endpoint.cancel(tx, self._loop.time())
        self._pump()

    def respond(self, tx: ServerTransaction, response: Response) -> None:
        self.endpoint.respond(tx, response, self._loop.time())
        self._pump()

    def send_stateless(self, request: Request, peer: Peer) -> None:
        """The ACK for a 2xx, built by the dialog layer."""
        self.endpoint.send_stateless(request, peer)
        self._pump()

    def _no_answer(self, request: Request, peer: Peer) -> NetError:
        """A timeout, unless the server did answer with something we could not parse."""
        junk = [u for u in self.unparsable if u.source.host == peer.host]
        if junk:
            return NetError(
                f"unparsable data from the server on {peer.transport}"
                f" ({len(junk)} datagram(s) dropped): {junk[0].reason}"
            )
        return NoAnswer(f"no answer to {request.method}")

    # ------------------------------------------------------------ receiving
    def _udp_sip(self, data: bytes, addr: Addr) -> None:
        peer = Peer("udp", addr[0], addr[1])
        if self.evidence:
            self._trace(peer).wire("in", data)
        self.endpoint.receive_datagram(data, peer, self._loop.time())
        self._pump()

    def _udp_error(self, addr: Addr, exc: OSError) -> None:
        peer = Peer("udp", addr[0], addr[1])
        where = host_port(*addr)
        if exc.errno == errno.ECONNREFUSED:
            err = NetError(
                f"nothing listens on udp {where}", f"udp {where} (ICMP port unreachable)", "refused"
            )
        else:
            err = NetError(f"udp {where}: {exc.strerror}")
        self._errors[peer] = err  # the latest error, where _fail_peer keeps the first
        self._trace(peer).message("in", f"({err.detail})")
        self._fail_peer(peer, err)

    def _new_conn(self) -> StreamConnection:
        return StreamConnection(self._stream_data, self._stream_lost)

    def _stream_data(self, conn: StreamConnection, data: bytes) -> None:
        if conn.peer is None and conn.transport is not None:  # accepted by listen_tcp
            host, port = conn.transport.get_extra_info("peername")[:2]
            conn.peer = Peer("tcp", str(host), int(port))
            conn.local = conn.transport.get_extra_info("sockname")[:2]
            self._conns[conn.peer] = conn
            self._stream_local[conn.peer] = conn.local
        peer = conn.peer
        assert peer is not None
        self._trace(peer).wire("in", data)
        try:
            messages = conn.parser.feed(data)
        except SipError as exc:
            self._record_unparsable(Unparsable(data, peer, str(exc)))
            why = f"unparsable data from the server on {peer.transport}: {exc}"
            self._fail_peer(peer, NetError(why))
            conn.close()
            return
        for msg in messages:
            self.endpoint.receive_message(msg, peer, self._loop.time())
        self._pump()

    def _stream_lost(self, conn: StreamConnection) -> None:
        if conn.peer is not None:
            self._conns.pop(conn.peer, None)
            lost = f"the server closed the {conn.peer.transport} connection"
            self._fail_peer(conn.peer, NetError(lost, kind="closed"))

    def _fail_peer(self, peer: Peer, exc: NetError) -> None:
        self._errors.setdefault(peer, exc)
        self.endpoint.transport_error(peer, self._loop.time())
        self._pump()

    # ------------------------------------------------------------ the pump
    def _pump(self) -> None:
        """Send what the endpoint queued, dispatch its events, re-arm its timer."""
        for tr in self.endpoint.datagrams_to_send():
            self._transmit(tr)
        for event in self.endpoint.events():
            self._dispatch(event)
        self._arm()

    def _transmit(self, tr: Transmit) -> None:
        if self.evidence:
            self._record_sent(tr)
        if tr.peer.transport == "udp":
            if self.udp is not None:
                self.udp.sendto(tr.data, (tr.peer.host, tr.peer.port))
        elif (conn := self._conns.get(tr.peer)) is not None:
            conn.write(tr.data)
        else:
            lost = NetError(f"no {tr.peer} connection", kind="closed")
            self._loop.call_soon(self._fail_peer, tr.peer, lost)

    def _record_sent(self, tr: Transmit) -> None:
        trace = self._trace(tr.peer)
        again = " (again)" if id(tr.data) in self._sent else ""
        self._sent[id(tr.data)] = tr.data
        trace.message("out", summary(tr.message) + again)
        trace.wire("out", tr.data)

    def _dispatch(self, event: object) -> None:
        if isinstance(event, ResponseReceived):
            if self.evidence:
                self._trace(event.source).message("in", summary(event.response))
            if event.tx is None or (waiter := self._waiters.get(event.tx)) is None:
                return  # a 2xx its transaction outlived, or a CANCEL's answer: only traced
            if waiter.on_response is not None:
                waiter.on_response(event)
            if event.response.status >= 200 and not waiter.final.done():
                waiter.final.set_result(event)
        elif isinstance(event, TransactionFailed):
            waiter = self._waiters.get(event.tx)
            if waiter is not None and not waiter.final.done():
                err = self._errors.get(waiter.peer) or NetError("could not send the request")
                if event.tx.failure == "timeout":
                    err = self._no_answer(event.tx.request, waiter.peer)
                waiter.final.set_exception(err)
                waiter.final.exception()  # retrieved: no "never retrieved" noise
        elif isinstance(event, Unparsable):
            self._record_unparsable(event)
        elif isinstance(event, RequestReceived | RequestCancelled):
            self._trace(event.source).message("in", summary(event.request))
            self.on_request(event)

    def _record_unparsable(self, event: Unparsable) -> None:
        self.unparsable.append(event)
        first = event.data.split(b"\n", 1)[0].strip()[:80].decode("utf-8", "replace")
        self._trace(event.source).message("in", f"unparsable: {first!r} ({event.reason})")

    def _arm(self) -> None:
        """Have :meth:`_on_timer` run by the endpoint's next deadline or a waiter's.

        A timer already set no later than that is kept: firing early only
        finds nothing due and re-arms, while cancelling and setting a timer
        at every message (a response moves the earliest deadline from
        Timer E to Timer K) costs the event loop's heap twice per request.
        """
        due = self.endpoint.next_timer()
        when = math.inf if due is None else due
        for waiter in self._waiters.values():
            when = min(when, waiter.deadline)
        if self._timer is not None:
            if when != math.inf and self._timer.when() <= when:
                return
            self._timer.cancel()
        self._timer = None if when == math.inf else self._loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        now = self._loop.time()
        self.endpoint.handle_timer(now)
        for tx, waiter in self._waiters.items():
            if waiter.deadline <= now and not waiter.final.done():  # the caller's patience ran out
                waiter.deadline = math.inf
                waiter.final.set_exception(self._no_answer(tx.request, waiter.peer))
        self._pump()
        for tx in [tx for tx, w in self._waiters.items() if tx.terminated and w.final.done()]:
            del self._waiters[tx]

    def _trace(self, peer: Peer) -> Trace:
        trace = self._trace_of.get(peer)
        if trace is None:
            local = self.local_for(peer)
            trace = self._trace_of[peer] = Trace(peer.transport, local, (peer.host, peer.port))
            self.traces.append(trace)
        return trace

    # ------------------------------------------------------------ the end
    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for waiter in self._waiters.values():
            waiter.final.cancel()
        self._waiters.clear()
        for conn in list(self._conns.values()):
            conn.close()
        self._conns.clear()
        if self.udp is not None:
            self.udp.close()
        for server in self._servers:
            server.close()
            await server.wait_closed()
        self._servers.clear()
