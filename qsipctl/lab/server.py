"""A thin asyncio shell around :class:`~qsipctl.lab.registrar.Registrar`.

Why so thin: everything worth testing lives in the sans-IO registrar and the
transaction layer; this module only moves bytes between sockets and those
state machines and arms the timers they ask for.  UDP and TCP share the same
registrar so a binding made over one is visible over the other.

Usage (what ``qsipctl demo`` does)::

    async with LabRegistrar(accounts) as lab:
        lab.udp_port, lab.tcp_port   # the bound ports (0 asks for free ones)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import cast

from qsipctl.lab.registrar import DEMO_ACCOUNTS, REALM, LabAccount, LabEvent, Registrar
from qsipctl.sip.errors import SipError
from qsipctl.sip.message import Request, StreamParser, parse_message
from qsipctl.sip.transaction import ServerTransaction, server_key

Send = Callable[[bytes], None]


class _Transactions:
    """Server transactions of one transport, so retransmissions are absorbed."""

    def __init__(self, registrar: Registrar, reliable: bool) -> None:
        self.registrar = registrar
        self.reliable = reliable
        self._table: dict[tuple[object, ...], ServerTransaction] = {}
        self._timers: dict[tuple[object, ...], asyncio.TimerHandle] = {}

    def handle(self, request: Request, source: tuple[str, int], send: Send) -> None:
        """Route a request to its transaction; drop what cannot even be answered."""
        with contextlib.suppress(SipError):
            self._handle(request, source, send)

    def _handle(self, request: Request, source: tuple[str, int], send: Send) -> None:
        now = asyncio.get_running_loop().time()
        key = server_key(request)
        tx = self._table.get(key)
        if tx is not None:
            tx.receive(request, now)
        elif request.method != "ACK":
            tx = ServerTransaction(request, self.reliable, now)
            self._table[key] = tx
            tx.start()
            response = self.registrar.handle(request, source)
            if response is not None:
                tx.send_response(response, now)
        if tx is not None:
            self._service(key, tx, send)

    def _service(self, key: tuple[object, ...], tx: ServerTransaction, send: Send) -> None:
        for data in tx.datagrams_to_send():
            send(data)
        tx.events()  # nothing for the registrar to act on
        old = self._timers.pop(key, None)
        if old is not None:
            old.cancel()
        if tx.terminated:
            self._table.pop(key, None)
            return
        when = tx.next_timer()
        if when is not None:
            loop = asyncio.get_running_loop()
            self._timers[key] = loop.call_at(when, self._fire, key, tx, send)

    def _fire(self, key: tuple[object, ...], tx: ServerTransaction, send: Send) -> None:
        self._timers.pop(key, None)
        tx.handle_timer(asyncio.get_running_loop().time())
        self._service(key, tx, send)

    def close(self) -> None:
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        self._table.clear()


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, transactions: _Transactions, after: Callable[[], None]) -> None:
        self.transactions = transactions
        self.after = after
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's UDP transport does not inherit DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        transport = self.transport
        if transport is None or not data.strip():
            return  # keep-alive CRLFs
        try:
            message = parse_message(data)
        except SipError:
            return  # a demo registrar does not answer garbage
        if isinstance(message, Request):
            source = (str(addr[0]), int(str(addr[1])))
            self.transactions.handle(message, source, lambda b: transport.sendto(b, addr))
            self.after()


class LabRegistrar:
    """The lab registrar on UDP and TCP; an async context manager.

    ``on_event`` is called for every REGISTER outcome so a CLI can log it as
    it happens; the same events accumulate in :attr:`events`.
    """

    def __init__(
        self,
        accounts: Iterable[LabAccount] = DEMO_ACCOUNTS,
        host: str = "127.0.0.1",
        udp_port: int = 0,
        tcp_port: int = 0,
        realm: str | None = None,
        on_event: Callable[[LabEvent], None] | None = None,
    ) -> None:
        self.registrar = Registrar(accounts, realm=realm or REALM)
        self.host = host
        self.udp_port = udp_port
        self.tcp_port = tcp_port
        self._on_event = on_event
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._udp_tx = _Transactions(self.registrar, reliable=False)
        self._tcp_tx = _Transactions(self.registrar, reliable=True)
        self._writers: set[asyncio.StreamWriter] = set()
        self._seen = 0

    @property
    def events(self) -> list[LabEvent]:
        return list(self.registrar.log)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _UdpProtocol(self._udp_tx, self._publish), local_addr=(self.host, self.udp_port)
        )
        self._udp = transport
        self.udp_port = int(transport.get_extra_info("sockname")[1])
        self._tcp = await asyncio.start_server(self._serve_tcp, self.host, self.tcp_port)
        self.tcp_port = int(self._tcp.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Close sockets and cancel timers; safe to call twice."""
        self._udp_tx.close()
        self._tcp_tx.close()
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            for writer in list(self._writers):
                writer.close()
            await self._tcp.wait_closed()
            self._tcp = None

    async def __aenter__(self) -> LabRegistrar:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        peer = writer.get_extra_info("peername")
        source = (str(peer[0]), int(peer[1]))
        parser = StreamParser()
        try:
            while data := await reader.read(65536):
                for message in parser.feed(data):
                    if isinstance(message, Request):
                        self._tcp_tx.handle(message, source, writer.write)
                        self._publish()
        except (SipError, ConnectionError):
            pass  # a broken stream cannot be resynchronised: drop the connection
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def _publish(self) -> None:
        """Hand new log entries to ``on_event`` in order."""
        log = self.registrar.log
        while self._seen < len(log):
            if self._on_event is not None:
                self._on_event(log[self._seen])
            self._seen += 1
