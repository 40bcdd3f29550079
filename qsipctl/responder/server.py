"""The asyncio side of the responder: sockets in, :class:`Responder` decides, sockets out.

One control port for UDP and TCP (TCP frames are a 2-byte length and the
message), the next port up for the inbound probes it sends (so they come
from a port the requester has *not* sent to, as a PBX's media would), and a
UDP SIP echo port.  All policy is in :mod:`qsipctl.responder.protocol`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from qsipctl.responder.protocol import Addr, Limits, Responder, Send

MAX_STREAMS = 64  # TCP control connections open at once


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str
    port: int
    sip_port: int | None = 5060
    limits: Limits = field(default_factory=Limits)


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, handle: Callable[[bytes, Addr], None]) -> None:
        self.handle = handle

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.handle(data, (addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:
        pass


class ResponderServer:
    """Runs a :class:`Responder` on real sockets until cancelled."""

    def __init__(self, config: ServerConfig, secret: bytes) -> None:
        self.config = config
        self.core = Responder(secret, config.limits)
        self._udp: dict[str, asyncio.DatagramTransport] = {}
        self._tcp: asyncio.Server | None = None
        self._tasks: set[asyncio.Future[None]] = set()
        self._streams = 0

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        c = self.config
        fam = socket.AF_INET6 if ":" in c.host else socket.AF_INET
        socks = {"control": c.port, "probe": c.port + 1}
        if c.sip_port:
            socks["sip"] = c.sip_port
        for name, port in socks.items():
            tr, _ = await loop.create_datagram_endpoint(
                partial(_Udp, self._handler(name)), local_addr=(c.host, port), family=fam
            )
            self._udp[name] = tr
        self._tcp = await asyncio.start_server(self._serve_tcp, c.host, c.port, family=fam)

    def _handler(self, name: str) -> Callable[[bytes, Addr], None]:
        def handle(data: bytes, src: Addr) -> None:
            now = time.monotonic()
            if name == "control":
                sends = self.core.on_control(data, src, now, time.time())
            elif name == "sip":
                sends = self.core.on_sip(data, src, now)
            else:
                sends = self.core.on_probe(data, src, now)
            self._send(sends, None)

        return handle

    def _send(self, sends: list[Send], stream: asyncio.StreamWriter | None) -> None:
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        for s in sends:
            if s.at > now:
                loop.call_later(s.at - now, self._send_now, s, stream)
            else:
                self._send_now(s, stream)

    def _send_now(self, s: Send, stream: asyncio.StreamWriter | None) -> None:
        if s.sock == "tcp":
            task = asyncio.ensure_future(self._tcp_probe(s))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        if stream is not None and s.sock == "control":
            if not stream.is_closing():
                stream.write(struct.pack("!H", len(s.data)) + s.data)
            return
        tr = self._udp.get(s.sock)
        if tr is not None and not tr.is_closing():
            tr.sendto(s.data, s.dest)

    async def _tcp_probe(self, s: Send) -> None:
        """One connection attempt to the requester, 3 s at most; write the token, close."""
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(*s.dest), 3.0)
        except (OSError, TimeoutError):
            return
        try:
            writer.write(s.data)
            await asyncio.wait_for(writer.drain(), 3.0)
        except (OSError, TimeoutError):
            pass
        finally:
            writer.close()

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        src = (str(peer[0]), int(peer[1]))
        if self._streams >= MAX_STREAMS:  # memory is bounded too
            self.core.stats.refuse("too-many-connections")
            writer.close()
            return
        self._streams += 1
        try:
            while True:
                head = await asyncio.wait_for(reader.readexactly(2), 60.0)
                (n,) = struct.unpack("!H", head)
                if n > self.config.limits.max_request:
                    self.core.stats.refuse("oversized")
                    break
                data = await asyncio.wait_for(reader.readexactly(n), 10.0)
                self._send(self.core.on_control(data, src, time.monotonic(), time.time()), writer)
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._streams -= 1
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def close(self) -> None:
        for tr in self._udp.values():
            tr.close()
        if self._tcp is not None:
            self._tcp.close()

    async def serve_forever(self) -> None:
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            self.close()
